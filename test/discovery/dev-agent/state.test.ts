/** The store and KV operations without HTTP: rollback, indexes, tombstones, key listing, locks. */
import t from 'tap';
import {
  KvError,
  kvCas,
  kvDelete,
  kvDeleteCas,
  kvKeyIndex,
  kvKeys,
  kvLock,
  kvPrefixIndex,
  kvSet,
  kvUnlock,
} from '../../../discovery/dev-agent/state/kv.js';
import { Rollback, Store } from '../../../discovery/dev-agent/state/store.js';
import type { SessionRecord } from '../../../discovery/dev-agent/state/types.js';

const v = (s: string): Buffer => Buffer.from(s);

function storeWith(keys: string[]): Store {
  const s = new Store();
  for (const key of keys) s.write((tx) => kvSet(tx, s, { key, value: v(key), flags: 0 }));
  return s;
}

function session(s: Store, id: string): void {
  const rec: SessionRecord = {
    id,
    name: '',
    node: 'n',
    lockDelayMs: 0,
    behavior: 'release',
    ttl: '',
    ttlMs: 0,
    nodeChecks: [],
    serviceChecks: [],
    createIndex: 0,
    modifyIndex: 0,
  };
  s.write((tx) => tx.put('sessions', id, rec));
}

t.test('keys with and without a separator', async (t) => {
  const s = storeWith(['a/b/c', 'a/b/d', 'a/e', 'a/f/', 'ab', 'b']);
  const cases: Array<[string, string, string[]]> = [
    ['', '', ['a/b/c', 'a/b/d', 'a/e', 'a/f/', 'ab', 'b']],
    ['', '/', ['a/', 'ab', 'b']],
    ['a/', '/', ['a/b/', 'a/e', 'a/f/']],
    ['a/b/', '/', ['a/b/c', 'a/b/d']],
    ['a', '/', ['a/', 'ab']],
    ['zzz', '/', []],
  ];
  for (const [prefix, sep, want] of cases) t.strictSame(kvKeys(s, prefix, sep), want, `prefix ${JSON.stringify(prefix)} sep ${JSON.stringify(sep)}`);
});

t.test('a write that throws rolls back every mutation and keeps the index', async (t) => {
  const s = storeWith(['keep']);
  const index = s.index;
  t.throws(() =>
    s.write((tx) => {
      kvSet(tx, s, { key: 'new', value: v('x'), flags: 0 });
      kvDelete(tx, 'keep');
      throw new Rollback('no');
    }),
  );
  t.equal(s.index, index);
  t.strictSame([...s.kv.keys()], ['keep']);
  t.equal(s.tombstones.size, 0, 'the tombstone of the undone delete is gone too');
});

t.test('no-op writes do not move the index', async (t) => {
  const s = storeWith(['a']);
  const index = s.index;
  s.write((tx) => kvSet(tx, s, { key: 'a', value: v('a'), flags: 0 }));
  s.write((tx) => kvDelete(tx, 'missing'));
  t.equal(s.index, index);
});

t.test('indexes: key, prefix, tombstones and the reap floor', async (t) => {
  const s = storeWith(['p/a', 'p/b', 'q/a']);
  t.equal(kvKeyIndex(s, 'p/a'), 1);
  t.equal(kvKeyIndex(s, 'nope'), 3, 'a missing key answers the table index');
  t.equal(kvPrefixIndex(s, 'p/'), 2);
  t.equal(kvPrefixIndex(s, ''), 3);
  t.equal(kvPrefixIndex(s, 'zz/'), 3, 'an empty prefix match answers the table index');
  s.write((tx) => kvDelete(tx, 'p/b'));
  t.equal(kvPrefixIndex(s, 'p/'), 4, 'the tombstone counts');
  t.equal(s.reapTombstones(4), 1);
  t.equal(kvPrefixIndex(s, 'p/'), 4, 'after a reap the floor keeps the index from going back');
});

t.test('cas, lock and unlock outcomes', async (t) => {
  const s = storeWith(['k']);
  session(s, 's1');
  session(s, 's2');
  const w = { key: 'k', value: v('x'), flags: 0 };
  t.equal(
    s.write((tx) => kvCas(tx, s, w, 99)),
    undefined,
  );
  t.ok(s.write((tx) => kvCas(tx, s, w, 1)));
  t.match(
    s.write((tx) => kvLock(tx, s, w, 's1', Date.now())),
    { ok: true, entry: { session: 's1', lockIndex: 1 } },
  );
  t.match(
    s.write((tx) => kvLock(tx, s, w, 's2', Date.now())),
    { ok: false, why: 'held' },
  );
  t.throws(() => s.write((tx) => kvLock(tx, s, w, 'ghost', Date.now())), new KvError('invalid session "ghost"'));
  t.throws(() => s.write((tx) => kvLock(tx, s, w, '', Date.now())), new KvError('missing session'));
  t.equal(
    s.write((tx) => kvUnlock(tx, s, w, 's2')),
    undefined,
  );
  t.ok(s.write((tx) => kvUnlock(tx, s, w, 's1')));
  s.lockDelays.set('k', Date.now() + 60_000);
  t.match(
    s.write((tx) => kvLock(tx, s, w, 's2', Date.now())),
    { ok: false, why: 'delay' },
  );
  t.ok(s.write((tx) => kvDeleteCas(tx, s, 'missing', 5)), 'delete-cas of a missing key succeeds');
});

t.test('watchers fire once per commit of their tables only', async (t) => {
  const s = new Store();
  let kv = 0;
  let sessions = 0;
  const off = s.watch(['kvs'], () => kv++);
  s.watch(['sessions'], () => sessions++);
  s.write((tx) => {
    kvSet(tx, s, { key: 'a', value: null, flags: 0 });
    kvSet(tx, s, { key: 'b', value: null, flags: 0 });
  });
  session(s, 's');
  t.strictSame([kv, sessions], [1, 1]);
  off();
  s.write((tx) => kvSet(tx, s, { key: 'c', value: null, flags: 0 }));
  t.equal(kv, 1, 'unsubscribed');
});
