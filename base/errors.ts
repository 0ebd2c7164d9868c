/**
 * Every error weft raises on purpose is declared here once, with a stable code,
 * an HTTP status for the APIs, and a one-line meaning that docs/errors.md repeats
 * (a test keeps the two in step). Errors carry the offending key and value so a
 * user can find the bad input without reading a stack trace.
 */

/** The catalogue: code -> HTTP status and what it means. */
export const ERROR_CODES = {
  WEFT_ERR_CONFIG_INVALID: { status: 400, meaning: 'A configuration value (flag, environment variable or config file) is invalid.' },
  WEFT_ERR_CONFIG_FILE: { status: 400, meaning: 'The config file cannot be read or parsed.' },
  WEFT_ERR_LABEL_INVALID: { status: 400, meaning: 'A container label (weft.* or Registrator SERVICE_*) has a bad value.' },
  WEFT_ERR_LABEL_UNKNOWN: { status: 400, meaning: 'A weft.* label is not one weft knows (likely a typo).' },
  WEFT_ERR_SPLIT_INVALID: { status: 400, meaning: 'A traffic split document (KV weft/splits/<service>) is invalid.' },
  WEFT_ERR_WEIGHT_INVALID: { status: 400, meaning: 'An instance weight (its Consul Meta) is not an integer in the range base/contracts/names.ts allows.' },
  WEFT_ERR_PENDING_LIMIT: { status: 503, meaning: 'The proxy shed a request: the service already has its limit of pending requests.' },
  WEFT_ERR_INTENTION_INVALID: { status: 400, meaning: 'An intention document (KV weft/intentions/<source>/<destination>) or its key is invalid; an invalid document denies its pair.' },
  WEFT_ERR_INTENTION_DENIED: { status: 403, meaning: 'The inbound proxy refused a call: an intention (or the default action) denies the source service calling the destination.' },
  WEFT_ERR_LOCAL_INSTANCE_MISSING: { status: 503, meaning: 'The inbound proxy has no local instance for the call: x-weft-instance names no local instance of the service, or the service has none on this host.' },
  WEFT_ERR_LOCAL_APP_UNAVAILABLE: { status: 502, meaning: 'The inbound proxy could not get an answer from the local instance (connect error or reset).' },
  WEFT_ERR_NO_INSTANCES: { status: 503, meaning: 'The outbound proxy knows no routable instance of the service (none registered, none healthy, or all drained).' },
  WEFT_ERR_HOLD_QUEUE_FULL: { status: 503, meaning: 'The service is at zero instances and the outbound proxy already holds its limit of requests waiting for the first one (proxy.activation.maxHeld).' },
  WEFT_ERR_COLD_START_TIMEOUT: { status: 503, meaning: 'The service is at zero instances and none became healthy within the hold time (proxy.activation.maxWaitMs, or the request deadline if shorter).' },
  WEFT_ERR_UPSTREAM_UNAVAILABLE: { status: 502, meaning: 'The outbound proxy could not get an answer from an instance (connect error or reset), retries included.' },
  WEFT_ERR_UPSTREAM_TIMEOUT: { status: 504, meaning: 'The outbound proxy timed out (overall or per-try timeout) before an instance answered.' },
  WEFT_ERR_PROXY_TARGET_INVALID: { status: 400, meaning: 'A request to the outbound proxy names no routable service (Host header or absolute URI), or uses CONNECT/https.' },
  WEFT_ERR_PROXY_LOCAL_INVALID: { status: 400, meaning: 'The proxy hand-off file <dataDir>/proxy/local.json is unreadable or breaks its schema (base/contracts/host-proxy.ts); the proxy keeps its last good one.' },
  WEFT_ERR_PROXY_PARSER_UNAVAILABLE: { status: 500, meaning: "The proxy cannot run its HTTP/1 parser: Node's internal parser (node:_http_common's HTTPParser, its callbacks and consume/unconsume/getCurrentBuffer) is missing or has changed shape in this Node version; weft proxy refuses to start (proxy/README.md, 'The parser seam')." },
  WEFT_ERR_NO_IDENTITY: { status: 503, meaning: 'The calling service has no mesh identity (certificate) yet, so the proxy cannot make the mTLS hop.' },
  WEFT_ERR_CONSUL_UNAVAILABLE: { status: 503, meaning: 'Consul (or the dev agent) cannot be reached.' },
  WEFT_ERR_CONSUL_REQUEST: { status: 502, meaning: 'Consul answered a request with an error.' },
  WEFT_ERR_KV_CAS_CONFLICT: { status: 409, meaning: 'A check-and-set write lost to a concurrent writer.' },
  WEFT_ERR_LOCK_LOST: { status: 409, meaning: 'A session lock was lost (session expired or invalidated).' },
  WEFT_ERR_KV_KEY_INVALID: { status: 400, meaning: 'A Consul KV key is outside weft/ or malformed (empty segment, leading slash).' },
  WEFT_ERR_KV_VALUE_INVALID: { status: 502, meaning: 'A value under weft/ in Consul KV is not the JSON weft expects.' },
  WEFT_ERR_INSTANCE_INVALID: { status: 502, meaning: 'A Consul service registration breaks the weft contract (missing or bad weft_* Meta).' },
  WEFT_ERR_CSR_INVALID: { status: 400, meaning: 'A certificate signing request is not a well-formed PEM PKCS#10 request.' },
  WEFT_ERR_CSR_KEY: { status: 400, meaning: "A CSR's key type or size is not allowed (weft leaves use EC P-256)." },
  WEFT_ERR_CSR_SIGNATURE: { status: 400, meaning: "A CSR's signature does not verify with its own public key (no proof of key possession)." },
  WEFT_ERR_CSR_IDENTITY: { status: 403, meaning: 'A CSR asks for a SPIFFE ID the caller may not claim, or for not exactly one.' },
  WEFT_ERR_CSR_RATE_LIMITED: { status: 429, meaning: 'The CA is signing at its configured limit (ca.csrMaxPerSecond); retry later.' },
  WEFT_ERR_SPIFFE_ID_INVALID: { status: 400, meaning: 'A SPIFFE ID, trust domain, namespace or service name is malformed or of another trust domain.' },
  WEFT_ERR_CERT_INVALID: { status: 400, meaning: 'A certificate, chain or trust bundle cannot be parsed or is not usable.' },
  WEFT_ERR_CERT_IDENTITY: { status: 403, meaning: 'A peer certificate does not carry exactly one SPIFFE ID of the trust domain, or is a CA certificate.' },
  WEFT_ERR_CA_MISSING: { status: 404, meaning: 'There is no CA in the data directory (run weft ca init).' },
  WEFT_ERR_CA_EXISTS: { status: 409, meaning: 'A CA already exists in the data directory (use weft ca rotate).' },
  WEFT_ERR_CA_STORE: { status: 500, meaning: 'The CA directory cannot be read or written, a key file is readable by others, or a key does not match its certificate.' },
  WEFT_ERR_DRIVER: { status: 500, meaning: 'A runtime driver (docker or process) failed to create, start, stop or inspect a task.' },
  WEFT_ERR_NO_SUCH_TASK: { status: 404, meaning: 'A runtime driver has no container or process with that id.' },
  WEFT_ERR_DOCKER_UNAVAILABLE: { status: 503, meaning: 'The Docker daemon cannot be reached (the agent falls back to the process driver when it was not asked for docker explicitly).' },
  WEFT_ERR_ALLOC_INVALID: { status: 400, meaning: 'An allocation document (KV weft/allocs/<host>/<alloc>) is not valid JSON for the schema, or its key and id disagree.' },
  WEFT_ERR_HOST_VOLUME_MISSING: { status: 404, meaning: 'An allocation mounts a host volume its host does not offer (agent.hostVolumes, weft agent --volume name=/path); the allocation fails to start.' },
  WEFT_ERR_ALLOC_SECRETS: { status: 503, meaning: 'The agent could not give an allocation its secrets: no scheduler token, the scheduler unreachable or refusing, a secret missing, or a secret file not writable; the allocation fails to start.' },
  WEFT_ERR_CSR_SIGNER: { status: 503, meaning: "The agent could not get a service's certificate signed (no local CA, or the signer failed)." },
  WEFT_ERR_JOB_INVALID: { status: 400, meaning: 'A job spec is not valid YAML/JSON or breaks the job schema; every error names its path (groups[0].tasks[1].resources.memory).' },
  WEFT_ERR_SECRET_INVALID: { status: 400, meaning: 'A secret name or value is invalid (names: 1-128 of A-Za-z0-9_.-, starting alphanumeric; values up to 64 KiB).' },
  WEFT_ERR_SECRET_NOT_FOUND: { status: 404, meaning: 'No secret by that name is stored.' },
  WEFT_ERR_SECRET_KEY: { status: 500, meaning: "The scheduler's secrets key file cannot be read or created, is readable by others, or does not decrypt a stored secret." },
  WEFT_ERR_JOB_NOT_FOUND: { status: 404, meaning: 'No job by that name is registered with the scheduler.' },
  WEFT_ERR_API_UNAUTHORIZED: { status: 401, meaning: 'A scheduler API call came without a bearer token, or with a token the scheduler does not know (Authorization: Bearer <token>).' },
  WEFT_ERR_API_FORBIDDEN: { status: 403, meaning: "A host's agent token called a route or named a host it may not (agent tokens only sign CSRs and read secrets for their own host)." },
  WEFT_ERR_API_REQUEST_INVALID: { status: 400, meaning: 'A scheduler API request breaks the route schema (body, parameters or query); key names the field.' },
  WEFT_ERR_API_NOT_FOUND: { status: 404, meaning: 'The scheduler API has no such route, or no such group, version, node, split or intention.' },
  WEFT_ERR_API_INTERNAL: { status: 500, meaning: 'The scheduler API failed on an unexpected error; the scheduler log has the details.' },
  WEFT_ERR_SCHEDULER_TOKEN: { status: 500, meaning: "The scheduler's API token file <dataDir>/scheduler/token cannot be read or created, or is readable by others." },
  WEFT_ERR_SIGNING_KEYS: { status: 500, meaning: "The scheduler's signing keys (<dataDir>/scheduler/signing/) cannot be read or created, a private key file is readable by others, or a key set (GET /v1/signing/keys, <dataDir>/proxy/signing-keys.json) is malformed." },
  WEFT_ERR_SIGNED_STATE: { status: 403, meaning: "A document a host acts on (KV weft/allocs/, weft/intentions/, weft/splits/) does not verify against the scheduler's signing keys (unsigned, malformed, unknown or retired key, bad signature, rollback): it is refused, never acted on, and the last verified one stays in force." },
  WEFT_ERR_DEV_CONSUL_DATA_DIR: { status: 500, meaning: 'The dev Consul agent cannot read or write its data directory.' },
  WEFT_ERR_DEV_CONSUL_CONFIG: { status: 400, meaning: 'weft dev-consul cannot use a Consul agent config file (-config-file, -config-dir, -hcl): it cannot be read, is not valid JSON or HCL, has a key of the wrong type or a service or check the agent refuses, or asks for what the dev agent lacks (acl.enabled = true: it has no ACLs); the message names the file and the key.' },
  WEFT_ERR_ARGUMENT_INVALID: { status: 400, meaning: 'A command-line argument is invalid (a count that is not a number, a split weight such as v1=abc, an empty secret); the message names the argument and its value.' },
  WEFT_ERR_SCHEDULER_UNREACHABLE: { status: 503, meaning: 'The CLI could not reach the scheduler API at its address (connection refused, unknown host or timeout); the message names the address (--addr, WEFT_ADDR, client.address).' },
  WEFT_ERR_SCHEDULER_RESPONSE: { status: 502, meaning: "The scheduler API answered something the CLI cannot read (not JSON, or not the contract's shape), or an error code this CLI does not know." },
  WEFT_ERR_DEPLOY_TIMEOUT: { status: 504, meaning: 'weft deploy stopped waiting: the deployment was neither healthy nor failed within --timeout (it keeps rolling out; weft status shows it).' },
  WEFT_ERR_DEPLOY_FAILED: { status: 500, meaning: "weft deploy watched the deployment fail (an allocation not healthy by its deadline, or placement failed); the message carries the scheduler's reason." },
  WEFT_ERR_UP_START: { status: 500, meaning: 'weft up could not bring a piece up (dev Consul, CA, scheduler, agent, proxy): it exited or was not healthy in time; the message names the piece and its last log lines.' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A coded weft error. `key`/`value` name the offending input when there is one. */
export class WeftError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly key?: string;
  readonly value?: unknown;

  constructor(code: ErrorCode, message: string, details: { key?: string; value?: unknown; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'WeftError';
    this.code = code;
    this.statusCode = ERROR_CODES[code].status;
    if (details.key !== undefined) this.key = details.key;
    if ('value' in details) this.value = details.value;
  }

  /** The one JSON error shape every weft API answers with. */
  toJSON(): { code: ErrorCode; message: string; key?: string; value?: unknown } {
    const out: { code: ErrorCode; message: string; key?: string; value?: unknown } = { code: this.code, message: this.message };
    if (this.key !== undefined) out.key = this.key;
    if (this.value !== undefined) out.value = this.value;
    return out;
  }
}

/** Builds a WeftError whose message names the key and the value: `key "x": reason (got "v")`. */
export function invalid(code: ErrorCode, key: string, value: unknown, reason: string): WeftError {
  return new WeftError(code, `${key}: ${reason} (got ${JSON.stringify(value)})`, { key, value });
}

/** True when `err` is a WeftError with the given code (or any code when omitted). */
export function isWeftError(err: unknown, code?: ErrorCode): err is WeftError {
  return err instanceof WeftError && (code === undefined || err.code === code);
}
