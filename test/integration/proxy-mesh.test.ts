/**
 * `weft proxy` as real processes on two simulated hosts, against the dev
 * Consul agent:
 *
 *   app (test) -> proxy h2 outbound (127.0.0.2) -mTLS-> proxy h3 inbound (127.0.0.3) -> apps on 127.0.0.3
 *
 * What the in-process tests under test/proxy/ cannot show: the wiring in
 * src/ (identities from disk, local.json, Consul watches for routes, splits,
 * intentions and local instances), the `weft-proxy` registration, the live
 * /metrics, SIGTERM draining, and last-known-good across a Consul stop and a
 * proxy restart, of the caller's proxy (routes) and of the destination's
 * (intentions, local instances). One topology serves every step, in order.
 */
import http from 'node:http';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { makeCa } from '../certs/fixtures.js';
import { eventually } from '../helpers/eventually.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { freePort } from '../helpers/ports.js';
import { get, instanceRegistration, makeHost, meshSigner, startApp, startProxy, writeLocal } from './proxy-hosts.js';

const ca = makeCa();
const consul = await startTestConsul(t);
const h2 = await makeHost(t, ca, 'h2', '127.0.0.2', ['frontend']);
const h3 = await makeHost(t, ca, 'h3', '127.0.0.3', ['backend', 'payments']);
const outboundPort = await freePort('127.0.0.2');
await writeLocal(h2, [{ service: 'frontend', outboundPort }]);

const b1 = await startApp(t, 'b1', h3.address, { slowMs: 1500 });
const b2 = await startApp(t, 'b2', h3.address);
const b3 = await startApp(t, 'b3', h3.address);
const pay = await startApp(t, 'pay', h3.address);
await consul.consul.agent.service.register(instanceRegistration(h3, 'h3-b1', 'backend', b1.port, { version: 'v1', weight: 3 }));
await consul.consul.agent.service.register(instanceRegistration(h3, 'h3-b2', 'backend', b2.port, { version: 'v1', weight: 1 }));
await consul.consul.agent.service.register(instanceRegistration(h3, 'h3-pay', 'payments', pay.port));

// swrr: exact shares, so counts can be asserted exactly.
// Proxies restarted inside a subtest must outlive it: their teardown belongs to the file.
const file = t;
let p2 = await startProxy(t, h2, consul.address, ['--algorithm', 'swrr']);
let p3 = await startProxy(t, h3, consul.address);

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
t.teardown(() => agent.destroy());

