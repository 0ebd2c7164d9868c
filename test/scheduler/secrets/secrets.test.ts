import { chmodSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { open, seal } from '../../../scheduler/secrets/cipher.js';
import { loadOrCreateKey, secretsKeyPath } from '../../../scheduler/secrets/key.js';
import { SECRETS_PREFIX, type SecretKv, SecretStore } from '../../../scheduler/secrets/store.js';

function memoryKv(): SecretKv & { data: Map<string, unknown> } {
  const data = new Map<string, unknown>();
  return {
    data,
    get: async (k) => (data.has(k) ? structuredClone(data.get(k)) : undefined),
    put: async (k, v) => void data.set(k, structuredClone(v)),
    delete: async (k) => data.delete(k),
    list: async (p) => [...data].filter(([k]) => k.startsWith(p)).map(([key, value]) => ({ key, value })),
  };
}

t.test('the key file is created 0600 once, and refused when others may read it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-secrets-'));
  const key = loadOrCreateKey(dir);
  t.equal(key.length, 32);
  t.equal(statSync(secretsKeyPath(dir)).mode & 0o777, 0o600);
  t.strictSame(loadOrCreateKey(dir), key, 'the same key on the next start');
  chmodSync(secretsKeyPath(dir), 0o644);
  t.throws(() => loadOrCreateKey(dir), { code: 'WEFT_ERR_SECRET_KEY', message: /chmod 600/ });
  chmodSync(secretsKeyPath(dir), 0o600);
  writeFileSync(secretsKeyPath(dir), 'c2hvcnQ=');
  t.throws(() => loadOrCreateKey(dir), { code: 'WEFT_ERR_SECRET_KEY', message: /not 32/ });
});

t.test('sealed values round-trip, and only under their own name and key', async (t) => {
  const key = Buffer.alloc(32, 7);
  const sealed = seal(key, 'DB_PASSWORD', 'hunter2');
  t.notMatch(JSON.stringify(sealed), /hunter2/);
  t.equal(open(key, 'DB_PASSWORD', sealed), 'hunter2');
  t.throws(() => open(key, 'OTHER', sealed), { code: 'WEFT_ERR_SECRET_KEY' }, 'moved under another name');
  t.throws(() => open(Buffer.alloc(32, 8), 'DB_PASSWORD', sealed), { code: 'WEFT_ERR_SECRET_KEY' }, 'another key');
  const tampered = { ...sealed, data: Buffer.from('x').toString('base64') };
  t.throws(() => open(key, 'DB_PASSWORD', tampered), { code: 'WEFT_ERR_SECRET_KEY' }, 'altered bytes');
  t.not(seal(key, 'A', 'v').iv, seal(key, 'A', 'v').iv, 'a fresh IV per write');
});

t.test('set, list, reveal, rm: values are never stored or listed in clear', async (t) => {
  const kv = memoryKv();
  const store = new SecretStore(kv, Buffer.alloc(32, 1));
  await store.set('DB_PASSWORD', 's3cret-value');
  await store.set('api.token', 'tok');
  t.notMatch(JSON.stringify([...kv.data]), /s3cret-value/, 'KV holds ciphertext only');
  const listed = await store.list();
  t.strictSame(listed.map((s) => s.name), ['DB_PASSWORD', 'api.token']);
  t.notMatch(JSON.stringify(listed), /s3cret-value/);
  t.equal(await store.reveal('DB_PASSWORD'), 's3cret-value');
  await store.remove('api.token');
  t.strictSame((await store.list()).map((s) => s.name), ['DB_PASSWORD']);
  await t.rejects(store.remove('api.token'), { code: 'WEFT_ERR_SECRET_NOT_FOUND' });
  await t.rejects(store.reveal('nope'), { code: 'WEFT_ERR_SECRET_NOT_FOUND' });
  await t.rejects(store.set('../etc', 'x'), { code: 'WEFT_ERR_SECRET_INVALID' });
  const big = 'x'.repeat(70_000);
  const err = await store.set('BIG', big).then(
    () => undefined,
    (e: Error) => e,
  );
  t.match(err?.message, /larger than 65536 bytes/);
  t.notMatch(err?.message, /xxxx/, 'the value is not in the error');
  kv.data.set(`${SECRETS_PREFIX}BAD`, { nope: 1 });
  await t.rejects(store.reveal('BAD'), { code: 'WEFT_ERR_KV_VALUE_INVALID' });
});
