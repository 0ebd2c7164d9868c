/**
 * The proxy's headline figure: two hops with mTLS, weft against HAProxy 2.6,
 * in one run (bench/proxy/two-hops-topology.ts draws both topologies).
 *
 *   throughput   wrk -t1 -c32 -d<s> against direct, weft and HAProxy; ratio weft / HAProxy
 *   latency      constant 1,000 rps for <s> (rate-load.ts, open loop, latency from the
 *                scheduled send time); added p50 / p99 = proxied minus direct
 *   memory       VmRSS (and VmHWM, the peak) of each proxy process after the runs
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
import { constantRate, type RateResult } from './rate-load.js';
import { type Endpoint, startTopology } from './two-hops-topology.js';

const seconds = Number(process.argv[2] ?? 10);
const ROOT = join(import.meta.dirname, '../..');

const setup = spawnSync('bash', [join(ROOT, 'scripts/setup-bench.sh')], { stdio: 'inherit' });
if (setup.status !== 0) process.exit(setup.status ?? 1);

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
const dir = mkdtempSync(join(tmpdir(), 'weft-bench-hops-'));
const topo = await startTopology(dir, { log: (s) => console.error(s) });
try {
  const cases: Array<{ name: string; target: Endpoint; host?: string }> = [
    { name: 'direct', target: topo.app },
    { name: 'haproxy', target: topo.haproxy },
    { name: 'weft', target: topo.weft, host: 'backend' },
  ];
  console.log(`two hops with mTLS, wrk -t1 -c32 -d${seconds}s; constant 1,000 rps for ${seconds}s; node ${process.version}`);
  const thr: Record<string, number> = {};
  for (const c of cases) {
    wrk(c.target, c.host, 2); // warm-up: connections, JIT, pools
    const r = wrk(c.target, c.host, seconds);
    thr[c.name] = r.rps;
    console.log(`throughput  ${c.name.padEnd(8)} ${f(r.rps, 0).padStart(7)} req/s   latency ${r.latency}${r.errors === '' ? '' : `   ${r.errors}`}`);
  }
  console.log(`throughput ratio weft/haproxy: ${f(thr['weft']! / thr['haproxy']!)}x (target >= 0.5x)`);

  const lat: Record<string, RateResult> = {};
  for (const c of cases) {
    await constantRate({ host: c.target.host, port: c.target.port, hostHeader: c.host, rate: 1000, ms: 2000 }); // warm-up
    const r = await constantRate({ host: c.target.host, port: c.target.port, hostHeader: c.host, rate: 1000, ms: seconds * 1000 });
    lat[c.name] = r;
    console.log(`1,000 rps   ${c.name.padEnd(8)} p50 ${f(r.p50)} ms   p99 ${f(r.p99)} ms   max ${f(r.max)} ms   ok ${r.ok}/${r.sent}${r.errors > 0 ? `   errors ${r.errors}` : ''}`);
  }
  for (const name of ['haproxy', 'weft']) {
    const r = lat[name]!;
    console.log(`added over direct, ${name.padEnd(8)} p50 +${f(r.p50 - lat['direct']!.p50)} ms   p99 +${f(r.p99 - lat['direct']!.p99)} ms${name === 'weft' ? '   (target p99 <= +2 ms)' : ''}`);
  }
  for (const [name, pid] of Object.entries(topo.pids)) {
    const m = rss(pid);
    console.log(`memory      ${name.padEnd(16)} VmRSS ${f(m.rssMb, 1)} MB   VmHWM ${f(m.hwmMb, 1)} MB${name.startsWith('weft') ? '   (target <= 80 MB)' : ''}`);
  }
} finally {
  await topo.stopAll();
  rmSync(dir, { recursive: true, force: true });
}
