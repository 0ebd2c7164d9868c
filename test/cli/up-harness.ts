/**
 * What the tests that run `weft up` for real share: the processes it started
 * (its pieces, from its progress lines; the hosts' workloads, from the process
 * driver's records) and killing whatever a failed run left behind.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export { alive } from '../helpers/processes.js';

/** The pid of each piece, from weft up's "NAME is healthy (pid N" lines. */
export function piecePids(upOut: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of upOut.matchAll(/^up {8}\| ([\w-]+) is healthy (?:again )?\(pid (\d+)/gm)) m.set(x[1]!, Number(x[2]));
  return m;
}

/** Every process the agents of `hosts` recorded under `<dataDir>/hosts/<host>/agent/processes` (the jobs' instances). */
export function workloadPids(dataDir: string, hosts: readonly string[]): number[] {
  const pids: number[] = [];
  for (const host of hosts) {
    const procDir = join(dataDir, 'hosts', host, 'agent', 'processes');
    let files: string[] = [];
    try {
      files = readdirSync(procDir).filter((f) => f.endsWith('.json'));
    } catch {
      continue;
    }
    for (const f of files) {
      try {
        const rec = JSON.parse(readFileSync(join(procDir, f), 'utf8')) as { pid?: number };
        if (rec.pid !== undefined) pids.push(rec.pid);
      } catch {
        // removed meanwhile
      }
    }
  }
  return pids;
}

/** SIGKILL to each pid's process group, else to the process; synchronous, so it also runs from an exit hook. */
export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
