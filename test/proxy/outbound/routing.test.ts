import t from 'tap';
import { clientAgent, certsTls, countBy, FakeRouteSource, load, makeCa, okHandler, request, startMeshHost, startOutbound, startPlainInstance } from './helpers.js';

const ca = makeCa();

t.test('HTTP_PROXY form and Host header form reach the service over mTLS with the caller identity', async (t) => {
  const source = new FakeRouteSource();
  const host = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  host.instance('h2-backend-1', (req, res) => {
    res.setHeader('x-served-by', 'h2-backend-1');
    res.end(JSON.stringify({ url: req.url, host: req.headers.host, instance: req.headers['x-weft-instance'], xff: req.headers['x-forwarded-for'] }));
  });
  source.setInstances('backend', [host.route('h2-backend-1')]);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']) });
  const port = proxy.portOf('frontend');
  const agent = clientAgent(t);

  const viaProxy = await request(agent, port, { path: 'http://backend/items?x=1', host: 'backend' });
  t.equal(viaProxy.status, 200);
  t.strictSame(JSON.parse(viaProxy.body), { url: '/items?x=1', host: 'backend', instance: 'h2-backend-1', xff: '127.0.0.1' }, 'absolute-form becomes origin-form');

  const spoofed = await request(agent, port, { path: '/a', host: 'backend.weft:8080', headers: { 'x-weft-instance': 'other', 'x-forwarded-for': '6.6.6.6' } });
  t.equal(spoofed.status, 200);
  t.strictSame(JSON.parse(spoofed.body), { url: '/a', host: 'backend.weft:8080', instance: 'h2-backend-1', xff: '127.0.0.1' }, 'the app cannot pick the instance or spoof XFF');

  const plain = await request(agent, port, { host: 'backend' });
  t.equal(plain.headers['x-served-by'], 'h2-backend-1');
  t.strictSame([...host.peers], ['spiffe://weft.test/ns/default/svc/frontend'], 'the hop presents the caller identity');
});

t.test('unknown service: 503 with the reason; bad target: 400', async (t) => {
  const source = new FakeRouteSource();
  source.setInstances('empty', []);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']) }, { firstRouteWaitMs: 50 });
  const port = proxy.portOf('frontend');
  const agent = clientAgent(t);
  const unknown = await request(agent, port, { host: 'nosuch' });
  t.equal(unknown.status, 503);
  t.equal(unknown.headers['x-weft-reason'], 'weft: no instances of service nosuch');
  const empty = await request(agent, port, { host: 'empty.weft' });
  t.equal(empty.status, 503);
  t.equal(empty.headers['x-weft-reason'], 'weft: no instances of service empty');
  const ip = await request(agent, port, { host: '10.0.0.1' });
  t.equal(ip.status, 400);
  t.match(ip.headers['x-weft-reason'], /is not a service name/);
  const https = await request(agent, port, { path: 'https://backend/' });
  t.equal(https.status, 400);
  t.match(https.headers['x-weft-reason'], /only http:\/\//);
});

t.test('a caller without an identity gets 503, never a plain or foreign-identity hop', async (t) => {
  const source = new FakeRouteSource();
  const host = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  host.instance('h2-backend-1');
  source.setInstances('backend', [host.route('h2-backend-1')]);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']) }, { listeners: [{ service: 'frontend', port: 0 }, { service: 'newcomer', port: 0 }] });
  const r = await request(clientAgent(t), proxy.portOf('newcomer'));
  t.equal(r.status, 503);
  t.equal(r.headers['x-weft-reason'], 'weft: service newcomer has no mesh identity yet');
  t.equal(host.handshakes, 0);
});

t.test('a dedicated upstream listener routes every request to its service', async (t) => {
  const source = new FakeRouteSource();
  const host = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  host.instance('h2-backend-1');
  source.setInstances('backend', [host.route('h2-backend-1')]);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']) }, { listeners: [{ service: 'frontend', port: 0, upstream: 'backend' }] });
  const r = await request(clientAgent(t), proxy.portOf('frontend'), { host: 'localhost:9999' });
  t.equal(r.status, 200);
  t.equal(r.headers['x-served-by'], 'h2-backend-1');
});

t.test('weights 3:1 over 2,000 requests (swrr) within 5%, across two hosts', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const h3 = await startMeshHost(t, ca, 'backend', '127.0.0.3');
  h2.instance('h2-a');
  h3.instance('h3-b');
  source.setInstances('backend', [h2.route('h2-a', { weight: 3 }), h3.route('h3-b', { weight: 1 })]);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']) }, { algorithm: 'swrr' });
  const agent = clientAgent(t, 8);
  const replies = await load(2000, 8, () => request(agent, proxy.portOf('frontend')));
  const counts = countBy(replies, (r) => `${r.status} ${r.headers['x-served-by']}`);
  t.equal((counts['200 h2-a'] ?? 0) + (counts['200 h3-b'] ?? 0), 2000, 'all answered 200');
  t.ok(Math.abs(counts['200 h2-a']! / 2000 - 0.75) <= 0.05, `h2-a share ${counts['200 h2-a']}/2000`);
});

