/**
 * How long a first `weft up` takes to show the system: the real `weft up`
 * (the bundle, as `./scripts/weft` runs it) on a fresh data directory, free
 * ports and two simulated hosts, timed from its start to
 *
 *   live demo      "weft is up" printed: every piece healthy, the demo deployed and healthy
 *   both versions  GET /v1/stats shows requests on backend v1 and v2 (through the mesh); (+ s after the live demo)
 *   scaling        the first autoscaling decision in the live view's lines; (+ s after the live demo)
 *   stopped        from Ctrl-C (SIGINT) to weft up's exit, the demo's workloads included
 *
 * against the targets (live demo <= 60 s, traffic on both versions
 * and a decision within 2 min), as ratios. npm ci is not in it: it depends on
 * the network and the npm cache, not on weft (a fresh clone adds it once).
 *
 *   npx tsx bench/up/first-run.ts [--runs 2] [--driver process|docker]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JavaScript (bin/ runs before anything compiles TypeScript), no declarations
import { bundleIsFresh } from '../../bin/bundle-manifest.js';
import { eventually } from '../../test/helpers/eventually.js';
import { freePort } from '../../test/helpers/ports.js';

const ROOT = join(import.meta.dirname, '../..');
const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const RUNS = Number(arg('--runs', '2'));
const DRIVER = arg('--driver', 'process');
const TARGET_LIVE_S = 60;
const TARGET_TRAFFIC_S = 120;

const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--if-stale'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const runtime = process.env['WEFT_NO_BUNDLE'] === '1' || !bundleIsFresh(ROOT) ? 'tsx (sources)' : 'bundle (dist/)';

interface Run {
  steps: string[];
  liveS: number;
  bothVersionsS: number | undefined;
  scalingS: number | undefined;
  stopS: number;
}

async function oneRun(i: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-first-run-'));
  const dataDir = join(dir, 'data');
  const [consul, api, inbound, metrics, agentMetrics] = await Promise.all(Array.from({ length: 5 }, () => freePort()));
  const configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    `dataDir: ${dataDir}\nnodeName: bench${i}\nconsul: { address: "127.0.0.1:${consul}" }\nscheduler: { port: ${api} }\nclient: { address: "http://127.0.0.1:${api}" }\nproxy: { inbound: { port: ${inbound} }, metrics: { port: ${metrics} } }\nagent: { outboundPortBase: ${13_001 + i * 300}, metrics: { port: ${agentMetrics} } }\n`,
  );
  let out = '';
  const started = performance.now();
  const up: ChildProcess = spawn(process.execPath, [join(ROOT, 'bin/weft.js'), '--config', configFile, 'up', '--driver', DRIVER, '--hosts', '127.0.51.2,127.0.51.3'], {
    cwd: ROOT,
    env: { ...process.env, WEFT_CONFIG: '', WEFT_DATA_DIR: '', CONSUL_HTTP_ADDR: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  up.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  up.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => up.once('exit', () => r()));
  const at = (): number => (performance.now() - started) / 1000;
  try {
    await eventually(() => (out.includes('weft is up on this machine') ? true : up.exitCode !== null ? Promise.reject(new Error(out)) : undefined), 300_000, 'weft up', 100);
    const liveS = at();
    const steps = [...out.matchAll(/^up {8}\| (\w+): .* \(([\d.]+s)\)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    const token = readFileSync(join(dataDir, 'scheduler', 'token'), 'utf8').trim();
    let bothVersionsS: number | undefined;
    await eventually(
      async () => {
        const res = await fetch(`http://127.0.0.1:${api}/v1/stats?window=10`, { headers: { authorization: `Bearer ${token}` } });
        const body = (await res.json()) as { services: Array<{ service: string; versions: Array<{ version: string; rps: number }> }> };
        const versions = body.services.find((s) => s.service === 'backend')?.versions ?? [];
        return versions.length === 2 && versions.every((v) => v.rps > 0);
      },
      TARGET_TRAFFIC_S * 1000,
      'traffic on both versions',
      500,
    ).then(
      () => (bothVersionsS = at()),
      () => undefined,
    );
    let scalingS: number | undefined;
    await eventually(() => /^up {8}\| scaling: backend\.v1 \d+ -> \d+/m.test(out), Math.max(1000, (TARGET_TRAFFIC_S + 60) * 1000 - at() * 1000), 'a scaling decision', 250).then(
      () => (scalingS = at()),
      () => undefined,
    );
    const stopAt = performance.now();
    up.kill('SIGINT');
    await exited;
    return { steps, liveS, bothVersionsS, scalingS, stopS: (performance.now() - stopAt) / 1000 };
  } finally {
    if (up.exitCode === null) {
      up.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 60_000))]);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (s: number | undefined): string => (s === undefined ? 'never' : `${s.toFixed(1)} s`);
console.log(`weft up, first run (fresh data directory), ${DRIVER} driver, two hosts, the demo; weft runs as ${runtime}; ${RUNS} run(s)\n`);
console.log('| run | live demo | both versions | first scaling decision | stop (Ctrl-C) | steps |');
console.log('|---|---|---|---|---|---|');
const runs: Run[] = [];
for (let i = 1; i <= RUNS; i++) {
  const r = await oneRun(i);
  runs.push(r);
  const after = (s: number | undefined): string => (s === undefined ? '' : ` (+${(s - r.liveS).toFixed(1)} s)`);
  console.log(`| ${i} | ${fmt(r.liveS)} | ${fmt(r.bothVersionsS)}${after(r.bothVersionsS)} | ${fmt(r.scalingS)}${after(r.scalingS)} | ${fmt(r.stopS)} | ${r.steps.join(', ')} |`);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const live = median(runs.map((r) => r.liveS));
const traffic = runs.map((r) => r.bothVersionsS).filter((x): x is number => x !== undefined);
const scaling = runs.map((r) => r.scalingS).filter((x): x is number => x !== undefined);
console.log(`\nmedian live demo ${live.toFixed(1)} s = ${(live / TARGET_LIVE_S).toFixed(2)}x the ${TARGET_LIVE_S} s target`);
if (traffic.length > 0) console.log(`median both versions ${median(traffic).toFixed(1)} s = ${(median(traffic) / TARGET_TRAFFIC_S).toFixed(2)}x the ${TARGET_TRAFFIC_S} s target`);
if (scaling.length > 0) console.log(`median first scaling decision ${median(scaling).toFixed(1)} s = ${(median(scaling) / TARGET_TRAFFIC_S).toFixed(2)}x the ${TARGET_TRAFFIC_S} s target`);
console.log(`runs with a scaling decision within ${TARGET_TRAFFIC_S + 60} s: ${scaling.length}/${RUNS}`);
