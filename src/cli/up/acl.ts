/**
 * `weft up --acl`: Consul ACLs on with default deny, set up as an operator
 * would (docs/acl/README.md): the shipped policies (docs/acl/*.hcl) created
 * through Consul's ACL HTTP API with the management token, and one token per
 * process, each linked to its component's policy.
 *
 *   <dataDir>/acl/            0700
 *     management.token        the dev Consul's initial management token (a UUID, made on the first --acl run)
 *     scheduler.token         policy weft-scheduler
 *     agent-<node>.token      policy weft-agent-<node> (agent.hcl with <host> = the node)
 *     proxy-<node>.token      policy weft-proxy, a token of its own for each host's proxy
 *     prometheus.token        policy weft-prometheus (with --prometheus)
 *
 * Every file is 0600 and read back with the check the agent applies to a
 * proxy's token file (refused when others may read it). A token file kept
 * from an earlier run is used again while Consul knows its token with the
 * right policy; otherwise a new token replaces it. A policy whose shipped
 * text changed is updated. Processes get their token as CONSUL_HTTP_TOKEN in
 * their environment, never as an argument (`ps` shows arguments to everyone);
 * Prometheus reads its file.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomicSync } from '../../../base/atomic-write.js';
import { WeftError } from '../../../base/errors.js';
import { consulUrl } from './probes.js';

/** The shipped policies, by component. */
export type AclComponent = 'scheduler' | 'agent' | 'proxy' | 'prometheus';

/** One process's token: its file, the policy it is linked to, and where that policy comes from. */
export interface TokenSpec {
  /** `scheduler`, `agent-<node>`, `proxy-<node>`, `prometheus`: the file's name without `.token`. */
  name: string;
  component: AclComponent;
  /** The Consul policy: `weft-scheduler`, `weft-agent-<node>`, `weft-proxy`, `weft-prometheus`. */
  policy: string;
  /** The node an agent's policy is for (`<host>` in agent.hcl). */
  node?: string;
  description: string;
}

/** The tokens `weft up --acl` hands out, read from their files. */
export interface UpTokens {
  management: string;
  scheduler: string;
  /** By node. */
  agents: Map<string, string>;
  /** By node. */
  proxies: Map<string, string>;
  /** Its file, for Prometheus' `credentials_file`, when --prometheus. */
  prometheusFile?: string;
  /** Policies created or updated in this run, and kept as they were. */
  policies: { written: string[]; kept: string[] };
  /** Tokens created in this run, and reused from an earlier one. */
  tokens: { created: number; reused: number };
}

/** `<dataDir>/acl`, absolute. */
export function aclDir(dataDir: string): string {
  return resolve(dataDir, 'acl');
}

/** Where the management token is kept. */
export function managementTokenFile(dataDir: string): string {
  return join(aclDir(dataDir), 'management.token');
}

/** A process's token file. */
export function tokenFile(dataDir: string, name: string): string {
  return join(aclDir(dataDir), `${name}.token`);
}

/** The tokens for the scheduler, each host's agent and proxy, and Prometheus when it runs. Pure. */
export function tokenSpecs(nodes: readonly string[], prometheus: boolean): TokenSpec[] {
  return [
    { name: 'scheduler', component: 'scheduler', policy: 'weft-scheduler', description: 'weft up: scheduler' },
    ...nodes.map((node): TokenSpec => ({ name: `agent-${node}`, component: 'agent', policy: `weft-agent-${node}`, node, description: `weft up: agent on ${node}` })),
    ...nodes.map((node): TokenSpec => ({ name: `proxy-${node}`, component: 'proxy', policy: 'weft-proxy', description: `weft up: proxy on ${node}` })),
    ...(prometheus ? [{ name: 'prometheus', component: 'prometheus', policy: 'weft-prometheus', description: 'weft up: Prometheus' } satisfies TokenSpec] : []),
  ];
}

/** The rules of a policy: the shipped file's text, with the node for an agent's `<host>`. Pure. */
export function policyRules(shipped: string, spec: Pick<TokenSpec, 'node'>): string {
  return spec.node === undefined ? shipped : shipped.replaceAll('<host>', spec.node);
}

/** docs/acl/ of this checkout: found by walking up from this module (src/cli/up/ in the sources, dist/ in the bundle). */
export function shippedPoliciesDir(from: string = import.meta.dirname): string | undefined {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'docs', 'acl', 'scheduler.hcl'))) return join(dir, 'docs', 'acl');
    dir = dirname(dir);
  }
  return undefined;
}

function aclError(message: string, cause?: unknown): WeftError {
  return new WeftError('WEFT_ERR_UP_START', `--acl: ${message}`, { key: 'piece', value: 'acl', ...(cause === undefined ? {} : { cause }) });
}

/** Reads a token file with the agent's check for a proxy's token file (0600, a token on the first line). */
async function readToken(file: string): Promise<string> {
  const { ProxySupervisor } = await import('../../../agent/index.js');
  return ProxySupervisor.readConsulTokenFile(file, '--acl');
}

function writeToken(file: string, token: string): void {
  writeFileAtomicSync(file, `${token}\n`, { mode: 0o600 });
}

/**
 * The management token: read from its file, or, when `create` (weft up is
 * about to start the dev Consul with it) and there is none, made and written.
 */
