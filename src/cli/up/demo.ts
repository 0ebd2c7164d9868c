/**
 * `weft up`'s demo: the job files of examples/demo/ deployed through the
 * scheduler API, as `weft deploy` would, then `backend`'s split set to
 * v1=90 v2=10. `frontend` calls `backend` through the mesh; `loadgen` calls
 * `frontend` through the mesh along a ramp up and down and then stops sending
 * by itself; `backend` v1 is autoscaled on requests/s.
 *
 * The job files are written for the process driver with paths relative to
 * the repository root (so `weft deploy examples/demo/frontend.yaml` works
 * from there). demoSpecs makes them work from any directory (absolute
 * paths), and under the docker driver rewrites each task to run the same
 * script in weft's demo image with the repository mounted read-only.
 *
 * At Ctrl-C the demo's jobs are stopped through the API (the agents drain and
 * stop their instances), awaited, and purged; whatever outlived that is
 * killed once the agents are gone (killLeftovers).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import type { JobStatusResponse } from '../../../base/contracts/scheduler-api.js';
import { isWeftError } from '../../../base/errors.js';
import type { SchedulerClient } from '../client/scheduler-client.js';
import { progressOf } from '../client/views.js';
import type { SimHost } from './hosts.js';

/** The demo's jobs, in deploy order (the callee first). */
export const DEMO_JOBS = ['backend', 'frontend', 'loadgen'] as const;
/** The split weft up sets between backend's versions. */
export const DEMO_SPLIT = { v1: 90, v2: 10 } as const;
/** The image docker tasks run the scripts in (scripts/build-test-image.sh builds it). */
export const DEMO_IMAGE = 'weft-demo:latest';
/** The host volume naming the repository root, for docker tasks. */
export const SOURCE_VOLUME = 'weft-source';
/** Where docker tasks see the repository. */
const SOURCE_MOUNT = '/weft';

/** The repository root this weft runs from (it holds examples/demo/), found by walking up from this module. */
export function repoRoot(from: string = import.meta.dirname): string | undefined {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'examples', 'demo', 'frontend.yaml'))) return dir;
    dir = dirname(dir);
  }
  return undefined;
}

interface TaskDoc {
  driver?: string;
  image?: string;
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  volumeMounts?: Array<{ volume: string; destination: string; readOnly?: boolean }>;
  resources?: { cpu?: number; memory?: number };
}
interface JobDoc {
  name: string;
  groups: Array<{ name: string; volumes?: Record<string, unknown>; tasks: TaskDoc[] }>;
}

/**
 * The demo's job specs as JSON text for the API. `root`: the repository the
 * scripts are in; `run`: a value that makes loadgen's spec new, so each weft
 * up runs its profile again. Pure but for reading the files.
 */
export function demoSpecs(root: string, driver: 'docker' | 'process', run: string): Array<{ job: string; spec: string }> {
  return DEMO_JOBS.map((job) => {
    const doc = parse(readFileSync(join(root, 'examples', 'demo', `${job}.yaml`), 'utf8')) as JobDoc;
    return { job, spec: JSON.stringify(adaptJob(doc, root, driver, run)) };
  });
}

/** One job of the demo, adapted to where it runs (exported for tests). */
export function adaptJob(doc: JobDoc, root: string, driver: 'docker' | 'process', run: string): JobDoc {
  const out = structuredClone(doc);
  for (const g of out.groups) {
    for (const t of g.tasks) {
      if (t.env?.['RUN'] !== undefined) t.env['RUN'] = run;
      const args = (t.args ?? []).map((a) => (isScript(a) ? (driver === 'docker' ? `${SOURCE_MOUNT}/${a}` : join(root, a)) : a));
      if (t.args !== undefined) t.args = args;
      if (driver === 'docker' && t.driver === 'process') {
        t.driver = 'docker';
        t.image = DEMO_IMAGE;
        t.command = 'node';
        t.volumeMounts = [...(t.volumeMounts ?? []), { volume: 'source', destination: SOURCE_MOUNT, readOnly: true }];
        // Docker enforces memory, unlike the process driver: room for node's heap under load.
        t.resources = { ...t.resources, memory: Math.max(t.resources?.memory ?? 0, 128) };
      }
    }
    if (driver === 'docker') g.volumes = { ...g.volumes, source: { type: 'host', source: SOURCE_VOLUME, readOnly: true } };
  }
  return out;
}

/** A relative path to one of the project's scripts (`examples/demo/frontend.mjs`, `scripts/demo-app.mjs`). */
function isScript(arg: string): boolean {
  return !isAbsolute(arg) && /^(examples|scripts)\/[\w./-]+\.m?js$/.test(arg);
}

