/**
 * `weft scheduler`, assembled: Consul client, observer, API, `weft-scheduler`
 * registration, and leader election on `weft/leader`.
 *
 * Every instance runs the observer and serves the whole API (state is in
 * Consul KV, so a standby needs no redirect); only the lock holder runs the
 * control loop, and its writes are fenced by the lock, so a deposed leader's
 * late write is refused by Consul. Lock-delay is 0: fencing, not lock-delay,
 * keeps two leaders from both writing, and a standby takes over one session
 * TTL (`scheduler.leaderTtlMs`, 10 s) after the leader dies.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createDiscoveryClient, deleteKey, type DiscoveryClient, getJSON, LEADER_KEY, list, putJSON, SessionLock } from '../../discovery/index.js';
import { loadOrCreateKey, SecretStore } from '../../scheduler/index.js';
import type { Config } from '../config/load.js';
import type { Logger } from '../../base/log.js';
import { enableProcessMetrics } from '../../base/metrics.js';
import { SCHEDULER_SERVICE, WEFT_TAG } from '../../base/contracts/meta.js';
import { buildApi } from './scheduler-api.js';
import type { SchedulerContext } from './scheduler-context.js';
import { ControlLoop } from './scheduler-loop.js';
import { leaderGauge } from './scheduler-metrics.js';
import { ClusterObserver } from './scheduler-observer.js';
import { clusterHandlers } from './scheduler-routes-cluster.js';
import { jobHandlers } from './scheduler-routes-jobs.js';
import { loadOrCreateToken } from './scheduler-token.js';

/** A running scheduler. */
export interface SchedulerProcess {
  /** `host:port` of the API. */
  readonly address: string;
  isLeader(): boolean;
  close(): Promise<void>;
}

/** Starts a scheduler instance; resolves once the API listens. */
export async function startScheduler(opts: { config: Readonly<Config>; logger: Logger }): Promise<SchedulerProcess> {
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
  const observer = new ClusterObserver({ client, logger });
  let leading = false;
  let loop: ControlLoop | undefined;
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
  };
  let leaderAddress: string | undefined;
  const api = buildApi({ token: tok.token, logger, handlers: { ...clusterHandlers(ctx), ...jobHandlers(ctx) } });
  await api.listen({ host: c.bind, port: c.port });
  logger.info({ address }, 'scheduler API listening');
  const serviceId = `${SCHEDULER_SERVICE}-${config.nodeName}-${c.port}`;
  if (c.register) await registerService(client, serviceId, c.bind, c.port, logger);

  const stop = new AbortController();
  const lock = new SessionLock(client, { ttlMs: c.leaderTtlMs, lockDelayMs: 0, name: `weft scheduler ${address}`, value: { address }, logger });
  const leaderWatch = setInterval(() => {
    void getJSON<{ address?: string }>(client, LEADER_KEY).then(
      (v) => {
        leaderAddress = v?.value.address;
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
      loop = new ControlLoop({ client, observer, config, logger, fence: () => lock.fence(), onLockLost: onLost });
      loop.start();
      await lost;
      lock.off('lost', onLost);
      await loop.stop();
      loop = undefined;
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
    async close() {
      stop.abort();
      clearInterval(leaderWatch);
      await elections;
      await lock.close();
      if (c.register) await client.call('agent.service.deregister', (cl) => cl.agent.service.deregister(serviceId)).catch(() => {});
      await api.close();
      await observer.close();
      client.close();
      logger.info('scheduler stopped');
    },
  };
}

async function registerService(client: DiscoveryClient, id: string, bind: string, port: number, logger: Logger): Promise<void> {
  try {
    await client.call('agent.service.register', (c) =>
      c.agent.service.register({
        id,
        name: SCHEDULER_SERVICE,
        address: bind,
        port,
        tags: [WEFT_TAG],
        check: { http: `http://${bind}:${port}/v1/health`, interval: '10s', timeout: '2s', deregistercriticalserviceafter: '1m' },
      } as never),
    );
  } catch (err) {
    logger.warn({ err }, 'could not register weft-scheduler in Consul; continuing');
  }
}
