/**
 * The scheduler's signing keys (src/wiring/scheduler-signing.ts): created
 * once with safe modes and shared by every instance on the data directory,
 * refused when others may read them, rotated with an overlap; and the sweep
 * that re-signs documents with the current key against the real dev Consul
 * over HTTP: it signs unsigned documents only at the first signing start
 * (an upgrade), never after.
 */
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createDiscoveryClient } from '../../../discovery/client.js';
import { isWeftError } from '../../../base/errors.js';
import { silentLogger } from '../../../base/log.js';
import { signDocument, verifierOf, verify } from '../../../base/signing.js';
import { MESH_SIGNED_PREFIXES } from '../../../src/wiring/scheduler-routes-cluster.js';
import { resignDocuments, SigningKeyStore, signingDir } from '../../../src/wiring/scheduler-signing.js';
import { startTestConsul } from '../../helpers/dev-consul.js';

async function dataDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-sched-signing-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('created on first start with safe modes; shared by every instance on the data directory', async (t) => {
  const dir = await dataDir(t);
  const first = SigningKeyStore.open(dir);
  t.equal(first.created, true, 'the first start creates the keys');
  const kid = first.store.signingKey().kid;
  t.equal(statSync(signingDir(dir)).mode & 0o777, 0o700, 'folder 0700');
  t.equal(statSync(join(signingDir(dir), `${kid}.key`)).mode & 0o777, 0o600, 'private key 0600');
  t.equal(statSync(join(signingDir(dir), 'keys.json')).mode & 0o777, 0o600, 'key set 0600');
  t.notMatch(readFileSync(join(signingDir(dir), 'keys.json'), 'utf8'), /PRIVATE/, 'the key set holds public keys only');

  const second = SigningKeyStore.open(dir);
  t.equal(second.created, false, 'a second instance finds them');
  t.equal(second.store.signingKey().kid, kid, 'and signs with the same key');
  const rotated = first.store.rotate(3_600_000);
  t.equal(second.store.signingKey().kid, rotated.kid, 'a rotation through one instance is seen by the other');
  t.equal(second.store.keySet().keys.length, 2);
});

t.test('a private key others may read is refused, naming the file', async (t) => {
  const dir = await dataDir(t);
  const kid = SigningKeyStore.open(dir).store.signingKey().kid;
  const file = join(signingDir(dir), `${kid}.key`);
  chmodSync(file, 0o644);
  try {
    SigningKeyStore.open(dir);
    t.fail('opened');
  } catch (err) {
    t.ok(isWeftError(err, 'WEFT_ERR_SIGNING_KEYS'));
    t.match((err as Error).message, `${file}: mode 644 lets others read it (chmod 600)`);
  }
});

t.test('rotation: the old key retires after the overlap; with no overlap at once, and its private key goes', async (t) => {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const dir = await dataDir(t);
  const { store } = SigningKeyStore.open(dir, { now: () => now });
  const k1 = store.signingKey().kid;
  const r2 = store.rotate(24 * 3_600_000);
  t.strictSame(r2.retiring, [{ kid: k1, retireAt: '2030-01-02T00:00:00.000Z' }], 'the old key retires 24 h later');
  now += 25 * 3_600_000;
  const r3 = store.rotate(0);
  t.strictSame(
    store.keySet().keys.map((k) => [k.kid, k.retireAt ?? 'current']),
    [
      [k1, '2030-01-02T00:00:00.000Z'],
      [r2.kid, '2030-01-02T01:00:00.000Z'],
      [r3.kid, 'current'],
    ],
    'with no overlap the key signing until now retires at once',
  );
  t.strictSame(store.privateKeyIds(), [r3.kid].sort(), 'private keys past their retire time are deleted');
  const r4 = store.rotate(3_600_000, 120_000);
  t.equal(store.signingKey().kid, r3.kid, 'a key published for later does not sign yet');
  t.equal(store.keySet().keys.find((k) => k.kid === r3.kid)?.retireAt, new Date(now + 120_000 + 3_600_000).toISOString(), 'the key before it retires an overlap after the switch');
  now += 120_000;
  t.equal(store.signingKey().kid, r4.kid, 'it signs from its signsFrom');
  now += 31 * 24 * 3_600_000;
  store.rotate(0);
  t.notOk(
    store.keySet().keys.some((k) => k.kid === k1),
    'a key retired more than 30 days ago leaves the published set',
  );
});

