/**
 * `weft scheduler`, assembled: Consul client, observer, API, `weft-scheduler`
 * registration, and leader election on `weft/leader`.
 *
 * Every instance runs the observer and serves the whole API (state is in
 * Consul KV, so a standby needs no redirect); only the lock holder runs the
 * control loop, and its writes are fenced by the lock, so a deposed leader's
 * late write is refused by Consul. Lock-delay is 0: fencing, not lock-delay,
 * keeps two leaders from both writing, and a standby takes over one session
 * TTL (`scheduler.leaderTtlMs`, 10 s) after the leader dies. The autoscaler
 * (scheduler-autoscaler.ts) runs beside the control loop, on the leader only,
 * with a metric source per leadership term (`scheduler.autoscale.source`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createDiscoveryClient, deleteKey, type DiscoveryClient, fencedTxn, getJSON, LEADER_KEY, list, putJSON, SessionLock } from '../../discovery/index.js';
import { parseAllocation } from '../../agent/index.js';
import { ALLOCS_PREFIX } from '../../base/contracts/alloc.js';
import { isWeftError } from '../../base/errors.js';
import { loadOrCreateKey, type MetricSource, SecretStore } from '../../scheduler/index.js';
import type { Config } from '../config/load.js';
import type { Logger } from '../../base/log.js';
import { enableProcessMetrics } from '../../base/metrics.js';
import { SCHEDULER_SERVICE, SERVICE_META, WEFT_TAG } from '../../base/contracts/meta.js';
import { VERSION } from '../../base/version.js';
import { PrometheusSource } from './autoscale-prometheus.js';
import { ScrapeSource } from './autoscale-scrape.js';
import { MeshStats, statsHandlers } from './mesh-stats.js';
import { consoleRoutes } from './scheduler-console.js';
import { buildApi } from './scheduler-api.js';
import { Autoscaler } from './scheduler-autoscaler.js';
import type { SchedulerContext } from './scheduler-context.js';
import { ControlLoop } from './scheduler-loop.js';
import { consulLastSuccess, leaderGauge } from './scheduler-metrics.js';
import { ClusterObserver } from './scheduler-observer.js';
import { clusterHandlers, MESH_SIGNED_PREFIXES } from './scheduler-routes-cluster.js';
import { autoscaleHandlers, jobHandlers } from './scheduler-routes-jobs.js';
import { type SignedPrefix, signedReader, SigningKeyStore, SigningSweeper } from './scheduler-signing.js';
import { loadOrCreateToken } from './scheduler-token.js';

/** A running scheduler. */
export interface SchedulerProcess {
  /** `host:port` of the API. */
  readonly address: string;
  isLeader(): boolean;
  /**
   * A caller's proxy holds a request for `service` at zero: its autoscaled
   * group decides at once (as a write of `weft/activate/<service>` does).
   * Returns the number of groups woken; 0 on a standby.
   */
  requestActivation(service: string): number;
  close(): Promise<void>;
}

/** A metric source; closed at the end of the leadership term it was made for when it can be. */
export type TermMetricSource = MetricSource & { close?: () => Promise<void> };

/** What tests (and embedders) may replace in the autoscaler. */
export interface AutoscaleOverrides {
  /** Makes the metric source of a leadership term (default: from scheduler.autoscale). */
  source?: () => TermMetricSource;
  /** Wall clock, epoch ms (default Date.now). */
  now?: () => number;
  /** The calculator's warm-up (default 30 s). */
  warmupMs?: number;
}

