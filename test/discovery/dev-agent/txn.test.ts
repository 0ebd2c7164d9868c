/** /v1/txn through the `consul` client: every KV verb, result shapes, and all-or-nothing rollback. */
import type Consul from 'consul';
// The `consul` client's typings demand fields Consul does not (a check `timeout`, lower-case txn
// ops), so option objects it would reject at compile time are passed `as never`.
import t from 'tap';
import { consulError, startTestConsul } from '../../helpers/dev-consul.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface TxnKv {
  Key: string;
  Value: string | null;
  Flags: number;
  LockIndex: number;
  Session?: string;
  CreateIndex: number;
  ModifyIndex: number;
}
interface TxnResult {
  Results: Array<{ KV: TxnKv }> | null;
  Errors: Array<{ OpIndex: number; What: string }> | null;
}

t.test('writes and reads in one transaction at one index', async (t) => {
  const { consul } = await startTestConsul(t);
  const res = (await txn(consul, [
    { KV: { Verb: 'set', Key: 'weft/jobs/a', Value: b64('A'), Flags: 7 } },
    { KV: { Verb: 'set', Key: 'weft/jobs/b', Value: b64('B') } },
    { KV: { Verb: 'get', Key: 'weft/jobs/a' } },
    { KV: { Verb: 'get-tree', Key: 'weft/jobs/' } },
    { KV: { Verb: 'get-or-empty', Key: 'weft/none' } },
    { KV: { Verb: 'check-not-exists', Key: 'weft/none' } },
  ]));
  t.equal(res.Errors, null);
  const r = res.Results!;
  t.equal(r.length, 5, 'two sets, one get, two get-tree entries; get-or-empty and check-not-exists add none');
  t.match(r[0]!.KV, { Key: 'weft/jobs/a', Value: null, Flags: 7 }, 'write results carry no Value');
  t.equal(r[0]!.KV.ModifyIndex, r[1]!.KV.ModifyIndex, 'one index for the whole transaction');
  t.equal(r[2]!.KV.Value, b64('A'), 'get carries the Value');
  t.strictSame(
    r.slice(3).map((x) => [x.KV.Key, x.KV.Value]),
    [
      ['weft/jobs/a', b64('A')],
      ['weft/jobs/b', b64('B')],
    ],
  );
});

t.test('cas, check-index, delete-cas, delete, delete-tree', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.kv.set('a', '1');
  await consul.kv.set('tree/x', '1');
  await consul.kv.set('tree/y', '1');
  const a = (await consul.kv.get('a'))!;
  const res = (await txn(consul, [
    { KV: { Verb: 'check-index', Key: 'a', Index: a.ModifyIndex } },
    { KV: { Verb: 'cas', Key: 'a', Value: b64('2'), Index: a.ModifyIndex } },
    { KV: { Verb: 'delete-tree', Key: 'tree/' } },
    { KV: { Verb: 'cas', Key: 'new', Value: b64('n'), Index: 0 } },
  ]));
  t.equal(res.Errors, null);
  t.equal((await consul.kv.get('a'))?.Value, '2');
  t.strictSame(await consul.kv.keys(''), ['a', 'new']);
  const a2 = (await consul.kv.get('a'))!;
  await txn(consul, [
    { KV: { Verb: 'delete-cas', Key: 'a', Index: a2.ModifyIndex } },
    { KV: { Verb: 'delete', Key: 'new' } },
  ]);
  t.strictSame(await consul.kv.keys(''), [], 'everything deleted');
});

t.test('a failing op rolls back every op and lists every failure (409)', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.kv.set('exists', 'v');
  const before = (await consul.kv.get('exists'))!;
  const err = await consulError(
    txn(consul, [
      { KV: { Verb: 'set', Key: 'would-be', Value: b64('x') } },
      { KV: { Verb: 'delete', Key: 'exists' } },
      { KV: { Verb: 'cas', Key: 'exists', Value: b64('y'), Index: before.ModifyIndex + 99 } },
      { KV: { Verb: 'get', Key: 'missing' } },
      { KV: { Verb: 'check-not-exists', Key: 'would-be' } },
      { KV: { Verb: 'frobnicate', Key: 'x' } },
    ]),
  );
  t.equal(err.statusCode, 409);
  t.strictSame(err.json, {
    Results: null,
    Errors: [
      { OpIndex: 2, What: 'failed to set key "exists", index is stale' },
      { OpIndex: 3, What: 'key "missing" doesn\'t exist' },
      { OpIndex: 4, What: 'key "would-be" exists' },
      { OpIndex: 5, What: 'unknown KV verb "frobnicate"' },
    ],
  });
  t.equal(await consul.kv.get('would-be'), undefined, 'the set was rolled back');
  t.equal((await consul.kv.get('exists'))?.ModifyIndex, before.ModifyIndex, 'the delete was rolled back');
});

