/**
 * The scheduler's HTTP API contract: every route's path, request and response
 * as TypeBox schemas. The server (src/wiring/scheduler-api*.ts) registers these
 * as fastify JSON Schemas; the CLI client (`weft deploy/plan/status/...`) is
 * written against the same file. Changes here are additive only.
 *
 * Conventions
 * - Base URL `http://<scheduler.bind>:<scheduler.port>` (default 127.0.0.1:7400); every path is under /v1/.
 * - Every route but `GET /v1/health` wants `Authorization: Bearer <token>`; a missing or wrong
 *   token is 401 WEFT_ERR_API_UNAUTHORIZED. Clients read the token from $WEFT_TOKEN
 *   (base/env.ts ENV_WEFT_TOKEN) or `<dataDir>/scheduler/token`.
 * - Two kinds of token: the operator token (every route), and per-host agent tokens
 *   (`POST /v1/nodes/:node/token`), which may only call the agent routes (CSR signing for the
 *   services allocated to that host, the secrets of that host's allocations, the CA roots and the
 *   signing keys).
 * - Every error answers with ApiErrorSchema (WeftError.toJSON): `{ code, message, key?, value? }`
 *   and the HTTP status of the code in base/errors.ts. Request validation errors are 400
 *   WEFT_ERR_API_REQUEST_INVALID naming the field in `key`; a bad job spec is 400
 *   WEFT_ERR_JOB_INVALID with `value` = every problem `[{ path, message }]` (the first 100).
 * - Types are what the schemas say: a JSON body is never coerced (`{"count": "1"}`, `null`, `true`
 *   or `[1]` for a count is 400 WEFT_ERR_API_REQUEST_INVALID, key `body.count`, and changes
 *   nothing). Query values and path parameters are text, read as the schema's type: a boolean is
 *   exactly `true` or `false` (`?purge=true`), a repeated key is refused.
 * - Bounds: a path parameter has at most 128 characters (`params.<name>`), a body nests at most
 *   64 levels, a job spec at most 64 levels with YAML aliases expanding to at most 100 nodes
 *   (scheduler/spec/validate.ts); errors repeat at most 200 characters of any input value,
 *   key or name, then `… (<length> characters)`.
 * - Any scheduler instance (leader or standby) answers every route: all state lives in
 *   Consul KV, so a standby reads and writes user intent (jobs, splits, ...) itself, and only
 *   the leader writes allocations. `GET /v1/health` says which one answered.
 * - Secret values are never returned by operator routes, nor logged.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { CONSUL_NAME_PATTERN, MAX_GROUP_COUNT, NAME_RULES, SEGMENT_PATTERN, SERVICE_NAME_PATTERN } from './names.js';

/** Header carrying the bearer token. */
export const AUTH_HEADER = 'authorization';
/** `Authorization: Bearer <token>`. */
export function bearer(token: string): string {
  return `Bearer ${token}`;
}
/** The API's version prefix. */
export const API_PREFIX = '/v1';

/** Route paths (fastify syntax: `:param`). Method in the name. */
export const ROUTES = {
  health: 'GET /v1/health',
  metrics: 'GET /metrics',
  listJobs: 'GET /v1/jobs',
  submitJob: 'POST /v1/jobs',
  planJob: 'POST /v1/jobs/plan',
  getJob: 'GET /v1/jobs/:job',
  stopJob: 'DELETE /v1/jobs/:job',
  scaleJob: 'POST /v1/jobs/:job/scale',
  jobStatus: 'GET /v1/jobs/:job/status',
  jobVersions: 'GET /v1/jobs/:job/versions',
  revertJob: 'POST /v1/jobs/:job/revert',
  jobAutoscale: 'GET /v1/jobs/:job/autoscale',
  stats: 'GET /v1/stats',
  listNodes: 'GET /v1/nodes',
  drainNode: 'POST /v1/nodes/:node/drain',
  nodeToken: 'POST /v1/nodes/:node/token',
  listSplits: 'GET /v1/splits',
  getSplit: 'GET /v1/splits/:service',
  putSplit: 'PUT /v1/splits/:service',
  deleteSplit: 'DELETE /v1/splits/:service',
  listIntentions: 'GET /v1/intentions',
  putIntention: 'PUT /v1/intentions/:source/:destination',
  deleteIntention: 'DELETE /v1/intentions/:source/:destination',
  listSecrets: 'GET /v1/secrets',
  putSecret: 'PUT /v1/secrets/:name',
  deleteSecret: 'DELETE /v1/secrets/:name',
  allocSecrets: 'GET /v1/allocations/:host/:alloc/secrets',
  signCsr: 'POST /v1/ca/sign',
  caRoots: 'GET /v1/ca/roots',
  signingKeys: 'GET /v1/signing/keys',
  rotateSigningKey: 'POST /v1/signing/rotate',
} as const;

