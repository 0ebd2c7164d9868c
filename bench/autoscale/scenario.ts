/**
 * The load step of bench/autoscale on one running cluster (cluster.ts), for
 * service `web` (rps target 100/instance, min 1, max 10, the scale-down
 * window shortened to 10 s, everything else default), starting at 1:
 *
 *   base     50 req/s until the first instance is past the autoscaler's
 *            warm-up (a younger instance is not measured: a step before
 *            then would wait for it)
 *   step     500 req/s: the decisions after it (their own timestamps, GET
 *            /v1/jobs/web/autoscale), each new instance registered, passing
 *            and answering its first request; failed requests; until the
 *            count has not moved for 5 s and its instances all answer
 *   steady   500 req/s for --steady seconds: moves, reversals, the rps the
 *            autoscaler measured at each decision, how long the proxies'
 *            /metrics took to answer, CPU per process
 *   down     50 req/s until the group is back at 1 and the stopped instances
 *            are gone (+5 s for the last drain); failed requests, reversals
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { DEFAULT_WARMUP_MS } from '../../scheduler/index.js';
import { ADDRESSES, type Cluster, type DriverKind, TOKEN } from './cluster.js';
import { get, TASK_RESOURCES, until } from './cold.js';
import { OpenLoopLoad, type PhaseTally } from './load.js';
import { DecisionLog, InstanceTimes, MeshProbe, reversals } from './watch.js';

const DEMO = new URL('../../scripts/demo-app.mjs', import.meta.url).pathname;
export const BASE_RPS = 50;
export const STEP_RPS = 500;
export const TARGET_RPS = 100;
export const SCALE_DOWN_WINDOW_S = 10;
/** Instances the step's load needs at the target. */
export const NEEDED = Math.ceil(STEP_RPS / TARGET_RPS);

/** What the step measured. */
export interface StepResult {
  from: number;
  /** Step -> the first scale-up decision (ms). */
  decisionMs: number | undefined;
  /** The first decision's count. */
  firstTo: number | undefined;
  /** Step -> every instance the first decision added answering (ms). */
  firstCapacityMs: number | undefined;
  /** Step -> the decision that reached NEEDED instances, and -> NEEDED instances answering (ms). */
  neededDecisionMs: number | undefined;
  neededServingMs: number | undefined;
  up: PhaseTally;
  steady: PhaseTally;
  steadyS: number;
  steadyMoves: number;
  /** Direction changes among the moves from the step to the end of the steady load. */
  reversals: number;
  down: PhaseTally;
  downReversals: number;
  /** Lowered load -> the first scale-down decision (ms). */
  downDecisionMs: number | undefined;
  notes: string[];
}

const log = (line: string): void => console.log(line);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** ms as seconds, two decimals. */
export const sec = (ms: number | undefined): string => (ms === undefined ? '-' : (ms / 1000).toFixed(2));

/** The job: one group, one task running the demo app as `name`, with `autoscale`. */
export function demoJob(driver: DriverKind, image: string | undefined, labels: Record<string, string>, name: string, autoscale: Record<string, unknown>) {
  const run = driver === 'docker' ? { image, command: '/bin/node', args: ['/app/server.mjs'] } : { command: process.execPath, args: [DEMO] };
  return {
    name,
    groups: [
      {
        name: 'app',
        count: 1,
        autoscale,
        tasks: [
          {
            name,
            driver,
            ...run,
            port: 0,
            resources: { ...TASK_RESOURCES },
            // How long a stopped instance lets its last requests finish (the agent deregisters it 1 s before SIGTERM).
            env: { DRAIN_MS: '5000', SERVICE: name },
            labels: { 'weft.service': name, ...labels },
            // The fastest check weft allows (1 s): a new instance's first probe comes within it.
            check: { http: '/health', interval: '1s', timeout: '500ms' },
          },
        ],
      },
    ],
  };
}

