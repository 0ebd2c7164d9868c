import Consul from 'consul';
import t from 'tap';
import { BUNDLE_KV_KEY, type TrustBundle, bundlePem, parseBundle, serializeBundle } from '../../certs/bundle.js';
import { publishBundle, readBundle, watchBundle } from '../../certs/bundle-kv.js';
import { privateKeyPem } from '../../certs/keys.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { TD, makeCa, makeIdentity } from './fixtures.js';

t.test('the bundle round-trips through JSON and holds only public certificates', async (t) => {
  const ca = makeCa({ intermediate: true });
  ca.rotate();
  const bundle = ca.bundle();
  const json = serializeBundle(bundle);
  t.strictSame(parseBundle(json), bundle);
  t.equal(bundle.trustDomain, TD);
  t.equal(bundle.roots.length, 2);
  t.ok(bundle.roots[0]!.retireAt, 'the superseded root says when it leaves');
  t.notMatch(json, /PRIVATE KEY/);
  t.equal((json.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'roots only: no intermediate, no cross-sign');
  t.equal((bundlePem(bundle).match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
});

t.test('serialisation refuses private key material whatever the caller passes', async (t) => {
  const ca = makeCa();
  const leaked: TrustBundle = { ...ca.bundle(), roots: [{ ...ca.bundle().roots[0]!, certPem: ca.bundle().roots[0]!.certPem + privateKeyPem(ca.keys.root) }] };
  t.throws(() => serializeBundle(leaked), { code: 'WEFT_ERR_CERT_INVALID', message: /private key/ });
});

t.test('parseBundle refuses bad bundles with WEFT_ERR_CERT_INVALID', async (t) => {
  const ca = makeCa();
  const good = ca.bundle();
  const leafPem = makeIdentity(ca, 'web').certChainPem;
  const cases: Array<[string, string]> = [
    ['not JSON', '{'],
    ['null', 'null'],
    ['wrong version', JSON.stringify({ ...good, version: 2 })],
    ['no roots', JSON.stringify({ ...good, roots: [] })],
    ['root without PEM', JSON.stringify({ ...good, roots: [{ id: 'x' }] })],
    ['garbage PEM', JSON.stringify({ ...good, roots: [{ ...good.roots[0], certPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }] })],
    ['a leaf as root', JSON.stringify({ ...good, roots: [{ ...good.roots[0], certPem: leafPem }] })],
    ['active root missing', JSON.stringify({ ...good, activeRootId: 'nope' })],
  ];
  for (const [name, json] of cases) t.throws(() => parseBundle(json), { code: 'WEFT_ERR_CERT_INVALID' }, name);
});

t.test('published to Consul KV weft/ca/roots, followed by a watch through rotation and retirement', async (t) => {
  const c = await startTestConsul(t);
  t.equal(await readBundle(c.consul), undefined, 'nothing before the first publish');

  const clock = { offset: 0 };
  const ca = makeCa({ leafTtlMs: 3600_000, clock: () => Date.now() + clock.offset });
  await publishBundle(c.consul, ca.bundle());
  t.strictSame(await readBundle(c.consul), ca.bundle());
  const raw = await c.consul.kv.get(BUNDLE_KV_KEY);
  t.notMatch(raw?.Value ?? '', /PRIVATE KEY/, 'the KV value holds no private key');
  t.match(raw?.Value ?? '', /BEGIN CERTIFICATE/);

  const seen: number[] = [];
  const errors: string[] = [];
  const waitFor = async (n: number) => {
    for (let i = 0; i < 500 && seen.at(-1) !== n; i++) await new Promise((r) => setTimeout(r, 10));
  };
  const watch = watchBundle(c.consul, { onBundle: (b) => seen.push(b.roots.length), onError: (e) => errors.push(e.code) });
  t.teardown(() => watch.stop());
  await waitFor(1);
  ca.rotate();
  await publishBundle(c.consul, ca.bundle());
  await waitFor(2);
  clock.offset += 2 * 3600_000;
  ca.prune();
  await publishBundle(c.consul, ca.bundle());
  await waitFor(1);
  watch.stop();
  t.strictSame(seen.filter((n, i) => n !== seen[i - 1]), [1, 2, 1], 'the watch saw 1 root, then 2 during the overlap, then 1');
  t.strictSame(errors, []);
});

t.test('a bad value in KV reaches onError and the watch keeps going', async (t) => {
  const c = await startTestConsul(t);
  const seen: number[] = [];
  const errors: string[] = [];
  const watch = watchBundle(c.consul, { onBundle: (b) => seen.push(b.roots.length), onError: (e) => errors.push(e.code) });
  t.teardown(() => watch.stop());
  await c.consul.kv.set(BUNDLE_KV_KEY, 'not json');
  for (let i = 0; i < 500 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  await publishBundle(c.consul, makeCa().bundle());
  for (let i = 0; i < 500 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  watch.stop();
  t.strictSame(errors, ['WEFT_ERR_CERT_INVALID']);
  t.strictSame(seen, [1]);
  t.throws(() => parseBundle('not json'), { code: 'WEFT_ERR_CERT_INVALID' });
  await t.rejects(readBundle({ kv: { get: async () => ({ Value: 'not json' }), set: async () => true } }), { code: 'WEFT_ERR_CERT_INVALID' });
});

t.test('an unreachable Consul gives WEFT_ERR_CONSUL_UNAVAILABLE', async (t) => {
  const consul = new Consul({ host: '127.0.0.1', port: 1 });
  t.teardown(() => consul.destroy());
  await t.rejects(publishBundle(consul, makeCa().bundle()), { code: 'WEFT_ERR_CONSUL_UNAVAILABLE' });
  await t.rejects(readBundle(consul), { code: 'WEFT_ERR_CONSUL_UNAVAILABLE' });
});
