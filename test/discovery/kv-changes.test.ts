/**
 * The changes between recursive KV reads, found off the main thread
 * (discovery/kv-changes.ts), over raw answers of the real dev agent
 * (client.queryRaw): the first read is everything, then only what was
 * written or deleted; reset() starts over; an unreadable answer is a coded error.
 */
import t from 'tap';
import { DiscoveryClient } from '../../discovery/client.js';
import { KvChangeReader, type KvChanges } from '../../discovery/kv-changes.js';
import { deleteKey, putJSON } from '../../discovery/kv.js';
import { startTestConsul } from '../helpers/dev-consul.js';

const PREFIX = 'weft/allocs/';

/** What a test compares: changed keys with their values, and gone keys, both sorted. */
function summary(c: KvChanges): { full: boolean; entries: number; changed: Array<[string, unknown]>; gone: string[] } {
  return {
    full: c.full,
    entries: c.entries,
    changed: c.changed.map((e): [string, unknown] => [e.key, e.value === null ? null : JSON.parse(e.value)]).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    gone: [...c.gone].sort(),
  };
}

t.test('the first read is every entry; later ones only what was written or deleted', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  const reader = new KvChangeReader(PREFIX);
  t.teardown(() => reader.close());
  const read = async (): Promise<KvChanges> => reader.diff((await client.queryRaw('kv.get', '/kv/{key}', { key: PREFIX }, { recurse: 'true' })).body);

  t.strictSame(summary(await read()), { full: true, entries: 0, changed: [], gone: [] }, 'an absent prefix (404) is an empty one');
  await putJSON(client, 'weft/allocs/h1/a', { n: 1 });
  await putJSON(client, 'weft/allocs/h1/b', { n: 2 });
  await putJSON(client, 'weft/allocs/h2/c', { n: 3 });
  await putJSON(client, 'weft/jobs/x', { n: 9 }); // another prefix
  t.strictSame(
    summary(await read()),
    {
      full: false,
      entries: 3,
      changed: [
        ['weft/allocs/h1/a', { n: 1 }],
        ['weft/allocs/h1/b', { n: 2 }],
        ['weft/allocs/h2/c', { n: 3 }],
      ],
      gone: [],
    },
    'new entries, values decoded to text',
  );
  t.strictSame(summary(await read()), { full: false, entries: 3, changed: [], gone: [] }, 'nothing written: nothing changed');

  await putJSON(client, 'weft/allocs/h1/b', { n: 20 });
  await deleteKey(client, 'weft/allocs/h2/c');
  await putJSON(client, 'weft/allocs/h3/d', { n: 4 });
  const next = await read();
  t.strictSame(
    summary(next),
    {
      full: false,
      entries: 3,
      changed: [
        ['weft/allocs/h1/b', { n: 20 }],
        ['weft/allocs/h3/d', { n: 4 }],
      ],
      gone: ['weft/allocs/h2/c'],
    },
    'modified, added and deleted entries',
  );
  t.ok(next.changed.every((e) => e.modifyIndex > 0), 'each with its ModifyIndex');

  reader.reset();
  const again = summary(await read());
  t.equal(again.full, true, 'after reset() the next read is compared with nothing');
  t.equal(again.changed.length, 3);
  t.strictSame(summary(await read()).changed, [], 'and the one after with it');
});

