import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import t from 'tap';
import { ProxyMetrics } from '../../../proxy/metrics.js';
import { clientAgent, certsTls, countBy, FakeRouteSource, type InstanceHandler, load, makeCa, request, startMeshHost, startOutbound } from './helpers.js';

const ca = makeCa();
const tls = certsTls(ca, ['frontend']);
const fast = { backoff: { baseMs: 1, maxMs: 2 } };

const fail503: InstanceHandler = (_req, res) => {
  res.statusCode = 503;
  res.end('busy');
};
const echo =
  (id: string): InstanceHandler =>
  (_req, res, body) => {
    res.setHeader('x-served-by', id);
    res.end(`${id} ${body.length}`);
  };

t.test('a 503 from one instance is retried on another (idempotent GET), and counted', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const h3 = await startMeshHost(t, ca, 'backend', '127.0.0.3');
  h2.instance('h2-bad', fail503);
  h3.instance('h3-good', echo('h3-good'));
  source.setInstances('backend', [h2.route('h2-bad'), h3.route('h3-good')]);
  const metrics = new ProxyMetrics(new Registry());
  const proxy = await startOutbound(t, { source, tls, metrics }, { algorithm: 'swrr', ...fast });
  const agent = clientAgent(t);
  const replies = await load(10, 1, () => request(agent, proxy.portOf('frontend')));
  t.strictSame(countBy(replies, (r) => `${r.status} ${r.headers['x-served-by']}`), { '200 h3-good': 10 });
  t.ok((h2.hits.get('h2-bad') ?? 0) >= 1, 'the bad instance was tried');
  const retried = (await metrics.retries.get()).values.find((v) => v.labels.reason === '503');
  t.equal(retried?.value, h2.hits.get('h2-bad'), 'weft_proxy_retries_total{reason="503"} counts each retry');
});

t.test('retries stop when the budget is spent', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  h2.instance('h2-bad', fail503);
  source.setInstances('backend', [h2.route('h2-bad')]);
  // ratio 0: only the floor pays, 1 retry/s over a 10 s window = 10 retries.
  const proxy = await startOutbound(t, { source, tls }, { ...fast, retryBudget: { ratio: 0, minRetriesPerSecond: 1 } });
  const agent = clientAgent(t);
  const replies = await load(20, 1, () => request(agent, proxy.portOf('frontend')));
  t.strictSame(countBy(replies, (r) => String(r.status)), { 503: 20 }, 'the instance answer is passed through');
  t.equal(h2.hits.get('h2-bad'), 20 + 10, '20 requests + the 10 retries the budget allows');
});

t.test('POST is not retried on 503 unless the client says it is safe', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  h2.instance('h2-bad', fail503);
  source.setInstances('backend', [h2.route('h2-bad')]);
  const proxy = await startOutbound(t, { source, tls }, fast);
  const agent = clientAgent(t);
  const post = await request(agent, proxy.portOf('frontend'), { method: 'POST', body: 'x' });
  t.equal(post.status, 503);
  t.equal(h2.hits.get('h2-bad'), 1, 'one attempt');
  const retryable = await request(agent, proxy.portOf('frontend'), { method: 'POST', body: 'x', headers: { 'idempotency-key': 'k1' } });
  t.equal(retryable.status, 503);
  t.equal(h2.hits.get('h2-bad'), 1 + 3, 'with Idempotency-Key: the first try and 2 retries');
});

t.test('a streamed (large) body is never retried; a small one is, intact', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const sizes: number[] = [];
  h2.instance('h2-bad', (_req, res, body) => {
    sizes.push(body.length);
    fail503(_req, res, body);
  });
  source.setInstances('backend', [h2.route('h2-bad')]);
  const proxy = await startOutbound(t, { source, tls }, fast);
  const agent = clientAgent(t);
  const headers = { 'x-weft-retryable': 'true' };
  const big = await request(agent, proxy.portOf('frontend'), { method: 'PUT', body: Buffer.alloc(100 * 1024, 7), headers });
  t.equal(big.status, 503);
  t.strictSame(sizes, [100 * 1024], 'one attempt, whole body streamed');
  const small = await request(agent, proxy.portOf('frontend'), { method: 'PUT', body: Buffer.alloc(1000, 7), headers });
  t.equal(small.status, 503);
  t.strictSame(sizes.slice(1), [1000, 1000, 1000], 'buffered: retried with the same body');
});

