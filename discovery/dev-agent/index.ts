/**
 * weft's embedded dev Consul agent: a single-node, Consul-HTTP-API-compatible
 * agent (like `consul agent -dev`) whose state survives restarts in its data
 * directory. Pipeline: HTTP (server.ts, routes/) -> local agent / sessions /
 * KV ops -> store (one index, per-table indexes, watchers) -> persistence;
 * the check runner and reaper feed results back through the agent.
 */
import { invalid } from '../../base/errors.js';
import { silentLogger, type Logger } from '../../base/log.js';
import { createDiscoveryClient, type DiscoveryClient } from '../client.js';
import { type AclOptions, AclSystem } from './acl/system.js';
import { LocalAgent, nodeMetaProblem } from './agent.js';
import { ConsulHttpError, serverError } from './http-error.js';
import { startReaper } from './checks/reaper.js';
import { applyDefinitions, type ConfigDefinitions } from './config/definitions.js';
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
  /** How long writes are batched before they are appended to the state log (default 100 ms). */
  persistDebounceMs?: number;
  /** How long KV tombstones are kept at least (they are reaped within twice this; default 15 min). */
  tombstoneTtl?: number;
  /** This node's Meta (Consul's `-node-meta`), shown in the catalog, agent/self and health entries. */
  nodeMeta?: Readonly<Record<string, string>>;
  /**
   * What PUT /v1/agent/reload (and `DevConsul.reload()`) does: re-read the
   * configuration and return what changed. A rejection answers 500 with its
   * message and changes nothing. Without it, reload answers 200 and does nothing.
   */
  reload?: () => DevConsulReload | undefined | Promise<DevConsulReload | undefined>;
  /** The node's address in the catalog (Consul's bind_addr/advertise_addr); default: the listen address, 127.0.0.1 for a wildcard. */
  advertise?: string;
  /** Run script checks from any source: config files and the HTTP API (Consul's enable_script_checks; default off). */
  enableScriptChecks?: boolean;
  /** Run script checks from config files only (Consul's enable_local_script_checks; default off). */
  enableLocalScriptChecks?: boolean;
  /**
   * Services and checks from Consul config files (resolveDevConsulConfig),
   * registered before the agent listens; those of the previous start that are
   * no longer defined are removed. A definition the agent refuses fails the start.
   */
  definitions?: ConfigDefinitions;
  /**
   * Consul's ACL system (acl.enabled, acl.default_policy, acl.tokens.initial_management,
   * acl.tokens.default): tokens and policies persist with the rest of the state.
   * Absent: ACLs off, every request allowed, as in Consul's default.
   */
  acl?: AclOptions;
}

/** What a reload may change while the agent runs. */
export interface DevConsulReload {
  /** The node's new Meta (replaces the old one; absent keeps it). */
  nodeMeta?: Readonly<Record<string, string>>;
  /** The config files' services and checks, replacing those registered from them before (absent keeps them). */
  definitions?: ConfigDefinitions;
}

/** Why the agent stopped: `close()` was called, or a client asked it to leave (PUT /v1/agent/leave). */
export type DevConsulStop = 'close' | 'leave';

export type { ConfigDefinition, ConfigDefinitions } from './config/definitions.js';
export type { AclOptions } from './acl/system.js';
export { ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_ID } from './acl/authorizer.js';
export {
  type DevConsulPlan,
  type DevConsulReloaded,
  type DevConsulSettings,
  resolveDevConsulConfig,
  type WeftDevConsulSettings,
} from './config/resolve.js';

export interface DevConsul {
  /** `host:port` the agent answers on. */
  readonly address: string;
  readonly port: number;
  /** The state store, for tests and in-process users that want to look inside. */
  readonly store: Store;
  /** Appends pending changes to the state log now. */
  flush(): Promise<void>;
  /** Stops checks and timers, persists state, closes the listener. */
  close(): Promise<void>;
  /** Runs the `reload` option and applies its result, as PUT /v1/agent/reload does. */
  reload(): Promise<void>;
  /** Settles once the agent has stopped, with why: `weft dev-consul` exits when it does. */
  readonly stopped: Promise<DevConsulStop>;
}

