/**
 * `weft up` end to end, all real: the binary starts dev Consul, `ca init`, the
 * REAL `weft scheduler`, an agent (process driver) and its proxy; then the
 * client commands run against that scheduler (deploy with progress, status,
 * node ls, secret, split, a refused token), the demo app answers through the
 * proxy's outbound port, and SIGTERM stops every piece in reverse order.
 * Every port is a free loopback port; every wait is bounded; teardown stops
 * `weft up` and the demo app processes the agent left running (by design).
 */
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { startWeftUp, weft } from './run-weft.js';

const ROOT = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'weft-up-'));
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
nodeName: up-test
consul: { address: "127.0.0.1:${consulPort}" }
scheduler: { port: ${apiPort}, reconcileIntervalMs: 1000, dynamicPortMin: ${dynamicMin}, dynamicPortMax: ${dynamicMin + 40} }
client: { address: "http://127.0.0.1:${apiPort}" }
proxy: { inbound: { port: ${inboundPort} }, metrics: { port: ${metricsPort} } }
agent: { outboundPortBase: ${outboundPort}, heartbeatTtlMs: 3000, drainDelayMs: 200 }
log: { format: json }
`,
);
const env = { WEFT_CONFIG: configFile };

/** GET `url` with a Host header, as `curl -H 'Host: ...'` does. */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host }, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

let up: ChildProcess | undefined;
let upOut = '';
let upExit: Promise<number | null> = Promise.resolve(null);

t.teardown(async () => {
  if (up !== undefined && up.exitCode === null && up.signalCode === null) {
    up.kill('SIGTERM');
    await Promise.race([upExit, new Promise((r) => setTimeout(r, 20_000).unref())]);
    if (up.exitCode === null) up.kill('SIGKILL');
  }
  // The agent leaves workloads running on purpose (an agent restart must not stop them): stop the demo apps here.
  const procDir = join(dataDir, 'agent', 'processes');
  for (const f of readdirSync(procDir, { withFileTypes: true }).filter((e) => e.name.endsWith('.json'))) {
    const rec = JSON.parse(readFileSync(join(procDir, f.name), 'utf8')) as { pid?: number; running?: boolean };
    if (rec.pid !== undefined) {
      try {
        process.kill(-rec.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

t.test('weft up starts every piece and says what to do next', async (t) => {
  const run = startWeftUp(configFile, (text) => (upOut += text), () => upOut);
  up = run.proc;
  upExit = run.exited;
  await run.ready;
  for (const piece of ['consul', 'ca', 'scheduler', 'agent', 'proxy']) t.match(upOut, `up        | ${piece} is healthy`, piece);
  t.match(upOut, /\nscheduler \| \{.*"msg":"scheduler API listening"/, 'children log lines carry their prefix');
  t.match(upOut, `agent      node up-test, process driver`);
  t.match(upOut, './scripts/weft deploy examples/hello.yaml');
  t.match(upOut, `curl -H 'Host: hello' http://127.0.0.1:${outboundPort}/`);
});

t.test('against the real scheduler: deploy with progress, status, and the demo app through the proxy', async (t) => {
  const deploy = await weft(['deploy', 'examples/hello.yaml', '--timeout', '90s', '--interval', '250ms'], { env, cwd: ROOT, timeoutMs: 120_000 });
  t.equal(deploy.code, 0, deploy.stderr);
  t.match(deploy.stdout, /^hello: created, version 1\n/);
  t.match(deploy.stdout, /hello: 2\/2 running, 2 healthy\nhello: version 1 is healthy\n$/);

  const status = await weft(['status', 'hello', '--json'], { env });
  const body = JSON.parse(status.stdout) as { groups: Array<{ desired: number; healthy: number }>; allocations: Array<{ node: string; status: string }> };
  t.strictSame(body.groups.map((g) => [g.desired, g.healthy]), [[2, 2]]);
  t.strictSame(body.allocations.map((a) => [a.node, a.status]), [['up-test', 'running'], ['up-test', 'running']]);
  const table = await weft(['status'], { env });
  t.match(table.stdout, /^NAME\s+VERSION\s+STATUS\s+DESIRED\s+RUNNING\s+HEALTHY\s+SUBMITTED\nhello\s+1\s+healthy\s+2\s+2\s+2\s+/);

  const answer = await eventually(
    async () => {
      // node:http, not fetch: fetch does not let a caller set Host, which is how the outbound proxy picks the service.
      const res = await getWithHost(`http://127.0.0.1:${outboundPort}/hi`, 'hello');
      return res.status === 200 ? (JSON.parse(res.body) as { service: string; path: string }) : undefined;
    },
    30_000,
    'the demo app through the proxy',
    250,
  );
  t.match(answer, { service: 'hello', path: '/hi' });
});

