/**
 * The configuration's schema (TypeBox): every key, its type and its default.
 * A default a module applies itself (the proxy's ports and timeouts, the
 * scheduler's, the CA's) is read from that module's surface, so it is written
 * once, where it is used; the others live here and nowhere else
 * (docs/configuration.md lists them all). Name rules come from
 * base/contracts/names.ts.
 *
 * Only for declaring: loading and validating is src/config/load.ts, which runs
 * the validator generated from this schema (src/config/validator.generated.ts),
 * so no weft process loads TypeBox or Ajv to read its configuration.
 * After changing the schema: `npm run gen:config` (test/src/config.test.ts
 * fails while the generated validator is stale).
 */
import { type Static, Type } from '@sinclair/typebox';
import { CONSUL_NAME_PATTERN, SEGMENT_PATTERN } from '../../base/contracts/names.js';
import { DEFAULT_CSR_MAX_PER_SECOND, DEFAULT_LEAF_TTL_MS, DEFAULT_NAMESPACE, TRUST_DOMAIN_PATTERN } from '../../certs/index.js';
import {
  ALGORITHMS,
  DEFAULT_ALGORITHM,
  DEFAULT_BODY_IDLE_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_HEAD_TIMEOUT_MS,
  DEFAULT_INBOUND_PORT,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HELD,
  DEFAULT_MAX_HOLD_WAIT_MS,
  DEFAULT_OUTBOUND_HOST,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_GRACE_MS,
} from '../../proxy/index.js';
import { DEFAULT_DYNAMIC_PORTS, DEFAULT_LOST_AFTER_MS } from '../../scheduler/index.js';
import { AUTOSCALE_SOURCES, DEFAULT_AUTOSCALE_SOURCE, DEFAULT_PROMETHEUS_URL } from '../wiring/scheduler-autoscaler.js';
import { DEFAULT_SIGNING_OVERLAP_HOURS, DEFAULT_SIGNING_PUBLISH_SECONDS } from '../wiring/scheduler-signing.js';
import { defaultNodeName } from './node-name.js';

const Port = Type.Integer({ minimum: 1, maximum: 65535 });
const Name = Type.String({ pattern: CONSUL_NAME_PATTERN });

