/**
 * DeregisterCriticalServiceAfter: a service whose check has been critical for
 * longer than its timeout is deregistered, checked every reap interval, with
 * the timeout raised to a floor (Consul: reap every 30 s, floor 1 min), so a
 * crashed instance that never comes back leaves the catalog on its own.
 */
import type { Logger } from '../../../base/log.js';
import type { LocalAgent } from '../agent.js';

/** Reaper timing. */
export interface ReaperOptions {
  readonly intervalMs: number;
  readonly minTimeoutMs: number;
}

/** Starts the periodic reaper; returns its stop function. */
export function startReaper(agent: LocalAgent, opts: ReaperOptions, logger: Logger): () => void {
  const timer = setInterval(() => reapOnce(agent, opts.minTimeoutMs, Date.now(), logger), opts.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** One pass: deregisters every local service with a check critical past its timeout. Returns their IDs. */
export function reapOnce(agent: LocalAgent, minTimeoutMs: number, now: number, logger: Logger): string[] {
  const reaped: string[] = [];
  for (const c of agent.store.checksOfNode(agent.node)) {
    const timeout = c.definition.deregisterCriticalServiceAfterMs;
    if (!c.local || timeout === undefined || c.serviceId === '' || reaped.includes(c.serviceId)) continue;
    const since = agent.criticalSince.get(c.checkId);
    if (since === undefined || now - since < Math.max(timeout, minTimeoutMs)) continue;
    try {
      agent.deregisterService(c.serviceId);
      reaped.push(c.serviceId);
      logger.info({ service: c.serviceId, checkId: c.checkId }, 'dev-consul: deregistered service with a long-critical check');
    } catch (err) {
      logger.warn({ err, service: c.serviceId }, 'dev-consul: reaping failed');
    }
  }
  return reaped;
}
