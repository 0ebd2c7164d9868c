/**
 * weft's embedded dev Consul agent: a single-node, Consul-HTTP-API-compatible
 * agent (like `consul agent -dev`) whose state survives restarts in its data
 * directory. Pipeline: HTTP (server.ts, routes/) -> local agent / sessions /
 * KV ops -> store (one index, per-table indexes, watchers) -> persistence;
 * the check runner and reaper feed results back through the agent.
 */
import { silentLogger, type Logger } from '../../base/log.js';
import { createDiscoveryClient, type DiscoveryClient } from '../client.js';
import { LocalAgent } from './agent.js';
import { startReaper } from './checks/reaper.js';
import { prometheusSdRoute } from './routes/prometheus-sd.js';
import { buildServer } from './server.js';
import { SessionManager } from './sessions.js';
import { loadState, Persister } from './state/persistence.js';
import { Store } from './state/store.js';

export interface DevConsulOptions {
  /** Address to listen on (default 127.0.0.1). */
  bind: string;
  /** HTTP port; 0 picks a free one. */
  port: number;
  /** Directory for persisted state (KV, registrations, sessions, index). */
  dataDir: string;
  nodeName: string;
  datacenter: string;
  logger?: Logger;
  /** Shortest session TTL accepted (Consul's session_ttl_min; default 10 s). */
  sessionTtlMin?: number;
  /** Shortest HTTP/TCP check interval; shorter ones are raised to it (Consul: 1 s). */
  checkIntervalMin?: number;
  /** Floor for DeregisterCriticalServiceAfter (Consul: 1 min). */
  checkDeregisterIntervalMin?: number;
  /** How often critical services are considered for reaping (Consul: 30 s). */
  checkReapInterval?: number;
  /** How long writes are batched before the state file is rewritten (default 100 ms). */
  persistDebounceMs?: number;
  /** How long KV tombstones are kept at least (they are reaped within twice this; default 15 min). */
  tombstoneTtl?: number;
}

export interface DevConsul {
  /** `host:port` the agent answers on. */
  readonly address: string;
  readonly port: number;
  /** The state store, for tests and in-process users that want to look inside. */
  readonly store: Store;
  /** Writes pending state to disk now. */
  flush(): Promise<void>;
  /** Stops checks and timers, persists state, closes the listener. */
  close(): Promise<void>;
}

/** Consul's defaults for the timing knobs (all in milliseconds). */
export const DEV_CONSUL_DEFAULTS = {
  sessionTtlMin: 10_000,
  checkIntervalMin: 1_000,
  checkDeregisterIntervalMin: 60_000,
  checkReapInterval: 30_000,
  persistDebounceMs: 100,
  tombstoneTtl: 15 * 60_000,
} as const;

/** Starts the agent: loads state, starts checks and session clocks, listens. */
export async function startDevConsul(opts: DevConsulOptions): Promise<DevConsul> {
  const logger = opts.logger ?? silentLogger;
  const o = { ...DEV_CONSUL_DEFAULTS, ...definedOnly(opts) };
  const store = new Store();
  const { nodeId } = loadState(opts.dataDir, store);
  const advertiseAddress = opts.bind === '0.0.0.0' || opts.bind === '::' || opts.bind === '' ? '127.0.0.1' : opts.bind;

  const agent = new LocalAgent(
    store,
    { nodeName: opts.nodeName, nodeId, datacenter: opts.datacenter, advertiseAddress, intervalMinMs: o.checkIntervalMin },
    logger,
  );
  const sessions = new SessionManager(store, { ttlMinMs: o.sessionTtlMin }, opts.nodeName, logger);
  const persister = new Persister(opts.dataDir, store, nodeId, o.persistDebounceMs, logger);
  agent.ensureLocalNode();
  agent.startChecks();
  sessions.startTimers();
  const stopReaper = startReaper(agent, { intervalMs: o.checkReapInterval, minTimeoutMs: o.checkDeregisterIntervalMin }, logger);
  persister.schedule(); // the bumped index must reach disk even if nothing else is written
  const stopGraveyard = startTombstoneReaper(store, o.tombstoneTtl);

  const app = buildServer({ store, agent, sessions, datacenter: opts.datacenter, nodeName: opts.nodeName, advertiseAddress, logger });
  let self: DiscoveryClient | undefined;
  prometheusSdRoute(app, () => self);
  try {
    await app.listen({ host: opts.bind, port: opts.port });
  } catch (err) {
    stopReaper();
    stopGraveyard();
    agent.close();
    sessions.close();
    await persister.flush();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : opts.port;
  const host = opts.bind.includes(':') ? `[${opts.bind}]` : opts.bind;
  self = createDiscoveryClient({ consul: { address: `${advertiseAddress.includes(':') ? `[${advertiseAddress}]` : advertiseAddress}:${port}` } }, { logger });
  logger.debug({ port, dataDir: opts.dataDir, index: store.index }, 'dev-consul listening');

  let closing: Promise<void> | undefined;
  return {
    address: `${host}:${port}`,
    port,
    store,
    flush: () => persister.flush(),
    close() {
      closing ??= (async () => {
        stopReaper();
        stopGraveyard();
        agent.close();
        sessions.close();
        store.close(); // parked blocking queries answer now instead of holding close()
        self?.close();
        await app.close();
        await persister.flush();
      })();
      return closing;
    },
  };
}

/**
 * Every `ttlMs`, drops the tombstones that were already there at the previous
 * tick, so each lives between one and two periods: long enough for watchers
 * of a prefix to see a delete, bounded for a long-running dev agent.
 */
function startTombstoneReaper(store: Store, ttlMs: number): () => void {
  let mark = store.index;
  const timer = setInterval(() => {
    store.reapTombstones(mark);
    mark = store.index;
  }, ttlMs);
  timer.unref();
  return () => clearInterval(timer);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
