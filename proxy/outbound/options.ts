/**
 * The outbound stack's knobs, validated once and frozen, with the defaults in
 * one commented place (fastify's habit). Numbers go through numberOption so a
 * bad value fails at start with the key named, not as a NaN timeout later.
 */
import { invalid } from '../../base/errors.js';
import { isServiceName } from '../../base/contracts/names.js';
import { type Logger, silentLogger } from '../../base/log.js';
import { type Algorithm, DEFAULT_ALGORITHM } from '../balance/create.js';
import { type Clock, type Random, systemClock, systemRandom } from '../../base/clock.js';
import { numberOption } from '../options.js';
import { type ActivationOptions, DEFAULT_MAX_HELD, DEFAULT_MAX_HOLD_WAIT_MS } from './activation.js';
import type { OutlierOptions } from '../resilience/outlier.js';
import type { RetryBudgetOptions } from '../resilience/retry-budget.js';
import { type TimeoutPolicy, timeoutPolicy } from '../resilience/deadline.js';

/** The architecture's default outbound port. */
export const DEFAULT_OUTBOUND_PORT = 15001;

/** Outbound listens on loopback only: the apps of this host are its only clients. */
export const DEFAULT_OUTBOUND_HOST = '127.0.0.1';

/**
 * Bodies up to this size are held in memory so the request can be retried;
 * larger ones stream to the first instance and are never retried.
 */
export const DEFAULT_MAX_BUFFERED_BODY = 64 * 1024;

/**
 * Idle keep-alive connections to a host proxy close after this long. It must
 * stay below the peer's idle timeout (the inbound's keepAliveTimeout, 60 s:
 * proxy/http/server-limits.ts) so the client, not the server, closes an idle
 * connection: otherwise a request can race the server's FIN and fail.
 */
export const DEFAULT_POOL_IDLE_MS = 50_000;

/**
 * The same for instances outside the mesh, reached directly: their servers
 * are unknown, and Node's default keepAliveTimeout is 5 s, so stay below it.
 */
export const DEFAULT_PLAIN_POOL_IDLE_MS = 4_000;

/** Connections per (host proxy, caller, destination): bounds a burst's handshakes. */
export const DEFAULT_POOL_MAX_SOCKETS = 128;

/** How long a request for a never-seen service waits for the first routing answer. */
export const DEFAULT_FIRST_ROUTE_WAIT_MS = 2_000;

/** Graceful shutdown: in-flight requests get this long before their sockets are cut. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

/** One outbound port: requests on it are made on behalf of `service` (its identity on the mTLS hop). */
export interface OutboundListener {
  /** The calling local service: whose identity the proxy presents. */
  readonly service: string;
  readonly port: number;
  /** A dedicated upstream (`weft.upstreams` `svc:localPort`): every request goes there, whatever its Host. */
  readonly upstream?: string | undefined;
}

/** Options of the outbound proxy, as given. */
export interface OutboundOptionsInput {
  readonly listeners: readonly OutboundListener[];
  readonly host?: string | undefined;
  /** Where the routing cache lives (`<dataDir>/proxy/routes.json`); no cache when undefined. */
  readonly dataDir?: string | undefined;
  readonly algorithm?: Algorithm | undefined;
  readonly timeouts?: { requestTimeoutMs?: number | undefined; tryTimeoutMs?: number | undefined } | undefined;
  readonly maxRetries?: number | undefined;
  readonly backoff?: { baseMs?: number | undefined; maxMs?: number | undefined } | undefined;
  readonly retryBudget?: Omit<RetryBudgetOptions, 'now'> | undefined;
  readonly outlier?: Omit<OutlierOptions, 'now'> | undefined;
  readonly pendingLimit?: number | undefined;
  readonly maxBufferedBody?: number | undefined;
  readonly poolIdleMs?: number | undefined;
  readonly plainPoolIdleMs?: number | undefined;
  readonly poolMaxSockets?: number | undefined;
  readonly firstRouteWaitMs?: number | undefined;
  /** Holding requests for a service at zero (activation.ts): per-service queue bound and wait. */
  readonly activation?: { maxHeld?: number | undefined; maxWaitMs?: number | undefined } | undefined;
  readonly shutdownGraceMs?: number | undefined;
  readonly now?: Clock | undefined;
  readonly random?: Random | undefined;
  readonly logger?: Logger | undefined;
}