t.test('an answer piped in as it arrives gives the same changes as one passed whole', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  const whole = new KvChangeReader(PREFIX);
  const streamed = new KvChangeReader(PREFIX);
  t.teardown(() => whole.close());
  t.teardown(() => streamed.close());
  const both = async (): Promise<[KvChanges, KvChanges]> => {
    const a = await whole.diff((await client.queryRaw('kv.get', '/kv/{key}', { key: PREFIX }, { recurse: 'true' })).body);
    const r = await client.queryRaw('kv.get', '/kv/{key}', { key: PREFIX }, { recurse: 'true' }, { into: streamed.sink() });
    t.equal(r.body, undefined, 'nothing gathered on the caller side');
    return [a, await streamed.changes(r.status !== 404)];
  };
  let [a, b] = await both();
  t.strictSame(summary(b), summary(a), 'an absent prefix');
  // Values big enough to arrive in many chunks.
  const big = 'x'.repeat(50_000);
  for (let i = 0; i < 40; i++) await putJSON(client, `weft/allocs/h${i % 4}/a${i}`, { i, big });
  [a, b] = await both();
  t.equal(b.changed.length, 40);
  t.strictSame(summary(b), summary(a), 'two megabytes of new entries');
  await deleteKey(client, 'weft/allocs/h1/a5');
  await putJSON(client, 'weft/allocs/h2/a6', { i: 6 });
  [a, b] = await both();
  t.strictSame(summary(b), summary(a), 'a deletion and a rewrite');
  t.strictSame(summary(b).gone, ['weft/allocs/h1/a5']);
  await t.rejects(streamed.changes(true), { code: 'WEFT_ERR_CONSUL_REQUEST' }, 'no answer piped since the last changes(): refused, not taken for an empty prefix');
});

t.test('readers of different prefixes share the worker and keep apart', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  const allocs = new KvChangeReader('weft/allocs/');
  const statuses = new KvChangeReader('weft/alloc-status/');
  const raw = async (prefix: string): Promise<Buffer | undefined> => (await client.queryRaw('kv.get', '/kv/{key}', { key: prefix }, { recurse: 'true' })).body;

  await putJSON(client, 'weft/allocs/h1/a', { n: 1 });
  await putJSON(client, 'weft/alloc-status/h1/a', { state: 'running' });
  t.equal((await allocs.diff(await raw('weft/allocs/'))).changed.length, 1);
  t.equal((await statuses.diff(await raw('weft/alloc-status/'))).changed.length, 1);
  await putJSON(client, 'weft/alloc-status/h1/a', { state: 'failed' });
  t.strictSame(summary(await allocs.diff(await raw('weft/allocs/'))).changed, [], "a write under the other prefix is not this reader's change");
  t.strictSame(summary(await statuses.diff(await raw('weft/alloc-status/'))).changed, [['weft/alloc-status/h1/a', { state: 'failed' }]]);
  allocs.close();
  t.equal((await statuses.diff(await raw('weft/alloc-status/'))).full, false, 'closing one reader leaves the other as it was');
  statuses.close();
  await t.rejects(statuses.diff(undefined), { code: 'WEFT_ERR_CONSUL_UNAVAILABLE' }, 'a closed reader reads nothing');
  const fresh = new KvChangeReader('weft/allocs/');
  t.teardown(() => fresh.close());
  t.equal((await fresh.diff(await raw('weft/allocs/'))).full, true, 'a reader after the last one closed starts a new worker');
});

t.test('an answer that is not a JSON array is refused with a coded error, and the next read starts over', async (t) => {
  const reader = new KvChangeReader('weft/allocs/');
  t.teardown(() => reader.close());
  const body = (items: unknown[]): Buffer => Buffer.from(JSON.stringify(items));
  const item = (key: string, index: number, value: string): unknown => ({ Key: key, ModifyIndex: index, CreateIndex: index, Flags: 0, LockIndex: 0, Value: Buffer.from(value).toString('base64') });
  t.equal((await reader.diff(body([item('weft/allocs/h1/a', 5, '{}')]))).changed.length, 1);
  await t.rejects(reader.diff(Buffer.from('{"Key": ')), { code: 'WEFT_ERR_CONSUL_REQUEST', key: 'weft/allocs/', message: /unreadable answer/ });
  await t.rejects(reader.diff(Buffer.from('{"Key": "weft/allocs/h1/a"}')), { code: 'WEFT_ERR_CONSUL_REQUEST', message: /not a JSON array/ });
  const after = await reader.diff(body([item('weft/allocs/h1/a', 5, '{}'), { Key: 'weft/allocs/h1/b', ModifyIndex: 6, Value: null }]));
  t.equal(after.full, true, 'after a refused answer nothing is assumed about the previous read');
  t.strictSame(
    after.changed.map((e) => [e.key, e.modifyIndex, e.value]),
    [
      ['weft/allocs/h1/a', 5, '{}'],
      ['weft/allocs/h1/b', 6, null],
    ],
    'a key without a value has a null value',
  );
});