/** Splits `'GET /v1/jobs/:job'` into method and path. */
export function routeOf(route: string): { method: string; path: string } {
  const [method, path] = route.split(' ');
  return { method: method!, path: path! };
}

/** Fills `:params` of a route path (values URI-encoded). */
export function pathOf(route: string, params: Record<string, string> = {}): string {
  return routeOf(route).path.replace(/:([A-Za-z]+)/g, (_, name: string) => encodeURIComponent(params[name] ?? ''));
}

// ---------------------------------------------------------------- shared pieces

const JobName = Type.String({ pattern: SERVICE_NAME_PATTERN });
/** Any service Consul may hold, weft-registered or not. */
const ServiceName = Type.String({ pattern: CONSUL_NAME_PATTERN });
/** A service name or `*`. */
const IntentionName = Type.String({ pattern: `^(\\*|${NAME_RULES.consulName})$` });
const NodeName = Type.String({ pattern: SEGMENT_PATTERN });
const SecretName = Type.String({ pattern: SEGMENT_PATTERN });
const Segment = Type.String({ pattern: SEGMENT_PATTERN });
/** ISO 8601 time. */
const Time = Type.String();
/** A job spec as a value (validated by scheduler/spec, not here: its errors carry spec paths). */
const AnyObject = Type.Object({}, { additionalProperties: true });

/** The one error shape (base/errors.ts WeftError.toJSON). */
export const ApiErrorSchema = Type.Object({
  code: Type.String(),
  message: Type.String(),
  key: Type.Optional(Type.String()),
  value: Type.Optional(Type.Unknown()),
});

/** A job spec problem (scheduler/spec/errors.ts SpecError): `value` of WEFT_ERR_JOB_INVALID is a list of these. */
export const SpecErrorSchema = Type.Object({ path: Type.String(), message: Type.String() });

/** Why a group is short of placements (scheduler/placement/reasons.ts PlacementFailure). */
export const PlacementFailureSchema = Type.Object({
  job: Type.String(),
  group: Type.String(),
  missing: Type.Integer(),
  nodesEvaluated: Type.Integer(),
  reasons: Type.Array(Type.Object({ reason: Type.String(), count: Type.Integer() })),
  /** `3 nodes lacked memory, 2 nodes failed zone = a`. */
  message: Type.String(),
});

/** One entry of a job's event ring (newest last, at most 100 kept). */
export const JobEventSchema = Type.Object({
  at: Time,
  /** submitted | scaled | stopped | placed | stopped-alloc | placement-failed | deployment | reverted | node-lost | drain ... (open set). */
  type: Type.String(),
  message: Type.String(),
  alloc: Type.Optional(Type.String()),
  node: Type.Optional(Type.String()),
  version: Type.Optional(Type.Integer()),
});

/** A deployment: one job version rolling out (scheduler/model.ts Deployment). */
export const DeploymentSchema = Type.Object({
  version: Type.Integer(),
  status: Type.Union([Type.Literal('running'), Type.Literal('successful'), Type.Literal('failed')]),
  startedAt: Time,
  stableVersion: Type.Optional(Type.Integer()),
  message: Type.Optional(Type.String()),
});

// ---------------------------------------------------------------- health

export const HealthResponseSchema = Type.Object({
  status: Type.Literal('ok'),
  /** True when the instance that answered holds `weft/leader`. */
  leader: Type.Boolean(),
  /** The leader's API address (`host:port`), when one is known. */
  leaderAddress: Type.Optional(Type.String()),
  version: Type.String(),
});

// ---------------------------------------------------------------- jobs