/** POST /v1/jobs. */
export async function submit(cluster: Cluster, spec: unknown): Promise<void> {
  const res = await fetch(`${cluster.schedulerUrl}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ spec }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`submitting the job: HTTP ${res.status} ${await res.text()}`);
}

/** Runs base, step, steady and down on `cluster`; `onCleanup` registers what must stop on an error. */
export async function loadStep(
  driver: DriverKind,
  cluster: Cluster,
  job: { image: string | undefined; labels: Record<string, string> },
  steadyS: number,
  onCleanup: (fn: () => unknown) => void,
): Promise<StepResult> {
  const notes: string[] = [];
  await submit(cluster, demoJob(driver, job.image, job.labels, 'web', { min: 1, max: 10, metrics: [{ rps: TARGET_RPS }], scaleDown: { stabilizationWindow: `${SCALE_DOWN_WINDOW_S}s` } }));
  const decisions = new DecisionLog(cluster.schedulerUrl, 'web');
  const times = new InstanceTimes(cluster.consulAddress, 'web');
  // The whole plan at most (base, step, steady, down, with room): then it stops by itself.
  const load = new OpenLoopLoad({ host: ADDRESSES.caller, port: cluster.outboundPort, hostHeader: 'web', limitMs: (DEFAULT_WARMUP_MS + 600_000 + steadyS * 1000) * 1.5 });
  onCleanup(async () => {
    await load.stop();
    await decisions.close();
    await times.close();
  });

  // The first instance answering through the mesh.
  const through = `http://${ADDRESSES.caller}:${cluster.outboundPort}/`;
  await until(async () => (await get(through, 5000, 'web')).status === 200, 120_000, 'the first web instance answering through the mesh');
  const firstPort = [...times.passing.keys()][0];
  const firstPassing = firstPort === undefined ? Date.now() : times.passing.get(firstPort)!;

  // base
  load.phase = 'base';
  load.rate = BASE_RPS;
  load.start();
  const baseFrom = Date.now();
  const stepAt = Math.max(firstPassing + DEFAULT_WARMUP_MS + 3000, baseFrom + 15_000);
  log(`  base: ${BASE_RPS} req/s for ${sec(stepAt - baseFrom)} s (until the first instance is ${DEFAULT_WARMUP_MS / 1000 + 3} s old: the autoscaler measures no younger one)`);
  await sleep(stepAt - Date.now());
  const baseMoves = decisions.moves(baseFrom);
  if (baseMoves.length > 0) notes.push(`moves during the base load: ${baseMoves.map((d) => `${d.from}->${d.to}`).join(', ')}`);
  const from = decisions.current ?? 1;
  const before = new Set(load.firstSeen.keys());
  const newOnes = (): Array<{ key: string; at: number }> =>
    [...load.firstSeen.entries()]
      .filter(([k]) => !before.has(k))
      .map(([key, at]) => ({ key, at }))
      .sort((a, b) => a.at - b.at);

  // step
  const step = Date.now();
  load.phase = 'up';
  load.rate = STEP_RPS;
  log(`  step: ${BASE_RPS} -> ${STEP_RPS} req/s at ${new Date(step).toISOString()}`);
  const stepProbe = new MeshProbe(cluster.metricsUrls, 500);
  onCleanup(() => stepProbe.close());
  const upLimit = step + 120_000;
  for (;;) {
    await sleep(250);
    const lastMove = decisions.moves(step).at(-1);
    const settled = lastMove !== undefined && Date.now() - lastMove.atMs > 5000 && newOnes().length >= (decisions.current ?? 0) - from;
    if (settled) break;
    if (Date.now() > upLimit) {
      notes.push(`the scale-up did not settle within 120 s: count ${decisions.current}, ${newOnes().length} new instances answering`);
      break;
    }
  }
  await stepProbe.close();
  for (const d of decisions.every.filter((x) => x.atMs >= step)) log(`    ${sec(d.atMs - step)} s after the step: ${d.from} -> ${d.to}${d.applied ? '' : ' (not moved)'}: ${d.reason}`);
  for (const [node, snaps] of stepProbe.snapshots) {
    const line = snaps
      .filter((x) => x.atMs - step < 10_000)
      .map((x) => `${sec(x.atMs - step)}s ${[...x.values].map(([k, v]) => `${k.replace(/ /g, '-')}=${v}`).join(',')}`)
      .join(' | ');
    log(`    ${node} /metrics after the step: ${line}`);
  }

  // steady
  load.phase = 'steady';
  const steadyFrom = Date.now();
  log(`  steady: ${STEP_RPS} req/s for ${steadyS} s`);
  const cpuFrom = cpuSnapshot(cluster);
  const scrapes = new MeshProbe(cluster.metricsUrls, 1000);
  onCleanup(() => scrapes.close());
  await sleep(steadyS * 1000);
  await scrapes.close();
  const cpuTo = cpuSnapshot(cluster);
  const steadyTo = Date.now();
  const steadyMoves = decisions.moves(steadyFrom, steadyTo);
  for (const m of steadyMoves) log(`    move ${sec(m.atMs - steadyFrom)} s into the steady load: ${m.from} -> ${m.to}: ${m.reason}`);
  const seen = decisions.every.filter((d) => d.atMs >= steadyFrom && d.atMs < steadyTo);
  const rpsSeen = seen.map((d) => /^rps ([\d.]+)\/instance/.exec(d.reason)).filter((m) => m !== null).map((m) => Number(m[1]));
  const outside = rpsSeen.filter((v) => Math.abs(v / TARGET_RPS - 1) > 0.1).length;
  log(
    `    decisions seen: ${seen.length}; rps/instance they measured: ${spread(rpsSeen)}; outside the ±10% tolerance: ${outside}; wanting fewer (held by the window): ${seen.filter((d) => d.reason.includes('held by scaleDown')).length}; metric unavailable: ${seen.filter((d) => d.failed).length}`,
  );
  log(`    /metrics answer time (ms), sampled each second: ${[...scrapes.latencies].map(([node, v]) => `${node} ${spread(v)}`).join('; ')}`);
  log(`    CPU (cores): ${cpuReport(cpuFrom, cpuTo)}`);

  // down
  load.phase = 'down';
  load.rate = BASE_RPS;
  const down = Date.now();
  log(`  down: ${STEP_RPS} -> ${BASE_RPS} req/s (scaleDown.stabilizationWindow ${SCALE_DOWN_WINDOW_S}s)`);
  const downLimit = down + (SCALE_DOWN_WINDOW_S + DEFAULT_WARMUP_MS / 1000 + 120) * 1000;
  for (;;) {
    await sleep(250);
    if (decisions.current === 1 && times.current.length === 1) break;
    if (Date.now() > downLimit) {
      notes.push(`the scale-down did not finish in time: count ${decisions.current}, ${times.current.length} registered`);
      break;
    }
  }
  await sleep(5000); // the last stopped instance's drain
  const downMoves = decisions.moves(down);
  for (const m of downMoves) log(`    ${sec(m.atMs - down)} s after lowering the load: ${m.from} -> ${m.to}: ${m.reason}`);
  await load.stop();
  for (const [phase, t] of load.tallies) {
    log(`    load ${phase}: ${tallyLine(t)}`);
    if (t.failures.length > 0) log(`      failures (sent s after the step, took ms, why): ${t.failures.slice(0, 20).map((f) => `${sec(f.sentAtMs - step)} ${f.ms.toFixed(0)} ${f.reason}`).join('; ')}`);
  }
  const failedDecisions = decisions.decisions.filter((d) => d.failed);
  if (failedDecisions.length > 0) notes.push(`${failedDecisions.length} failed decisions (metric unavailable), e.g. ${failedDecisions[0]!.reason}`);

  // What the step measured.
  const upMoves = decisions.moves(step, steadyTo);
  const firstUp = upMoves.find((m) => m.direction === 'up');
  const added = newOnes();
  for (const n of added.filter((x) => x.at < steadyTo)) {
    const port = Number(n.key.split(':')[1]);
    const at = (m: Map<number, number>): string => sec(m.has(port) ? m.get(port)! - step : undefined);
    log(`    instance ${n.key}: registered ${at(times.registered)} s, passing ${at(times.passing)} s, first answer ${sec(n.at - step)} s after the step`);
  }
  const nth = (k: number): number | undefined => (k <= 0 ? 0 : added[k - 1] === undefined ? undefined : added[k - 1]!.at - step);
  const neededMove = upMoves.find((m) => m.to >= NEEDED);
  await decisions.close();
  await times.close();
  return {
    from,
    decisionMs: firstUp === undefined ? undefined : firstUp.atMs - step,
    firstTo: firstUp?.to,
    firstCapacityMs: firstUp === undefined ? undefined : nth(firstUp.to - from),
    neededDecisionMs: neededMove === undefined ? undefined : neededMove.atMs - step,
    neededServingMs: neededMove === undefined ? undefined : nth(NEEDED - from),
    up: load.tally('up'),
    steady: load.tally('steady'),
    steadyS,
    steadyMoves: steadyMoves.length,
    reversals: reversals(upMoves),
    down: load.tally('down'),
    downReversals: reversals(downMoves),
    downDecisionMs: downMoves[0] === undefined ? undefined : downMoves[0].atMs - down,
    notes,
  };
}

/** `min / median / p90 / max` of `values` (n). */
function spread(values: readonly number[]): string {
  if (values.length === 0) return 'none';
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number): string => v[Math.min(v.length - 1, Math.floor(q * v.length))]!.toFixed(0);
  return `min ${v[0]!.toFixed(0)} / median ${at(0.5)} / p90 ${at(0.9)} / max ${v[v.length - 1]!.toFixed(0)} (n ${v.length})`;
}

