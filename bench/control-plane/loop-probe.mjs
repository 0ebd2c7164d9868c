/**
 * Loaded with `--import` into the benchmark's scheduler when BENCH_STALLS is
 * set (a directory): every time the event loop was held for 20 ms or more,
 * one line `<end, monotonic us> <stall ms> <on-CPU ms> <runnable, waiting ms>`
 * is appended to <dir>/stalls.<pid>. A request arriving during a stall waits
 * for its end, so these are the waits an API call can meet. The main
 * thread's scheduler statistics (Linux /proc schedstat) split each stall
 * into time spent running (work that held the loop) and time spent waiting
 * for a core (a busy machine), so the figures mean the same on a quiet and
 * on a loaded machine. stalls.mjs joins them with the process's CPU profile
 * (BENCH_CPU_PROF) to say what held the loop.
 * Plain JavaScript: it runs in the bundle as well as under tsx.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env['BENCH_STALLS'];
const EVERY_MS = 5;
const REPORT_MS = 20;
/** The main thread's time on a CPU and waiting for one (ns); zeros where /proc has no schedstat. */
function schedstat() {
  try {
    const [run, wait] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number);
    return { run, wait };
  } catch {
    return { run: 0, wait: 0 };
  }
}
if (dir !== undefined && dir !== '') {
  const file = join(dir, `stalls.${process.pid}`);
  let last = process.hrtime.bigint();
  let lastStat = schedstat();
  setInterval(() => {
    const now = process.hrtime.bigint();
    const stat = schedstat();
    const stallMs = Number(now - last) / 1e6 - EVERY_MS;
    if (stallMs >= REPORT_MS) appendFileSync(file, `${now / 1000n} ${stallMs.toFixed(1)} ${((stat.run - lastStat.run) / 1e6).toFixed(1)} ${((stat.wait - lastStat.wait) / 1e6).toFixed(1)}\n`);
    last = now;
    lastStat = stat;
  }, EVERY_MS).unref();
}
