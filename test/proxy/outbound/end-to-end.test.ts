import t from 'tap';
import type { IntentionDecision } from '../../../proxy/ports.js';
import { HOST, instance, makeMesh, startApp, startInbound } from '../inbound/fixtures.js';
import { clientAgent, certsTls, countBy, FakeRouteSource, load, request, startOutbound } from './helpers.js';

const allow: IntentionDecision = { action: 'allow', reason: 'test: allow all' };
const deny: IntentionDecision = { action: 'deny', reason: 'test: frontend may not call payments' };

t.test('app -> outbound -> mTLS -> inbound (colleague stack) -> app, with the caller identity and instance pinning', async (t) => {
  const mesh = makeMesh(['backend', 'payments']);
  const v1 = await startApp(t, 'backend-v1');
  const v2 = await startApp(t, 'backend-v2');
  const pay = await startApp(t, 'payments');
  const inbound = await startInbound(t, {
    ids: mesh.ids,
    intentions: { decide: (_source, destination) => (destination === 'payments' ? deny : allow) },
    instances: [instance('backend', 'h2-v1', v1.port, 'v1'), instance('backend', 'h2-v2', v2.port, 'v2'), instance('payments', 'h2-pay', pay.port)],
  });
  const source = new FakeRouteSource();
  const route = (id: string, version: string) => ({ id, address: HOST, port: 1, meshPort: inbound.port, version, weight: 1, healthy: true });
  source.setInstances('backend', [route('h2-v1', 'v1'), route('h2-v2', 'v2')]);
  source.setInstances('payments', [route('h2-pay', 'v1')]);
  source.setSplit('backend', { v1: 3, v2: 1 });
  const proxy = await startOutbound(t, { source, tls: certsTls(mesh.ca, ['frontend']) });
  const agent = clientAgent(t, 4);
  const port = proxy.portOf('frontend');

  const replies = await load(400, 4, (i) => request(agent, port, i % 2 === 0 ? { path: 'http://backend/x' } : { host: 'backend.weft', path: '/x' }));
  const apps = countBy(replies, (r) => `${r.status} ${(JSON.parse(r.body) as { app: string }).app}`);
  t.strictSame(apps, { '200 backend-v1': 300, '200 backend-v2': 100 }, 'the 3:1 split holds end to end, each request at the instance it named');
  const seen = v1.seen[0]!;
  t.equal(seen.url, '/x');
  t.equal(seen.headers['x-weft-source'], 'spiffe://weft.test/ns/default/svc/frontend', 'the inbound saw the caller identity');
  t.equal(seen.headers['x-weft-instance'], undefined, 'the instance header does not reach the app');

  const denied = await request(agent, port, { host: 'payments' });
  t.equal(denied.status, 403, 'intentions decide at the destination');
  t.equal(pay.seen.length, 0);
  t.equal(denied.headers['x-weft-reason'] !== undefined, true);
});
