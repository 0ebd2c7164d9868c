/**
 * A planned group instance -> the allocation documents its host's agent reads
 * (base/contracts/alloc.ts): one per task, id `<instance>-<task>`, sharing the
 * instance's ports, volumes and bookkeeping. The inverse direction (documents
 * + agent statuses + Consul health -> the core's AllocInfo) is observe.ts.
 */
import type { Allocation } from '../../base/contracts/alloc.js';
import type { PlannedAlloc } from '../reconcile/plan.js';
import { restartPolicy } from '../spec/compile.js';
import { taskLabels } from '../spec/labels.js';
import type { JobSpec } from '../spec/schema.js';

/** The document id of one task of a group instance. */
export function taskAllocId(instance: string, task: string): string {
  return `${instance}-${task}`;
}

/** What every instance of a group shares, worked out once per spec (a deploy writes thousands of documents from one). */
interface GroupShared {
  restart: Allocation['restart'];
  labels: Array<Record<string, string>>;
  staticCount: number;
}
const sharedOf = new WeakMap<JobSpec, Map<string, GroupShared>>();

function groupShared(spec: JobSpec, group: JobSpec['groups'][number]): GroupShared {
  let bySpec = sharedOf.get(spec);
  if (bySpec === undefined) {
    bySpec = new Map();
    sharedOf.set(spec, bySpec);
  }
  let shared = bySpec.get(group.name);
  if (shared === undefined) {
    shared = {
      restart: restartPolicy(spec, group),
      labels: group.tasks.map((task) => taskLabels(task)),
      staticCount: group.tasks.filter((t) => t.port !== undefined && t.port > 0).length,
    };
    bySpec.set(group.name, shared);
  }
  return shared;
}

/**
 * One document per task of the planned instance's group. Ports come from the
 * placement in the order compile.ts asked for them: tasks with a fixed port
 * first, then each task with `port: 0` takes the next picked port.
 */
export function allocationDocs(planned: PlannedAlloc, spec: JobSpec, nowMs: number): Allocation[] {
  const group = spec.groups.find((g) => g.name === planned.group);
  if (group === undefined) throw new Error(`job ${spec.name} has no group ${planned.group}`);
  const shared = groupShared(spec, group);
  let nextDynamic = shared.staticCount;
  const restart = { ...shared.restart };
  return group.tasks.map((task, i): Allocation => {
    const port = task.port === undefined ? undefined : task.port > 0 ? task.port : planned.ports[nextDynamic++];
    const labels = { ...shared.labels[i]! };
    const volumes = (task.volumeMounts ?? []).map((m) => {
      const v = group.volumes![m.volume]!;
      return { type: v.type, source: v.source, destination: m.destination, readOnly: m.readOnly ?? v.readOnly ?? false };
    });
    const doc: Allocation = {
      id: taskAllocId(planned.id, task.name),
      job: planned.job,
      group: planned.group,
      task: task.name,
      driver: task.driver,
      env: { ...(task.env ?? {}) },
      resources: { cpu: task.resources?.cpu ?? 100, memory: task.resources?.memory ?? 64 },
      labels,
      restart,
      placement: {
        instance: planned.id,
        index: planned.index,
        version: planned.version,
        fingerprint: planned.fingerprint,
        ports: planned.ports,
        reschedules: planned.reschedules,
        createdAt: nowMs,
      },
    };
    if (task.image !== undefined) doc.image = task.image;
    if (task.command !== undefined) doc.command = task.command;
    if (task.args !== undefined) doc.args = [...task.args];
    if (port !== undefined) doc.port = port;
    if (volumes.length > 0) doc.volumes = volumes;
    if ((task.secrets?.length ?? 0) > 0) {
      doc.secrets = task.secrets!.map((s) => {
        const ref: { name: string; env?: string; file?: string } = { name: s.name };
        if (s.file !== undefined) ref.file = s.file;
        if (s.env !== undefined || s.file === undefined) ref.env = s.env ?? s.name;
        return ref;
      });
    }
    if ((task.files?.length ?? 0) > 0) doc.files = task.files!.map((f) => ({ ...f }));
    return doc;
  });
}