t.test('the sweep re-signs with the current key, signs unsigned documents only at the first start, and never after', async (t) => {
  const consul = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: consul.address } });
  t.teardown(() => client.close());
  const dir = await dataDir(t);
  const { store, created } = SigningKeyStore.open(dir);
  t.equal(created, true);
  // From before signing existed (an upgrade): valid documents, and one that is not valid.
  await consul.consul.kv.set('weft/intentions/web/db', JSON.stringify({ action: 'deny' }));
  await consul.consul.kv.set('weft/splits/api', JSON.stringify({ v1: 9, v2: 1 }));
  await consul.consul.kv.set('weft/intentions/web/api', JSON.stringify({ action: 'maybe' }));
  // Signed by a key folder since lost (this store never had its key).
  const lost = SigningKeyStore.open(await dataDir(t)).store;
  await consul.consul.kv.set('weft/splits/old', JSON.stringify(lost.sign('weft/splits/old', JSON.stringify({ v1: 1 }))));
  const first = await resignDocuments(client, store, MESH_SIGNED_PREFIXES, silentLogger, { adoptUnsigned: true });
  t.strictSame(first, { resigned: 0, adopted: 3, refused: 1 }, 'the valid ones, unsigned or of a lost key, are signed once; the invalid one is not');
  const check = async (key: string): Promise<string> => {
    const raw = ((await consul.consul.kv.get(key)) as { Value: string }).Value;
    const v = verify(verifierOf(store.keySet()), key, raw, Date.now());
    return v.ok ? `${v.kid} ${v.doc}` : v.reason;
  };
  t.equal(await check('weft/intentions/web/db'), `${store.signingKey().kid} {"action":"deny"}`);
  t.equal(await check('weft/intentions/web/api'), 'unsigned', 'the invalid one stays unsigned: proxies deny its pair');

  // After the first start: a document written by hand is never signed.
  await consul.consul.kv.set('weft/intentions/*/billing', JSON.stringify({ action: 'allow' }));
  await consul.consul.kv.set('weft/splits/old', JSON.stringify(lost.sign('weft/splits/old', JSON.stringify({ v1: 2 }))));
  const old = store.signingKey();
  const rotated = store.rotate(3_600_000);
  // An old-key document written during the overlap (by the other instance, say) is re-signed too.
  await consul.consul.kv.set('weft/splits/web', signDocument(old, 'weft/splits/web', JSON.stringify({ v1: 1 }), Date.now()));
  const second = await resignDocuments(client, store, MESH_SIGNED_PREFIXES, silentLogger, { adoptUnsigned: true });
  t.strictSame(second, { resigned: 3, adopted: 0, refused: 3 }, 're-signed: web/db, api and web; refused: the hand-written, the invalid, and another key');
  for (const key of ['weft/intentions/web/db', 'weft/splits/api', 'weft/splits/web']) t.match(await check(key), new RegExp(`^${rotated.kid} `), `${key}: the new key`);
  t.equal(await check('weft/intentions/*/billing'), 'unsigned', 'the hand-written one is left for the proxies to refuse');
  t.equal(await check('weft/splits/old'), 'unknown-key', "another key's document is never signed after the first start");
  t.strictSame(await resignDocuments(client, store, MESH_SIGNED_PREFIXES, silentLogger), { resigned: 0, adopted: 0, refused: 3 }, 'a second sweep has nothing to re-sign');

  // A key retired at once (believed stolen): what it had signed is re-signed by the key that replaced it.
  const r3 = store.rotate(0, 0);
  t.equal(await check('weft/splits/api'), 'retired-key', 'hosts refuse the retired key at once');
  t.strictSame(await resignDocuments(client, store, MESH_SIGNED_PREFIXES, silentLogger), { resigned: 3, adopted: 0, refused: 3 });
  t.match(await check('weft/splits/api'), new RegExp(`^${r3.kid} `), 're-signed by the new key');
});