/**
 * Submit and plan bodies. JSON: `{ "spec": <JobSpec object> }` or `{ "spec": "<YAML or JSON text>" }`.
 * A raw YAML body (Content-Type application/yaml, text/yaml or text/plain) is accepted as the text form.
 */
export const JobSubmitRequestSchema = Type.Object(
  {
    spec: Type.Union([Type.String({ minLength: 1, maxLength: 4_194_304 }), AnyObject]),
  },
  { additionalProperties: false },
);

export const JobSubmitResponseSchema = Type.Object({
  job: Type.String(),
  version: Type.Integer(),
  /** The version before this submit (absent for a new job). */
  previousVersion: Type.Optional(Type.Integer()),
  /** create: new job; update: new version (rolling update); scale: counts only; none: identical. */
  change: Type.Union([Type.Literal('create'), Type.Literal('update'), Type.Literal('scale'), Type.Literal('none')]),
  submittedAt: Time,
});

/** One allocation a plan would start. */
export const PlannedPlacementSchema = Type.Object({
  id: Type.String(),
  group: Type.String(),
  index: Type.Integer(),
  node: Type.String(),
  /** new | replace-lost | reschedule | migrate | update. */
  reason: Type.String(),
  replaces: Type.Optional(Type.String()),
  ports: Type.Array(Type.Integer()),
});

/** One allocation a plan would stop. */
export const PlannedStopSchema = Type.Object({
  id: Type.String(),
  group: Type.String(),
  index: Type.Integer(),
  node: Type.String(),
  /** job-stopped | scale-down | updated | node-lost | duplicate | ... */
  reason: Type.String(),
});

/** A dry run: what submitting this spec would do now. Nothing is stored. */
export const PlanResponseSchema = Type.Object({
  job: Type.String(),
  version: Type.Integer(),
  previousVersion: Type.Optional(Type.Integer()),
  change: JobSubmitResponseSchema.properties.change,
  place: Type.Array(PlannedPlacementSchema),
  stop: Type.Array(PlannedStopSchema),
  /** Placement reasons for every group that would be short. */
  failures: Type.Array(PlacementFailureSchema),
  /**
   * Only the first batch of a rolling update is shown (the rest follows as batches turn healthy).
   */
  notes: Type.Array(Type.String()),
});

export const JobSummarySchema = Type.Object({
  name: Type.String(),
  version: Type.Integer(),
  stopped: Type.Boolean(),
  submittedAt: Time,
  /** Sum over groups. */
  desired: Type.Integer(),
  running: Type.Integer(),
  healthy: Type.Integer(),
});

export const JobListResponseSchema = Type.Object({ jobs: Type.Array(JobSummarySchema) });

export const JobResponseSchema = Type.Object({
  name: Type.String(),
  version: Type.Integer(),
  stopped: Type.Boolean(),
  submittedAt: Time,
  /** The spec as submitted (secret values never appear in specs: only their names). */
  spec: AnyObject,
});

export const JobParamsSchema = Type.Object({ job: JobName });

