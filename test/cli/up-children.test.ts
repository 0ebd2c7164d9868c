/**
 * `weft up`'s child supervision with real processes: small Node daemons stand
 * in for the pieces (one serves HTTP on a fixed port, as the proxy does), are
 * killed with SIGKILL or made to crash at start, and the ChildSet restarts
 * them, backs off, gives up, and still stops everything in reverse order.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ChildSet, describeExit } from '../../src/cli/up/children.js';
import type { RestartPolicy } from '../../src/cli/up/restart-policy.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-up-children-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Serves its pid on PORT; exits 3 at start while the CRASH file exists; SIGTERM exits 0. */
const DAEMON = `
const fs = require('node:fs');
if (process.env.CRASH && fs.existsSync(process.env.CRASH)) { console.error('boom'); process.exit(3); }
process.on('SIGTERM', () => { console.log('bye'); process.exit(0); });
require('node:http').createServer((q, r) => r.end(String(process.pid))).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
`;

/** A daemon on a free port, and its probe: it answers there (as weft up probes its pieces). */
async function daemon(name: string, env: Record<string, string> = {}) {
  const port = await freePort();
  return {
    port,
    spec: { name, argv: ['-e', DAEMON], env: { ...process.env, ...env, PORT: String(port) } },
    probe: async () => (await servedPid(port)) !== undefined,
  };
}

/** The pid the daemon on `port` answers with, undefined while nothing answers. */
async function servedPid(port: number): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
    return Number(await res.text());
  } catch {
    return undefined;
  }
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const quick: RestartPolicy = { windowMs: 30_000, maxCrashes: 3, backoff: { baseMs: 100, maxMs: 400, jitter: 'equal' } };

t.test('describeExit names the code or the signal', async (t) => {
  t.equal(describeExit({ code: null, signal: 'SIGKILL' }), 'was killed by SIGKILL');
  t.equal(describeExit({ code: 3, signal: null }), 'exited with code 3');
  t.equal(describeExit({ code: null, signal: null }), 'could not be started');
});

t.test('a piece killed with SIGKILL is restarted at once; the others are untouched; the stop order holds', async (t) => {
  const lines: string[] = [];
  const set = new ChildSet((l) => lines.push(l), { policy: quick });
  const keeper = await daemon('keeper');
  const server = await daemon('server');
  const port = server.port;
  const firstPid = await set.startDaemon(keeper.spec, keeper.probe, 10_000);
  const oldPid = await set.startDaemon(server.spec, server.probe, 10_000);
  t.equal(await servedPid(port), oldPid);

  process.kill(oldPid!, 'SIGKILL');
  const newPid = await eventually(async () => {
    const pid = await servedPid(port);
    return pid !== undefined && pid !== oldPid ? pid : undefined;
  }, 10_000, 'the restarted server answering');
  t.not(newPid, oldPid, 'a new process serves');
  t.equal(set.pidOf('server'), newPid);
  t.ok(lines.includes(`up        | server (pid ${oldPid}) was killed by SIGKILL: restarting it now`), lines.join('\n'));
  await eventually(() => lines.some((l) => /^up {8}\| server is healthy again \(pid \d+, \d/.test(l)), 10_000, 'the healthy-again line');
  t.equal(set.pidOf('keeper'), firstPid, 'the other piece still runs, same process');
  t.notOk(lines.some((l) => l.includes('stopping')), 'nothing was stopped');

  await set.stopAll(5000);
  const stops = lines.filter((l) => l.includes('| stopping '));
  t.strictSame(stops, ['up        | stopping server', 'up        | stopping keeper'], 'the restarted piece keeps its place in the stop order');
  t.notOk(alive(newPid) || alive(firstPid), 'both stopped');
});

t.test('repeated crashes back off, then weft up gives up on that piece and keeps the others', async (t) => {
  const lines: string[] = [];
  const gaveUp: string[] = [];
  const set = new ChildSet((l) => lines.push(l), { policy: quick });
  set.onGiveUp((name) => gaveUp.push(name));
  const crash = join(dir, 'crash');
  const k = await daemon('keeper');
  const f = await daemon('flaky', { CRASH: crash });
  const keeper = await set.startDaemon(k.spec, k.probe, 10_000);
  const first = await set.startDaemon(f.spec, f.probe, 10_000);
  writeFileSync(crash, ''); // from now on every start of flaky exits 3
  process.kill(first!, 'SIGKILL');

  await eventually(() => gaveUp.length > 0, 15_000, 'giving up');
  t.strictSame(gaveUp, ['flaky']);
  const up = lines.filter((l) => l.startsWith('up        | flaky'));
  t.equal(up[0], `up        | flaky (pid ${first}) was killed by SIGKILL: restarting it now`);
  t.match(up[1], /^up {8}\| flaky \(pid \d+\) exited with code 3: restarting it in 0\.\d\ds \(crash 2 within 30s; 3 give up\)$/);
  t.match(up[2], /^up {8}\| flaky \(pid \d+\) exited with code 3: 3 crashes within 30s, giving up on it; the other pieces keep running \(Ctrl-C stops them\)$/);
  t.equal(up.length, 3, up.join('\n'));
  t.ok(lines.some((l) => l === 'flaky     | boom'), "the crashing piece's own output is shown");
  t.equal(set.pidOf('flaky'), undefined);
  t.equal(set.pidOf('keeper'), keeper, 'the other piece keeps running');

  await set.stopAll(5000);
  t.strictSame(lines.filter((l) => l.includes('| stopping ')), ['up        | stopping keeper'], 'only what runs is stopped');
  rmSync(crash, { force: true });
});

t.test('a stop cancels a restart waiting for its backoff', async (t) => {
  const lines: string[] = [];
  const slow: RestartPolicy = { windowMs: 60_000, maxCrashes: 5, backoff: { baseMs: 20_000, maxMs: 20_000, jitter: 'equal' } };
  const set = new ChildSet((l) => lines.push(l), { policy: slow });
  const p = await daemon('piece');
  const first = await set.startDaemon(p.spec, p.probe, 10_000);
  process.kill(first!, 'SIGKILL');
  const second = await eventually(() => {
    const pid = set.pidOf('piece');
    return pid !== undefined && pid !== first ? pid : undefined;
  }, 10_000, 'the first restart');
  process.kill(second, 'SIGKILL');
  await eventually(() => lines.some((l) => l.includes(`piece (pid ${second}) was killed by SIGKILL: restarting it in`)), 10_000, 'the backoff line');
  await set.stopAll(5000);
  t.equal(set.pidOf('piece'), undefined, 'nothing was started after the stop');
  t.notOk(lines.some((l) => l.includes('| stopping ')), 'nothing ran to be stopped');
});

t.test('a piece stopped by stopAll is not restarted', async (t) => {
  const lines: string[] = [];
  const set = new ChildSet((l) => lines.push(l), { policy: quick });
  const p = await daemon('piece');
  const pid = await set.startDaemon(p.spec, p.probe, 10_000);
  await set.stopAll(5000);
  t.notOk(alive(pid));
  t.notOk(lines.some((l) => l.includes('restarting')), lines.join('\n'));
  t.ok(lines.includes('piece     | bye'), 'it got SIGTERM and said so');
});