t.test('a 90/10 version split over 10,000 requests within 2%', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const h3 = await startMeshHost(t, ca, 'backend', '127.0.0.3');
  for (const id of ['h2-v1a', 'h2-v2']) h2.instance(id);
  h3.instance('h3-v1b');
  source.setSplit('backend', { v1: 90, v2: 10 });
  source.setInstances('backend', [h2.route('h2-v1a', { version: 'v1' }), h3.route('h3-v1b', { version: 'v1' }), h2.route('h2-v2', { version: 'v2' })]);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']) });
  const agent = clientAgent(t, 8);
  const replies = await load(10_000, 8, () => request(agent, proxy.portOf('frontend')));
  const counts = countBy(replies, (r) => String(r.headers['x-served-by']));
  const v2 = counts['h2-v2'] ?? 0;
  t.ok(Math.abs(v2 / 10_000 - 0.1) <= 0.02, `v2 share ${v2}/10000`);
  t.equal((counts['h2-v1a'] ?? 0) + (counts['h3-v1b'] ?? 0) + v2, 10_000, 'every request answered by an instance');
  t.ok(h2.handshakes + h3.handshakes <= 16, `few handshakes for 10,000 requests (${h2.handshakes + h3.handshakes})`);
});

t.test('an instance outside the mesh (no weft_mesh_port) is called over plain HTTP', async (t) => {
  const source = new FakeRouteSource();
  const legacy = await startPlainInstance(t, '127.0.0.3', okHandler('legacy-1'));
  source.setInstances('legacy', [{ id: 'legacy-1', address: '127.0.0.3', port: legacy.port, meshPort: undefined, version: undefined, weight: 1, healthy: true }]);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']) });
  const r = await request(clientAgent(t), proxy.portOf('frontend'), { host: 'legacy' });
  t.equal(r.status, 200);
  t.equal(r.body, 'legacy-1');
  t.equal(legacy.hits, 1);
});

t.test('unhealthy instances get no traffic', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  h2.instance('h2-a');
  h2.instance('h2-sick');
  source.setInstances('backend', [h2.route('h2-a'), h2.route('h2-sick', { healthy: false })]);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']) });
  const agent = clientAgent(t);
  const replies = await load(50, 4, () => request(agent, proxy.portOf('frontend')));
  t.strictSame(countBy(replies, (r) => String(r.headers['x-served-by'])), { 'h2-a': 50 });
});

t.test('a host proxy that proves another service identity is refused (502, never sent)', async (t) => {
  const source = new FakeRouteSource();
  const impostor = await startMeshHost(t, ca, 'payments', '127.0.0.2');
  impostor.instance('h2-x');
  source.setInstances('backend', [impostor.route('h2-x')]);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']) }, { maxRetries: 0 });
  const r = await request(clientAgent(t), proxy.portOf('frontend'));
  t.equal(r.status, 502);
  t.match(r.headers['x-weft-reason'], /server identity spiffe:\/\/weft.test\/ns\/default\/svc\/payments is not the one expected/);
  t.equal(impostor.hits.size, 0, 'no request reached it');
});