export const StopJobQuerySchema = Type.Object(
  {
    /** Also delete the job's spec, history and status (after its allocations are stopped). */
    purge: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const StopJobResponseSchema = Type.Object({ job: Type.String(), stopped: Type.Boolean(), purged: Type.Boolean() });

export const ScaleRequestSchema = Type.Object(
  {
    /** The group to scale; may be omitted when the job has one group. */
    group: Type.Optional(JobName),
    count: Type.Integer({ minimum: 0, maximum: MAX_GROUP_COUNT }),
  },
  { additionalProperties: false },
);

export const ScaleResponseSchema = Type.Object({
  job: Type.String(),
  group: Type.String(),
  count: Type.Integer(),
  previous: Type.Integer(),
  /** Scaling never changes the version. */
  version: Type.Integer(),
});

export const JobVersionSchema = Type.Object({
  version: Type.Integer(),
  submittedAt: Time,
  /** Its deployment succeeded (auto-revert goes back to the newest stable one). */
  stable: Type.Boolean(),
});

export const JobVersionsResponseSchema = Type.Object({ job: Type.String(), versions: Type.Array(JobVersionSchema) });

export const RevertRequestSchema = Type.Object({ version: Type.Integer({ minimum: 1 }) }, { additionalProperties: false });

// ---------------------------------------------------------------- status

/** One task of an allocation, as its agent reports it. */
export const TaskStatusSchema = Type.Object({
  id: Type.String(),
  task: Type.String(),
  /** pending | running | failed | stopped. */
  state: Type.String(),
  restarts: Type.Integer(),
  exitCode: Type.Optional(Type.Integer()),
  message: Type.Optional(Type.String()),
});

/** One group instance (allocation). */
export const AllocationViewSchema = Type.Object({
  id: Type.String(),
  group: Type.String(),
  index: Type.Integer(),
  node: Type.String(),
  version: Type.Integer(),
  /** pending | running | failed | stopped. */
  status: Type.String(),
  /** Running with every check passing (absent while unknown). */
  healthy: Type.Optional(Type.Boolean()),
  ports: Type.Array(Type.Integer()),
  createdAt: Time,
  tasks: Type.Array(TaskStatusSchema),
});

export const GroupStatusSchema = Type.Object({
  group: Type.String(),
  desired: Type.Integer(),
  placed: Type.Integer(),
  running: Type.Integer(),
  healthy: Type.Integer(),
  /** Present when the group is short of placements: why. */
  failure: Type.Optional(PlacementFailureSchema),
});

export const JobStatusResponseSchema = Type.Object({
  job: Type.String(),
  version: Type.Integer(),
  stopped: Type.Boolean(),
  groups: Type.Array(GroupStatusSchema),
  allocations: Type.Array(AllocationViewSchema),
  deployment: Type.Optional(DeploymentSchema),
  /** Newest last. */
  events: Type.Array(JobEventSchema),
});

// ---------------------------------------------------------------- autoscaling

/** One metric of a group's autoscale policy, as the autoscaler last read it. */
export const AutoscaleMetricViewSchema = Type.Object({
  /** As reasons name it: `rps`, `inflight`, `promql[2]`, `latency p99`, `errors`. */
  name: Type.String(),
  /** rps | inflight | promql | latency | errors. */
  kind: Type.String(),
  /**
   * Per-instance metrics: the average over the ready instances that had a value;
   * ceilings: the service's value. null when nothing was measured (no decision yet,
   * no ready instance, no request) or the metric was unavailable.
   */
  value: Type.Union([Type.Number(), Type.Null()]),
  /** The per-instance target, or the ceiling's max, in `unit`. */
  target: Type.Number(),
  /** `req/s`, `requests`, `ms`, `ratio`, or `` (a PromQL expression's own unit). */
  unit: Type.String(),
  /** The count this metric asked for; absent when it had no opinion or was unavailable. */
  wants: Type.Optional(Type.Integer()),
  /** Why it could not be read (onError applied). */
  unavailable: Type.Optional(Type.String()),
  /** The calculator's words: `rps 250/instance over target 100 (+10% tolerance)`. */
  summary: Type.String(),
});

/** One decision of the autoscaler. */
export const AutoscaleDecisionSchema = Type.Object({
  at: Time,
  /** The count when it decided. */
  from: Type.Integer(),
  /** The count it decided on (equal to `from` when nothing moves). */
  to: Type.Integer(),
  direction: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('none')]),
  /** The count was written (not a dry run, not a failure, the write went through). */
  applied: Type.Boolean(),
  dryRun: Type.Boolean(),
  /** onError fail, an unavailable metric, or a write that did not go through. */
  failed: Type.Boolean(),
  /** The decision ran at once for a request held at zero (activation). */
  activation: Type.Boolean(),
  /** One line: the metric values, targets, tolerance, and whatever held or capped the move. */
  reason: Type.String(),
});

/** A group's autoscaler: its policy, the count, the live metrics against their targets, the last decisions. */
export const GroupAutoscaleSchema = Type.Object({
  group: Type.String(),
  /** The service the proxies' metrics describe (absent when the group registers none). */
  service: Type.Optional(Type.String()),
  policy: Type.Object({
    min: Type.Integer(),
    max: Type.Integer(),
    intervalMs: Type.Integer(),
    tolerance: Type.Number(),
    onError: Type.String(),
    dryRun: Type.Boolean(),
    scaleUpWindowMs: Type.Integer(),
    scaleDownWindowMs: Type.Integer(),
    idleToZeroMs: Type.Optional(Type.Integer()),
  }),
  /** The group's count now (the job document's). */
  current: Type.Integer(),
  /** What the last decision set or, in a dry run, would set; `current` before any decision. */
  desired: Type.Integer(),
  /** The group's instances at the last decision (ready: running with passing checks). */
  instances: Type.Optional(Type.Object({ total: Type.Integer(), ready: Type.Integer() })),
  /** One per policy metric, in policy order. */
  metrics: Type.Array(AutoscaleMetricViewSchema),
  /** The newest decision (also one that changed nothing). */
  last: Type.Optional(AutoscaleDecisionSchema),
  /** The last decisions that moved the count, would have (dry run), or failed; oldest first. */
  decisions: Type.Array(AutoscaleDecisionSchema),
});

