/**
 * What held the scheduler's event loop: joins the stalls loop-probe.mjs
 * recorded (BENCH_STALLS=<dir>) with the CPU profile of the same process
 * (BENCH_CPU_PROF=<same dir>) and prints, for the longest stalls, where the
 * time went (inclusive ms per function: weft's own, then everything).
 *
 *   BENCH_STALLS=/tmp/p BENCH_CPU_PROF=/tmp/p npm run bench:control-plane -- --sizes 1000/10000
 *   node bench/control-plane/stalls.mjs /tmp/p [how many stalls, 10]
 *
 * Stalls during the deploy (the window run.ts writes to deploy.<pid>) are
 * marked with `deploy`. Each stall is also split into the main thread's time
 * on a CPU (the work that held the loop) and its time waiting for a core (a
 * busy machine); the summary counts both ways.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (dir === undefined) {
  console.error('usage: node bench/control-plane/stalls.mjs <dir> [count]');
  process.exit(2);
}
const count = Number(process.argv[3] ?? 10);

for (const file of readdirSync(dir).filter((f) => f.startsWith('stalls.'))) {
  const pid = file.slice('stalls.'.length);
  const profile = readdirSync(dir).find((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === pid);
  const stalls = readFileSync(join(dir, file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' ').map(Number))
    .map(([endUs, ms, cpuMs, waitMs]) => ({ endUs, ms, cpuMs: cpuMs ?? Number.NaN, waitMs: waitMs ?? Number.NaN }));
  const windowFile = join(dir, `deploy.${pid}`);
  const [from, to] = existsSync(windowFile) ? readFileSync(windowFile, 'utf8').trim().split(' ').map(Number) : [Number.NaN, Number.NaN];
  const inDeploy = (s) => s.endUs - s.ms * 1000 >= from && s.endUs - s.ms * 1000 <= to;
  const during = stalls.filter(inDeploy);
  const summary = (list) => {
    const over = (ms, of = (s) => s.ms) => list.filter((s) => of(s) >= ms).length;
    const cpu = (s) => s.cpuMs;
    return (
      `${list.length} >= 20 ms, ${over(50)} >= 50 ms, ${over(100)} >= 100 ms, max ${Math.max(0, ...list.map((s) => s.ms)).toFixed(0)} ms; ` +
      `on a CPU: ${over(50, cpu)} >= 50 ms, ${over(100, cpu)} >= 100 ms, max ${Math.max(0, ...list.map(cpu)).toFixed(0)} ms`
    );
  };
  console.log(`process ${pid}: ${summary(stalls)}; during the deploy: ${Number.isFinite(from) ? summary(during) : 'no window'}`);
  if (profile === undefined) {
    console.log('  (no CPU profile of this process: set BENCH_CPU_PROF to the same directory)');
    continue;
  }
  const p = JSON.parse(readFileSync(join(dir, profile), 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const times = [];
  let t = p.startTime;
  for (const d of p.timeDeltas) {
    t += d;
    times.push(t);
  }
  const label = (n) => {
    const f = n.callFrame;
    const where = f.url.replace(/^file:\/\//, '').split('/').slice(-2).join('/');
    return `${f.functionName || '(anonymous)'} ${where}:${f.lineNumber + 1}`;
  };
  const own = (n) => /\/(src|discovery|scheduler|base|agent)\//.test(n.callFrame.url) || /\/dist\/[^/]+\.js$/.test(n.callFrame.url);
  for (const s of [...stalls].sort((a, b) => b.ms - a.ms).slice(0, count)) {
    const start = s.endUs - s.ms * 1000;
    const incl = new Map();
    for (let i = 0; i < p.samples.length; i++) {
      if (times[i] < start || times[i] > s.endUs) continue;
      const dt = (times[i + 1] ?? s.endUs) - times[i];
      const seen = new Set();
      for (let id = p.samples[i]; id !== undefined; id = parent.get(id)) {
        const n = byId.get(id);
        const key = label(n);
        if (seen.has(key) || n.callFrame.functionName === '(root)') continue;
        seen.add(key);
        const e = incl.get(key) ?? { us: 0, own: own(n) };
        e.us += dt;
        incl.set(key, e);
      }
    }
    const ranked = [...incl].sort((a, b) => b[1].us - a[1].us);
    const fmt = ([k, e]) => `${(e.us / 1000).toFixed(0).padStart(5)} ms  ${k}`;
    console.log(`\n  ${s.ms.toFixed(0)} ms stall (${s.cpuMs.toFixed(0)} on a CPU, ${s.waitMs.toFixed(0)} waiting for one)${inDeploy(s) ? ' (deploy)' : ''} at +${((start - p.startTime) / 1e6).toFixed(2)} s of the profile`);
    for (const e of ranked.filter(([, e]) => e.own).slice(0, 10)) console.log(`    ${fmt(e)}`);
    console.log('    --');
    for (const e of ranked.filter(([, e]) => !e.own).slice(0, 6)) console.log(`    ${fmt(e)}`);
  }
}
