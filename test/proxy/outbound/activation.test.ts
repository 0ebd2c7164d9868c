/**
 * Activation from zero in the outbound proxy (proxy/outbound/activation.ts):
 * real listeners, real mTLS to a host stand-in; the routing values are pushed
 * by the in-memory RouteSource (what the Consul watches deliver; the Consul
 * side is test/integration/scale-to-zero.test.ts).
 */
import http from 'node:http';
import t from 'tap';
import { certsTls, clientAgent, FakeRouteSource, makeCa, okHandler, request, startMeshHost, startOutbound } from './helpers.js';

const ca = makeCa();

/** An Activator that records what it was told, and resolves a promise on the first call. */
function recordingActivator() {
  const calls: string[] = [];
  let first: (service: string) => void = () => {};
  const told = new Promise<string>((resolve) => {
    first = resolve;
  });
  return {
    calls,
    told,
    activate(service: string): void {
      calls.push(service);
      first(service);
    },
  };
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('a request for a service at zero is held, pushes activation at once, and reaches the first healthy instance', async (t) => {
  const source = new FakeRouteSource();
  source.setActivatable('backend');
  source.setInstances('backend', []);
  const host = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  host.instance('h2-backend-1', okHandler('h2-backend-1'));
  const activator = recordingActivator();
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']), activator });
  const agent = clientAgent(t);

  const answer = request(agent, proxy.portOf('frontend'), { host: 'backend' });
  t.equal(await activator.told, 'backend', 'the control plane is told about the held request');
  const route = proxy.routes.get('backend');
  await until('the request to be held', () => route.held.size === 1);

  // A starting instance that does not pass its checks yet gets nothing.
  source.setInstances('backend', [host.route('h2-backend-1', { healthy: false })]);
  t.equal(route.held.size, 1, 'still held while the only instance is not healthy');
  t.equal(host.hits.get('h2-backend-1') ?? 0, 0, 'nothing sent to an unhealthy instance');

  source.setInstances('backend', [host.route('h2-backend-1')]);
  const r = await answer;
  t.equal(r.status, 200);
  t.equal(r.body, 'h2-backend-1', 'answered by the instance');
  t.equal(r.headers['x-weft-cold-start'], 'true', 'the answer says it was a cold start');
  t.equal(route.held.size, 0);

  const warm = await request(agent, proxy.portOf('frontend'), { host: 'backend' });
  t.equal(warm.status, 200);
  t.equal(warm.headers['x-weft-cold-start'], undefined, 'a request that was not held has no cold-start header');
  t.strictSame(activator.calls, ['backend'], 'one activation push for one hold');
});

t.test('a service the scheduler never marked activatable is refused at once, with no activation', async (t) => {
  const source = new FakeRouteSource();
  source.setActivatable('other');
  source.setInstances('backend', []);
  const activator = recordingActivator();
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']), activator }, { firstRouteWaitMs: 50 });
  const r = await request(clientAgent(t), proxy.portOf('frontend'), { host: 'backend' });
  t.equal(r.status, 503);
  t.equal(r.headers['x-weft-reason'], 'weft: no instances of service backend');
  t.strictSame(activator.calls, []);
});

t.test('the hold is bounded: a full queue answers 503 at once, and the hold never blocks another service', async (t) => {
  const source = new FakeRouteSource();
  source.setActivatable('backend');
  source.setInstances('backend', []);
  const host = await startMeshHost(t, ca, ['backend', 'other'], '127.0.0.2');
  host.instance('h2-backend-1', okHandler('h2-backend-1'));
  host.instance('h2-other-1', okHandler('h2-other-1'));
  source.setInstances('other', [host.route('h2-other-1')]);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']), activator: recordingActivator() }, { activation: { maxHeld: 2 } });
  const agent = clientAgent(t, 8);
  const port = proxy.portOf('frontend');
  const route = proxy.routes.get('backend');

  const held = [request(agent, port, { host: 'backend' }), request(agent, port, { host: 'backend' })];
  await until('two requests held', () => route.held.size === 2);
  const over = await request(agent, port, { host: 'backend' });
  t.equal(over.status, 503, 'the third is refused');
  t.match(over.headers['x-weft-reason'], /starting from zero and already has 2 requests waiting/);
  t.equal(route.held.size, 2, 'the held ones are still held');

  const other = await request(agent, port, { host: 'other' });
  t.equal(other.status, 200, 'another service is served while backend holds');
  t.equal(other.body, 'h2-other-1');

  source.setInstances('backend', [host.route('h2-backend-1')]);
  const replies = await Promise.all(held);
  t.strictSame(
    replies.map((r) => [r.status, r.headers['x-weft-cold-start']]),
    [
      [200, 'true'],
      [200, 'true'],
    ],
    'both held requests are answered once the instance is healthy',
  );
});

t.test('a held request gives up after maxWaitMs with 503; a client that leaves frees its place', async (t) => {
  const source = new FakeRouteSource();
  source.setActivatable('backend');
  source.setInstances('backend', []);
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']), activator: recordingActivator() }, { activation: { maxWaitMs: 300 } });
  const agent = clientAgent(t);
  const port = proxy.portOf('frontend');
  const route = proxy.routes.get('backend');

  const r = await request(agent, port, { host: 'backend' });
  t.equal(r.status, 503);
  t.equal(r.headers['x-weft-reason'], 'weft: no instance of service backend became healthy in time (cold start)');
  t.equal(route.held.size, 0);

  // A client that hangs up while held leaves no trace in the queue.
  const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host: 'backend' } });
  req.on('error', () => {});
  req.end();
  await until('the request to be held', () => route.held.size === 1);
  req.destroy();
  await until('the queue to be empty', () => route.held.size === 0);
  t.pass('the place is freed');
});

t.test('a body larger than the proxy buffers is not held (it cannot be kept): 503 at once, activation still pushed', async (t) => {
  const source = new FakeRouteSource();
  source.setActivatable('backend');
  source.setInstances('backend', []);
  const activator = recordingActivator();
  const proxy = await startOutbound(t, { source, tls: certsTls(ca, ['frontend']), activator }, { maxBufferedBody: 16 });
  const r = await request(clientAgent(t), proxy.portOf('frontend'), { host: 'backend', method: 'POST', body: 'x'.repeat(1000) });
  t.equal(r.status, 503);
  t.equal(r.headers['x-weft-reason'], 'weft: no instances of service backend');
  t.strictSame(activator.calls, ['backend'], 'the control plane is told, so the next request finds an instance');
});