export const JobAutoscaleResponseSchema = Type.Object({
  job: Type.String(),
  /**
   * True when the leader answered from its memory; false when the answer is the
   * last view the leader stored in KV (a standby, or a group not decided on since
   * this leader took over), at most a few seconds old: see `last.at`.
   */
  live: Type.Boolean(),
  /** The job's groups with an autoscale policy (none: an empty list). */
  groups: Type.Array(GroupAutoscaleSchema),
});

// ---------------------------------------------------------------- stats

/**
 * Golden signals over a window, from the proxies' own metrics (the autoscaler's
 * scrape source: the answering scheduler scrapes every `weft-proxy` in Consul).
 * Rates are per second over the window; latencies in milliseconds from the
 * proxies' histograms (null when no request finished in the window);
 * `successRate` is the share of answers below 500 (null without requests).
 */
export const GoldenSignalsSchema = Type.Object({
  rps: Type.Number(),
  successRate: Type.Union([Type.Number(), Type.Null()]),
  p50Ms: Type.Union([Type.Number(), Type.Null()]),
  p99Ms: Type.Union([Type.Number(), Type.Null()]),
});

/** One instance of a service, as its inbound proxy counted it. */
export const InstanceStatsSchema = Type.Composite([
  Type.Object({ id: Type.String(), version: Type.String(), host: Type.String(), healthy: Type.Boolean() }),
  GoldenSignalsSchema,
]);

/** One version of a service: its traffic, and its share against the split in force. */
export const VersionStatsSchema = Type.Composite([
  Type.Object({
    version: Type.String(),
    instances: Type.Integer(),
    /** Share of the service's requests this version answered in the window, 0..1 (null without requests). */
    share: Type.Union([Type.Number(), Type.Null()]),
    /** The split's configured weight for this version, 0..1 (null: no split in force). */
    splitWeight: Type.Union([Type.Number(), Type.Null()]),
  }),
  GoldenSignalsSchema,
]);

/** One destination service, counted at its instances' inbound proxies. */
export const ServiceStatsSchema = Type.Composite([
  Type.Object({
    service: Type.String(),
    /** Registered instances, and those passing their checks. */
    instances: Type.Object({ total: Type.Integer(), healthy: Type.Integer() }),
    versions: Type.Array(VersionStatsSchema),
    /** Per instance (always filled; `weft stat --instances` shows them). */
    instanceStats: Type.Array(InstanceStatsSchema),
  }),
  GoldenSignalsSchema,
]);

/** A caller -> destination edge, counted at the caller's outbound proxy; `denied` counts intention refusals. */
export const EdgeStatsSchema = Type.Composite([
  Type.Object({ source: Type.String(), destination: Type.String(), deniedPerSecond: Type.Number() }),
  GoldenSignalsSchema,
]);

export const StatsQuerySchema = Type.Object(
  {
    /** Window over which rates are taken, in seconds (default 30). */
    window: Type.Optional(Type.Integer({ minimum: 2, maximum: 600 })),
  },
  { additionalProperties: false },
);

export const StatsResponseSchema = Type.Object({
  /** When the newest scrape was taken (ISO 8601). */
  at: Type.String(),
  windowSeconds: Type.Number(),
  /** Proxies scraped in this answer, and those that did not answer. */
  proxies: Type.Object({ scraped: Type.Integer(), failed: Type.Integer() }),
  services: Type.Array(ServiceStatsSchema),
  edges: Type.Array(EdgeStatsSchema),
});

// ---------------------------------------------------------------- nodes

