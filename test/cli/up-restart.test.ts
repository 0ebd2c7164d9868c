/**
 * `weft up` keeps its pieces running: the real binary starts every piece
 * (dev Consul, ca init, scheduler, agent with the process driver, proxy) on
 * free loopback ports; the proxy is killed with SIGKILL; `weft up` says so,
 * restarts it at once, the new proxy serves its metrics port again, and the
 * other pieces are the same processes as before. SIGTERM then stops
 * everything in reverse order, the restarted proxy first.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { startWeftUp } from './run-weft.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-up-restart-'));
const dataDir = join(dir, 'data');
const [consulPort, apiPort, inboundPort, metricsPort, outboundPort, dynamicMin] = await Promise.all([
  freePort(),
  freePort(),
  freePort(),
  freePort(),
  freePort(),
  freePort(),
]);
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  `dataDir: ${dataDir}
nodeName: up-restart
consul: { address: "127.0.0.1:${consulPort}" }
scheduler: { port: ${apiPort}, dynamicPortMin: ${dynamicMin}, dynamicPortMax: ${dynamicMin + 10} }
client: { address: "http://127.0.0.1:${apiPort}" }
proxy: { inbound: { port: ${inboundPort} }, metrics: { port: ${metricsPort} } }
agent: { outboundPortBase: ${outboundPort}, heartbeatTtlMs: 3000 }
log: { format: json }
`,
);

let up: ChildProcess | undefined;
let out = '';
let upExit: Promise<number | null> = Promise.resolve(null);
const pids = new Map<string, number>();

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

t.teardown(async () => {
  if (up !== undefined && up.exitCode === null && up.signalCode === null) {
    up.kill('SIGTERM');
    await Promise.race([upExit, new Promise((r) => setTimeout(r, 20_000).unref())]);
    if (up.exitCode === null) up.kill('SIGKILL');
  }
  for (const pid of [...pids.values(), ...[...out.matchAll(/proxy is healthy again \(pid (\d+)/g)].map((m) => Number(m[1]))]) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

t.test('weft up starts every piece', async (t) => {
  const run = startWeftUp(configFile, (text) => (out += text), () => out);
  up = run.proc;
  upExit = run.exited;
  await run.ready;
  for (const m of out.matchAll(/^up {8}\| (\w+) is healthy \(pid (\d+)\)$/gm)) pids.set(m[1]!, Number(m[2]));
  t.strictSame([...pids.keys()], ['consul', 'scheduler', 'agent', 'proxy'], 'every daemon is named with its pid');
  t.ok(await answers(`http://127.0.0.1:${metricsPort}/healthz`), "the proxy's /healthz answers");
});

/** The pid of each piece's current process, from weft up's lines ("agent is healthy (again) (pid N"). */
function currentPids(): Map<string, number> {
  const now = new Map<string, number>();
  for (const m of out.matchAll(/^up {8}\| (\w+) is healthy (?:again )?\(pid (\d+)/gm)) now.set(m[1]!, Number(m[2]));
  return now;
}

t.test('a proxy killed with SIGKILL is restarted at once and serves again; nothing else is touched', async (t) => {
  const before = currentPids();
  const old = before.get('proxy')!;
  process.kill(old, 'SIGKILL');
  await eventually(() => out.includes(`up        | proxy (pid ${old}) was killed by SIGKILL: restarting it now`), 10_000, `the crash line\n${out}`);
  const again = await eventually(() => /^up {8}\| proxy is healthy again \(pid (\d+), [\d.]+s after it died\)$/m.exec(out), 60_000, `the proxy healthy again\n${out}`, 200);
  const fresh = Number(again[1]);
  t.not(fresh, old, 'a new proxy process');
  t.ok(alive(fresh));
  t.notOk(alive(old));
  t.ok(await answers(`http://127.0.0.1:${metricsPort}/healthz`), 'its /healthz answers (both stacks listen)');
  t.ok(await answers(`http://127.0.0.1:${metricsPort}/metrics`), 'its metrics are served again');
  for (const piece of ['consul', 'scheduler', 'agent']) t.ok(alive(before.get(piece)), `${piece}: the same process still runs`);
  t.ok(await answers(`http://127.0.0.1:${apiPort}/v1/health`), 'the scheduler answers');
  t.notMatch(out, /up {8}\| stopping /, 'weft up stopped nothing');
  t.equal(up!.exitCode, null, 'weft up runs on');
  pids.set('proxy', fresh);
  for (const [piece, pid] of currentPids()) pids.set(piece, pid);
});

t.test('SIGTERM stops every piece in reverse order, the restarted proxy first', async (t) => {
  up!.kill('SIGTERM');
  const code = await Promise.race([upExit, new Promise<'late'>((r) => setTimeout(() => r('late'), 30_000).unref())]);
  t.equal(code, 0, out.slice(-2000));
  const order = ['proxy', 'agent', 'scheduler', 'consul'].map((p) => out.indexOf(`up        | stopping ${p}`));
  t.ok(order.every((i) => i > 0), 'each piece was stopped');
  t.strictSame([...order].sort((a, b) => a - b), order, 'proxy, agent, scheduler, consul');
  t.notOk(alive(pids.get('proxy')), 'the restarted proxy is gone');
  t.match(out, /up {8}\| stopped\n/);
});