t.test('a connect error is retried even for POST (nothing was sent)', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const dead = await startMeshHost(t, ca, 'backend', '127.0.0.3');
  await dead.close();
  h2.instance('h2-good', echo('h2-good'));
  source.setInstances('backend', [dead.route('h3-dead'), h2.route('h2-good')]);
  const proxy = await startOutbound(t, { source, tls }, { algorithm: 'swrr', ...fast });
  const agent = clientAgent(t);
  const replies = await load(6, 1, () => request(agent, proxy.portOf('frontend'), { method: 'POST', body: 'hello' }));
  t.strictSame(countBy(replies, (r) => `${r.status} ${r.body}`), { '200 h2-good 5': 6 });
});

t.test('the pending-request bound answers 503 with the reason header', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const held: Array<() => void> = [];
  let hold = true;
  h2.instance('h2-slow', (_req, res) => (hold ? held.push(() => res.end('late')) : res.end('now')));
  source.setInstances('backend', [h2.route('h2-slow')]);
  const proxy = await startOutbound(t, { source, tls }, { pendingLimit: 2 });
  const agent = clientAgent(t);
  const first = [request(agent, proxy.portOf('frontend')), request(agent, proxy.portOf('frontend'))];
  for (let i = 0; i < 200 && held.length < 2; i++) await sleep(10);
  const shed = await request(agent, proxy.portOf('frontend'));
  t.equal(shed.status, 503);
  t.equal(shed.headers['x-weft-reason'], 'weft: pending request limit 2 reached for service backend');
  hold = false;
  for (const release of held) release();
  t.strictSame((await Promise.all(first)).map((r) => r.body), ['late', 'late']);
  t.equal((await request(agent, proxy.portOf('frontend'))).body, 'now', 'admitted again once the slots are released');
});

t.test('per-try timeout: retried elsewhere, else 504 with the reason', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, ['backend', 'solo'], '127.0.0.2');
  const h3 = await startMeshHost(t, ca, 'backend', '127.0.0.3');
  const hung: Array<() => void> = [];
  t.teardown(() => {
    for (const end of hung) end();
  });
  h2.instance('h2-hung', (_req, res) => hung.push(() => res.end()));
  h3.instance('h3-good', echo('h3-good'));
  source.setInstances('backend', [h2.route('h2-hung'), h3.route('h3-good')]);
  source.setInstances('solo', [h2.route('h2-hung')]);
  const proxy = await startOutbound(t, { source, tls }, { algorithm: 'swrr', timeouts: { tryTimeoutMs: 100, requestTimeoutMs: 2000 }, ...fast });
  const agent = clientAgent(t);
  const replies = await load(4, 1, () => request(agent, proxy.portOf('frontend')));
  t.strictSame(countBy(replies, (r) => `${r.status} ${r.headers['x-served-by']}`), { '200 h3-good': 4 });
  const solo = await request(agent, proxy.portOf('frontend'), { host: 'solo' });
  t.equal(solo.status, 504);
  t.equal(solo.headers['x-weft-reason'], 'weft: timeout calling service solo (instance h2-hung)');
});

t.test('a failing instance is ejected, then comes back', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const h3 = await startMeshHost(t, ca, 'backend', '127.0.0.3');
  let broken = true;
  h2.instance('h2-a', echo('h2-a'));
  h3.instance('h3-b', (req, res, body) => (broken ? fail503(req, res, body) : echo('h3-b')(req, res, body)));
  source.setInstances('backend', [h2.route('h2-a'), h3.route('h3-b')]);
  const metrics = new ProxyMetrics(new Registry());
  const proxy = await startOutbound(t, { source, tls, metrics }, { algorithm: 'swrr', outlier: { consecutiveFailures: 3, baseEjectionMs: 400 }, ...fast });
  const agent = clientAgent(t);
  const port = proxy.portOf('frontend');
  const warmup = await load(10, 1, () => request(agent, port));
  t.strictSame(countBy(warmup, (r) => String(r.status)), { 200: 10 }, 'retries hide the failures from the client');
  t.equal(h3.hits.get('h3-b'), 3, 'three consecutive failures, then ejected');
  const route = proxy.routes.get('backend');
  t.strictSame(route.outlier.ejected(), ['h3-b']);
  await load(10, 1, () => request(agent, port));
  t.equal(h3.hits.get('h3-b'), 3, 'no traffic while ejected');
  const ejections = (await metrics.ejections.get()).values;
  t.strictSame(ejections.map((v) => [v.labels.instance, v.value]), [['h3-b', 1]], 'weft_proxy_ejections_total');
  broken = false;
  await sleep(450);
  const after = await load(10, 1, () => request(agent, port));
  t.ok((countBy(after, (r) => String(r.headers['x-served-by']))['h3-b'] ?? 0) >= 4, 'back in rotation after the ejection time');
});
