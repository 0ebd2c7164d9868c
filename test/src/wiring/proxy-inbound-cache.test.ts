/**
 * The inbound cache in the wiring: watchIntentions and ConsulLocalServices
 * start from <dataDir>/proxy/inbound.json when Consul cannot answer, and
 * live answers replace (and are saved over) the cached state.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createDiscoveryClient } from '../../../discovery/client.js';
import { InboundCache, inboundCachePath } from '../../../proxy/inbound/inbound-cache.js';
import type { LocalInstance } from '../../../proxy/ports.js';
import { silentLogger } from '../../../base/log.js';
import { ConsulLocalServices } from '../../../src/wiring/proxy-local-services.js';
import { watchIntentions } from '../../../src/wiring/proxy-intentions.js';
import { ProxySignedState, proxyKeysPath } from '../../../src/wiring/proxy-signed-state.js';
import { type TestSigner, testSigner } from '../../helpers/signing.js';
import { startTestConsul } from '../../helpers/dev-consul.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/ports.js';

const watch = { waitMs: 2000, backoffBaseMs: 50, backoffMaxMs: 200 };
const inst = (service: string, id: string, port: number): LocalInstance => ({ id, service, version: 'v1', address: '127.0.0.3', port });

/** A data directory whose inbound.json holds a deny web -> api (signed, as KV held it), and one cached instance of api. */
async function seeded(t: Test, signer: TestSigner): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-inbound-wiring-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await signer.handToProxy(dir);
  const seed = new InboundCache(inboundCachePath(dir));
  seed.setIntentions([{ key: 'weft/intentions/web/api', value: signer.value('weft/intentions/web/api', { action: 'deny' }) }]);
  seed.setLocal('api', [inst('api', 'h3-cached', 9001)]);
  await seed.flush();
  return dir;
}

/** The wiring as ProxyProcess assembles it: cache loaded, intentions restored, then local services set. */
async function wire(t: Test, dir: string, consulAddress: string) {
  const client = createDiscoveryClient({ consul: { address: consulAddress } }, { requestTimeoutMs: 500 });
  const cache = new InboundCache(inboundCachePath(dir), { debounceMs: 5 });
  const signed = new ProxySignedState(proxyKeysPath(dir), { logger: silentLogger });
  signed.reload();
  const intentions = watchIntentions(client, { defaultAction: 'allow', logger: silentLogger, signed, watch, cache });
  const locals = new ConsulLocalServices(client, { host: 'h3', logger: silentLogger, watch, cache });
  t.teardown(async () => {
    await Promise.all([intentions.subscription.close(), locals.close()]);
    client.close();
  });
  const loaded = await cache.load();
  const restored = intentions.restore();
  locals.setServices(['api']);
  return { cache, intentions: intentions.intentions, locals, loaded, restored };
}

t.test('Consul unreachable: intentions and local instances come from the cache', async (t) => {
  const dir = await seeded(t, await testSigner(t));
  const w = await wire(t, dir, `127.0.0.1:${await freePort()}`);
  t.equal(w.loaded, true);
  t.equal(w.restored, true);
  t.match(w.intentions.decide('web', 'api'), { action: 'deny', reason: /denied by intention weft\/intentions\/web\/api/ }, 'the cached deny stays a deny');
  t.equal(w.intentions.decide('web', 'db').action, 'allow', 'the default for other pairs, not "not loaded"');
  t.equal(w.locals.table.pick('api')?.id, 'h3-cached');
  t.equal(w.locals.table.instance('api', 'h3-cached')?.port, 9001);
  await new Promise((r) => setTimeout(r, 300)); // watches fail and retry meanwhile
  t.equal(w.intentions.decide('web', 'api').action, 'deny', 'still the cache while Consul is down');
  t.equal(w.locals.table.pick('api')?.id, 'h3-cached');
});

t.test('no cache and Consul unreachable: deny everything, no local instance (unchanged)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-inbound-wiring-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const w = await wire(t, dir, `127.0.0.1:${await freePort()}`);
  t.equal(w.loaded, false);
  t.equal(w.restored, false);
  t.match(w.intentions.decide('web', 'db'), { action: 'deny', reason: /intentions not loaded yet/ });
  t.equal(w.locals.table.pick('api'), undefined);
});

t.test('Consul answers: live state replaces the cache and is saved', async (t) => {
  const consul = await startTestConsul(t);
  const signer = await testSigner(t);
  const dbDeny = signer.value('weft/intentions/web/db', { action: 'deny' });
  await consul.consul.kv.set('weft/intentions/web/db', dbDeny);
  await consul.consul.agent.service.register({ id: 'h3-live', name: 'api', address: '127.0.0.3', port: 9002, meta: { weft_host: 'h3', weft_instance: 'live' } });
  await consul.consul.agent.service.register({ id: 'h4-elsewhere', name: 'api', address: '127.0.0.4', port: 9003, meta: { weft_host: 'h4', weft_instance: 'elsewhere' } });
  const dir = await seeded(t, signer);
  const w = await wire(t, dir, consul.address);
  await eventually(async () => (w.locals.table.pick('api')?.id === 'h3-live' ? true : undefined), 5000, 'live local instances');
  await eventually(async () => (w.intentions.decide('web', 'db').action === 'deny' ? true : undefined), 5000, 'live intentions');
  t.equal(w.intentions.decide('web', 'api').action, 'allow', 'the cached deny is gone: Consul no longer has it');
  // Gone from the set; reachable by id only while it lingers as a leaving instance (proxy/inbound/local-services.ts).
  t.strictSame(w.locals.table.all().map((i) => i.id), ['h3-live'], 'the cached instance is gone');
  t.equal(w.locals.table.instance('api', 'h4-elsewhere'), undefined, 'only this host');
  await w.cache.flush();
  const saved = JSON.parse(await readFile(inboundCachePath(dir), 'utf8')) as { intentions: Array<{ key: string; value: string }>; local: Record<string, LocalInstance[]> };
  t.strictSame(saved.intentions, [{ key: 'weft/intentions/web/db', value: dbDeny }], 'saved as KV holds it: verified again at the next start');
  t.strictSame(saved.local['api']?.map((i) => [i.id, i.port]), [['h3-live', 9002]]);

  w.locals.setServices([]);
  await w.cache.flush();
  const after = JSON.parse(await readFile(inboundCachePath(dir), 'utf8')) as { local: Record<string, unknown> };
  t.strictSame(after.local, {}, 'a service no longer served here is forgotten');
});