export async function managementToken(dataDir: string, create: boolean): Promise<{ file: string; token: string; created: boolean }> {
  const file = managementTokenFile(dataDir);
  if (existsSync(file)) return { file, token: await readToken(file), created: false };
  if (!create) throw aclError(`Consul already answers and weft up did not start it, and there is no ${file}: stop that Consul, so weft up starts its own with ACLs on, or run without --acl`);
  mkdirSync(aclDir(dataDir), { recursive: true, mode: 0o700 });
  const token = randomUUID();
  writeToken(file, token);
  return { file, token, created: true };
}

/** One call to Consul's HTTP API with `token`. */
async function consulCall(address: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string; json: unknown }> {
  let res: Response;
  try {
    res = await fetch(`${consulUrl(address)}${path}`, {
      method,
      headers: { 'x-consul-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw aclError(`Consul at ${address} did not answer ${method} ${path}: ${(err as Error).message}`, err);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text: text.trim(), json };
}

interface PolicyAnswer {
  ID: string;
  Rules?: string;
}
interface TokenAnswer {
  AccessorID: string;
  SecretID: string;
  Policies?: Array<{ Name: string }>;
}

/**
 * Creates (or updates) the policies and hands out one token per process, with
 * the management token, against the Consul at `consulAddress`. Throws
 * WEFT_ERR_UP_START saying what Consul answered.
 */
export async function setUpAcl(opts: {
  consulAddress: string;
  dataDir: string;
  management: { file: string; token: string };
  nodes: readonly string[];
  prometheus: boolean;
  policiesDir: string;
}): Promise<UpTokens> {
  const { consulAddress: address, management } = opts;
  const self = await consulCall(address, management.token, 'GET', '/v1/acl/token/self');
  if (self.status === 401) throw aclError(`Consul at ${address} answers with ACLs off (${self.text}): stop it, so weft up starts its own with ACLs on, or run without --acl`);
  if (self.status !== 200) throw aclError(`Consul at ${address} does not know the management token in ${management.file} (${self.status} ${self.text})`);

  const specs = tokenSpecs(opts.nodes, opts.prometheus);
  const policies = { written: [] as string[], kept: [] as string[] };
  const shipped = new Map<AclComponent, string>();
  for (const spec of specs) {
    if (policies.written.includes(spec.policy) || policies.kept.includes(spec.policy)) continue;
    let text = shipped.get(spec.component);
    if (text === undefined) {
      const file = join(opts.policiesDir, `${spec.component}.hcl`);
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw aclError(`the shipped policy ${file} cannot be read: ${(err as Error).message}`, err);
      }
      shipped.set(spec.component, text);
    }
    const rules = policyRules(text, spec);
    const found = await consulCall(address, management.token, 'GET', `/v1/acl/policy/name/${encodeURIComponent(spec.policy)}`);
    const existing = found.status === 200 ? (found.json as PolicyAnswer) : undefined;
    if (existing !== undefined && existing.Rules === rules) {
      policies.kept.push(spec.policy);
      continue;
    }
    const body = { Name: spec.policy, Description: `weft up: docs/acl/${spec.component}.hcl${spec.node === undefined ? '' : ` for ${spec.node}`}`, Rules: rules };
    const written = await consulCall(address, management.token, 'PUT', existing === undefined ? '/v1/acl/policy' : `/v1/acl/policy/${existing.ID}`, body);
    if (written.status !== 200) throw aclError(`Consul refused policy ${spec.policy} (${written.status} ${written.text})`);
    policies.written.push(spec.policy);
  }

  const tokens = { created: 0, reused: 0 };
  const secrets = new Map<string, string>();
  for (const spec of specs) {
    const file = tokenFile(opts.dataDir, spec.name);
    let secret: string | undefined;
    if (existsSync(file)) {
      const kept = await readToken(file);
      const known = await consulCall(address, kept, 'GET', '/v1/acl/token/self');
      const answer = known.status === 200 ? (known.json as TokenAnswer) : undefined;
      if (answer?.Policies?.length === 1 && answer.Policies[0]!.Name === spec.policy) secret = kept;
      else if (answer !== undefined) await consulCall(address, management.token, 'DELETE', `/v1/acl/token/${answer.AccessorID}`);
    }
    if (secret === undefined) {
      const made = await consulCall(address, management.token, 'PUT', '/v1/acl/token', { Description: spec.description, Policies: [{ Name: spec.policy }] });
      if (made.status !== 200) throw aclError(`Consul refused a token for ${spec.description.replace('weft up: ', '')} (${made.status} ${made.text})`);
      secret = (made.json as TokenAnswer).SecretID;
      writeToken(file, secret);
      tokens.created++;
    } else {
      tokens.reused++;
    }
    secrets.set(spec.name, secret);
  }
  return {
    management: management.token,
    scheduler: secrets.get('scheduler')!,
    agents: new Map(opts.nodes.map((n) => [n, secrets.get(`agent-${n}`)!])),
    proxies: new Map(opts.nodes.map((n) => [n, secrets.get(`proxy-${n}`)!])),
    ...(opts.prometheus ? { prometheusFile: tokenFile(opts.dataDir, 'prometheus') } : {}),
    policies,
    tokens,
  };
}

/** The acl step's line: what was set up and where the tokens are. */
export function aclSummary(dataDir: string, up: UpTokens, processes: number): string {
  const policies = [...up.policies.written, ...up.policies.kept];
  const kept = up.tokens.reused === 0 ? '' : `, ${up.tokens.reused === processes ? 'all' : up.tokens.reused} kept from an earlier run`;
  return `on, default deny: policies ${policies.join(', ')}; a token for each of ${processes} processes${kept}, in ${aclDir(dataDir)}/ (management token ${managementTokenFile(dataDir)}, 0600)`;
}