/** `sent, ok, failed (why), not sent, answered/s, p50 / p99` of a phase. */
export function tallyLine(t: PhaseTally): string {
  const why = t.failed > 0 ? ` (${[...t.reasons].map(([r, n]) => `${r}: ${n}`).join(', ')})` : '';
  return `sent ${t.sent}, ok ${t.ok}, failed ${t.failed}${why}, not sent (in-flight bound) ${t.notSent}, ${answeredPerS(t).toFixed(0)} answered/s over ${(span(t) / 1000).toFixed(0)} s, latency p50 ${pct(t, 0.5)} ms, p99 ${pct(t, 0.99)} ms`;
}

function span(t: PhaseTally): number {
  return (t.toMs ?? Date.now()) - t.fromMs;
}

export function answeredPerS(t: PhaseTally): number {
  return t.ok / (span(t) / 1000);
}

/** A latency percentile of a phase's answers (ms). */
export function pct(t: PhaseTally, q: number): string {
  const sorted = [...t.latencies].sort((a, b) => a - b);
  return sorted.length === 0 ? '-' : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(0);
}

/** CPU seconds (user + system) of the bench and each child, and of the whole machine (busy, all cores). */
function cpuSnapshot(cluster: Cluster): { atMs: number; procs: Map<string, number>; machineBusy: number } {
  const procs = new Map<string, number>();
  const of = (pid: number | string): number => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      return Number.NaN;
    }
  };
  procs.set('bench (load generator)', of('self'));
  for (const c of cluster.pids()) procs.set(c.name, of(c.pid));
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
  const busy = cpu.slice(0, 8).reduce((a, b) => a + b, 0) - cpu[3]! - cpu[4]!;
  return { atMs: Date.now(), procs, machineBusy: busy / 100 };
}

function cpuReport(a: ReturnType<typeof cpuSnapshot>, b: ReturnType<typeof cpuSnapshot>): string {
  const secs = (b.atMs - a.atMs) / 1000;
  const parts = [...b.procs].map(([name, v]) => `${name} ${((v - (a.procs.get(name) ?? Number.NaN)) / secs).toFixed(2)}`);
  return `${parts.join(', ')}; the whole machine ${((b.machineBusy - a.machineBusy) / secs).toFixed(2)} of ${cpus().length}`;
}
