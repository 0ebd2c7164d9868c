/**
 * What the proxy needs from the rest of weft, as interfaces the proxy owns.
 * proxy/ never imports certs/ or discovery/ internals (ARCHITECTURE.md,
 * "Layout and boundaries"): the `weft proxy` wiring in src/ builds adapters
 * from certs/ (mTLS options) and discovery/ (blocking watches) that satisfy
 * these, and tests build the same adapters or fakes.
 */
import type { ConnectionOptions, SecureContext, Server as TlsServer, TLSSocket, TlsOptions } from 'node:tls';

// ---------------------------------------------------------------- outbound

/**
 * Client TLS for the outbound mTLS hop, per calling local service: the proxy
 * presents the caller's identity, so the destination's inbound authorizes the
 * app that made the call, not the host.
 */
export interface OutboundTls {
  /** The SPIFFE trust domain peers must belong to. */
  readonly trustDomain: string;
  /**
   * Node TLS client options for a connection made on behalf of `caller` to an
   * instance of `destination`: a prebuilt `secureContext` (key, chain, bundle)
   * and a `checkServerIdentity` that verifies the peer's SPIFFE ID (and, when
   * the adapter pins it, that it serves `destination`). The proxy adds host,
   * port and `servername` (SNI = destination). Undefined when `caller` has no
   * identity yet: the proxy answers 503 rather than call without one.
   * Called per new connection: adapters should cache per (caller, destination).
   */
  clientOptions(caller: string, destination: string): ConnectionOptions | undefined;
  /**
   * Monotonic number that changes when any identity is renewed or the bundle
   * rotates; the proxy starts new connection pools (old ones drain) when it moves.
   */
  generation?(): number;
}

/** One instance of a service, as routing needs it (a subset of discovery's Instance). */
export interface RouteInstance {
  /** Consul service ID `<host>-<instance>`: sent as `x-weft-instance` to the host proxy. */
  readonly id: string;
  /** The host's address (the instance and its host proxy share it). */
  readonly address: string;
  /** The instance's own port (used directly only for instances outside the mesh). */
  readonly port: number;
  /** The host proxy's inbound mTLS port (Meta weft_mesh_port); undefined outside the mesh. */
  readonly meshPort: number | undefined;
  /** Meta weft_version, for splits. */
  readonly version: string | undefined;
  /** Meta weft_weight, 0..MAX_WEIGHT (base/contracts/names.ts). */
  readonly weight: number;
  /** All checks passing. RouteSource adapters may pass only healthy ones. */
  readonly healthy: boolean;
}

/** A subscription; close it when the proxy stops caring. */
export interface Subscription {
  close(): void | Promise<void>;
}

/**
 * Pushes routing data (Consul blocking-query watches in production). Values
 * are last-known-good: a failed read never produces an empty list, it
 * produces nothing. `onValue` runs for every new distinct value, and once at
 * subscribe time if one is already known.
 */
export interface RouteSource {
  /** Instances of `service` (the whole current list each time). */
  watchInstances(service: string, onValue: (instances: readonly RouteInstance[]) => void): Subscription;
  /**
   * The raw split document of `service` (KV `weft/splits/<service>`), or
   * null when there is none. The proxy validates it (balance/split.ts) and
   * keeps the last good one when it is invalid.
   */
  watchSplit(service: string, onValue: (splitJson: string | null) => void): Subscription;
  /**
   * The services that may be at zero instances (KV `weft/zero/`, written by the
   * scheduler for autoscale policies with `min: 0`): requests for them are held
   * while they have no healthy instance (outbound/activation.ts). Optional: a
   * source without it never holds.
   */
  watchActivatable?(onValue: (services: ReadonlySet<string>) => void): Subscription;
}

// ---------------------------------------------------------------- inbound

/** A caller's verified identity (from the URI SAN of its client certificate). */
export interface PeerIdentity {
  /** `spiffe://<td>/ns/<ns>/svc/<service>`. */
  readonly uri: string;
  readonly namespace: string;
  /** What intentions name as the source. */
  readonly service: string;
}

/**
 * Server TLS for the inbound mTLS listener. One listener serves every local
 * service: SNI (= the destination service name) picks the certificate.
 */
export interface InboundTls {
  /** The SPIFFE trust domain callers must belong to. */
  readonly trustDomain: string;
  /**
   * Base TLS server options: the trust bundle as `ca`, `requestCert: true`,
   * `rejectUnauthorized: true`, TLS 1.3. No certificate: a handshake without
   * SNI (or for a service not on this host) must fail, not get some other
   * service's certificate.
   */
  serverOptions(): TlsOptions;
  /**
   * The SecureContext (key, chain and bundle) of local service `service`,
   * looked up on every handshake (so renewals apply to new handshakes at
   * once); undefined when this host serves no such service.
   */
  contextFor(service: string): SecureContext | undefined;
  /**
   * Gates the server so that only callers whose leaf carries a valid SPIFFE ID
   * of the trust domain reach the HTTP layer (certs/mtls.ts requirePeerIdentity).
   */
  guard(server: TlsServer, onReject: (socket: TLSSocket, err: Error) => void): void;
  /** The identity of a socket the guard admitted. */
  peerOf(socket: TLSSocket): PeerIdentity | undefined;
}

/** What intentions say about one call. Implementations return shared objects: no allocation per request. */
export interface IntentionDecision {
  readonly action: 'allow' | 'deny';
  /** Why, for `x-weft-reason` and logs (e.g. which KV key decided). */
  readonly reason: string;
}

/** Decides whether service `source` may call service `destination` (KV `weft/intentions/<source>/<destination>`). */
export interface IntentionSource {
  decide(source: string, destination: string): IntentionDecision;
}

/** A service instance running on this host, as the inbound side forwards to it. */
export interface LocalInstance {
  /** Consul service ID `<host>-<instance>` (what outbound sends as `x-weft-instance`). */
  readonly id: string;
  readonly service: string;
  /** Meta weft_version (metrics label); 'unknown' when absent. */
  readonly version: string;
  /** Where the app listens (the host's address). */
  readonly address: string;
  readonly port: number;
}

/** The instances on this host (the agent's registrations in production). */
export interface LocalServices {
  /** The instance `id` if it is a local instance of `service`; otherwise undefined. */
  instance(service: string, id: string): LocalInstance | undefined;
  /** Any local instance of `service` (when the caller named none); undefined when there is none. */
  pick(service: string): LocalInstance | undefined;
}
