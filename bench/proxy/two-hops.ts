/**
 * The proxy's headline figure: two hops with mTLS, weft against HAProxy 2.6,
 * in one run (bench/proxy/two-hops-topology.ts draws both topologies).
 *
 *   throughput   wrk -t1 -c32 -d<s> against direct, weft and HAProxy, in WEFT_BENCH_ROUNDS rounds
 *                (default 3); ratio weft / HAProxy within each round, median over the rounds
 *   latency      constant 1,000 rps for <s> (rate-load.ts, open loop, latency from the
 *                scheduled send time); added p50 / p99 = proxied minus direct
 *   memory       VmRSS (and VmHWM, the peak) of each proxy process after the runs; the proxies
 *                get the launchers' node flags (PROXY_NODE_FLAGS), or WEFT_BENCH_NODE_ARGS
 *   floor        the same two hops through bare Node relays with no weft code: how close
 *                to Node's own floor weft is. WEFT_BENCH_FLOOR picks them: undici (default;
 *                bare-relay.mjs on http.Server + undici), node (the same on node:http),
 *                raw (raw-relay.mjs, llhttp on raw sockets), a comma list, or none.
 *                WEFT_BENCH_ONLY=weft (a comma list) runs only those cases, for profiling
 *
 * Targets (the proxy issue): throughput >= 0.5x HAProxy; added p99 <= 2 ms at
 * 1,000 rps; RSS <= 80 MB per proxy. 2 shared cores: wrk, both proxies and
 * the app compete, so the ratio of the same run is the figure to read.
 *
 *   npm run bench:proxy-hops [-- seconds=10]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JavaScript (bin/ runs before anything compiles TypeScript), no declarations
import { bundleIsFresh } from '../../bin/bundle-manifest.js';
import { constantRate, type RateResult } from './rate-load.js';
import { type Endpoint, type FloorClient, proxyNodeArgs, startTopology } from './two-hops-topology.js';

const seconds = Number(process.argv[2] ?? 10);
const rounds = Number(process.env['WEFT_BENCH_ROUNDS'] ?? 3);
const ROOT = join(import.meta.dirname, '../..');

const setup = spawnSync('bash', [join(ROOT, 'scripts/setup-bench.sh')], { stdio: 'inherit' });
if (setup.status !== 0) process.exit(setup.status ?? 1);
// weft as deployed: bin/weft.js runs the bundle when it matches the sources, so build it now
// (sources edited since the last setup would otherwise be run through tsx, ~50 MB more per proxy).
const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--if-stale'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const runtime = process.env['WEFT_NO_BUNDLE'] === '1' || !bundleIsFresh(ROOT) ? 'tsx (sources)' : 'bundle (dist/)';

/** wrk's Requests/sec and latency line. */
function wrk(target: Endpoint, host: string | undefined, secs: number): { rps: number; latency: string; errors: string } {
  const args = ['-t1', '-c32', `-d${secs}s`, '--latency', `http://${target.host}:${target.port}/`];
  if (host !== undefined) args.unshift('-H', `Host: ${host}`);
  const r = spawnSync('wrk', args, { encoding: 'utf8', timeout: (secs + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(r.stdout)?.[1] ?? Number.NaN);
  const latency = /Latency\s+(\S+)\s+(\S+)\s+(\S+)/.exec(r.stdout)?.slice(1, 4).join(' avg/stdev/max ') ?? '?';
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(r.stdout)?.[0] ?? '';
  if (Number.isNaN(rps)) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
  return { rps, latency, errors };
}

function rss(pid: number): { rssMb: number; hwmMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}

const f = (n: number, d = 2): string => n.toFixed(d);
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const dir = mkdtempSync(join(tmpdir(), 'weft-bench-hops-'));
const floorEnv = process.env['WEFT_BENCH_FLOOR'] ?? 'undici';
const floors = floorEnv === 'none' ? [] : (floorEnv.split(',') as FloorClient[]);
const topo = await startTopology(dir, { log: (s) => console.error(s), floors });
try {
  const only = process.env['WEFT_BENCH_ONLY']; // e.g. "weft" while profiling (ratios need haproxy)
  const cases: Array<{ name: string; target: Endpoint; host?: string }> = [
    { name: 'direct', target: topo.app },
    { name: 'haproxy', target: topo.haproxy },
    { name: 'weft', target: topo.weft, host: 'backend' },
    ...topo.floors.map((f) => ({ name: `floor-${f.client}`, target: f.endpoint })),
  ].filter((c) => only === undefined || only.split(',').includes(c.name));
  console.log(`two hops with mTLS, wrk -t1 -c32 -d${seconds}s x ${rounds} rounds; constant 1,000 rps for ${seconds}s; node ${process.version}; weft runs from ${runtime} with node flags [${proxyNodeArgs().join(' ')}]; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  for (const c of cases) wrk(c.target, c.host, 2); // warm-up: connections, JIT, pools
  // Rounds, each running every case once: the machine's load drifts (other engineers' suites), so a
  // ratio is taken within a round (cases seconds apart), and the median over rounds is reported.
  const runs: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const c of cases) {
      const r = wrk(c.target, c.host, seconds);
      const list = runs[c.name] ?? [];
      list.push(r.rps);
      runs[c.name] = list;
      console.log(`throughput  ${c.name.padEnd(12)} ${f(r.rps, 0).padStart(7)} req/s   latency ${r.latency}${r.errors === '' ? '' : `   ${r.errors}`}   (round ${round + 1})`);
    }
  }
  const ratio = (a: string, b: string): string => {
    const per = runs[a]!.map((x, i) => x / runs[b]![i]!);
    return `${f(median(per))}x (rounds ${per.map((x) => f(x)).join(' ')})`;
  };
  for (const c of cases) console.log(`throughput  ${c.name.padEnd(12)} median ${f(median(runs[c.name]!), 0)} req/s`);
  if (runs['haproxy'] !== undefined && runs['weft'] !== undefined) console.log(`throughput ratio weft/haproxy: ${ratio('weft', 'haproxy')} (target >= 0.5x)`);
  for (const fl of only === undefined ? topo.floors : []) {
    const name = `floor-${fl.client}`;
    console.log(`throughput ratio ${name}/haproxy: ${ratio(name, 'haproxy')}   weft/${name}: ${ratio('weft', name)}`);
  }

  const lat: Record<string, RateResult> = {};
  for (const c of cases) {
    await constantRate({ host: c.target.host, port: c.target.port, hostHeader: c.host, rate: 1000, ms: 2000 }); // warm-up
    const r = await constantRate({ host: c.target.host, port: c.target.port, hostHeader: c.host, rate: 1000, ms: seconds * 1000 });
    lat[c.name] = r;
    console.log(`1,000 rps   ${c.name.padEnd(12)} p50 ${f(r.p50)} ms   p99 ${f(r.p99)} ms   max ${f(r.max)} ms   ok ${r.ok}/${r.sent}${r.errors > 0 ? `   errors ${r.errors}` : ''}`);
  }
  for (const name of cases.map((c) => c.name).filter((n) => n !== 'direct' && lat['direct'] !== undefined)) {
    const r = lat[name]!;
    console.log(`added over direct, ${name.padEnd(12)} p50 +${f(r.p50 - lat['direct']!.p50)} ms   p99 +${f(r.p99 - lat['direct']!.p99)} ms${name === 'weft' ? '   (target p99 <= +2 ms)' : ''}`);
  }
  for (const [name, pid] of Object.entries(topo.pids)) {
    const m = rss(pid);
    console.log(`memory      ${name.padEnd(18)} VmRSS ${f(m.rssMb, 1)} MB   VmHWM ${f(m.hwmMb, 1)} MB${name.startsWith('weft') ? '   (target <= 80 MB)' : ''}`);
  }
  console.log(`load average after: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
} finally {
  await topo.stopAll();
  rmSync(dir, { recursive: true, force: true });
}