/** The schema. */
export const ConfigSchema = Type.Object(
  {
    /** Where state lives: dev Consul data, keys, route caches. */
    dataDir: Type.String({ minLength: 1, default: '.weft' }),
    /** Consul datacenter. */
    datacenter: Type.String({ pattern: '^[A-Za-z0-9_-]+$', default: 'dc1' }),
    /** This host's node name in Consul. */
    nodeName: Type.String({ pattern: CONSUL_NAME_PATTERN, default: defaultNodeName() }),
    log: Type.Object(
      {
        level: Type.Union(
          ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
        /** auto = pretty in a terminal, JSON otherwise. */
        format: Type.Union([Type.Literal('auto'), Type.Literal('json'), Type.Literal('pretty')], { default: 'auto' }),
      },
      { default: {}, additionalProperties: false },
    ),
    consul: Type.Object(
      {
        /** `host:port` or `http(s)://host:port`, like CONSUL_HTTP_ADDR. */
        address: Type.String({ pattern: '^(https?://)?[^\\s/:]+(:[0-9]{1,5})?/?$', default: '127.0.0.1:8500' }),
        token: Type.Optional(Type.String({ minLength: 1 })),
      },
      { default: {}, additionalProperties: false },
    ),
    devConsul: Type.Object(
      {
        bind: Type.String({ minLength: 1, default: '127.0.0.1' }),
        port: { ...Port, default: 8500 },
      },
      { default: {}, additionalProperties: false },
    ),
    /** weft's own CA (certs/). Keys live in <dataDir>/ca/. */
    ca: Type.Object(
      {
        /** SPIFFE trust domain: spiffe://<trustDomain>/ns/<namespace>/svc/<service>. */
        trustDomain: Type.String({ pattern: TRUST_DOMAIN_PATTERN, default: 'weft.local' }),
        /** Leaf lifetime, as Consul's leaf_cert_ttl (72h); an old root leaves the bundle 2 x this after a rotation. */
        leafTtlHours: Type.Number({ exclusiveMinimum: 0, maximum: 8760, default: DEFAULT_LEAF_TTL_MS / 3_600_000 }),
        /** CSR signatures per second, as Consul's csr_max_per_second; 0 = unlimited. */
        csrMaxPerSecond: Type.Number({ minimum: 0, default: DEFAULT_CSR_MAX_PER_SECOND }),
        /** `weft ca init` creates an intermediate and signs leaves with it. */
        intermediate: Type.Boolean({ default: false }),
      },
      { default: {}, additionalProperties: false },
    ),
    /** `weft scheduler` (scheduler/README.md). */
    scheduler: Type.Object(
      {
        /** The API's listen address and port; every route but /v1/health wants the bearer token. */
        bind: Type.String({ minLength: 1, default: '127.0.0.1' }),
        port: { ...Port, default: 7400 },
        /** binpack fills nodes (Nomad's default); spread keeps them even. */
        algorithm: Type.Union([Type.Literal('binpack'), Type.Literal('spread')], { default: 'binpack' }),
        /** A node whose heartbeat has failed this long has its allocations replaced elsewhere. */
        lostAfterMs: Type.Integer({ minimum: 1000, default: DEFAULT_LOST_AFTER_MS }),
        /** Host ports the scheduler picks from for tasks with `port: 0` (Nomad's dynamic range). */
        dynamicPortMin: { ...Port, default: DEFAULT_DYNAMIC_PORTS.min },
        dynamicPortMax: { ...Port, default: DEFAULT_DYNAMIC_PORTS.max },
        /** Reconcile at least this often even when no watch fired. */
        reconcileIntervalMs: Type.Integer({ minimum: 100, default: 10_000 }),
        /** The API's operator token; default: <dataDir>/scheduler/token (0600), created on first start. */
        token: Type.Optional(Type.String({ minLength: 16 })),
        /** TTL of the leader's session on weft/leader: a standby takes over within about this long after the leader dies. */
        leaderTtlMs: Type.Integer({ minimum: 50, default: 10_000 }),
        /** Register `weft-scheduler` in Consul (with an HTTP check of /v1/health). */
        register: Type.Boolean({ default: true }),
        /** Signed desired state (docs/security.md): the keys in <dataDir>/scheduler/signing/. */
        signing: Type.Object(
          {
            /** After a rotation (POST /v1/signing/rotate) the new key is published this long before it signs (agents fetch it meanwhile). */
            publishSeconds: Type.Number({ minimum: 0, maximum: 86_400, default: DEFAULT_SIGNING_PUBLISH_SECONDS }),
            /** ... and the previous key keeps verifying this long after that; the leader re-signs every document meanwhile. */
            overlapHours: Type.Number({ minimum: 0, maximum: 8760, default: DEFAULT_SIGNING_OVERLAP_HOURS }),
          },
          { default: {}, additionalProperties: false },
        ),
        /** The autoscaler (docs/autoscaling.md): where the leader reads the metrics of autoscaled groups. */
        autoscale: Type.Object(
          {
            /** scrape: the leader scrapes every weft-proxy's /metrics itself (nothing to install); prometheus: PromQL against prometheusUrl (needed for `promql` metrics). */
            source: Type.Union(
              AUTOSCALE_SOURCES.map((s) => Type.Literal(s)),
              { default: DEFAULT_AUTOSCALE_SOURCE },
            ),
            /** Prometheus' base URL, for source prometheus. */
            prometheusUrl: Type.String({ pattern: '^https?://[^\\s/]+(/[^\\s]*)?$', default: DEFAULT_PROMETHEUS_URL }),
          },
          { default: {}, additionalProperties: false },
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    /** The CLI's scheduler client (`weft deploy`, `status`, `scale`, ...). */
    client: Type.Object(
      {
        /** The scheduler API: `http(s)://host:port` or `host:port`. */
        address: Type.String({ pattern: '^(https?://)?[^\\s/:]+(:[0-9]{1,5})?/?$', default: 'http://127.0.0.1:7400' }),
        /** Bearer token; else `<dataDir>/scheduler/token` when it exists (on the scheduler's machine). */
        token: Type.Optional(Type.String({ minLength: 1 })),
      },
      { default: {}, additionalProperties: false },
    ),
    /** `weft agent` (agent/README.md). */
    agent: Type.Object(
      {
        /** Runtime: docker, process, or auto (docker when its daemon answers, else process). */
        driver: Type.Union([Type.Literal('auto'), Type.Literal('docker'), Type.Literal('process')], { default: 'auto' }),
        /** The address this host's instances are reached at (containers share the host network). */
        address: Type.String({ minLength: 1, default: '127.0.0.1' }),
        /** Capacity offered to the scheduler; 0 = detect (cores x 1000 millicores, total memory in MiB). */
        cpu: Type.Integer({ minimum: 0, default: 0 }),
        memory: Type.Integer({ minimum: 0, default: 0 }),
        /** Node attributes for placement (zone, rack, ...): `--attr k=v`. */
        attributes: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,63}$' }), Type.String({ maxLength: 255 }), { default: {} }),
        /** Host volumes jobs may mount, name -> absolute directory: `--volume name=path` (Meta weft_volumes lists the names). */
        hostVolumes: Type.Record(Type.String({ pattern: SEGMENT_PATTERN }), Type.String({ pattern: '^/' }), { default: {} }),
        /** TTL of the weft-agent heartbeat check; the agent passes it every third of this. */
        heartbeatTtlMs: Type.Integer({ minimum: 1000, default: 15_000 }),
        /** Drain: after deregistering and before SIGTERM, so every proxy's watch sees the instance go. */
        drainDelayMs: Type.Integer({ minimum: 0, default: 1_000 }),
        /** Drain: SIGTERM -> SIGKILL deadline for in-flight requests. */
        stopDeadlineMs: Type.Integer({ minimum: 0, default: 10_000 }),
        /** Registrations are re-checked against the runtime this often (missed events). */
        resyncIntervalMs: Type.Integer({ minimum: 1000, default: 30_000 }),
        /** A task sent a terminating signal by hand stays out of routing until it exits; one still running after this long is registered again. */
        stoppingGraceMs: Type.Integer({ minimum: 0, default: 300_000 }),
        /** Start and supervise this host's `weft proxy`. */
        superviseProxy: Type.Boolean({ default: true }),
        /**
         * A file (0600, the token on its first line) holding the Consul ACL token of the proxy this agent
         * supervises, handed to it as CONSUL_HTTP_TOKEN instead of the agent's own (docs/acl/README.md).
         */
        proxyConsulTokenFile: Type.Optional(Type.String({ minLength: 1 })),
        /** First 127.0.0.1 port handed to local services for their outbound calls (local.json). */
        outboundPortBase: { ...Port, default: 15101 },
        /** How often the agent fetches the scheduler's signing keys and hands them to its proxy (docs/security.md). */
        signingKeysRefreshMs: Type.Integer({ minimum: 1000, default: 60_000 }),
        /** SPIFFE namespace of local services' identities. */
        namespace: Type.String({ pattern: CONSUL_NAME_PATTERN, default: DEFAULT_NAMESPACE }),
        /**
         * /metrics and /healthz of the agent; the `weft-agent` registration carries the port (Address stays
         * agent.address), so bind where Prometheus reaches agent.address. Port 0 = any free port.
         */
        metrics: Type.Object(
          {
            /** Default: agent.address. */
            bind: Type.Optional(Type.String({ minLength: 1 })),
            port: Type.Integer({ minimum: 0, maximum: 65535, default: 15091 }),
          },
          { default: {}, additionalProperties: false },
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    /** `weft proxy` (proxy/README.md). Outbound ports per service come from <dataDir>/proxy/local.json, not from here. */
    proxy: Type.Object(
      {
        inbound: Type.Object(
          {
            /** The host's address: peers' outbound proxies dial it (Meta weft_mesh_port names the port). */
            bind: Type.String({ minLength: 1, default: '127.0.0.1' }),
            port: { ...Port, default: DEFAULT_INBOUND_PORT },
          },
          { default: {}, additionalProperties: false },
        ),
        /** Loopback only: the host's apps are its only clients. */
        outbound: Type.Object({ bind: Type.String({ minLength: 1, default: DEFAULT_OUTBOUND_HOST }) }, { default: {}, additionalProperties: false }),
        /** /metrics and /healthz; registered in Consul as `weft-proxy` with this port. */
        metrics: Type.Object(
          { bind: Type.String({ minLength: 1, default: '127.0.0.1' }), port: { ...Port, default: 15090 } },
          { default: {}, additionalProperties: false },
        ),
        /** What inbound decides when no intention in KV weft/intentions/ matches. */
        intentions: Type.Object(
          { defaultAction: Type.Union([Type.Literal('allow'), Type.Literal('deny')], { default: 'allow' }) },
          { default: {}, additionalProperties: false },
        ),
        /** Instance picker: p2c (peak EWMA, Linkerd's default) or swrr (nginx smooth weighted round robin). */
        algorithm: Type.Union(
          ALGORITHMS.map((a) => Type.Literal(a)),
          { default: DEFAULT_ALGORITHM },
        ),
        timeouts: Type.Object(
          {
            /** Overall deadline of an outbound request, retries included. */
            requestMs: Type.Integer({ minimum: 1, default: DEFAULT_REQUEST_TIMEOUT_MS }),
            /** Per-attempt limit until the response head; 0 = only the overall deadline. */
            tryMs: Type.Integer({ minimum: 0, default: 0 }),
            /** Every listener: a request body with no bytes for this long while unfinished is answered 408 and closed. */
            bodyIdleMs: Type.Integer({ minimum: 1, default: DEFAULT_BODY_IDLE_TIMEOUT_MS }),
            /** Every listener: a request head (request line and headers) not complete this long after it began is answered 408 and closed. */
            headMs: Type.Integer({ minimum: 1, default: DEFAULT_HEAD_TIMEOUT_MS }),
            /** The inbound mTLS listener: a connection whose TLS handshake has not finished this long after accept is closed. */
            handshakeMs: Type.Integer({ minimum: 1, default: DEFAULT_HANDSHAKE_TIMEOUT_MS }),
          },
          { default: {}, additionalProperties: false },
        ),
        /**
         * Scale to zero: requests for a service whose autoscale policy allows 0 instances are held
         * while it has none healthy (proxy/outbound/activation.ts). Per service: at most `maxHeld`
         * requests, each for at most `maxWaitMs` (or its deadline); beyond, 503.
         */
        activation: Type.Object(
          {
            maxHeld: Type.Integer({ minimum: 0, default: DEFAULT_MAX_HELD }),
            maxWaitMs: Type.Integer({ minimum: 1, default: DEFAULT_MAX_HOLD_WAIT_MS }),
          },
          { default: {}, additionalProperties: false },
        ),
        /** Open connections per listener (inbound, each outbound port, metrics), TLS handshakes included; more are closed at accept. */
        maxConnections: Type.Integer({ minimum: 1, default: DEFAULT_MAX_CONNECTIONS }),
        /** Graceful shutdown: in-flight requests get this long before they are cut. */
        shutdownGraceMs: Type.Integer({ minimum: 0, default: DEFAULT_SHUTDOWN_GRACE_MS }),
        /** How often local.json and identity files are checked for changes. */
        reloadIntervalMs: Type.Integer({ minimum: 50, default: 1_000 }),
      },
      { default: {}, additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export { Name as NameSchema, Port as PortSchema };