t.test('against the real scheduler: nodes, secrets, splits and a refused token', async (t) => {
  const nodes = await weft(['node', 'ls'], { env });
  t.equal(nodes.code, 0, nodes.stderr);
  t.match(nodes.stdout, /^NODE\s+ADDRESS\s+STATUS\s+DRIVERS\s+ALLOCS\s+CPU\s+MEMORY\s+ATTRIBUTES\nup-test\s+127\.0\.0\.1\s+ready\s+process\s+2\s+/);
  const set = await weft(['secret', 'set', 'greeting'], { env, input: 'top-secret-value\n' });
  t.equal(set.code, 0, set.stderr);
  const list = await weft(['secret', 'list'], { env });
  t.match(list.stdout, /^NAME\s+UPDATED\ngreeting\s+\d+s ago\n$/);
  t.notMatch(set.stdout + set.stderr + list.stdout, 'top-secret-value');
  const split = await weft(['split', 'hello', 'latest=100'], { env });
  t.equal(split.code, 0, split.stderr);
  t.match(split.stdout, /^hello:\nVERSION\s+WEIGHT\s+SHARE\nlatest\s+100\s+100%\n$/);
  const refused = await weft(['status'], { env: { ...env, WEFT_TOKEN: 'not-the-token-at-all' } });
  t.equal(refused.code, 2);
  t.match(refused.stderr, /^weft: WEFT_ERR_API_UNAUTHORIZED: .*the token from \$WEFT_TOKEN was refused/);
});

t.test('scale to 0 stops the workloads (which outlive `weft up` otherwise)', async (t) => {
  const r = await weft(['scale', 'hello', '0'], { env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'hello.hello: 2 -> 0 (`weft status hello` follows it)\n');
  const token = readFileSync(join(dataDir, 'scheduler', 'token'), 'utf8').trim();
  await eventually(
    async () => {
      const res = await fetch(`http://127.0.0.1:${apiPort}/v1/jobs/hello/status`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { groups: Array<{ running: number }> };
      return body.groups[0]?.running === 0 ? true : undefined;
    },
    30_000,
    'hello scaled to 0',
    250,
  );
  t.pass('no instance of hello runs');
});

t.test('SIGTERM stops every piece in reverse order', async (t) => {
  const started = Date.now();
  up!.kill('SIGTERM');
  const code = await Promise.race([upExit, new Promise<'late'>((r) => setTimeout(() => r('late'), 30_000).unref())]);
  t.equal(code, 0, upOut.slice(-2000));
  t.ok(Date.now() - started < 30_000);
  const order = ['proxy', 'agent', 'scheduler', 'consul'].map((p) => upOut.indexOf(`up        | stopping ${p}`));
  t.ok(order.every((i) => i > 0), 'each piece was stopped');
  t.strictSame([...order].sort((a, b) => a - b), order, 'proxy, agent, scheduler, consul');
  const health = await fetch(`http://127.0.0.1:${apiPort}/v1/health`).then(
    () => 'answered',
    () => 'refused',
  );
  t.equal(health, 'refused', 'the scheduler is gone');
});