/** The accept queue asked for; Linux caps it at net.core.somaxconn, as for Consul's Go listener. */
const LISTEN_BACKLOG = 65_535;

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
  checkNodeMeta(opts.nodeMeta);
  const store = new Store();
  const loaded = loadState(opts.dataDir, store);
  const { nodeId } = loaded;
  // Where this process reaches its own listener; the catalog's address unless one is given.
  const dialAddress = opts.bind === '0.0.0.0' || opts.bind === '::' || opts.bind === '' ? '127.0.0.1' : opts.bind;
  const advertiseAddress = opts.advertise ?? dialAddress;

  const agent = new LocalAgent(
    store,
    {
      nodeName: opts.nodeName,
      nodeId,
      datacenter: opts.datacenter,
      advertiseAddress,
      intervalMinMs: o.checkIntervalMin,
      ...(opts.nodeMeta === undefined ? {} : { nodeMeta: opts.nodeMeta }),
      ...(opts.enableScriptChecks === undefined ? {} : { enableScriptChecks: opts.enableScriptChecks }),
      ...(opts.enableLocalScriptChecks === undefined ? {} : { enableLocalScriptChecks: opts.enableLocalScriptChecks }),
    },
    logger,
  );
  const sessions = new SessionManager(store, { ttlMinMs: o.sessionTtlMin }, opts.nodeName, logger);
  const persister = new Persister(opts.dataDir, store, nodeId, o.persistDebounceMs, logger, loaded);
  agent.ensureLocalNode();
  const acl = new AclSystem(store, opts.acl ?? { enabled: false }, opts.datacenter, opts.dataDir, logger);
  await acl.init();
  agent.startChecks();
  if (opts.definitions !== undefined) {
    try {
      applyDefinitions(agent, opts.dataDir, opts.definitions, logger);
    } catch (err) {
      agent.close();
      await persister.close();
      throw err;
    }
  }
  sessions.startTimers();
  const stopReaper = startReaper(agent, { intervalMs: o.checkReapInterval, minTimeoutMs: o.checkDeregisterIntervalMin }, logger);
  persister.schedule(); // the bumped index must reach disk even if nothing else is written
  const stopGraveyard = startTombstoneReaper(store, o.tombstoneTtl);

  let closeWith: (why: DevConsulStop) => Promise<void> = async () => {};
  const reload = async (): Promise<void> => {
    if (opts.reload === undefined) return;
    let next: DevConsulReload | undefined;
    try {
      next = await opts.reload();
      if (next?.nodeMeta !== undefined) checkNodeMeta(next.nodeMeta);
      if (next?.definitions !== undefined) applyDefinitions(agent, opts.dataDir, next.definitions, logger);
    } catch (err) {
      // Consul answers a failed reload with 500 and its reason, and keeps running as it was.
      throw err instanceof ConsulHttpError ? err : serverError(`Failed reloading config: ${(err as Error).message}`);
    }
    if (next?.nodeMeta !== undefined) agent.setNodeMeta(next.nodeMeta);
    logger.info('dev-consul: configuration reloaded');
  };
  const lifecycle = {
    leave: () => {
      logger.info('dev-consul: leave requested, shutting down');
      void closeWith('leave');
    },
    reload,
  };
  const app = buildServer({ store, agent, sessions, datacenter: opts.datacenter, nodeName: opts.nodeName, advertiseAddress, logger, lifecycle, acl });
  // weft's Prometheus HTTP SD reads the catalog through a client pointed back here, with the caller's token.
  let selfAddress: string | undefined;
  const selfClients = new Map<string, DiscoveryClient>();
  const selfClient = (token: string | undefined): DiscoveryClient | undefined => {
    if (selfAddress === undefined) return undefined;
    const key = token ?? '';
    let c = selfClients.get(key);
    if (c === undefined) {
      // Bounded: a client is per token, and tokens are few; dropped ones are not closed (a request may be using one).
      if (selfClients.size >= 16) selfClients.clear();
      c = createDiscoveryClient({ consul: { address: selfAddress, ...(token === undefined ? {} : { token }) } }, { logger });
      selfClients.set(key, c);
    }
    return c;
  };
  prometheusSdRoute(app, selfClient);
  try {
    // A thousand agents reconnecting at once overflow Node's default accept queue (511): the SYNs
    // dropped are retried by the kernel after 1, 3, 7 s, which shows up as heartbeats seconds late.
    // Consul (Go) listens with the system's somaxconn; so does this (the kernel caps the request).
    await app.listen({ host: opts.bind, port: opts.port, backlog: LISTEN_BACKLOG });
  } catch (err) {
    stopReaper();
    stopGraveyard();
    agent.close();
    sessions.close();
    await persister.close();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : opts.port;
  const host = opts.bind.includes(':') ? `[${opts.bind}]` : opts.bind;
  selfAddress = `${dialAddress.includes(':') ? `[${dialAddress}]` : dialAddress}:${port}`;
  logger.debug({ port, dataDir: opts.dataDir, index: store.index }, 'dev-consul listening');

  let closing: Promise<void> | undefined;
  let stop!: (why: DevConsulStop) => void;
  const stopped = new Promise<DevConsulStop>((resolve) => (stop = resolve));
  closeWith = (why) => {
    closing ??= (async () => {
      stopReaper();
      stopGraveyard();
      agent.close();
      sessions.close();
      store.close(); // parked blocking queries answer now instead of holding close()
      for (const c of selfClients.values()) c.close();
      await app.close();
      await persister.close();
      stop(why);
    })();
    return closing;
  };
  return {
    address: `${host}:${port}`,
    port,
    store,
    flush: () => persister.flush(),
    close: () => closeWith('close'),
    reload,
    stopped,
  };
}

/** Refuses node Meta Consul would refuse for -node-meta. */
function checkNodeMeta(meta: Readonly<Record<string, string>> | undefined): void {
  if (meta === undefined) return;
  const problem = nodeMetaProblem(meta);
  if (problem !== undefined) throw invalid('WEFT_ERR_CONFIG_INVALID', 'nodeMeta', meta, problem);
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