/** Validated options with defaults filled in. */
export interface OutboundOptions {
  readonly listeners: readonly OutboundListener[];
  readonly host: string;
  readonly dataDir: string | undefined;
  readonly algorithm: Algorithm;
  readonly timeouts: TimeoutPolicy;
  readonly maxRetries: number | undefined;
  readonly backoff: { baseMs?: number | undefined; maxMs?: number | undefined } | undefined;
  readonly retryBudget: Omit<RetryBudgetOptions, 'now'>;
  readonly outlier: Omit<OutlierOptions, 'now'>;
  readonly pendingLimit: number | undefined;
  readonly maxBufferedBody: number;
  readonly poolIdleMs: number;
  readonly plainPoolIdleMs: number;
  readonly poolMaxSockets: number;
  readonly firstRouteWaitMs: number;
  readonly activation: ActivationOptions;
  readonly shutdownGraceMs: number;
  readonly now: Clock;
  readonly random: Random;
  readonly logger: Logger;
}

/** True for a name the outbound can route to (a DNS label, as `weft.service` allows). */
export { isServiceName };

/**
 * Checks a listener set: service names, ports, no port twice. Empty is an
 * error at start (a proxy with nothing to listen on is a mistake) unless
 * `allowEmpty` (a running proxy whose hand-off file lists no caller any more).
 */
export function checkListeners(listeners: readonly OutboundListener[], opts: { allowEmpty?: boolean } = {}): void {
  if (listeners.length === 0 && opts.allowEmpty !== true) throw invalid('WEFT_ERR_CONFIG_INVALID', 'proxy.outbound.listeners', [], 'needs at least one {service, port}');
  const ports = new Set<number>();
  listeners.forEach((l, i) => {
    const key = `proxy.outbound.listeners[${i}]`;
    if (!isServiceName(l.service)) throw invalid('WEFT_ERR_CONFIG_INVALID', `${key}.service`, l.service, 'must be a service name (DNS label)');
    if (l.upstream !== undefined && !isServiceName(l.upstream)) {
      throw invalid('WEFT_ERR_CONFIG_INVALID', `${key}.upstream`, l.upstream, 'must be a service name (DNS label)');
    }
    numberOption(`${key}.port`, l.port, 0, { min: 0, max: 65535, integer: true });
    if (l.port !== 0 && ports.has(l.port)) throw invalid('WEFT_ERR_CONFIG_INVALID', `${key}.port`, l.port, 'is used by another listener');
    ports.add(l.port);
  });
}

/** Validates and freezes outbound options (WEFT_ERR_CONFIG_INVALID names the key). */
export function outboundOptions(input: OutboundOptionsInput): OutboundOptions {
  checkListeners(input.listeners);
  return Object.freeze({
    listeners: input.listeners.map((l) => Object.freeze({ ...l })),
    host: input.host ?? DEFAULT_OUTBOUND_HOST,
    dataDir: input.dataDir,
    algorithm: input.algorithm ?? DEFAULT_ALGORITHM,
    timeouts: timeoutPolicy(input.timeouts),
    maxRetries: input.maxRetries,
    backoff: input.backoff,
    retryBudget: input.retryBudget ?? {},
    outlier: input.outlier ?? {},
    pendingLimit: input.pendingLimit,
    maxBufferedBody: numberOption('proxy.outbound.maxBufferedBody', input.maxBufferedBody, DEFAULT_MAX_BUFFERED_BODY, { min: 0, integer: true }),
    poolIdleMs: numberOption('proxy.outbound.poolIdleMs', input.poolIdleMs, DEFAULT_POOL_IDLE_MS, { min: 1 }),
    plainPoolIdleMs: numberOption('proxy.outbound.plainPoolIdleMs', input.plainPoolIdleMs, DEFAULT_PLAIN_POOL_IDLE_MS, { min: 1 }),
    poolMaxSockets: numberOption('proxy.outbound.poolMaxSockets', input.poolMaxSockets, DEFAULT_POOL_MAX_SOCKETS, { min: 1, integer: true }),
    firstRouteWaitMs: numberOption('proxy.outbound.firstRouteWaitMs', input.firstRouteWaitMs, DEFAULT_FIRST_ROUTE_WAIT_MS, { min: 0 }),
    activation: Object.freeze({
      maxHeld: numberOption('proxy.activation.maxHeld', input.activation?.maxHeld, DEFAULT_MAX_HELD, { min: 0, integer: true }),
      maxWaitMs: numberOption('proxy.activation.maxWaitMs', input.activation?.maxWaitMs, DEFAULT_MAX_HOLD_WAIT_MS, { min: 1 }),
    }),
    shutdownGraceMs: numberOption('proxy.outbound.shutdownGraceMs', input.shutdownGraceMs, DEFAULT_SHUTDOWN_GRACE_MS, { min: 0 }),
    now: input.now ?? systemClock,
    random: input.random ?? systemRandom,
    logger: input.logger ?? silentLogger,
  });
}
