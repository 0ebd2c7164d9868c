/** /v1/kv through the `consul` client: reads, writes, CAS, errors, blocking queries and their indexes. */
// The `consul` client's typings demand fields Consul does not (a check `timeout`, lower-case txn
// ops), so option objects it would reject at compile time are passed `as never`.
import t from 'tap';
import { consulError, startTestConsul, withMeta } from '../../helpers/dev-consul.js';

t.test('set, get, raw, flags and a missing key', async (t) => {
  const { consul } = await startTestConsul(t);
  t.equal(await consul.kv.set('weft/jobs/web', '{"count":2}'), true);
  t.equal(await consul.kv.set({ key: 'weft/jobs/api', value: 'x', flags: 42 }), true);

  const web = await consul.kv.get('weft/jobs/web');
  t.match(web, { Key: 'weft/jobs/web', Value: '{"count":2}', Flags: 0, LockIndex: 0 });
  t.equal(web?.CreateIndex, web?.ModifyIndex);
  t.notOk('Session' in (web ?? {}), 'Session only appears on locked keys');
  t.equal((await consul.kv.get('weft/jobs/api'))?.Flags, 42);

  const raw = await withMeta((o) => consul.kv.get(o), { key: 'weft/jobs/web', raw: true });
  t.equal(String(raw.body), '{"count":2}', 'raw answers the bare value');
  t.equal(raw.headers['content-type'], 'text/plain');
  t.equal(raw.headers['x-content-type-options'], 'nosniff');

  const missing = await withMeta((o) => consul.kv.get(o), { key: 'nope' });
  t.equal(missing.status, 404);
  t.ok(missing.index >= 1, '404s carry X-Consul-Index too');
  t.equal(missing.body, undefined);
});

t.test('empty value is null and a Buffer value round-trips', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.kv.set('empty', '');
  t.equal((await consul.kv.get('empty'))?.Value, null);
  const bytes = Buffer.from([0, 1, 2, 255]);
  await consul.kv.set('bin', bytes);
  const raw = await withMeta((o) => consul.kv.get(o), { key: 'bin', raw: true });
  t.same(raw.body, bytes);
});

t.test('recurse and keys with a separator', async (t) => {
  const { consul } = await startTestConsul(t);
  for (const k of ['weft/allocs/h1/a', 'weft/allocs/h1/b', 'weft/allocs/h2/c', 'weft/jobs/web', 'other']) await consul.kv.set(k, k);
  const all = await consul.kv.get({ key: 'weft/allocs/', recurse: true });
  t.strictSame(
    (all as Array<{ Key: string }>).map((e) => e.Key),
    ['weft/allocs/h1/a', 'weft/allocs/h1/b', 'weft/allocs/h2/c'],
  );
  t.strictSame(await consul.kv.keys({ key: 'weft/', separator: '/' }), ['weft/allocs/', 'weft/jobs/']);
  t.strictSame(await consul.kv.keys('weft/allocs/h1/'), ['weft/allocs/h1/a', 'weft/allocs/h1/b']);
  t.equal((await consul.kv.keys({ key: '' })).length, 5, 'keys at the root lists everything');
  t.equal(await consul.kv.get({ key: 'none/', recurse: true }), undefined, 'recurse on nothing is a 404');
  t.equal((await consulError(consul.kv.keys('none/'))).statusCode, 404, 'keys under an empty prefix is a 404');
});

// The `consul` client (papi) turns a `false` body into undefined, against a real
// Consul as here; weft code must test `=== true`. These tests do the same.
t.test('check-and-set and delete', async (t) => {
  const { consul, address } = await startTestConsul(t);
  t.equal(await consul.kv.set({ key: 'c', value: '1', cas: 0 }), true, 'cas=0 creates');
  t.not(await consul.kv.set({ key: 'c', value: '2', cas: 0 }), true, 'cas=0 refuses an existing key');
  // What the client hides: the wire answer is the JSON literal false.
  const wire = await fetch(`http://${address}/v1/kv/c?cas=0`, { method: 'PUT', body: 'v' });
  t.equal(wire.headers.get('content-type'), 'application/json');
  t.equal(await wire.text(), 'false');
  const e = (await consul.kv.get('c'))!;
  t.not(await consul.kv.set({ key: 'c', value: '3', cas: e.ModifyIndex + 100 }), true, 'cas mismatch');
  t.equal((await consul.kv.get('c'))?.Value, '1');
  t.equal(await consul.kv.set({ key: 'c', value: '3', cas: e.ModifyIndex }), true, 'cas match');
  const e2 = (await consul.kv.get('c'))!;
  t.equal(e2.CreateIndex, e.CreateIndex);
  t.ok(e2.ModifyIndex > e.ModifyIndex);

  t.not(await consul.kv.del({ key: 'c', cas: e.ModifyIndex }), true, 'delete-cas mismatch');
  t.equal(await consul.kv.del({ key: 'c', cas: e2.ModifyIndex }), true);
  t.equal(await consul.kv.get('c'), undefined);
  t.equal(await consul.kv.del('never-there'), true, 'deleting a missing key is still true');

  for (const k of ['t/a', 't/b/c', 'tx']) await consul.kv.set(k, 'v');
  t.equal(await consul.kv.del({ key: 't/', recurse: true }), true);
  t.strictSame(await consul.kv.keys(''), ['tx']);
});