export const NodeViewSchema = Type.Object({
  name: Type.String(),
  address: Type.String(),
  /** ready | draining | down | lost. */
  readiness: Type.String(),
  /** passing | warning | critical | missing. */
  heartbeat: Type.String(),
  drain: Type.Boolean(),
  capacity: Type.Object({ cpu: Type.Integer(), memory: Type.Integer() }),
  allocated: Type.Object({ cpu: Type.Integer(), memory: Type.Integer() }),
  attributes: Type.Record(Type.String(), Type.String()),
  drivers: Type.Array(Type.String()),
  hostVolumes: Type.Array(Type.String()),
  allocations: Type.Integer(),
});

export const NodeListResponseSchema = Type.Object({ nodes: Type.Array(NodeViewSchema) });
export const NodeParamsSchema = Type.Object({ node: NodeName });
export const DrainRequestSchema = Type.Object({ enable: Type.Boolean() }, { additionalProperties: false });
export const DrainResponseSchema = Type.Object({ node: Type.String(), drain: Type.Boolean() });
export const NodeTokenResponseSchema = Type.Object({ node: Type.String(), token: Type.String() });

// ---------------------------------------------------------------- splits and intentions

export const ServiceParamsSchema = Type.Object({ service: ServiceName });
/** `weft/splits/<service>`: version -> relative weight (proxy/balance/split.ts rules). */
export const SplitSchema = Type.Object({ service: Type.String(), weights: Type.Record(Type.String(), Type.Integer()) });
export const PutSplitRequestSchema = Type.Object({ weights: Type.Record(Type.String(), Type.Integer()) }, { additionalProperties: false });
export const SplitListResponseSchema = Type.Object({ splits: Type.Array(SplitSchema) });

export const IntentionParamsSchema = Type.Object({ source: IntentionName, destination: IntentionName });
export const IntentionSchema = Type.Object({
  source: Type.String(),
  destination: Type.String(),
  action: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  description: Type.Optional(Type.String()),
});
export const PutIntentionRequestSchema = Type.Object(
  { action: Type.Union([Type.Literal('allow'), Type.Literal('deny')]), description: Type.Optional(Type.String({ maxLength: 512 })) },
  { additionalProperties: false },
);
export const IntentionListResponseSchema = Type.Object({ intentions: Type.Array(IntentionSchema) });

// ---------------------------------------------------------------- secrets

export const SecretParamsSchema = Type.Object({ name: SecretName });
export const PutSecretRequestSchema = Type.Object({ value: Type.String({ maxLength: 65_536 }) }, { additionalProperties: false });
/** Never a value. */
export const SecretInfoSchema = Type.Object({ name: Type.String(), updatedAt: Time });
export const SecretListResponseSchema = Type.Object({ secrets: Type.Array(SecretInfoSchema) });
export const DeletedResponseSchema = Type.Object({ deleted: Type.Boolean() });

/** Agent route: the values of one allocation's secrets (host token of that host only). */
export const AllocParamsSchema = Type.Object({ host: NodeName, alloc: Segment });
export const AllocSecretsResponseSchema = Type.Object({ secrets: Type.Array(Type.Object({ name: Type.String(), value: Type.String() })) });

// ---------------------------------------------------------------- CA

export const SignCsrRequestSchema = Type.Object(
  {
    /** PEM PKCS#10 with one URI SAN `spiffe://<td>/ns/<ns>/svc/<service>`. */
    csr: Type.String({ minLength: 1, maxLength: 16_384 }),
  },
  { additionalProperties: false },
);
export const SignCsrResponseSchema = Type.Object({
  spiffeId: Type.String(),
  certPem: Type.String(),
  chainPems: Type.Array(Type.String()),
  notBefore: Time,
  notAfter: Time,
  /** The trust bundle (roots, PEM), so a host can start trusting without another call. */
  bundlePem: Type.String(),
});
export const CaRootsResponseSchema = Type.Object({ trustDomain: Type.String(), bundlePem: Type.String() });

// ---------------------------------------------------------------- signed desired state

