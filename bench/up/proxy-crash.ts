/**
 * What a proxy crash costs under `weft up`: the real `weft up` (dev Consul,
 * scheduler, agent with the process driver, proxy) on free loopback ports,
 * examples/hello.yaml deployed (two demo apps), and a constant 300 requests/s
 * from a keep-alive client through the proxy's outbound port (outbound ->
 * mTLS -> the same proxy's inbound -> the app). After 2 s of load the proxy is
 * killed with SIGKILL; the load runs on until requests have succeeded again
 * for 2 s (bounded: 30 s). Per crash it prints:
 *
 *   serving again   from the kill to the send time of the first request sent after the
 *                   kill that succeeded (the client's view; 3.3 ms resolution at 300 rps)
 *   failed          requests that failed (refused, reset, non-200), in flight or sent in the gap
 *   weft up saw     weft up's own "healthy again" figure (kill -> /healthz answers)
 *
 * Each round crashes the proxy twice: once after a quiet minute (a first crash:
 * restarted at once) and once right after it is back (a second crash within the
 * window: restarted after the 0.5-1 s backoff).
 *
 *   npm run bench:proxy-crash [-- --rounds 2] [--rate 300]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JavaScript (bin/ runs before anything compiles TypeScript), no declarations
import { bundleIsFresh } from '../../bin/bundle-manifest.js';
import { UP_RESTART_POLICY } from '../../src/cli/up/restart-policy.js';
import { eventually } from '../../test/helpers/eventually.js';
import { freePort } from '../../test/helpers/ports.js';

const ROOT = join(import.meta.dirname, '../..');
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg('--rounds', 2);
const RATE = arg('--rate', 300);
const LOAD_BEFORE_MS = 2000;
const LOAD_AFTER_MS = 2000;
const MAX_RUN_MS = 30_000;

// weft as a user runs it: bin/weft.js runs the bundle when it matches the sources.
const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--if-stale'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const runtime = (): string => (process.env['WEFT_NO_BUNDLE'] === '1' || !bundleIsFresh(ROOT) ? 'tsx (sources)' : 'bundle (dist/)');

const dir = mkdtempSync(join(tmpdir(), 'weft-bench-crash-'));
const dataDir = join(dir, 'data');
const [consulPort, apiPort, inboundPort, metricsPort, outboundPort, dynamicMin] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  `dataDir: ${dataDir}
nodeName: bench-crash
consul: { address: "127.0.0.1:${consulPort}" }
scheduler: { port: ${apiPort}, dynamicPortMin: ${dynamicMin}, dynamicPortMax: ${dynamicMin + 20} }
client: { address: "http://127.0.0.1:${apiPort}" }
proxy: { inbound: { port: ${inboundPort} }, metrics: { port: ${metricsPort} } }
agent: { outboundPortBase: ${outboundPort} }
log: { format: json, level: warn }
`,
);
const childEnv = { ...process.env, WEFT_CONFIG: configFile, WEFT_DATA_DIR: '', CONSUL_HTTP_ADDR: '' };

let out = '';
// One simulated host (weft up's default is two), so hello and its outbound port are on host 1's proxy.
const up: ChildProcess = spawn(process.execPath, [join(ROOT, 'bin/weft.js'), 'up', '--driver', 'process', '--hosts', '127.0.0.2', '--no-demo'], {
  cwd: ROOT,
  env: childEnv,
  stdio: ['ignore', 'pipe', 'pipe'],
});
up.stdout!.on('data', (b: Buffer) => (out += b.toString()));
up.stderr!.on('data', (b: Buffer) => (out += b.toString()));
const upExit = new Promise((r) => up.once('exit', r));

/** Runs `weft ...args` against this weft up; throws on a non-zero exit. */
function weft(args: string[]): string {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/weft.js'), ...args], { cwd: ROOT, env: childEnv, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`weft ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The proxy's current pid, from weft up's "proxy is healthy (again) (pid N" lines. */
function proxyPid(): number {
  const all = [...out.matchAll(/^up {8}\| proxy-1 is healthy (?:again )?\(pid (\d+)/gm)];
  return Number(all[all.length - 1]![1]);
}

/** One request through the outbound port, as the apps send them: Host names the service. */
function call(agent: http.Agent): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: outboundPort, path: '/', agent, headers: { host: 'hello' }, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

interface Crash {
  servingAgainMs: number;
  failed: number;
  sent: number;
  lastFailureMs: number;
  upSaw: string;
}

/** Load at RATE, SIGKILL the proxy after LOAD_BEFORE_MS, run until LOAD_AFTER_MS of success after it is back. */
async function crashUnderLoad(): Promise<Crash> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const records: Array<{ sentAt: number; ok?: boolean }> = [];
  const pending: Promise<void>[] = [];
  const start = performance.now();
  let killedAt = Number.POSITIVE_INFINITY;
  let servingAgainAt = Number.POSITIVE_INFINITY;
  const victim = proxyPid();
  const outBefore = out.length;
  for (let i = 0; ; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const now = performance.now();
    if (killedAt === Number.POSITIVE_INFINITY && now - start >= LOAD_BEFORE_MS) {
      killedAt = performance.now();
      process.kill(victim, 'SIGKILL');
    }
    if (now - servingAgainAt >= LOAD_AFTER_MS || now - start > MAX_RUN_MS) break;
    const rec: { sentAt: number; ok?: boolean } = { sentAt: now };
    records.push(rec);
    pending.push(
      call(agent).then((ok) => {
        rec.ok = ok;
        if (ok && rec.sentAt >= killedAt && rec.sentAt < servingAgainAt) servingAgainAt = rec.sentAt;
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  const failures = records.filter((r) => !r.ok);
  const saw = await eventually(() => /proxy-1 is healthy again \(pid \d+, ([\d.]+s) after it died\)/.exec(out.slice(outBefore)), 30_000, 'the proxy healthy again').catch(() => undefined);
  const upSaw = saw?.[1] ?? '?';
  return {
    servingAgainMs: servingAgainAt - killedAt,
    failed: failures.length,
    sent: records.length,
    lastFailureMs: failures.length === 0 ? 0 : failures[failures.length - 1]!.sentAt - killedAt,
    upSaw,
  };
}

async function stopEverything(): Promise<void> {
  try {
    weft(['scale', 'hello', '0']);
  } catch {
    // best effort: the processes are killed below anyway
  }
  if (up.exitCode === null) up.kill('SIGTERM');
  await Promise.race([upExit, new Promise((r) => setTimeout(r, 30_000).unref())]);
  if (up.exitCode === null) up.kill('SIGKILL');
  // The agent leaves workloads running by design: stop the demo apps it started.
  const procDir = join(dataDir, 'hosts', 'bench-crash-1', 'agent', 'processes');
  try {
    for (const f of readdirSync(procDir).filter((n) => n.endsWith('.json'))) {
      const rec = JSON.parse(readFileSync(join(procDir, f), 'utf8')) as { pid?: number };
      if (rec.pid !== undefined) {
        try {
          process.kill(-rec.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  } catch {
    // no processes dir
  }
  rmSync(dir, { recursive: true, force: true });
}

const fmt = (ms: number): string => (Number.isFinite(ms) ? `${Math.round(ms)} ms` : 'never');

try {
  await eventually(() => (out.includes('weft is up on this machine') ? true : up.exitCode !== null ? Promise.reject(new Error(out)) : undefined), 180_000, 'weft up', 250);
  weft(['deploy', 'examples/hello.yaml', '--timeout', '120s']);
  await eventually(
    async () => {
      const agent = new http.Agent({ keepAlive: false });
      const ok = await call(agent);
      agent.destroy();
      return ok;
    },
    60_000,
    'hello through the outbound port',
    250,
  );
  console.log(`weft up with the process driver, hello x2; ${RATE} requests/s through outbound :${outboundPort}; weft runs as ${runtime()}`);
  console.log(`restart policy: first crash in ${UP_RESTART_POLICY.windowMs / 1000}s at once, then backoff from ${UP_RESTART_POLICY.backoff.baseMs} ms (equal jitter)\n`);
  console.log('| crash | serving again | failed / sent | last failure sent | weft up saw |');
  console.log('|---|---|---|---|---|');
  const rows: Array<[string, Crash]> = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // A quiet window first, so this crash is a first one for the policy.
    if (round > 1) await new Promise((r) => setTimeout(r, UP_RESTART_POLICY.windowMs + 1000));
    for (const kind of ['first (at once)', 'second (backoff)']) {
      const c = await crashUnderLoad();
      rows.push([kind, c]);
      console.log(`| ${kind} | ${fmt(c.servingAgainMs)} | ${c.failed} / ${c.sent} | ${fmt(c.lastFailureMs)} | ${c.upSaw} |`);
    }
  }
  const firsts = rows.filter(([k]) => k.startsWith('first')).map(([, c]) => c);
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = Math.floor(s.length / 2);
    return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  };
  console.log(
    `\nfirst crash, median of ${firsts.length}: serving again after ${fmt(median(firsts.map((c) => c.servingAgainMs)))}, ${Math.round(median(firsts.map((c) => c.failed)))} requests failed at ${RATE} rps`,
  );
  const bare = spawnSync(process.execPath, ['-e', '0']);
  const t0 = performance.now();
  spawnSync(process.execPath, ['-e', '0']);
  console.log(`for scale: starting a bare \`node -e 0\` took ${fmt(performance.now() - t0)} on this machine just now${bare.status === 0 ? '' : ' (failed)'}`);
  console.log(`weft ran as ${runtime()} at the end (a source edited during the run makes restarts run the sources through tsx)`);
} finally {
  await stopEverything();
}
