/**
 * A task's container labels as the agent will see them: the spec's `labels`
 * plus the `check` and `upstreams` blocks written as weft.* labels, and the
 * service name defaulting to the task's name. One function, used both to
 * validate a spec (semantic.ts) and to build allocations, so what is checked
 * is what runs.
 */
import type { TaskSpec } from './schema.js';

/** Which label each check field becomes. */
export const CHECK_LABELS = {
  http: 'weft.check.http',
  tcp: 'weft.check.tcp',
  interval: 'weft.check.interval',
  timeout: 'weft.check.timeout',
  failures: 'weft.check.failures',
  successes: 'weft.check.successes',
} as const;

/** True when the task registers a service in Consul (it has a port, weft.* labels, a check or upstreams). */
export function registersService(task: TaskSpec): boolean {
  return (
    task.port !== undefined ||
    task.check !== undefined ||
    (task.upstreams?.length ?? 0) > 0 ||
    Object.keys(task.labels ?? {}).some((k) => k.startsWith('weft.'))
  );
}

/**
 * The labels to put on the container. Block fields never override a label the
 * user wrote (semantic.ts reports that clash).
 */
export function taskLabels(task: TaskSpec): Record<string, string> {
  const labels: Record<string, string> = { ...(task.labels ?? {}) };
  if (!registersService(task)) return labels;
  labels['weft.service'] ??= task.name;
  const check = task.check ?? {};
  for (const [field, label] of Object.entries(CHECK_LABELS)) {
    const value = check[field as keyof typeof check];
    if (value === undefined || labels[label] !== undefined) continue;
    labels[label] = String(value);
  }
  if ((task.upstreams?.length ?? 0) > 0 && labels['weft.upstreams'] === undefined) labels['weft.upstreams'] = task.upstreams!.join(',');
  return labels;
}
