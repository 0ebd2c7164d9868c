/**
 * The one prom-client registry of a weft process. Components register their
 * metrics here with their own prefix (weft_proxy_, weft_scheduler_, ...), so a
 * single /metrics answers for the whole process.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

/** The process-wide registry. */
export const registry = new Registry();

let defaultsOn = false;

/** Adds Node's process metrics (CPU, memory, event loop lag) once per process. */
export function enableProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: registry, prefix: 'weft_' });
  // prom-client names three gauges `*_total`, which `promtool check metrics`
  // rejects (a _total suffix means counter); the per-type gauges without the
  // suffix carry the same counts.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(`weft_${name}`);
  }
}
