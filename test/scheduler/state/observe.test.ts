/**
 * AllocTranslator: observeAllocs over a series of observations, redoing only
 * the instances whose task entries changed. Every step of every scenario
 * must give exactly what observeAllocs gives, with the healthy-since memory
 * carried over (the leader's loop) or started afresh each time (the API).
 */
import t from 'tap';
import type { Allocation, AllocStatus } from '../../../base/contracts/alloc.js';
import { AllocTranslator, type ObservedTask, observeAllocs } from '../../../scheduler/state/observe.js';

function doc(instance: string, task: string, over: Partial<Allocation> = {}, placement = true): Allocation {
  return {
    id: `${instance}-${task}`,
    job: 'shop',
    group: 'web',
    task,
    driver: 'process',
    command: '/bin/true',
    env: {},
    resources: { cpu: 100, memory: 64 },
    labels: {},
    restart: { attempts: 2, intervalMs: 1_800_000, delayMs: 15_000, mode: 'fail' },
    ...(placement ? { placement: { instance, index: Number(instance.slice(1)), version: 1, fingerprint: 'f1', ports: [], reschedules: [], createdAt: 1_000 } } : {}),
    ...over,
  } as Allocation;
}

function status(state: AllocStatus['state'], updatedAt = '2026-01-01T00:00:10.000Z'): AllocStatus {
  return { state, restarts: 0, updatedAt } as AllocStatus;
}

/** One task entry as the observer keeps it: a new object only when something about the task changed. */
function task(host: string, d: Allocation, s?: AllocStatus, checksPassing?: boolean): ObservedTask {
  return { host, doc: d, status: s, checksPassing };
}

// The entries of one scenario, reused from step to step as the observer reuses them.
const a1 = doc('i1', 'app');
const b1 = doc('i1', 'side');
const a2 = doc('i2', 'app');
const a3 = doc('i3', 'app', {}, false); // hand-written: no placement, created "now"
const pending = [task('h1', a1), task('h1', b1), task('h2', a2), task('h3', a3)];
const running = [task('h1', a1, status('running'), true), pending[1]!, task('h2', a2, status('running')), task('h3', a3, status('running'), true)];
const bothRunning = [running[0]!, task('h1', b1, status('running')), running[2]!, running[3]!];
const failing = [bothRunning[0]!, bothRunning[1]!, task('h2', a2, status('failed', '2026-01-01T00:00:20.000Z')), bothRunning[3]!];
const unhealthy = [task('h1', a1, status('running'), false), bothRunning[1]!, failing[2]!, bothRunning[3]!];
const a2again = doc('i2', 'app', { placement: { ...a2.placement!, version: 2, fingerprint: 'f2' } });
const replaced = [unhealthy[0]!, unhealthy[1]!, task('h2', a2again), unhealthy[3]!];
const shrunk = [replaced[2]!, replaced[3]!];

const steps: Array<{ name: string; tasks: ObservedTask[]; nowMs: number }> = [
  { name: 'all pending', tasks: pending, nowMs: 10_000 },
  { name: 'the same entries later', tasks: pending, nowMs: 11_000 },
  { name: 'some running, some healthy', tasks: running, nowMs: 12_000 },
  { name: 'the second task of an instance runs', tasks: bothRunning, nowMs: 13_000 },
  { name: 'nothing changed, time passes', tasks: bothRunning, nowMs: 14_000 },
  { name: 'one fails', tasks: failing, nowMs: 15_000 },
  { name: 'a check fails', tasks: unhealthy, nowMs: 16_000 },
  { name: 'a document replaced', tasks: replaced, nowMs: 17_000 },
  { name: 'instances gone', tasks: shrunk, nowMs: 18_000 },
  { name: 'back again', tasks: bothRunning, nowMs: 19_000 },
];