/** One request through h2's outbound port, as app `frontend`. */
function call(service: string, path = '/'): Promise<{ status: number; app?: string; source?: string; reason?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: h2.address, port: outboundPort, path, headers: { host: service }, agent, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const parsed = res.statusCode === 200 ? (JSON.parse(body) as { app: string; source: string }) : undefined;
        resolve({ status: res.statusCode ?? 0, app: parsed?.app, source: parsed?.source, reason: res.headers['x-weft-reason'] as string | undefined });
      });
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** `n` sequential calls, tallied by "status app". */
async function tally(n: number, service = 'backend'): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await call(service);
    const k = `${r.status} ${r.app ?? r.reason}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

t.test('weft-proxy is registered per host and discoverable, Port = metrics port', async (t) => {
  const entries = await eventually(async () => {
    const list = (await consul.consul.health.service({ service: 'weft-proxy', passing: true })) as Array<{ Service: { ID: string; Address: string; Port: number; Meta: Record<string, string> } }>;
    return list.length === 2 ? list : undefined;
  }, 5000, 'both proxies registered');
  const byHost = Object.fromEntries(entries.map((e) => [e.Service.Meta['weft_host'], e.Service]));
  t.match(byHost['h2'], { ID: 'weft-proxy-h2', Address: '127.0.0.2', Port: h2.metricsPort });
  t.match(byHost['h3'], { ID: 'weft-proxy-h3', Address: '127.0.0.3', Port: h3.metricsPort, Meta: { weft_mesh_port: String(h3.inboundPort) } });
});

t.test('two hops: weights 3:1 exactly (swrr), the caller identity reaches the app', async (t) => {
  await eventually(async () => (await call('backend')).status === 200, 10_000, 'first route');
  t.strictSame(await tally(40), { '200 b1': 30, '200 b2': 10 });
  const r = await call('backend');
  t.equal(r.source, 'spiffe://weft.test/ns/default/svc/frontend', 'x-weft-source is the verified caller');
});

t.test('a version split in KV is pushed to the running proxy', async (t) => {
  await consul.consul.agent.service.register(instanceRegistration(h3, 'h3-b3', 'backend', b3.port, { version: 'v2', weight: 1 }));
  await (await meshSigner(t)).put(consul.consul, 'weft/splits/backend', { v1: 1, v2: 1 });
  await eventually(async () => ((await tally(8))['200 b3'] ?? 0) === 4, 10_000, 'split applied');
  const counts = await tally(40);
  t.equal(counts['200 b3'], 20, 'v2 gets half');
  t.equal((counts['200 b1'] ?? 0) + (counts['200 b2'] ?? 0), 20, 'v1 the other half');
  await consul.consul.kv.del('weft/splits/backend');
  await consul.consul.agent.service.deregister('h3-b3');
  await eventually(async () => ((await tally(8))['200 b3'] ?? 0) === 0, 10_000, 'split removed');
});

t.test('intentions: a deny in KV answers 403 at the destination host; removing it allows again', async (t) => {
  t.equal((await call('payments')).status, 200, 'default allow');
  await (await meshSigner(t)).put(consul.consul, 'weft/intentions/frontend/payments', { action: 'deny' });
  // Calls made before the deny reaches h3's watch still pass: count from the first 403.
  const denied = await eventually(async () => {
    const r = await call('payments');
    return r.status === 403 ? r : undefined;
  }, 5000, 'deny applied');
  t.match(denied.reason, /WEFT_ERR_INTENTION_DENIED: denied by intention weft\/intentions\/frontend\/payments/);
  const before = pay.hits;
  for (let i = 0; i < 5; i++) t.equal((await call('payments')).status, 403, `denied call ${i + 1}`);
  t.equal(pay.hits, before, 'the app saw nothing while denied');
  t.equal((await call('backend')).status, 200, 'other pairs unaffected');
  await consul.consul.kv.del('weft/intentions/frontend/payments');
  await eventually(async () => (await call('payments')).status === 200, 5000, 'allowed again');
});

t.test('WebSocket-style upgrade through both hops, bytes spliced both ways', async (t) => {
  const socket = net.connect(outboundPort, h2.address);
  t.teardown(() => socket.destroy());
  let data = '';
  const done = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no echo; got ${JSON.stringify(data)}`)), 5000);
    socket.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.startsWith('HTTP/1.1 101') && !data.includes('ping')) socket.write('ping pong');
      if (data.endsWith('ping pong')) {
        clearTimeout(timer);
        resolve(data);
      }
    });
    socket.on('error', reject);
  });
  socket.write('GET /ws HTTP/1.1\r\nHost: payments\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  const got = await done;
  t.match(got, /^HTTP\/1\.1 101 /, '101 from the app, through both proxies');
  t.match(got, /ping pong$/, 'echoed through the tunnel');
});

t.test('live /metrics of both proxies pass promtool check metrics and count both directions', async (t) => {
  for (const host of [h2, h3]) {
    const { status, body } = await get(`http://${host.address}:${host.metricsPort}/metrics`);
    t.equal(status, 200);
    const run = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    t.equal(run.status, 0, `promtool on ${host.node}: ${run.stdout}${run.stderr}`);
    t.match(body, /weft_process_resident_memory_bytes \d+/, 'process metrics');
    t.match(body, /weft_proxy_certificate_expiry_timestamp_seconds\{service="[a-z]+"\} \d+/, 'certificate expiry');
  }
  const out = (await get(`http://${h2.address}:${h2.metricsPort}/metrics`)).body;
  t.match(out, /weft_proxy_requests_total\{direction="outbound",source="frontend",destination="backend",version="v1",instance="h3-b1",code="200"\} \d+/);
  const inb = (await get(`http://${h3.address}:${h3.metricsPort}/metrics`)).body;
  t.match(inb, /weft_proxy_requests_total\{direction="inbound",source="frontend",destination="payments",[^}]*code="403"\} \d+/);
  t.match(inb, /weft_proxy_intention_denials_total\{source="frontend",destination="payments"\} \d+/);
});