/** One public key of the scheduler's (base/signing.ts PublicSigningKey). */
export const PublicSigningKeySchema = Type.Object({
  /** First 16 hex digits of SHA-256 over the raw public key. */
  kid: Type.String(),
  /** Raw 32-byte Ed25519 public key, base64url. */
  publicKey: Type.String(),
  createdAt: Time,
  /** When it starts signing (published before, so every host knows it by then); absent: at creation. */
  signsFrom: Type.Optional(Time),
  /** From then on the key verifies nothing; absent while it is the newest. */
  retireAt: Type.Optional(Time),
});
/** Agent route: the keys agents and proxies verify allocations, intentions and splits with. */
export const SigningKeysResponseSchema = Type.Object({ keys: Type.Array(PublicSigningKeySchema) });
export const RotateSigningKeyRequestSchema = Type.Object(
  {
    /** How long the new key is published before it signs (default scheduler.signing.publishSeconds): agents fetch it meanwhile. */
    publishSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 86_400 })),
    /** How long the key signing until then keeps verifying after that (default scheduler.signing.overlapHours); both 0 retire it at once. */
    overlapHours: Type.Optional(Type.Number({ minimum: 0, maximum: 8760 })),
  },
  { additionalProperties: false },
);
export const RotateSigningKeyResponseSchema = Type.Object({
  /** The new signing key. */
  kid: Type.String(),
  /** When it starts signing. */
  signsFrom: Time,
  /** The keys it replaces, with their retire times. */
  retiring: Type.Array(Type.Object({ kid: Type.String(), retireAt: Time })),
  keys: Type.Array(PublicSigningKeySchema),
  /** Intentions and splits re-signed with the new key now (0 while it is not signing yet: the leader's sweep does it then, and the allocations). */
  resigned: Type.Integer(),
});

// ---------------------------------------------------------------- route table

/** What fastify gets per route: params/query/body schemas and the 2xx response. */
export interface RouteSchema {
  params?: TSchema;
  querystring?: TSchema;
  body?: TSchema;
  response: TSchema;
  /** Status of the success answer (default 200). */
  status?: number;
  /** Agent tokens may call it (else operator only). Health is unauthenticated. */
  agent?: boolean;
}

/** Schemas of every route, by ROUTES key. */
export const ROUTE_SCHEMAS = {
  health: { response: HealthResponseSchema },
  metrics: { response: Type.String() },
  listJobs: { response: JobListResponseSchema },
  submitJob: { body: JobSubmitRequestSchema, response: JobSubmitResponseSchema },
  planJob: { body: JobSubmitRequestSchema, response: PlanResponseSchema },
  getJob: { params: JobParamsSchema, response: JobResponseSchema },
  stopJob: { params: JobParamsSchema, querystring: StopJobQuerySchema, response: StopJobResponseSchema },
  scaleJob: { params: JobParamsSchema, body: ScaleRequestSchema, response: ScaleResponseSchema },
  jobStatus: { params: JobParamsSchema, response: JobStatusResponseSchema },
  jobVersions: { params: JobParamsSchema, response: JobVersionsResponseSchema },
  revertJob: { params: JobParamsSchema, body: RevertRequestSchema, response: JobSubmitResponseSchema },
  jobAutoscale: { params: JobParamsSchema, response: JobAutoscaleResponseSchema },
  stats: { querystring: StatsQuerySchema, response: StatsResponseSchema },
  listNodes: { response: NodeListResponseSchema },
  drainNode: { params: NodeParamsSchema, body: DrainRequestSchema, response: DrainResponseSchema },
  nodeToken: { params: NodeParamsSchema, response: NodeTokenResponseSchema },
  listSplits: { response: SplitListResponseSchema },
  getSplit: { params: ServiceParamsSchema, response: SplitSchema },
  putSplit: { params: ServiceParamsSchema, body: PutSplitRequestSchema, response: SplitSchema },
  deleteSplit: { params: ServiceParamsSchema, response: DeletedResponseSchema },
  listIntentions: { response: IntentionListResponseSchema },
  putIntention: { params: IntentionParamsSchema, body: PutIntentionRequestSchema, response: IntentionSchema },
  deleteIntention: { params: IntentionParamsSchema, response: DeletedResponseSchema },
  listSecrets: { response: SecretListResponseSchema },
  putSecret: { params: SecretParamsSchema, body: PutSecretRequestSchema, response: SecretInfoSchema },
  deleteSecret: { params: SecretParamsSchema, response: DeletedResponseSchema },
  allocSecrets: { params: AllocParamsSchema, response: AllocSecretsResponseSchema, agent: true },
  signCsr: { body: SignCsrRequestSchema, response: SignCsrResponseSchema, agent: true },
  caRoots: { response: CaRootsResponseSchema, agent: true },
  signingKeys: { response: SigningKeysResponseSchema, agent: true },
  rotateSigningKey: { body: RotateSigningKeyRequestSchema, response: RotateSigningKeyResponseSchema },
} as const satisfies Record<keyof typeof ROUTES, RouteSchema>;

