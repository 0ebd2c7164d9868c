/**
 * The proxy's signed desired state in the wiring (proxy-signed-state.ts with
 * proxy-intentions.ts and proxy-routes.ts) against the real dev Consul over
 * HTTP: intentions and splits the scheduler's key signed for their key path
 * apply; a tampered, moved, hand-written, or retired-key one is refused,
 * logged once and counted, and the last verified document of its key stays
 * in force; without keys nothing from KV applies until the agent's key file
 * appears.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { createDiscoveryClient } from '../../../discovery/client.js';
import { ProxyMetrics } from '../../../proxy/metrics.js';
import { type Logger, silentLogger } from '../../../base/log.js';
import { signDocument } from '../../../base/signing.js';
import { watchIntentions } from '../../../src/wiring/proxy-intentions.js';
import { consulRouteSource } from '../../../src/wiring/proxy-routes.js';
import { ProxySignedState, proxyKeysPath } from '../../../src/wiring/proxy-signed-state.js';
import { startTestConsul } from '../../helpers/dev-consul.js';
import { eventually } from '../../helpers/eventually.js';
import { testSigner } from '../../helpers/signing.js';

const watch = { waitMs: 2000, backoffBaseMs: 50, backoffMaxMs: 200 };

/** A logger that keeps the warnings' objects, to count how often a refusal is logged. */
function recordingLogger(): { logger: Logger; warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const logger = Object.assign(Object.create(silentLogger) as Logger, {
    warn: (obj: unknown) => {
      if (typeof obj === 'object' && obj !== null) warnings.push(obj as Record<string, unknown>);
    },
  });
  return { logger, warnings };
}

async function setup(t: Test, opts: { withKeys: boolean }) {
  const consul = await startTestConsul(t);
  const signer = await testSigner(t);
  const dir = await mkdtemp(join(tmpdir(), 'weft-proxy-signed-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  if (opts.withKeys) await signer.handToProxy(dir);
  const metrics = new ProxyMetrics(new Registry());
  const { logger, warnings } = recordingLogger();
  const signed = new ProxySignedState(proxyKeysPath(dir), { logger, refusals: metrics.signedStateRefused });
  signed.reload();
  const client = createDiscoveryClient({ consul: { address: consul.address } }, { requestTimeoutMs: 2000 });
  t.teardown(() => client.close());
  const refusals = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const v of (await metrics.signedStateRefused.get()).values) out[`${v.labels['kind']}/${v.labels['reason']}`] = v.value;
    return out;
  };
  return { consul, signer, dir, signed, client, warnings, refusals };
}

t.test('intentions: only what the scheduler signed for its key applies; the last verified stays in force', async (t) => {
  const { consul, signer, signed, client, warnings, refusals } = await setup(t, { withKeys: true });
  const w = watchIntentions(client, { defaultAction: 'allow', logger: silentLogger, signed, watch });
  t.teardown(() => w.subscription.close());
  const decide = (s: string, d: string) => w.intentions.decide(s, d);

  await signer.put(consul.consul, 'weft/intentions/web/db', { action: 'deny' });
  await eventually(() => decide('web', 'db').action === 'deny', 5000, 'the signed deny');

  // Tampered: the deny turned into an allow under the same signature.
  const envelope = JSON.parse(signer.value('weft/intentions/web/db', { action: 'deny' })) as Record<string, unknown>;
  await consul.consul.kv.set('weft/intentions/web/db', JSON.stringify({ ...envelope, doc: JSON.stringify({ action: 'allow' }) }));
  // Moved: a valid allow of another pair, copied under web/payments.
  await consul.consul.kv.set('weft/intentions/web/payments', signer.value('weft/intentions/web/api', { action: 'allow' }));
  // Hand-written, no signature: would open billing under a default of deny, and here denies instead.
  await consul.consul.kv.set('weft/intentions/*/billing', JSON.stringify({ action: 'allow' }));
  await eventually(async () => (await refusals())['intention/unsigned'] === 1, 5000, 'the refusals counted');
  t.strictSame(await refusals(), { 'intention/bad-signature': 2, 'intention/unsigned': 1 }, 'tampered and moved: bad signature; hand-written: unsigned');
  t.match(decide('web', 'db'), { action: 'deny', reason: /denied by intention weft\/intentions\/web\/db$/ }, 'the tampered allow did not apply: the last verified deny is in force');
  t.match(decide('web', 'payments'), { action: 'deny', reason: /intention weft\/intentions\/web\/payments is not signed by the scheduler/ }, 'a refused intention with nothing verified before denies its pair');
  t.match(decide('api', 'billing'), { action: 'deny', reason: /not signed by the scheduler/ });
  t.equal(decide('web', 'api').action, 'allow', 'other pairs: the default');

  // Another delivery of the same values (a new signed key) is neither logged nor counted again.
  await signer.put(consul.consul, 'weft/intentions/web/cache', { action: 'allow' });
  await eventually(() => decide('web', 'cache').reason.includes('allowed by intention'), 5000, 'the new intention');
  t.strictSame(await refusals(), { 'intention/bad-signature': 2, 'intention/unsigned': 1 }, 'counted once per value');
  const logged = warnings.filter((w) => w['code'] === 'WEFT_ERR_SIGNED_STATE').map((w) => `${w['key']} ${w['reason']}`);
  t.strictSame(logged.sort(), ['weft/intentions/*/billing unsigned', 'weft/intentions/web/db bad-signature', 'weft/intentions/web/payments bad-signature'], 'logged once each, with key and reason');

  // The scheduler's next version of the key replaces the one in force.
  await signer.put(consul.consul, 'weft/intentions/web/db', { action: 'allow' });
  await eventually(() => decide('web', 'db').action === 'allow', 5000, 'a newly signed allow');
});