/** Starts a scheduler instance; resolves once the API listens. */
export async function startScheduler(opts: { config: Readonly<Config>; logger: Logger; autoscale?: AutoscaleOverrides }): Promise<SchedulerProcess> {
  const { config, logger } = opts;
  const c = config.scheduler;
  enableProcessMetrics();
  const client = createDiscoveryClient(config, { logger });
  const tok = loadOrCreateToken(config.dataDir, c.token);
  if (tok.path !== undefined) logger.info({ path: tok.path, created: tok.created }, 'API token file (clients: WEFT_TOKEN or this file)');
  const secrets = new SecretStore(
    {
      get: async (key) => (await getJSON<unknown>(client, key))?.value,
      put: async (key, value) => {
        await putJSON(client, key, value);
      },
      delete: (key) => deleteKey(client, key),
      list: async (prefix) => (await list<unknown>(client, prefix)).map((v) => ({ key: v.key, value: v.value })),
    },
    loadOrCreateKey(config.dataDir),
  );
  // Signed desired state (docs/security.md): the keys, created on a first start; the leader re-signs.
  const signing = SigningKeyStore.open(config.dataDir);
  if (signing.created) logger.info({ dir: signing.store.dir }, 'signing key created');
  // Allocations too, re-signed only by the leader: fenced by its lock, as every allocation write is.
  const allocations: SignedPrefix = {
    prefix: ALLOCS_PREFIX,
    validate: (key, doc) => void parseAllocation(key, doc),
    write: async (key, value, index) => {
      try {
        await fencedTxn(client, lock.fence(), [{ verb: 'cas', key, value, index }]);
        return true;
      } catch (err) {
        if (isWeftError(err) && err.code === 'WEFT_ERR_KV_CAS_CONFLICT') return false;
        throw err;
      }
    },
  };
  const sweeper = new SigningSweeper({ client, store: signing.store, prefixes: [...MESH_SIGNED_PREFIXES, allocations], logger });
  const observer = new ClusterObserver({ client, logger, readAllocations: () => signedReader(signing.store, ALLOCS_PREFIX) });
  let leading = false;
  let loop: ControlLoop | undefined;
  let autoscaler: Autoscaler | undefined;
  const address = `${c.bind}:${c.port}`;
  const ctx: SchedulerContext = {
    client,
    observer,
    config,
    logger,
    secrets,
    token: tok.token,
    isLeader: () => leading,
    leaderAddress: () => leaderAddress,
    leaderNodes: () => (leading ? loop?.nodeInfos : undefined),
    autoscaleState: (job, group) => (leading ? autoscaler?.state(job, group) : undefined),
  };
  let leaderAddress: string | undefined;
  // Scrapes the proxies only while someone asks (the console, `weft stat`).
  const meshStats = new MeshStats({ client, logger });
  const api = buildApi({
    token: tok.token,
    logger,
    handlers: { ...clusterHandlers(ctx, signing.store), ...jobHandlers(ctx), ...autoscaleHandlers(ctx), ...statsHandlers(meshStats) },
    publicRoutes: consoleRoutes({ logger }), // the web console at /ui
  });
  await api.listen({ host: c.bind, port: c.port });
  logger.info({ address }, 'scheduler API listening');
  const serviceId = `${SCHEDULER_SERVICE}-${config.nodeName}-${c.port}`;
  if (c.register) await registerService(client, serviceId, config.nodeName, c.bind, c.port, logger);

  const stop = new AbortController();
  const lock = new SessionLock(client, { ttlMs: c.leaderTtlMs, lockDelayMs: 0, name: `weft scheduler ${address}`, value: { address }, logger });
  const leaderWatch = setInterval(() => {
    void getJSON<{ address?: string }>(client, LEADER_KEY).then(
      (v) => {
        leaderAddress = v?.value.address;
        consulLastSuccess.set(Date.now() / 1000); // the read doubles as the Consul reachability probe
      },
      () => {},
    );
  }, 1000);
  const elections = (async () => {
    await observer.ready();
    while (!stop.signal.aborted) {
      try {
        await lock.waitForLock(stop.signal);
      } catch {
        return; // closing
      }
      leading = true;
      leaderAddress = address;
      leaderGauge.set(1);
      logger.info('leading: reconciling');
      let stepDown!: () => void;
      const lost = new Promise<void>((resolve) => {
        stepDown = resolve;
      });
      const onLost = (): void => stepDown();
      lock.once('lost', onLost);
      stop.signal.addEventListener('abort', onLost, { once: true });
      loop = new ControlLoop({ client, observer, config, logger, fence: () => lock.fence(), onLockLost: onLost, sign: (key, doc) => signing.store.sign(key, doc) });
      loop.start();
      const source = opts.autoscale?.source?.() ?? metricSourceFor(config, client, logger);
      autoscaler = new Autoscaler({
        client,
        observer,
        logger,
        source,
        fence: () => lock.fence(),
        onLockLost: onLost,
        now: opts.autoscale?.now,
        warmupMs: opts.autoscale?.warmupMs,
      });
      autoscaler.start();
      sweeper.start();
      await lost;
      lock.off('lost', onLost);
      await Promise.all([loop.stop(), autoscaler.stop(), sweeper.stop()]);
      await source.close?.().catch((err: unknown) => logger.warn({ err }, 'closing the metric source failed'));
      loop = undefined;
      autoscaler = undefined;
      leading = false;
      leaderGauge.set(0);
      if (stop.signal.aborted) return;
      logger.warn('no longer leading: standing by');
      await lock.release().catch(() => {});
      await sleep(100);
    }
  })();

  return {
    address,
    isLeader: () => leading,
    requestActivation: (service) => (leading ? (autoscaler?.requestActivation(service) ?? 0) : 0),
    async close() {
      stop.abort();
      clearInterval(leaderWatch);
      await elections;
      await lock.close();
      if (c.register) await client.call('agent.service.deregister', (cl) => cl.agent.service.deregister(serviceId)).catch(() => {});
      await api.close();
      await meshStats.close();
      await observer.close();
      client.close();
      logger.info('scheduler stopped');
    },
  };
}

/** The cluster's metric source (`scheduler.autoscale.source`), one per leadership term. */
function metricSourceFor(config: Readonly<Config>, client: DiscoveryClient, logger: Logger): TermMetricSource {
  const a = config.scheduler.autoscale;
  if (a.source === 'prometheus') return new PrometheusSource({ url: a.prometheusUrl });
  return new ScrapeSource({ client, logger });
}

async function registerService(client: DiscoveryClient, id: string, host: string, bind: string, port: number, logger: Logger): Promise<void> {
  try {
    await client.call('agent.service.register', (c) =>
      c.agent.service.register({
        id,
        name: SCHEDULER_SERVICE,
        address: bind,
        port,
        tags: [WEFT_TAG],
        // Prometheus relabels these into `host` and `weft_version` (grafana/prometheus*.yml), as for weft-agent and weft-proxy.
        meta: { [SERVICE_META.host]: host, [SERVICE_META.version]: VERSION },
        check: { http: `http://${bind}:${port}/v1/health`, interval: '10s', timeout: '2s', deregistercriticalserviceafter: '1m' },
      } as never),
    );
  } catch (err) {
    logger.warn({ err }, 'could not register weft-scheduler in Consul; continuing');
  }
}