t.test('SIGTERM drains: an in-flight request finishes, the proxy deregisters and exits 0', async (t) => {
  // b1 is the only backend for this step, so /slow lands on it.
  await consul.consul.agent.service.deregister('h3-b2');
  await eventually(async () => ((await tally(4))['200 b2'] ?? 0) === 0, 5000, 'b2 gone');
  const slow = call('backend', '/slow');
  await new Promise((r) => setTimeout(r, 300));
  const started = performance.now();
  const exited = p3.stop('SIGTERM');
  const answer = await slow;
  t.equal(answer.status, 200, 'the in-flight request got its answer');
  t.equal(answer.app, 'b1');
  t.equal(await exited, 0, 'exit 0');
  t.ok(performance.now() - started < 5000, 'within the grace');
  const left = (await consul.consul.health.service('weft-proxy')) as Array<{ Service: { ID: string } }>;
  t.strictSame(left.map((e) => e.Service.ID), ['weft-proxy-h2'], 'deregistered');
  t.match(p3.logs(), /"msg":"listeners drained"/);
  // Back to the full topology for the next step.
  await consul.consul.agent.service.register(instanceRegistration(h3, 'h3-b2', 'backend', b2.port, { version: 'v1', weight: 1 }));
  p3 = await startProxy(file, h3, consul.address);
  await eventually(async () => ((await tally(4))['200 b2'] ?? 0) === 1, 10_000, 'h3 serving again');
});

t.test('routing unchanged while Consul is stopped, and after a proxy restart with it still down', async (t) => {
  const before = await tally(40);
  t.strictSame(before, { '200 b1': 30, '200 b2': 10 });
  // A deny that must outlive the outage too (the next step restarts the destination's proxy).
  await (await meshSigner(t)).put(consul.consul, 'weft/intentions/frontend/payments', { action: 'deny' });
  await eventually(async () => (await call('payments')).status === 403, 5000, 'deny applied');
  await consul.close();
  await new Promise((r) => setTimeout(r, 500)); // watches fail and back off meanwhile
  t.strictSame(await tally(40), before, 'same shares from last-known-good');
  t.equal(await p2.stop('SIGTERM'), 0);
  p2 = await startProxy(file, h2, consul.address, ['--algorithm', 'swrr']);
  t.strictSame(await tally(40), before, 'a restarted proxy routes from its disk cache');
  t.match(p2.logs(), /registration failed: retrying in the background/, 'it runs without Consul');
});

t.test("the destination's proxy restarted with Consul still down serves from its inbound cache; a deny stays a deny", async (t) => {
  // Without inbound.json this proxy would deny every call ("intentions not loaded yet") and know no local instance.
  t.equal(await p3.stop('SIGTERM'), 0);
  p3 = await startProxy(file, h3, consul.address);
  t.match(p3.logs(), /"msg":"inbound cache loaded"/, 'inbound.json read at start');
  t.match(p3.logs(), /"from":"cache","msg":"intentions loaded"/);
  t.notMatch(p3.logs(), /"from":"consul"/, 'nothing came from Consul');
  await eventually(async () => (await call('backend')).status === 200, 5000, 'h3 serving again');
  const counts = await tally(40);
  t.equal((counts['200 b1'] ?? 0) + (counts['200 b2'] ?? 0), 40, `every call served by a cached local instance: ${JSON.stringify(counts)}`);
  t.ok((counts['200 b1'] ?? 0) > (counts['200 b2'] ?? 0), 'weights 3:1 still apply (outbound, from its cache)');
  const hits = pay.hits;
  const denied = await call('payments');
  t.equal(denied.status, 403, 'the cached deny');
  t.match(denied.reason, /WEFT_ERR_INTENTION_DENIED: denied by intention weft\/intentions\/frontend\/payments/, 'by the intention, not "not loaded"');
  t.equal(pay.hits, hits, 'the app saw nothing');
  t.match(p3.logs(), /registration failed: retrying in the background/, 'it runs without Consul');
});