t.test('intentions: a key retired after its overlap signs nothing new; a rotation keeps what was verified', async (t) => {
  const { consul, signer, dir, signed, client, refusals } = await setup(t, { withKeys: true });
  const w = watchIntentions(client, { defaultAction: 'allow', logger: silentLogger, signed, watch });
  t.teardown(() => w.subscription.close());
  await signer.put(consul.consul, 'weft/intentions/web/db', { action: 'deny' });
  await eventually(() => w.intentions.decide('web', 'db').action === 'deny', 5000, 'the deny, signed by the first key');

  const oldKey = signer.store.signingKey();
  signer.store.rotate(0); // no overlap: the old key is retired at once
  await signer.handToProxy(dir);
  t.equal(signed.reload(), true, 'the proxy sees the new keys');
  t.strictSame(await refusals(), { 'intention/retired-key': 1 }, "the old key's document, admitted again, is refused now ...");
  t.equal(w.intentions.decide('web', 'db').action, 'deny', '... and the version verified before the rotation stays in force (until the leader re-signs it)');

  await consul.consul.kv.set('weft/intentions/web/api', signDocument(oldKey, 'weft/intentions/web/api', JSON.stringify({ action: 'deny' }), Date.now()));
  await eventually(async () => (await refusals())['intention/retired-key'] === 2, 5000, 'a new document of the retired key refused');
  t.match(w.intentions.decide('web', 'api'), { action: 'deny', reason: /not signed by the scheduler/ });
  await signer.put(consul.consul, 'weft/intentions/web/api', { action: 'allow' });
  await eventually(() => w.intentions.decide('web', 'api').action === 'allow', 5000, 'the new key signs');
});

t.test('without keys nothing from KV applies; when the agent hands them over, it does', async (t) => {
  const { consul, signer, dir, signed, client, refusals } = await setup(t, { withKeys: false });
  await signer.put(consul.consul, 'weft/intentions/web/db', { action: 'allow' });
  await signer.put(consul.consul, 'weft/splits/api', { v1: 1, v2: 3 });
  const w = watchIntentions(client, { defaultAction: 'deny', logger: silentLogger, signed, watch });
  t.teardown(() => w.subscription.close());
  const splits: Array<string | null> = [];
  const sub = consulRouteSource(client, watch, signed).watchSplit('api', (text) => splits.push(text));
  t.teardown(() => sub.close());
  await eventually(() => splits.length > 0 && w.intentions.loaded, 5000, 'first answers');
  t.match(w.intentions.decide('web', 'db'), { action: 'deny', reason: /not signed by the scheduler/ }, 'the allow is not admitted without keys');
  t.strictSame(splits, [null], 'no split without keys');
  t.strictSame(await refusals(), { 'intention/unknown-key': 1, 'split/unknown-key': 1 });

  await signer.handToProxy(dir);
  t.equal(signed.reload(), true);
  t.equal(w.intentions.decide('web', 'db').action, 'allow', 'admitted once the keys are there');
  t.strictSame(splits, [null, JSON.stringify({ v1: 1, v2: 3 })], 'the split too, as the document text');
});

t.test('splits: a refused value leaves the last verified split in force; a hand-written one is no split', async (t) => {
  const { consul, signer, signed, client, refusals } = await setup(t, { withKeys: true });
  await signer.put(consul.consul, 'weft/splits/api', { v1: 9, v2: 1 });
  const source = consulRouteSource(client, watch, signed);
  const api: Array<string | null> = [];
  const web: Array<string | null> = [];
  const subs = [source.watchSplit('api', (text) => api.push(text)), source.watchSplit('web', (text) => web.push(text))];
  t.teardown(() => Promise.all(subs.map((s) => s.close())));
  await eventually(() => api.length === 1 && web.length === 1, 5000, 'first answers');
  t.strictSame(api, [JSON.stringify({ v1: 9, v2: 1 })]);

  await consul.consul.kv.set('weft/splits/api', JSON.stringify({ v1: 0, v2: 1 }));
  await consul.consul.kv.set('weft/splits/web', signer.value('weft/splits/api', { v1: 0, v2: 1 }));
  await eventually(() => api.length === 2 && web.length === 2, 5000, 'the refused values delivered');
  t.strictSame(api[1], JSON.stringify({ v1: 9, v2: 1 }), 'a hand-written split leaves the verified one in force');
  t.strictSame(web, [null, null], "another service's split moved here is no split");
  t.strictSame(await refusals(), { 'split/bad-signature': 1, 'split/unsigned': 1 });
});
