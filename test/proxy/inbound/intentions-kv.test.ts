/**
 * Intentions from KV end to end: the real dev agent, discovery's
 * watchKeyPrefix on weft/intentions/ feeding KvIntentions (the adapter the
 * src/ wiring will build), and calls through the inbound proxy.
 */
import t, { type Test } from 'tap';
import { createDiscoveryClient } from '../../../discovery/client.js';
import { watchKeyPrefix } from '../../../discovery/watch.js';
import { INTENTIONS_PREFIX, KvIntentions } from '../../../proxy/inbound/intentions.js';
import { startTestConsul } from '../../helpers/dev-consul.js';
import { call, instance, makeMesh, startApp, startInbound, until } from './fixtures.js';

async function rig(t: Test, defaultAction: 'allow' | 'deny') {
  const consul = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: consul.address } });
  const intentions = new KvIntentions({ defaultAction });
  const watch = watchKeyPrefix(client, INTENTIONS_PREFIX, { waitMs: 5000 });
  watch.on('change', (entries) => intentions.update(entries));
  t.teardown(async () => {
    await watch.close();
    client.close();
  });
  await watch.ready();
  const mesh = makeMesh(['api', 'db']);
  const api = await startApp(t, 'api');
  const db = await startApp(t, 'db');
  const inbound = await startInbound(t, {
    ids: mesh.ids,
    intentions,
    instances: [instance('api', 'h2-api-1', api.port), instance('db', 'h2-db-1', db.port)],
  });
  const put = (source: string, destination: string, value: string): Promise<unknown> => consul.consul.kv.set(`${INTENTIONS_PREFIX}${source}/${destination}`, value);
  const del = (source: string, destination: string): Promise<unknown> => consul.consul.kv.del(`${INTENTIONS_PREFIX}${source}/${destination}`);
  const settled = (source: string, destination: string, action: 'allow' | 'deny'): Promise<boolean> =>
    until(() => intentions.decide(source, destination).action === action && !intentions.decide(source, destination).reason.includes('not loaded'), 5000);
  return { mesh, api, db, inbound, put, del, settled, intentions };
}

t.test('default allow: an exact deny answers 403 with the reason; KV changes apply to the next request', async (t) => {
  const r = await rig(t, 'allow');
  t.equal((await call(r.inbound.port, r.mesh.web, 'api')).status, 200, 'no intentions: default allow');
  await r.put('web', 'api', '{"action":"deny","description":"web must go through gateway"}');
  t.ok(await r.settled('web', 'api', 'deny'));
  const denied = await call(r.inbound.port, r.mesh.web, 'api');
  t.equal(denied.status, 403);
  t.equal(denied.headers['x-weft-reason'], 'weft: WEFT_ERR_INTENTION_DENIED: denied by intention weft/intentions/web/api');
  t.equal(denied.body, 'weft: WEFT_ERR_INTENTION_DENIED: denied by intention weft/intentions/web/api\n');
  t.equal(r.api.seen.length, 1, 'the denied call never reached the app');
  t.equal((await call(r.inbound.port, r.mesh.web, 'db')).status, 200, 'other destinations unaffected');
  const text = await r.inbound.registry.metrics();
  t.match(text, /weft_proxy_intention_denials_total\{source="web",destination="api"\} 1/);
  t.match(text, /weft_proxy_requests_total\{direction="inbound",source="web",destination="api",version="none",instance="none",code="403"\} 1/);
  await r.del('web', 'api');
  t.ok(await r.settled('web', 'api', 'allow'));
  t.equal((await call(r.inbound.port, r.mesh.web, 'api')).status, 200, 'deleting the deny restores the default');
});

t.test('default deny with wildcards: */api allows, an exact deny beats it, a bad document denies', async (t) => {
  const r = await rig(t, 'deny');
  const first = await call(r.inbound.port, r.mesh.web, 'api');
  t.equal(first.status, 403);
  t.match(first.headers['x-weft-reason'], /default action is deny/);
  await r.put('*', 'api', '{"action":"allow"}');
  t.ok(await r.settled('web', 'api', 'allow'));
  t.equal((await call(r.inbound.port, r.mesh.web, 'api')).status, 200, 'wildcard source allows');
  t.equal((await call(r.inbound.port, r.mesh.web, 'db')).status, 403, 'db still default deny');
  await r.put('web', 'api', '{"action":"deny"}');
  t.ok(await r.settled('web', 'api', 'deny'));
  t.equal((await call(r.inbound.port, r.mesh.web, 'api')).status, 403, 'exact deny beats the wildcard allow');
  await r.put('web', 'api', '{"action":"allow","colour":"blue"}');
  t.ok(await until(() => r.intentions.decide('web', 'api').reason.includes('invalid'), 5000));
  const bad = await call(r.inbound.port, r.mesh.web, 'api');
  t.equal(bad.status, 403, 'an invalid document fails closed');
  t.match(bad.headers['x-weft-reason'], /weft\/intentions\/web\/api is invalid/);
});