export type ApiError = Static<typeof ApiErrorSchema>;
export type HealthResponse = Static<typeof HealthResponseSchema>;
export type JobSubmitRequest = Static<typeof JobSubmitRequestSchema>;
export type JobSubmitResponse = Static<typeof JobSubmitResponseSchema>;
export type PlanResponse = Static<typeof PlanResponseSchema>;
export type JobSummary = Static<typeof JobSummarySchema>;
export type JobListResponse = Static<typeof JobListResponseSchema>;
export type JobResponse = Static<typeof JobResponseSchema>;
export type StopJobResponse = Static<typeof StopJobResponseSchema>;
export type ScaleRequest = Static<typeof ScaleRequestSchema>;
export type ScaleResponse = Static<typeof ScaleResponseSchema>;
export type JobVersionsResponse = Static<typeof JobVersionsResponseSchema>;
export type RevertRequest = Static<typeof RevertRequestSchema>;
export type JobEvent = Static<typeof JobEventSchema>;
export type DeploymentView = Static<typeof DeploymentSchema>;
export type AllocationView = Static<typeof AllocationViewSchema>;
export type GroupStatus = Static<typeof GroupStatusSchema>;
export type JobStatusResponse = Static<typeof JobStatusResponseSchema>;
export type NodeView = Static<typeof NodeViewSchema>;
export type NodeListResponse = Static<typeof NodeListResponseSchema>;
export type DrainRequest = Static<typeof DrainRequestSchema>;
export type DrainResponse = Static<typeof DrainResponseSchema>;
export type NodeTokenResponse = Static<typeof NodeTokenResponseSchema>;
export type SplitView = Static<typeof SplitSchema>;
export type PutSplitRequest = Static<typeof PutSplitRequestSchema>;
export type SplitListResponse = Static<typeof SplitListResponseSchema>;
export type IntentionView = Static<typeof IntentionSchema>;
export type PutIntentionRequest = Static<typeof PutIntentionRequestSchema>;
export type IntentionListResponse = Static<typeof IntentionListResponseSchema>;
export type SecretInfoView = Static<typeof SecretInfoSchema>;
export type PutSecretRequest = Static<typeof PutSecretRequestSchema>;
export type SecretListResponse = Static<typeof SecretListResponseSchema>;
export type DeletedResponse = Static<typeof DeletedResponseSchema>;
export type AllocSecretsResponse = Static<typeof AllocSecretsResponseSchema>;
export type SignCsrRequest = Static<typeof SignCsrRequestSchema>;
export type SignCsrResponse = Static<typeof SignCsrResponseSchema>;
export type CaRootsResponse = Static<typeof CaRootsResponseSchema>;
export type SigningKeysResponse = Static<typeof SigningKeysResponseSchema>;
export type RotateSigningKeyRequest = Static<typeof RotateSigningKeyRequestSchema>;
export type RotateSigningKeyResponse = Static<typeof RotateSigningKeyResponseSchema>;
export type AutoscaleMetricView = Static<typeof AutoscaleMetricViewSchema>;
export type AutoscaleDecisionView = Static<typeof AutoscaleDecisionSchema>;
export type GroupAutoscaleView = Static<typeof GroupAutoscaleSchema>;
export type JobAutoscaleResponse = Static<typeof JobAutoscaleResponseSchema>;
export type GoldenSignals = Static<typeof GoldenSignalsSchema>;
export type InstanceStats = Static<typeof InstanceStatsSchema>;
export type VersionStats = Static<typeof VersionStatsSchema>;
export type ServiceStats = Static<typeof ServiceStatsSchema>;
export type EdgeStats = Static<typeof EdgeStatsSchema>;
export type StatsResponse = Static<typeof StatsResponseSchema>;
