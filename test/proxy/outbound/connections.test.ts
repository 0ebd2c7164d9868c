import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import t from 'tap';
import { ProxyMetrics } from '../../../proxy/metrics.js';
import { clientAgent, certsTls, countBy, FakeRouteSource, load, makeCa, request, startMeshHost, startOutbound } from './helpers.js';

const ca = makeCa();
const tls = certsTls(ca, ['frontend', 'worker']);

t.test('keep-alive pools: many requests, few handshakes, per caller identity', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  h2.instance('h2-a');
  source.setInstances('backend', [h2.route('h2-a')]);
  const metrics = new ProxyMetrics(new Registry());
  const proxy = await startOutbound(t, { source, tls, metrics }, { listeners: [{ service: 'frontend', port: 0 }, { service: 'worker', port: 0 }] });
  const agent = clientAgent(t, 4);
  const replies = await load(500, 4, (i) => request(agent, proxy.portOf(i % 2 === 0 ? 'frontend' : 'worker')));
  t.strictSame(countBy(replies, (r) => String(r.status)), { 200: 500 });
  t.ok(h2.handshakes <= 8, `500 requests from 2 callers, ${h2.handshakes} handshakes (at most 4 connections per caller)`);
  t.strictSame([...h2.peers].sort(), ['spiffe://weft.test/ns/default/svc/frontend', 'spiffe://weft.test/ns/default/svc/worker'], 'each caller keeps its own identity');
  const stats = proxy.pools.stats().filter((s) => s.destination === 'backend');
  t.strictSame(stats.map((s) => [s.target, s.caller, s.active]).sort(), [
    [`127.0.0.2:${h2.port}`, 'frontend', 0],
    [`127.0.0.2:${h2.port}`, 'worker', 0],
  ]);
  t.ok(stats.every((s) => s.idle >= 1), 'idle connections kept for the next request');
  const text = await metrics.pools.get();
  t.ok(text.values.some((v) => v.labels.destination === 'backend' && v.labels.state === 'idle' && v.value >= 2), 'weft_proxy_pool_connections reports them');
});

t.test('WebSocket (HTTP upgrade) through outbound, spliced both ways over mTLS', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  h2.instance('h2-ws');
  source.setInstances('backend', [h2.route('h2-ws')]);
  const proxy = await startOutbound(t, { source, tls });
  const echoed = await new Promise<{ status: number; data: string }>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxy.portOf('frontend'),
      path: '/ws',
      headers: { host: 'backend.weft', connection: 'Upgrade', upgrade: 'echo' },
      timeout: 5000,
    });
    req.on('upgrade', (res, socket) => {
      let data = '';
      socket.on('data', (d: Buffer) => {
        data += d.toString();
        if (data === 'ping pong') {
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, data });
        }
      });
      socket.write('ping ');
      setTimeout(() => socket.write('pong'), 20);
    });
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode} ${String(res.headers['x-weft-reason'])}`)));
    req.on('timeout', () => req.destroy(new Error('upgrade timed out')));
    req.on('error', reject);
    req.end();
  });
  t.strictSame(echoed, { status: 101, data: 'ping pong' });
  t.equal(h2.hits.get('upgrade:h2-ws'), 1, 'the upgrade reached the chosen instance');
});

t.test('graceful shutdown: refuses new connections, finishes in-flight requests', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const held: Array<() => void> = [];
  h2.instance('h2-slow', (_req, res) => held.push(() => res.end('done')));
  source.setInstances('backend', [h2.route('h2-slow')]);
  const proxy = await startOutbound(t, { source, tls });
  const port = proxy.portOf('frontend');
  const agent = clientAgent(t);
  const inFlight = request(agent, port);
  for (let i = 0; i < 200 && held.length === 0; i++) await sleep(10);
  const closing = proxy.close(5000);
  await sleep(20);
  await t.rejects(request(new http.Agent(), port), { code: 'ECONNREFUSED' }, 'no new connections');
  held.shift()!();
  const reply = await inFlight;
  t.equal(reply.status, 200);
  t.equal(reply.body, 'done');
  t.equal(reply.headers.connection, 'close', 'the app is told to reconnect');
  await closing;
  t.equal(proxy.inFlight, 0);
});

t.test('graceful shutdown: requests still running at the deadline are cut', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const held: Array<() => void> = [];
  t.teardown(() => {
    for (const end of held) end();
  });
  h2.instance('h2-stuck', (_req, res) => held.push(() => res.end()));
  source.setInstances('backend', [h2.route('h2-stuck')]);
  const proxy = await startOutbound(t, { source, tls });
  const inFlight = request(clientAgent(t), proxy.portOf('frontend'));
  for (let i = 0; i < 200 && held.length === 0; i++) await sleep(10);
  const started = Date.now();
  await proxy.close(200);
  t.ok(Date.now() - started >= 150, 'waited for the grace period');
  await t.rejects(inFlight, 'the stuck request was cut');
});
