/**
 * Allocation documents (base/contracts/alloc.ts) in and task specs out: decode
 * and validate what the scheduler wrote, then turn it into what a driver runs,
 * with the agent's own labels and the environment every task gets.
 */
import { createHash } from 'node:crypto';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { type Allocation, AllocationSchema } from '../base/contracts/alloc.js';
import { WeftError } from '../base/errors.js';
import { AGENT_LABELS, type TaskMount, type TaskSpec } from './driver.js';

/** Environment variables every allocation's task gets. */
export const TASK_ENV = {
  port: 'PORT',
  alloc: 'WEFT_ALLOC',
  hostAddress: 'WEFT_HOST_ADDRESS',
  /** `WEFT_VOLUME_<NAME>`: where a mounted volume is, as the task sees it (process: the host directory; docker: the mount point). */
  volumePrefix: 'WEFT_VOLUME_',
} as const;

/** The env variable naming volume `name`'s path: WEFT_VOLUME_ + the name upper-cased, other characters as `_`. */
export function volumeEnv(name: string): string {
  return TASK_ENV.volumePrefix + name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** The contract's check, compiled once (a thousand hosts' agents parse every document they get). */
const checkAllocation = TypeCompiler.Compile(AllocationSchema);

/** Decodes `weft/allocs/<host>/<id>`; WEFT_ERR_ALLOC_INVALID names the key and the first problem. */
export function parseAllocation(key: string, raw: string | null): Allocation {
  let doc: unknown;
  try {
    doc = JSON.parse(raw ?? '');
  } catch (cause) {
    throw new WeftError('WEFT_ERR_ALLOC_INVALID', `${key}: not JSON (${(cause as Error).message})`, { key, value: raw, cause });
  }
  // A document as the scheduler writes it passes the compiled check as is; only others need defaults applied.
  const withDefaults = checkAllocation.Check(doc) ? doc : Value.Default(AllocationSchema, doc);
  if (!checkAllocation.Check(withDefaults)) {
    const first = Value.Errors(AllocationSchema, withDefaults).First();
    throw new WeftError('WEFT_ERR_ALLOC_INVALID', `${key}: ${first?.path || '/'} ${first?.message ?? 'is invalid'}`, { key: `${key}${first?.path ?? ''}`, value: first?.value });
  }
  const alloc = withDefaults as Allocation;
  const id = key.slice(key.lastIndexOf('/') + 1);
  if (alloc.id !== id) throw new WeftError('WEFT_ERR_ALLOC_INVALID', `${key}: id ${JSON.stringify(alloc.id)} does not match the key`, { key, value: alloc.id });
  if (alloc.driver === 'docker' && alloc.image === undefined) throw new WeftError('WEFT_ERR_ALLOC_INVALID', `${key}: driver docker needs an image`, { key: `${key}/image`, value: undefined });
  if (alloc.driver === 'process' && alloc.command === undefined) throw new WeftError('WEFT_ERR_ALLOC_INVALID', `${key}: driver process needs a command`, { key: `${key}/command`, value: undefined });
  return alloc;
}

/** A short hash of what defines the running task: a different hash means replace it. */
export function specHash(alloc: Allocation): string {
  const { restart: _restart, ...defining } = alloc; // a new restart policy applies without a restart
  return createHash('sha256').update(JSON.stringify(defining)).digest('hex').slice(0, 16);
}

/** The task name of an allocation on this host (also the Docker container name). */
export function taskName(alloc: Pick<Allocation, 'id'>): string {
  return `weft-${alloc.id}`;
}

/**
 * The driver spec for an allocation. A host volume it mounts must be one this
 * host offers (`hostVolumes`, agent.hostVolumes), else WEFT_ERR_HOST_VOLUME_MISSING:
 * the scheduler only places such groups on hosts advertising the volume, so this
 * means the host's configuration changed under a running group.
 */
export function taskSpec(alloc: Allocation, ctx: { host: string; hostAddress: string; hostVolumes?: Readonly<Record<string, string>> }): TaskSpec {
  const env: Record<string, string> = { ...alloc.env, [TASK_ENV.alloc]: alloc.id, [TASK_ENV.hostAddress]: ctx.hostAddress };
  if (alloc.port !== undefined) env[TASK_ENV.port] = String(alloc.port);
  const mounts: TaskMount[] = [];
  for (const v of alloc.volumes ?? []) {
    const readOnly = v.readOnly === true;
    if (v.type === 'docker') {
      if (alloc.driver !== 'docker') throw new WeftError('WEFT_ERR_ALLOC_INVALID', `allocation ${alloc.id}: docker volume ${v.source} needs driver docker`, { key: 'volumes', value: v.source });
      mounts.push({ type: 'volume', source: v.source, destination: v.destination, readOnly });
      env[volumeEnv(v.source)] = v.destination;
      continue;
    }
    const dir = ctx.hostVolumes?.[v.source];
    if (dir === undefined) {
      throw new WeftError('WEFT_ERR_HOST_VOLUME_MISSING', `allocation ${alloc.id} mounts host volume ${v.source}, which host ${ctx.host} does not offer (agent --volume ${v.source}=/path)`, {
        key: 'agent.hostVolumes',
        value: v.source,
      });
    }
    mounts.push({ type: 'bind', source: dir, destination: v.destination, readOnly });
    env[volumeEnv(v.source)] = alloc.driver === 'docker' ? v.destination : dir;
  }
  const labels: Record<string, string> = {
    ...alloc.labels,
    [AGENT_LABELS.alloc]: alloc.id,
    [AGENT_LABELS.host]: ctx.host,
    [AGENT_LABELS.specHash]: specHash(alloc),
  };
  if (alloc.port !== undefined) labels[AGENT_LABELS.port] = String(alloc.port);
  return {
    name: taskName(alloc),
    ...(alloc.image === undefined ? {} : { image: alloc.image }),
    ...(alloc.command === undefined ? {} : { command: alloc.command }),
    ...(alloc.args === undefined ? {} : { args: alloc.args }),
    env,
    labels,
    resources: { cpu: alloc.resources.cpu, memory: alloc.resources.memory },
    ...(mounts.length === 0 ? {} : { mounts }),
  };
}