t.test('lock, check-session, unlock and their failures', async (t) => {
  const { consul } = await startTestConsul(t);
  const s1 = (await consul.session.create({ lockdelay: '0s' })).ID;
  const s2 = (await consul.session.create({ lockdelay: '0s' })).ID;
  const ok = (await txn(consul, [
    { KV: { Verb: 'lock', Key: 'weft/leader', Value: b64('s1'), Session: s1 } },
    { KV: { Verb: 'check-session', Key: 'weft/leader', Session: s1 } },
  ]));
  t.match(ok.Results![0]!.KV, { Session: s1, LockIndex: 1 });

  const held = await consulError(txn(consul, [{ KV: { Verb: 'lock', Key: 'weft/leader', Value: b64('s2'), Session: s2 } }]));
  t.strictSame(err(held), [409, 'failed to lock key "weft/leader", lock is already held']);
  const wrong = await consulError(txn(consul, [{ KV: { Verb: 'unlock', Key: 'weft/leader', Session: s2 } }]));
  t.strictSame(err(wrong), [409, 'failed to unlock key "weft/leader", lock isn\'t held, or is held by another session']);
  const check = await consulError(txn(consul, [{ KV: { Verb: 'check-session', Key: 'weft/leader', Session: s2 } }]));
  t.strictSame(err(check), [409, `failed session check for key "weft/leader", current session "${s1}" != "${s2}"`]);
  const invalid = await consulError(txn(consul, [{ KV: { Verb: 'lock', Key: 'k', Session: 'bogus' } }]));
  t.strictSame(err(invalid), [409, 'invalid session "bogus"']);

  await txn(consul, [{ KV: { Verb: 'unlock', Key: 'weft/leader', Value: b64('free'), Session: s1 } }]);
  t.notOk('Session' in ((await consul.kv.get('weft/leader')) as object));
});

t.test('a lock in its lock-delay window fails before anything is applied', async (t) => {
  const { consul } = await startTestConsul(t);
  const s1 = (await consul.session.create({ lockdelay: '10s' })).ID;
  await consul.kv.set({ key: 'l', value: 'x', acquire: s1 });
  await consul.session.destroy(s1);
  const s2 = (await consul.session.create({})).ID;
  const e = await consulError(
    txn(consul, [
      { KV: { Verb: 'set', Key: 'side-effect', Value: b64('x') } },
      { KV: { Verb: 'lock', Key: 'l', Session: s2 } },
    ]),
  );
  t.strictSame(err(e), [409, 'failed to lock key "l" due to lock delay']);
  t.strictSame((e.json as TxnResult).Errors?.[0]?.OpIndex, 1);
  t.equal(await consul.kv.get('side-effect'), undefined);
});

t.test('bad transactions are refused before running', async (t) => {
  const { consul, address } = await startTestConsul(t);
  const tooMany = Array.from({ length: 129 }, (_, i) => ({ KV: { Verb: 'get', Key: `k${i}` } }));
  const big = await consulError(txn(consul, tooMany));
  t.strictSame([big.statusCode, big.body], [413, 'Transaction contains too many operations (129 > 128)']);
  const node = await consulError(txn(consul, [{ Node: { Verb: 'get', Node: { Node: 'x' } } } as never]));
  t.equal(node.statusCode, 400, 'only KV operations are supported');
  // The client refuses an empty list and cannot send malformed base64 by mistake; send them by hand.
  const bad = await fetch(`http://${address}/v1/txn`, { method: 'PUT', body: JSON.stringify([{ KV: { Verb: 'set', Key: 'k', Value: '%%%' } }]) });
  t.equal(bad.status, 400);
});

/**
 * The client's typings describe lower-case KV options, but it sends the list
 * as given, and Consul wants `[{KV: {Verb, Key, ...}}]`; the two-argument form
 * is the one its typings and its code agree on.
 */
function txn(consul: Consul, ops: object[]): Promise<TxnResult> {
  return consul.transaction.create(ops as never, { operations: [] }) as Promise<unknown> as Promise<TxnResult>;
}

function err(e: { statusCode: number; json: unknown }): [number, string | undefined] {
  return [e.statusCode, (e.json as TxnResult).Errors?.[0]?.What];
}
