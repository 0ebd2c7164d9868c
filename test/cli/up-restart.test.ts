/**
 * `weft up --detach`, supervision and `weft down`, with the real binary:
 * `weft up --detach` returns once every piece (dev Consul, ca init,
 * scheduler, two hosts' agents with the process driver and proxies) is
 * healthy, leaving weft up in the background; proxy-1 is killed with SIGKILL;
 * the background weft up says so in its log, restarts it at once, the new
 * proxy serves again, and the other pieces are the same processes as before.
 * `weft down` then stops everything in reverse order, the restarted proxy
 * first, and nothing is left. Hosts on 127.0.22.2 and 127.0.22.3 (other test
 * files use other addresses).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { freeOutboundBase, weft } from './run-weft.js';

t.setTimeout(360_000);
const HOSTS = ['127.0.22.2', '127.0.22.3'];
const dir = mkdtempSync(join(tmpdir(), 'weft-up-restart-'));
const dataDir = join(dir, 'data');
const [consulPort, apiPort, inboundPort, metricsPort, agentMetricsPort] = await Promise.all(Array.from({ length: 5 }, () => freePort()));
const outboundPort = await freeOutboundBase();
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  `dataDir: ${dataDir}
nodeName: up-restart
consul: { address: "127.0.0.1:${consulPort}" }
scheduler: { port: ${apiPort} }
client: { address: "http://127.0.0.1:${apiPort}" }
proxy: { inbound: { port: ${inboundPort} }, metrics: { port: ${metricsPort} } }
agent: { outboundPortBase: ${outboundPort}, heartbeatTtlMs: 3000, metrics: { port: ${agentMetricsPort} } }
`,
);
const env = { WEFT_CONFIG: configFile };
const ROOT = join(import.meta.dirname, '../..');
const proxy1 = `http://${HOSTS[0]}:${metricsPort}`;
const pieces = new Map<string, number>();

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

function backgroundPid(): number | undefined {
  try {
    return (JSON.parse(readFileSync(join(dataDir, 'up.json'), 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

/** weft up's own log, as `weft logs up --raw` would print it: its messages. */
function upLog(): string {
  try {
    return readFileSync(join(dataDir, 'logs', 'up.log'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { msg: string }).msg)
      .join('\n');
  } catch {
    return '';
  }
}

// If tap ends this process early (a timeout), the teardown below may not run: the background weft up
// would run on, so it is told to stop (it stops its pieces itself).
process.once('exit', () => {
  const bg = backgroundPid();
  if (alive(bg)) process.kill(bg!, 'SIGTERM');
});

t.teardown(async () => {
  const bg = backgroundPid();
  if (alive(bg)) {
    process.kill(bg!, 'SIGTERM');
    await eventually(() => !alive(bg), 60_000, 'the background weft up to stop').catch(() => process.kill(bg!, 'SIGKILL'));
  }
  for (const pid of pieces.values()) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

t.test('weft up --detach returns once everything is up, and leaves it running in the background', async (t) => {
  const r = await weft(['--config', configFile, 'up', '--detach', '--driver', 'process', '--no-demo', '--hosts', HOSTS.join(','), '--start-timeout', '120s', '--stop-timeout', '15s'], {
    env,
    cwd: ROOT,
    timeoutMs: 300_000,
  });
  t.equal(r.code, 0, r.stdout + r.stderr);
  for (const m of r.stdout.matchAll(/^up {8}\| ([\w-]+) is healthy \(pid (\d+)/gm)) pieces.set(m[1]!, Number(m[2]));
  t.strictSame([...pieces.keys()].sort(), ['agent-1', 'agent-2', 'consul', 'proxy-1', 'proxy-2', 'scheduler'], r.stdout);
  t.match(r.stdout, /^up {8}\| weft is up on this machine:$/m, 'its progress was shown');
  const bg = backgroundPid();
  t.match(r.stdout, new RegExp(`\\nweft up runs in the background \\(pid ${bg}\\): \`weft top\` shows the traffic, \`weft logs up -f\` its lines, \`weft down\` stops it\\n$`));
  t.ok(alive(bg), 'weft up runs on in the background');
  t.ok(await answers(`${proxy1}/healthz`), "proxy-1's /healthz answers");
  const top = await weft(['top', '--iterations', '1'], { env });
  t.equal(top.code, 0, top.stderr);
  t.match(top.stdout, /^weft top · \d\d:\d\d:\d\d UTC · over the last \d+s from 2 proxies/, 'weft top reads the mesh it runs');
});

t.test('a proxy killed with SIGKILL is restarted at once and serves again; nothing else is touched', async (t) => {
  const old = pieces.get('proxy-1')!;
  process.kill(old, 'SIGKILL');
  await eventually(() => upLog().includes(`proxy-1 (pid ${old}) was killed by SIGKILL: restarting it now`), 20_000, `the crash line\n${upLog()}`);
  const again = await eventually(() => /^proxy-1 is healthy again \(pid (\d+), [\d.]+s after it died\)$/m.exec(upLog()), 90_000, `proxy-1 healthy again\n${upLog()}`, 200);
  const fresh = Number(again[1]);
  t.not(fresh, old, 'a new proxy process');
  t.notOk(alive(old));
  t.ok(await answers(`${proxy1}/metrics`), 'its metrics are served again');
  for (const piece of ['consul', 'scheduler', 'agent-1', 'agent-2', 'proxy-2']) t.ok(alive(pieces.get(piece)), `${piece}: the same process still runs`);
  t.notMatch(upLog(), /^stopping /m, 'weft up stopped nothing');
  pieces.set('proxy-1', fresh);
  const logs = await weft(['logs', 'up', '-n', '50'], { env });
  t.match(logs.stdout, new RegExp(`\\] INFO \\(up\\): proxy-1 \\(pid ${old}\\) was killed by SIGKILL: restarting it now\\n`), '`weft logs up` shows it, pretty');
});

t.test('weft down stops everything in reverse order, the restarted proxy first; nothing is left', async (t) => {
  const bg = backgroundPid()!;
  const r = await weft(['down'], { env, timeoutMs: 120_000 });
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, new RegExp(`^stopping weft up \\(pid ${bg}, in the background\\)\\n`));
  const order = ['proxy-2', 'proxy-1', 'agent-2', 'agent-1', 'scheduler', 'consul'].map((p) => r.stdout.indexOf(`up        | stopping ${p}\n`));
  t.ok(order.every((i) => i > 0), `each piece was stopped: ${order}\n${r.stdout}`);
  t.strictSame([...order].sort((a, b) => a - b), order, 'proxies, agents, scheduler, consul');
  t.match(r.stdout, /up {8}\| stopped\nweft up stopped \([\d.]+s\)\n$/);
  t.notOk(alive(bg), 'the background weft up is gone');
  t.strictSame([...pieces].filter(([, pid]) => alive(pid)), [], 'no piece runs, the restarted proxy included');
  t.notOk(existsSync(join(dataDir, 'up.json')), 'its record is removed');
  const again = await weft(['down'], { env });
  t.equal(again.code, 0);
  t.equal(again.stdout, `weft up is not running with data directory ${dataDir}: nothing to stop\n`);
});