t.test('request errors are Consul texts', async (t) => {
  const { consul, address } = await startTestConsul(t);
  const conflict = await consulError(consul.kv.set({ key: 'k', value: 'v', cas: 0, acquire: 'x' }));
  t.equal(conflict.statusCode, 400);
  t.match(conflict.body, /^Conflicting flags: /);

  const big = await consulError(consul.kv.set('big', Buffer.alloc(512 * 1024 + 1)));
  t.equal(big.statusCode, 413);
  t.match(big.body, /too large, max size: 524288 bytes/);

  // The client always sends a key; an empty key and a non-numeric flag need hand-built requests.
  const missing = await fetch(`http://${address}/v1/kv/`, { method: 'PUT', body: 'v' });
  t.equal(missing.status, 400);
  t.equal(await missing.text(), 'Missing key name');
  const badFlags = await fetch(`http://${address}/v1/kv/k?flags=abc`, { method: 'PUT', body: 'v' });
  t.equal(badFlags.status, 500);
  t.match(await badFlags.text(), /strconv.ParseUint/);
});

t.test('?dc: the own datacenter works, another has no path; tokens are ignored', async (t) => {
  const { consul } = await startTestConsul(t);
  t.equal(await consul.kv.set({ key: 'a', value: 'b', dc: 'dc1', token: 'secret' } as never), true);
  t.equal((await consul.kv.get({ key: 'a', dc: 'dc1' }))?.Value, 'b');
  const err = await consulError(consul.kv.get({ key: 'a', dc: 'dc2' }));
  t.equal(err.statusCode, 500);
  t.equal(err.body, 'No path to datacenter');
});

t.test('indexes: per key ModifyIndex, table index for missing keys, never below 1', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.kv.set('a', '1');
  await consul.kv.set('b', '1');
  const a = await withMeta((o) => consul.kv.get(o), { key: 'a' });
  const b = await withMeta((o) => consul.kv.get(o), { key: 'b' });
  t.ok(b.index > a.index, 'each key answers its own ModifyIndex');
  t.equal(a.headers['x-consul-knownleader'], 'true');
  t.equal(a.headers['x-consul-lastcontact'], '0');
  t.equal(a.headers['x-consul-effective-consistency'], 'leader');
  const missing = await withMeta((o) => consul.kv.get(o), { key: 'zzz' });
  t.equal(missing.index, b.index, 'a missing key answers the KV table index');
});

t.test('a blocking GET returns within 100 ms of the write that wakes it', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.kv.set('weft/leader', 'a');
  const first = await withMeta((o) => consul.kv.get(o), { key: 'weft/leader' });

  let wokeAt = 0;
  const parked = withMeta((o) => consul.kv.get(o), { key: 'weft/leader', index: String(first.index), wait: '10s' }).then((r) => {
    wokeAt = performance.now();
    return r;
  });
  await new Promise((r) => setTimeout(r, 150));
  t.equal(wokeAt, 0, 'still parked before the change');
  const writtenAt = performance.now();
  await consul.kv.set('weft/leader', 'b');
  const r = await parked;
  t.ok(wokeAt - writtenAt < 100, `woke ${Math.round(wokeAt - writtenAt)} ms after the write`);
  t.equal((r.body as { Value: string }).Value, 'b');
  t.ok(r.index > first.index);
});

t.test('a blocking query with nothing new returns at ?wait with the same index', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.kv.set('x', '1');
  const first = await withMeta((o) => consul.kv.get(o), { key: 'x' });
  const started = performance.now();
  await consul.kv.set('unrelated', '1'); // a different key does not wake a single-key query for good
  const r = await withMeta((o) => consul.kv.get(o), { key: 'x', index: String(first.index), wait: '300ms' });
  const took = performance.now() - started;
  t.ok(took >= 290, `waited ${Math.round(took)} ms`);
  t.ok(took < 300 + 300 / 16 + 150, 'no more than wait + jitter');
  t.equal(r.index, first.index);
});

t.test('deletes wake blocking queries on the key and on its prefix', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.kv.set('p/a', '1');
  await consul.kv.set('p/b', '1');
  const one = await withMeta((o) => consul.kv.get(o), { key: 'p/b' });
  const tree = await withMeta((o) => consul.kv.get(o), { key: 'p/', recurse: true });
  t.equal(tree.index, one.index, 'a prefix answers the highest ModifyIndex under it');

  const parkedKey = withMeta((o) => consul.kv.get(o), { key: 'p/b', index: String(one.index), wait: '5s' });
  const parkedTree = withMeta((o) => consul.kv.get(o), { key: 'p/', recurse: true, index: String(tree.index), wait: '5s' });
  await new Promise((r) => setTimeout(r, 50));
  await consul.kv.del('p/b');
  const [k, tr] = await Promise.all([parkedKey, parkedTree]);
  t.equal(k.status, 404);
  t.ok(k.index > one.index, 'the deleted key answers the newer table index');
  t.ok(tr.index > tree.index, 'the tombstone moves the prefix index');
  t.equal((tr.body as unknown as unknown[]).length, 1);
});

t.test('invalid blocking parameters are 400s', async (t) => {
  const { consul } = await startTestConsul(t);
  const index = await consulError(withMeta((o) => consul.kv.get(o), { key: 'a', index: 'abc' }));
  t.strictSame([index.statusCode, index.body], [400, 'Invalid index']);
  const wait = await consulError(withMeta((o) => consul.kv.get(o), { key: 'a', index: '1', wait: 'soon' }));
  t.strictSame([wait.statusCode, wait.body], [400, 'Invalid wait time']);
});
