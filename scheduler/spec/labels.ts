/**
 * A task's container labels as the agent will see them: the spec's `labels`
 * plus the `check` and `upstreams` blocks written as weft.* labels, and the
 * service name defaulting to the task's name. One function, used both to
 * validate a spec (semantic.ts) and to build allocations, so what is checked
 * is what runs.
 */
import { LABEL, LABEL_PREFIX } from '../../base/contracts/labels.js';
import type { TaskSpec } from './schema.js';

/** Which label each check field becomes: the `check` block's fields are the label contract's. */
export const CHECK_LABELS = LABEL.check;

/** True when the task registers a service in Consul (it has a port, weft.* labels, a check or upstreams). */
export function registersService(task: TaskSpec): boolean {
  return (
    task.port !== undefined ||
    task.check !== undefined ||
    (task.upstreams?.length ?? 0) > 0 ||
    Object.keys(task.labels ?? {}).some((k) => k.startsWith(LABEL_PREFIX))
  );
}

/**
 * The labels to put on the container. Block fields never override a label the
 * user wrote (semantic.ts reports that clash).
 */
export function taskLabels(task: TaskSpec): Record<string, string> {
  const labels: Record<string, string> = { ...(task.labels ?? {}) };
  if (!registersService(task)) return labels;
  labels[LABEL.service] ??= task.name;
  const check = task.check ?? {};
  for (const [field, label] of Object.entries(CHECK_LABELS)) {
    const value = check[field as keyof typeof check];
    if (value === undefined || labels[label] !== undefined) continue;
    labels[label] = String(value);
  }
  if ((task.upstreams?.length ?? 0) > 0 && labels[LABEL.upstreams] === undefined) labels[LABEL.upstreams] = task.upstreams!.join(',');
  return labels;
}
