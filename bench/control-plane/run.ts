/**
 * The control plane end to end: `weft dev-consul`, one `weft scheduler` and
 * N simulated hosts with the real agent's registration, heartbeat and status
 * reporting (hosts.ts, one process per 500 hosts: host-group.ts; they run
 * nothing), all separate processes on this machine. Per size (hosts /
 * allocations):
 *
 *   deploy      one job, `count` = allocations, spread placement, tiny tasks:
 *               time to every allocation document written, to every
 *               allocation reported running, to the job reported healthy
 *               (both as the scheduler's API reports them), allocations/s,
 *               CPU per allocation of each kind of process, peak RSS
 *               (the host simulators' summed)
 *   during it   `weft status` (GET /v1/jobs) every 100 ms and `weft scale`
 *               (same count) every second: p50 / p99 / max latency and
 *               how many calls
 *   host loss   10% of the hosts crash (no deregistration): time until every
 *               allocation runs again, minus TTL + lost_after
 *   scale down  to 10%: time until the documents and the API say so
 *   throughout  the largest heartbeat round trip and gap between a host's
 *               beats; weft-agent checks that went critical although their
 *               host beat (false host-down); status documents left without
 *               an allocation document at the end (leaks)
 *
 * Anchor: Nomad's published C1M / C2M runs (1M containers on 5,000 hosts in
 * < 5 min: ~3,300 allocations/s; 2M on 6,100 hosts in 22 min: ~1,500/s), on
 * large clusters of servers, not one shared 2-core machine.
 *
 *   npm run bench:control-plane -- --sizes 100/1000,500/5000,1000/10000,2000/20000
 *
 * Env: BENCH_TTL_MS (heartbeat TTL, 15 s), BENCH_LOST_AFTER_MS (10 s),
 * BENCH_PHASE_TIMEOUT_MS (each wait's bound, 240 s), BENCH_CPU_PROF (a
 * directory: each process writes a V8 CPU profile there at exit), BENCH_LOG
 * (a file name: the scheduler's log goes to <name>.<hosts>-<allocations>),
 * BENCH_STALLS (a directory: the scheduler records its event-loop stalls
 * there, loop-probe.mjs; `node bench/control-plane/stalls.mjs <dir>` says
 * what held the loop, from the CPU profile when BENCH_CPU_PROF is the same
 * directory).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SigningKeyStore } from '../../src/wiring/scheduler-signing.js';
import { freePort } from '../../test/helpers/ports.js';
import { HostGroup } from './host-group.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/weft.js');
const TOKEN = 'bench-control-plane-token-0123456789';
const TTL_MS = Number(process.env['BENCH_TTL_MS'] ?? 15_000);
const LOST_AFTER_MS = Number(process.env['BENCH_LOST_AFTER_MS'] ?? 10_000);
/** Every wait is bounded: a size that does not finish in this long is reported as such. */
const PHASE_TIMEOUT_MS = Number(process.env['BENCH_PHASE_TIMEOUT_MS'] ?? 240_000);
const NOMAD = { c1m: 1_000_000 / 300, c2m: 2_000_000 / (22 * 60) };
/** BENCH_CPU_PROF=<dir>: every process writes a V8 CPU profile there when it exits (where the time goes). */
const PROF = process.env['BENCH_CPU_PROF'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_CPU_PROF']}`];
/** BENCH_STALLS=<dir>: the scheduler records its event-loop stalls there (loop-probe.mjs; stalls.mjs explains them). */
const STALLS = process.env['BENCH_STALLS'];
const PROBE = STALLS === undefined ? [] : ['--import', join(import.meta.dirname, 'loop-probe.mjs')];

interface Size {
  hosts: number;
  allocs: number;
}

function parseSizes(argv: readonly string[]): Size[] {
  const at = argv.indexOf('--sizes');
  const text = at >= 0 ? argv[at + 1] : '100/1000,500/5000,1000/10000';
  if (text === undefined) throw new Error('--sizes needs a value like 100/1000,1000/10000');
  return text.split(',').map((s) => {
    const [h, a] = s.split('/').map(Number);
    if (!Number.isInteger(h) || !Number.isInteger(a) || h! < 10 || a! < h!) throw new Error(`--sizes: ${s} is not HOSTS/ALLOCATIONS (integers, at least 10 hosts, allocations >= hosts)`);
    return { hosts: h!, allocs: a! };
  });
}

/** CPU seconds (user + system) of a process, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Peak resident set (MB) of a process. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) / 1024;
}

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A performance.now() of this process as the monotonic clock in us (what CPU profiles and loop-probe.mjs use). */
const monoUs = (at: number): bigint => process.hrtime.bigint() / 1000n - BigInt(Math.round((performance.now() - at) * 1000));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = PHASE_TIMEOUT_MS, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A child process whose output is kept; killed at the end whatever happens. */
class Child {
  out = '';
  readonly exited: Promise<void>;
  constructor(readonly proc: ChildProcess) {
    proc.stdout?.on('data', (b: Buffer) => this.onOutput(b.toString()));
    proc.stderr?.on('data', (b: Buffer) => this.onOutput(b.toString()));
    this.exited = new Promise((r) => proc.once('exit', () => r()));
  }
  lines: Array<(line: string) => void> = [];
  private partial = '';
  private onOutput(text: string): void {
    if (this.out.length < 200_000) this.out += text;
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const l of parts) for (const f of this.lines) f(l);
  }
  get pid(): number {
    return this.proc.pid!;
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    await Promise.race([this.exited, sleep(10_000)]);
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** A minimal client of the dev agent and the scheduler API. */
async function getJson<T>(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T | undefined; index: number }> {
  const r = await fetch(url, { headers });
  const text = await r.text();
  return { status: r.status, body: text === '' ? undefined : (JSON.parse(text) as T), index: Number(r.headers.get('x-consul-index') ?? 0) };
}

interface Result {
  size: Size;
  load: string;
  docsS: number;
  runningS: number;
  healthyS: number;
  perSec: number;
  cpuMs: { consul: number; scheduler: number; hosts: number };
  /** Peak RSS; hosts: the sum over the simulator processes. */
  rssMb: { consul: number; scheduler: number; hosts: number };
  /** How many processes simulate the hosts. */
  hostProcesses: number;
  replaceS: number;
  scaleDownS: number;
  hb: { maxRttMs: number; p99RttMs: number; maxGapMs: number; simLagMs: number };
  /** TTL updates from this (otherwise idle) process: how long the dev agent takes to apply one. */
  probeMs: number[];
  falseDown: number;
  criticalPeak: number;
  leaked: number;
  statusMs: number[];
  scaleMs: number[];
  error?: string;
}

async function runSize(size: Size): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-cp-'));
  const children: Child[] = [];
  const load0 = loadavg()[0]!.toFixed(1);
  const r: Result = {
    size,
    load: load0,
    docsS: Number.NaN,
    runningS: Number.NaN,
    healthyS: Number.NaN,
    perSec: Number.NaN,
    cpuMs: { consul: Number.NaN, scheduler: Number.NaN, hosts: Number.NaN },
    rssMb: { consul: 0, scheduler: 0, hosts: 0 },
    hostProcesses: 0,
    replaceS: Number.NaN,
    scaleDownS: Number.NaN,
    hb: { maxRttMs: Number.NaN, p99RttMs: Number.NaN, maxGapMs: Number.NaN, simLagMs: Number.NaN },
    probeMs: [],
    falseDown: 0,
    criticalPeak: 0,
    leaked: Number.NaN,
    statusMs: [],
    scaleMs: [],
  };
  let stopCritical = false;
  let lastSummary: { running: number; healthy: number; desired: number } | undefined;
  /** What the host simulators say, for a failure's message. */
  let diagnose: (() => Promise<string>) | undefined;
  let hostGroup: HostGroup | undefined;
  /** What Consul holds, for a failure's message: the scheduler's view can then be told from the store. */
  let stored: (() => Promise<string>) | undefined;
  let scheduler: Child | undefined;
  try {
    // 1. dev Consul, its own process.
    const consulPort = await freePort();
    const consulAddr = `127.0.0.1:${consulPort}`;
    const consul = new Child(
      spawn(process.execPath, [...PROF, BIN, 'dev-consul', '--port', String(consulPort), '--data-dir', join(dir, 'consul'), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    children.push(consul);
    await waitFor('dev-consul', async () => ((await fetch(`http://${consulAddr}/v1/status/leader`)).ok ? true : undefined), 60_000, 50);
    const kv = `http://${consulAddr}/v1/kv/`;
    stored = async () => {
      const docs = (await getJson<string[]>(`${kv}weft/allocs/?keys`)).body ?? [];
      const states = new Map<string, number>();
      for (const e of (await getJson<Array<{ Value: string | null }>>(`${kv}weft/alloc-status/?recurse`)).body ?? []) {
        const state = (JSON.parse(Buffer.from(e.Value ?? '', 'base64').toString() || '{}') as { state?: string }).state ?? '?';
        states.set(state, (states.get(state) ?? 0) + 1);
      }
      return `${docs.length} allocation documents, status records ${JSON.stringify(Object.fromEntries(states))}`;
    };
    // A TTL check of its own, passed every 250 ms from this process (which does little else).
    await fetch(`http://${consulAddr}/v1/agent/check/register`, { method: 'PUT', body: JSON.stringify({ ID: 'bench-probe', Name: 'bench probe', TTL: '60s' }) });
    void (async () => {
      while (!stopCritical) {
        const p0 = performance.now();
        try {
          await (await fetch(`http://${consulAddr}/v1/agent/check/pass/bench-probe?note=${Date.now()}`, { method: 'PUT' })).text();
          r.probeMs.push(performance.now() - p0);
        } catch {
          // the agent is stopping
        }
        await sleep(250);
      }
    })();

    // 2. The hosts. They verify allocation documents with the scheduler's keys, read from its data
    // directory (as an agent without a host token does): created here as the scheduler's first start would.
    const schedDir = join(dir, 'scheduler');
    SigningKeyStore.open(schedDir);
    const hosts = new HostGroup({ hosts: size.hosts, execArgv: PROF, env: { ...process.env, BENCH_CONSUL: consulAddr, BENCH_TTL_MS: String(TTL_MS), BENCH_SCHED_DIR: schedDir } });
    hostGroup = hosts;
    r.hostProcesses = hosts.processes;
    diagnose = async () => {
      const st = await hosts.stats();
      return `tracked ${st.tracked}, running ${st.running}, heartbeat failures ${st.failures}, loop lag max ${Math.round(st.maxLoopLagMs)} ms, errors ${JSON.stringify(st.errors)}`;
    };
    const hostNames = await Promise.race([hosts.ready(), sleep(PHASE_TIMEOUT_MS).then(() => undefined)]);
    if (hostNames === undefined) throw new Error('the hosts did not start in time');

    // False host-down: a weft-agent check critical while its host still beats (blocking query on critical checks).
    const lostHosts = new Set<string>();
    const falseDown = new Set<string>();
    /** When each lost host's check was first seen critical. */
    const criticalAt = new Map<string, number>();
    void (async () => {
      let index = 0;
      while (!stopCritical) {
        try {
          const res = await getJson<Array<{ ServiceName: string; ServiceID: string }>>(`http://${consulAddr}/v1/health/state/critical?index=${index}&wait=5s`);
          index = res.index;
          const agents = (res.body ?? []).filter((c) => c.ServiceName === 'weft-agent');
          let live = 0;
          for (const c of agents) {
            const host = c.ServiceID.replace(/^weft-agent-/, '');
            if (lostHosts.has(host)) {
              if (!criticalAt.has(host)) criticalAt.set(host, performance.now());
              continue;
            }
            live++;
            falseDown.add(host);
            r.falseDown = falseDown.size; // kept current: a size that fails midway still reports it
          }
          r.criticalPeak = Math.max(r.criticalPeak, live);
        } catch {
          await sleep(200);
        }
      }
    })();

    // 3. The scheduler.
    const schedPort = await freePort();
    const configFile = join(dir, 'config.yaml');
    writeFileSync(
      configFile,
      [
        `consul:\n  address: ${consulAddr}`,
        'log:\n  format: json\n  level: info',
        `scheduler:\n  token: ${TOKEN}\n  lostAfterMs: ${LOST_AFTER_MS}\n  register: false\n  algorithm: spread`,
        '',
      ].join('\n'),
    );
    const sched = new Child(
      spawn(process.execPath, [...PROF, ...PROBE, BIN, 'scheduler', '--port', String(schedPort)], {
        env: { ...process.env, WEFT_DATA_DIR: schedDir, WEFT_CONFIG: configFile, WEFT_NODE_NAME: 'bench', CONSUL_HTTP_ADDR: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    children.push(sched);
    scheduler = sched;
    // BENCH_LOG=<file>: the scheduler's log lines go there too (where its time went).
    if (process.env['BENCH_LOG'] !== undefined) {
      const log = createWriteStream(`${process.env['BENCH_LOG']}.${size.hosts}-${size.allocs}`);
      sched.lines.push((line) => log.write(`${line}\n`));
      void sched.exited.then(() => log.end());
    }
    let placedTotal = 0;
    let docsAt: number | undefined;
    sched.lines.push((line) => {
      if (!line.includes('"plan applied"')) return;
      try {
        placedTotal += (JSON.parse(line) as { placed?: number }).placed ?? 0;
        if (docsAt === undefined && placedTotal >= size.allocs) docsAt = performance.now();
      } catch {
        // not a log line
      }
    });
    await waitFor('the scheduler to lead', () => (sched.out.includes('leading: reconciling') ? true : undefined), 60_000, 50);
    const api = `http://127.0.0.1:${schedPort}`;
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const jobs = async (): Promise<{ running: number; healthy: number; desired: number } | undefined> => {
      const t0 = performance.now();
      const res = await fetch(`${api}/v1/jobs`, { headers: auth });
      const body = (await res.json()) as { jobs?: Array<{ name: string; running: number; healthy: number; desired: number }> } | Array<{ name: string; running: number; healthy: number; desired: number }>;
      r.statusMs.push(performance.now() - t0);
      const list = Array.isArray(body) ? body : (body.jobs ?? []);
      lastSummary = list.find((j) => j.name === 'bench');
      return lastSummary;
    };
    let groupNames: string[] = ['g0'];
    /** `weft scale` of every group, to `total` allocations in all. */
    const scale = async (total: number): Promise<void> => {
      for (const [i, group] of groupNames.entries()) {
        const count = Math.floor(total / groupNames.length) + (i < total % groupNames.length ? 1 : 0);
        const t0 = performance.now();
        const res = await fetch(`${api}/v1/jobs/bench/scale`, { method: 'POST', headers: auth, body: JSON.stringify({ group, count }) });
        await res.text();
        if (!res.ok) throw new Error(`scale answered ${res.status}`);
        r.scaleMs.push(performance.now() - t0);
      }
    };
    const keyCount = async (prefix: string): Promise<number> => {
      const res = await getJson<string[]>(`${kv}${prefix}?keys`);
      return res.status === 404 ? 0 : (res.body ?? []).length;
    };

    // 4. The deploy.
    const pids = { consul: consul.pid, scheduler: sched.pid, hosts: hosts.pids };
    const hostsCpu = (): number => pids.hosts.reduce((s, pid) => s + cpuSeconds(pid), 0);
    const cpu0 = { consul: cpuSeconds(pids.consul), scheduler: cpuSeconds(pids.scheduler), hosts: hostsCpu() };
    await hosts.stats(true);
    // A group holds at most 10,000 (the job spec's limit): bigger sizes get more groups.
    const groupCount = Math.ceil(size.allocs / 10_000);
    groupNames = Array.from({ length: groupCount }, (_, i) => `g${i}`);
    const share = (total: number, i: number): number => Math.floor(total / groupCount) + (i < total % groupCount ? 1 : 0);
    const task = { name: 't', driver: 'process', command: '/bin/true', resources: { cpu: 10, memory: 8 } };
    const spec = { name: 'bench', groups: groupNames.map((name, i) => ({ name, count: share(size.allocs, i), tasks: [task] })) };
    const t0 = performance.now();
    const submitWall = Date.now();
    const submitted = await fetch(`${api}/v1/jobs`, { method: 'POST', headers: auth, body: JSON.stringify({ spec }) });
    if (!submitted.ok) throw new Error(`submit answered ${submitted.status}: ${await submitted.text()}`);
    // `weft scale` (to the same count) once a second during the deploy, on its own.
    let deploying = true;
    const scaling = (async () => {
      while (deploying) {
        await sleep(1000);
        if (deploying) await scale(size.allocs).catch(() => undefined);
      }
    })();
    let runningAt: number | undefined;
    let healthyAt: number | undefined;
    await waitFor(
      'the job to be healthy',
      async () => {
        const j = await jobs();
        if (j === undefined) return undefined;
        if (runningAt === undefined && j.running >= size.allocs) runningAt = performance.now();
        if (healthyAt === undefined && j.healthy >= size.allocs) healthyAt = performance.now();
        return healthyAt !== undefined && docsAt !== undefined ? true : undefined;
      },
      PHASE_TIMEOUT_MS,
      100,
    );
    deploying = false;
    if (STALLS !== undefined) writeFileSync(join(STALLS, `deploy.${sched.pid}`), `${monoUs(t0)} ${monoUs(performance.now())}\n`);
    await scaling;
    healthyAt ??= performance.now();
    r.docsS = ((docsAt ?? healthyAt) - t0) / 1000;
    r.runningS = ((runningAt ?? healthyAt) - t0) / 1000;
    r.healthyS = (healthyAt - t0) / 1000;
    r.perSec = size.allocs / r.healthyS;
    r.cpuMs = {
      consul: ((cpuSeconds(pids.consul) - cpu0.consul) * 1000) / size.allocs,
      scheduler: ((cpuSeconds(pids.scheduler) - cpu0.scheduler) * 1000) / size.allocs,
      hosts: ((hostsCpu() - cpu0.hosts) * 1000) / size.allocs,
    };
    const mid = await hosts.stats();
    const since = (at: number | undefined): string => (at === undefined ? '-' : ((at - submitWall) / 1000).toFixed(1));
    console.log(
      `  deploy: documents ${r.docsS.toFixed(1)} s, running ${r.runningS.toFixed(1)} s, healthy ${r.healthyS.toFixed(1)} s (hosts' status reports from ${since(mid.firstReportAt)} to ${since(mid.lastReportAt)} s)`,
    );

    // 5. 10% of the hosts crash.
    const lose = hostNames.filter((_, i) => i % 10 === 5);
    for (const h of lose) lostHosts.add(h);
    const lossAt = performance.now();
    await hosts.lose(lose);
    await waitFor('the lost hosts to turn critical', () => (criticalAt.size === lose.length ? true : undefined), TTL_MS + PHASE_TIMEOUT_MS, 100);
    const lostAt = Math.max(...criticalAt.values()) + LOST_AFTER_MS;
    await sleep(Math.max(0, lostAt - performance.now()));
    await waitFor(
      'the allocations of the lost hosts to be replaced',
      async () => {
        const keys = (await getJson<string[]>(`${kv}weft/allocs/?keys`)).body ?? [];
        if (keys.length !== size.allocs || keys.some((k) => lostHosts.has(k.split('/')[2]!))) return undefined;
        const j = await jobs();
        return j !== undefined && j.running >= size.allocs && j.healthy >= size.allocs ? true : undefined;
      },
      PHASE_TIMEOUT_MS,
      250,
    );
    r.replaceS = (performance.now() - lostAt) / 1000;
    console.log(`  host loss: replaced ${r.replaceS.toFixed(1)} s after the last lost host's check turned critical + lost_after (${((lostAt - lossAt) / 1000).toFixed(1)} s after the crash)`);

    // 6. Scale down to 10%.
    const down = Math.max(1, Math.round(size.allocs / 10));
    const downAt = performance.now();
    await scale(down);
    await waitFor(
      'the scale-down',
      async () => {
        if ((await keyCount('weft/allocs/')) !== down) return undefined;
        const j = await jobs();
        return j !== undefined && j.running === down ? true : undefined;
      },
      PHASE_TIMEOUT_MS,
      250,
    );
    r.scaleDownS = (performance.now() - downAt) / 1000;
    // Leaks: status documents without an allocation document, once agents and the scheduler had time to clean up.
    const leaks = async (): Promise<number> => {
      const docs = new Set(((await getJson<string[]>(`${kv}weft/allocs/?keys`)).body ?? []).map((k) => k.slice('weft/allocs/'.length)));
      const statuses = (await getJson<string[]>(`${kv}weft/alloc-status/?keys`)).body ?? [];
      return statuses.filter((k) => !docs.has(k.slice('weft/alloc-status/'.length))).length;
    };
    await waitFor('status documents to be cleaned up', async () => ((await leaks()) === 0 ? true : undefined), 30_000, 500).catch(() => undefined);
    r.leaked = await leaks();
    console.log(`  scale down: ${r.scaleDownS.toFixed(1)} s; leaked status documents ${r.leaked}`);

    const st = await hosts.stats();
    r.hb = { maxRttMs: st.maxRttMs, p99RttMs: st.p99RttMs, maxGapMs: st.maxGapMs, simLagMs: st.maxLoopLagMs };
    if (st.errors.length > 0 || st.failures > 0) console.log(`  hosts' failed Consul calls: heartbeats ${st.failures}; ${JSON.stringify(st.errors)}`);
    r.falseDown = falseDown.size;
    r.rssMb = { consul: peakRssMb(pids.consul), scheduler: peakRssMb(pids.scheduler), hosts: pids.hosts.reduce((s, pid) => s + peakRssMb(pid), 0) };
    await hosts.stop();
  } catch (err) {
    r.error = (err as Error).message;
    console.error(`  last job summary: ${JSON.stringify(lastSummary)}; hosts: ${diagnose === undefined ? '-' : await Promise.race([diagnose(), sleep(5000).then(() => 'no answer')])}`);
    console.error(`  in Consul: ${stored === undefined ? '-' : await Promise.race([stored().catch((e: Error) => e.message), sleep(10_000).then(() => 'no answer')])}`);
    if (scheduler !== undefined) console.error(scheduler.out.split('\n').slice(-15).join('\n'));
  } finally {
    stopCritical = true;
    for (const c of [...children].reverse()) await c.stop();
    await hostGroup?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return r;
}

const f = (n: number, d = 1): string => (Number.isFinite(n) ? n.toFixed(d) : '-');
const sizes = parseSizes(process.argv.slice(2));
const results: Result[] = [];
console.log(`control plane, end to end (TTL ${TTL_MS / 1000} s, lost_after ${LOST_AFTER_MS / 1000} s; load average at start ${loadavg()[0]!.toFixed(1)})`);
for (const size of sizes) {
  console.log(`${size.hosts} hosts / ${size.allocs} allocations ...`);
  const r = await runSize(size);
  results.push(r);
  if (r.error !== undefined) console.log(`  FAILED: ${r.error}`);
}

console.log('');
console.log('| hosts / allocations | documents | running | healthy | allocations/s | CPU ms/alloc consul / scheduler / hosts | peak RSS MB consul / scheduler / hosts (processes) | replace 10% lost | scale down to 10% | TTL update from an idle client p99 / max ms | heartbeat max RTT / max delay ms (simulator loop lag) | false host-down (peak) | leaked status docs | status p50 / p99 / max ms (calls) | scale p50 / p99 / max ms | load |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  const st = [...r.statusMs].sort((a, b) => a - b);
  const sc = [...r.scaleMs].sort((a, b) => a - b);
  const pr = [...r.probeMs].sort((a, b) => a - b);
  console.log(
    `| ${r.size.hosts} / ${r.size.allocs} | ${f(r.docsS)} s | ${f(r.runningS)} s | ${f(r.healthyS)} s | ${f(r.perSec, 0)} | ${f(r.cpuMs.consul, 2)} / ${f(r.cpuMs.scheduler, 2)} / ${f(r.cpuMs.hosts, 2)} | ${f(r.rssMb.consul, 0)} / ${f(r.rssMb.scheduler, 0)} / ${f(r.rssMb.hosts, 0)} (${r.hostProcesses}) | ${f(r.replaceS)} s | ${f(r.scaleDownS)} s | ${f(pct(pr, 99), 0)} / ${f(pr.at(-1) ?? Number.NaN, 0)} | ${f(r.hb.maxRttMs, 0)} / ${f(r.hb.maxGapMs - TTL_MS / 3, 0)} (${f(r.hb.simLagMs, 0)}) | ${r.falseDown} (${r.criticalPeak}) | ${f(r.leaked, 0)} | ${f(pct(st, 50), 0)} / ${f(pct(st, 99), 0)} / ${f(st.at(-1) ?? Number.NaN, 0)} (${st.length}) | ${f(pct(sc, 50), 0)} / ${f(pct(sc, 99), 0)} / ${f(sc.at(-1) ?? Number.NaN, 0)} | ${r.load} |${r.error === undefined ? '' : ` FAILED: ${r.error}`}`,
  );
}
const first = results[0];
for (const r of results.slice(1)) {
  if (first === undefined || !Number.isFinite(first.cpuMs.consul)) break;
  const total = (x: Result): number => x.cpuMs.consul + x.cpuMs.scheduler + x.cpuMs.hosts;
  console.log(`CPU per allocation at ${r.size.allocs} vs ${first.size.allocs}: ${(total(r) / total(first)).toFixed(2)}x (target <= 2x)`);
}
for (const r of results) {
  if (Number.isFinite(r.perSec)) console.log(`${r.size.allocs} allocations: ${f(r.perSec, 0)}/s = ${(r.perSec / NOMAD.c1m).toFixed(2)}x Nomad C1M (${NOMAD.c1m.toFixed(0)}/s), ${(r.perSec / NOMAD.c2m).toFixed(2)}x Nomad C2M (${NOMAD.c2m.toFixed(0)}/s)`);
}
console.log(`anchor: Nomad C1M ~${NOMAD.c1m.toFixed(0)} allocations/s (1M containers, 5,000 hosts, 5 min), C2M ~${NOMAD.c2m.toFixed(0)}/s (2M, 6,100 hosts, 22 min), on large server clusters`);
process.exit(results.some((r) => r.error !== undefined) ? 1 : 0);