t.test('the same allocations as observeAllocs at every step, memory carried over (the loop)', async (t) => {
  const translator = new AllocTranslator();
  let memory = new Map<string, number>();
  let expectMemory = new Map<string, number>();
  for (const step of steps) {
    const got = translator.translate(step.tasks, memory, step.nowMs);
    const want = observeAllocs(step.tasks, expectMemory, step.nowMs);
    t.strictSame(got.allocs, want.allocs, step.name);
    t.strictSame([...got.healthySince], [...want.healthySince], `${step.name}: healthy-since memory`);
    memory = got.healthySince;
    expectMemory = want.healthySince;
  }
});

t.test('the same allocations as observeAllocs at every step, memory started afresh (the API)', async (t) => {
  const translator = new AllocTranslator();
  for (const step of steps) t.strictSame(translator.translate(step.tasks, new Map(), step.nowMs).allocs, observeAllocs(step.tasks, new Map(), step.nowMs).allocs, step.name);
});

t.test('an instance whose entries did not change keeps its AllocInfo object; a changed one gets a new one', async (t) => {
  const translator = new AllocTranslator();
  const memory = translator.translate(bothRunning, new Map(), 13_000).healthySince;
  const first = translator.translate(bothRunning, memory, 14_000).allocs;
  const next = translator.translate(failing, memory, 15_000).allocs;
  const byId = (list: typeof first, id: string) => list.find((a) => a.id === id);
  t.equal(byId(next, 'i1'), byId(first, 'i1'), 'unchanged, healthy since the same moment: the same object');
  t.not(byId(next, 'i2'), byId(first, 'i2'), 'its task failed: translated again');
  t.equal(byId(next, 'i2')?.status, 'failed');
  t.not(byId(next, 'i3-app'), byId(first, 'i3-app'), 'no placement: created "now", so a copy with the new moment');
  t.equal(byId(next, 'i3-app')?.createdAtMs, 15_000);
});

t.test('an instance of one task: status, health, failure time, ports and creation as for any instance', async (t) => {
  const failedAt = '2026-01-01T00:00:20.000Z';
  const cases: Array<{ name: string; task: ObservedTask; want: Record<string, unknown> }> = [
    { name: 'no status yet', task: task('h1', a2), want: { status: 'pending', healthy: undefined, healthySinceMs: undefined, failedAtMs: undefined } },
    { name: 'running, no checks', task: task('h1', a2, status('running')), want: { status: 'running', healthy: true, healthySinceMs: 5_000 } },
    { name: 'running, checks failing', task: task('h1', a2, status('running'), false), want: { status: 'running', healthy: false, healthySinceMs: undefined } },
    { name: 'failed', task: task('h1', a2, status('failed', failedAt)), want: { status: 'failed', healthy: undefined, failedAtMs: Date.parse(failedAt) } },
    { name: 'failed at an unreadable time', task: task('h1', a2, status('failed', 'yesterday')), want: { status: 'failed', failedAtMs: undefined } },
    { name: 'stopped', task: task('h1', a2, status('stopped')), want: { status: 'stopped', healthy: undefined } },
    {
      name: 'hand-written: its own instance, created now, its port',
      task: task('h3', { ...a3, port: 8080 }, status('running')),
      want: { id: 'i3-app', node: 'h3', index: 0, version: 0, fingerprint: '', ports: [8080], createdAtMs: 9_000, reschedules: [], healthySinceMs: 9_000 },
    },
    {
      name: 'placed: index, version, fingerprint, ports and reschedules from the placement',
      task: task('h1', { ...a2, resources: { cpu: 250, memory: 128 } }, status('running')),
      want: { id: 'i2', job: 'shop', group: 'web', node: 'h1', index: 2, version: 1, fingerprint: 'f1', ports: [], createdAtMs: 1_000, resources: { cpu: 250, memory: 128 } },
    },
  ];
  for (const c of cases) {
    const [alloc] = observeAllocs([c.task], new Map([['i2', 5_000]]), 9_000).allocs;
    t.match(alloc, c.want, c.name);
    for (const [k, v] of Object.entries(c.want)) if (v === undefined) t.equal((alloc as unknown as Record<string, unknown>)[k], undefined, `${c.name}: ${k} unset`);
  }
});
