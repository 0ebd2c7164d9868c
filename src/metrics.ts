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
}