/** Submits the demo's jobs and sets backend's split. */
export async function deployDemo(client: SchedulerClient, specs: ReadonlyArray<{ job: string; spec: string }>): Promise<Map<string, number>> {
  const versions = new Map<string, number>();
  for (const { job, spec } of specs) {
    const r = await client.call('submitJob', { body: { spec } });
    versions.set(job, r.version);
  }
  await client.call('putSplit', { params: { service: 'backend' }, body: { weights: { ...DEMO_SPLIT } } });
  return versions;
}

/** `backend 2/2 · frontend 1/2 · loadgen 0/1` healthy, and whether all are. */
export async function demoProgress(client: SchedulerClient, versions: ReadonlyMap<string, number>): Promise<{ line: string; healthy: boolean; failed?: string }> {
  const parts: string[] = [];
  let healthy = true;
  let failed: string | undefined;
  for (const [job, version] of versions) {
    const p = progressOf(await client.call('jobStatus', { params: { job } }), version);
    const want = p.groups.reduce((n, g) => n + g.desired, 0);
    const have = p.groups.reduce((n, g) => n + g.healthy, 0);
    parts.push(`${job} ${have}/${want}`);
    if (p.status !== 'successful') healthy = false;
    if (p.status === 'failed') failed = `${job}: ${p.message ?? 'deployment failed'}`;
  }
  return { line: `${parts.join(' · ')} healthy`, healthy, ...(failed === undefined ? {} : { failed }) };
}

/** The allocation ids of `jobs` (what killLeftovers looks for after the stop). */
export async function allocationIds(client: SchedulerClient, jobs: readonly string[]): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const job of jobs) {
    const s = await statusOrGone(client, job);
    for (const a of s?.allocations ?? []) ids.add(a.id);
  }
  return ids;
}

/**
 * Stops `jobs` (the agents drain and stop their instances), waits until none
 * has an instance pending or running, bounded by `timeoutMs`, then purges
 * them. Returns the jobs whose instances were still running at the deadline
 * (or when `signal` aborted the wait: a second Ctrl-C).
 */
export async function stopDemo(client: SchedulerClient, jobs: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<string[]> {
  for (const job of jobs) {
    await client.call('stopJob', { params: { job }, query: { purge: false } }).catch(ignoreGone);
  }
  const deadline = Date.now() + timeoutMs;
  let left = [...jobs];
  while (left.length > 0 && Date.now() < deadline && signal?.aborted !== true) {
    const still: string[] = [];
    for (const job of left) {
      const s = await statusOrGone(client, job).catch(() => undefined);
      if (s?.allocations.some((a) => a.status === 'running' || a.status === 'pending')) still.push(job);
    }
    left = still;
    if (left.length > 0) await new Promise((r) => setTimeout(r, 250));
  }
  for (const job of jobs) await client.call('stopJob', { params: { job }, query: { purge: true } }).catch(ignoreGone);
  return left;
}

/**
 * After the agents stopped: kills processes of the allocations `ids` that
 * still run on the hosts (process driver state files). Docker containers are
 * removed by the caller through the Docker API. Returns how many it killed.
 */
export function killLeftovers(hosts: readonly SimHost[], ids: ReadonlySet<string>): number {
  let killed = 0;
  for (const host of hosts) {
    const dir = join(host.dataDir, 'agent', 'processes');
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    } catch {
      continue;
    }
    for (const f of files) {
      try {
        const rec = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { pid?: number; procStart?: string; spec?: { labels?: Record<string, string> } };
        const alloc = rec.spec?.labels?.['io.weft.alloc'];
        if (rec.pid === undefined || alloc === undefined || !ids.has(alloc)) continue;
        // The same process, not a later one that reused its pid (the process driver's own guard).
        if (rec.procStart !== undefined && procStart(rec.pid) !== rec.procStart) continue;
        process.kill(-rec.pid, 'SIGKILL');
        killed++;
      } catch {
        // gone already, or not ours to read
      }
    }
  }
  return killed;
}

/** /proc/<pid>/stat's start time (field 22), as the process driver records it. */
function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

async function statusOrGone(client: SchedulerClient, job: string): Promise<JobStatusResponse | undefined> {
  try {
    return await client.call('jobStatus', { params: { job } });
  } catch (err) {
    if (isWeftError(err, 'WEFT_ERR_JOB_NOT_FOUND')) return undefined;
    throw err;
  }
}

function ignoreGone(err: unknown): void {
  if (!isWeftError(err, 'WEFT_ERR_JOB_NOT_FOUND')) throw err;
}
