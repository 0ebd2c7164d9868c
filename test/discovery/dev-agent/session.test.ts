/** /v1/session/* and KV locks through the `consul` client: lifecycle, TTL expiry, behaviors, lock delay. */
// The `consul` client's typings demand fields Consul does not (a check `timeout`, lower-case txn
// ops), so option objects it would reject at compile time are passed `as never`.
import t from 'tap';
import { eventually } from '../../helpers/eventually.js';
import { consulError, startTestConsul, withMeta } from '../../helpers/dev-consul.js';

interface SessionInfo {
  ID: string;
  Name: string;
  Node: string;
  LockDelay: number;
  Behavior: string;
  TTL: string;
  NodeChecks: string[] | null;
  ServiceChecks: unknown;
  CreateIndex: number;
  ModifyIndex: number;
}

t.test('create, info, list, node, renew, destroy', async (t) => {
  const { consul } = await startTestConsul(t);
  const { ID } = await consul.session.create({ name: 'weft-scheduler', ttl: '15s' });
  t.match(ID, /^[0-9a-f-]{36}$/);
  const info = (await consul.session.info(ID)) as SessionInfo;
  t.match(info, {
    ID,
    Name: 'weft-scheduler',
    Node: 'weft-test',
    LockDelay: 15_000_000_000,
    Behavior: 'release',
    TTL: '15s',
    NodeChecks: ['serfHealth'],
    ServiceChecks: null,
  });
  t.notOk('Checks' in info, 'Checks is omitted when only serfHealth is watched (Consul 1.7+)');
  t.strictSame(
    ((await consul.session.list()) as SessionInfo[]).map((s) => s.ID),
    [ID],
  );
  t.strictSame(
    ((await consul.session.node('weft-test')) as SessionInfo[]).map((s) => s.ID),
    [ID],
  );
  t.strictSame(await consul.session.node('other'), []);
  const renewed = (await consul.session.renew(ID)) as SessionInfo[];
  t.equal(renewed[0]?.ID, ID);

  await consul.session.destroy(ID);
  t.equal(await consul.session.info(ID), undefined, 'info of a gone session is an empty list');
  const gone = await consulError(consul.session.renew(ID));
  t.strictSame([gone.statusCode, gone.body], [404, `Session id '${ID}' not found`]);
  await consul.session.destroy(ID); // idempotent, like Consul
});

t.test('create validates TTL, behavior, node and checks like Consul', async (t) => {
  const { consul } = await startTestConsul(t, { sessionTtlMin: 10_000 });
  const short = await consulError(consul.session.create({ ttl: '5s' }));
  t.equal(short.statusCode, 500);
  t.equal(short.body, "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]");
  t.equal((await consulError(consul.session.create({ ttl: '25h' }))).statusCode, 500);
  t.match((await consulError(consul.session.create({ ttl: 'soon' }))).body, /Session TTL 'soon' invalid/);
  t.equal((await consulError(consul.session.create({ behavior: 'explode' as 'delete' }))).body, "Invalid Behavior setting 'explode'");
  t.equal((await consulError(consul.session.create({ node: 'ghost' }))).body, 'Missing node registration');
  t.equal((await consulError(consul.session.create({ checks: ['nope'] }))).body, "Missing check 'nope' registration");
  await consul.agent.check.register({ name: 'down', ttl: '10s' } as never);
  t.equal((await consulError(consul.session.create({ checks: ['down'] }))).body, "Check 'down' is in critical state");
  const ok = await consul.session.create({ ttl: '10s', lockdelay: '1s', behavior: 'delete', checks: [] });
  t.match((await consul.session.info(ok.ID)) as SessionInfo, { LockDelay: 1_000_000_000, Behavior: 'delete', NodeChecks: null });
});

t.test('acquire and release locks', async (t) => {
  const { consul } = await startTestConsul(t);
  const a = (await consul.session.create({ lockdelay: '0s' })).ID;
  const b = (await consul.session.create({ lockdelay: '0s' })).ID;
  t.equal(await consul.kv.set({ key: 'weft/leader', value: 'a', acquire: a }), true);
  let e = (await consul.kv.get('weft/leader')) as unknown as { Session: string; LockIndex: number; Value: string };
  t.match(e, { Session: a, LockIndex: 1, Value: 'a' });
  t.not(await consul.kv.set({ key: 'weft/leader', value: 'b', acquire: b }), true, 'held by another session');
  t.equal(await consul.kv.set({ key: 'weft/leader', value: 'a2', acquire: a }), true, 're-acquire by the holder');
  t.equal(((await consul.kv.get('weft/leader')) as unknown as { LockIndex: number }).LockIndex, 1);

  t.equal(await consul.kv.set('weft/leader', 'plain write'), true, 'a plain set keeps the holder');
  t.equal(((await consul.kv.get('weft/leader')) as unknown as { Session: string }).Session, a);

  t.not(await consul.kv.set({ key: 'weft/leader', value: 'x', release: b }), true, 'only the holder releases');
  t.equal(await consul.kv.set({ key: 'weft/leader', value: 'released', release: a }), true);
  e = (await consul.kv.get('weft/leader')) as unknown as { Session: string; LockIndex: number; Value: string };
  t.notOk('Session' in e);
  t.equal(e.Value, 'released', 'release writes the value, as in Consul');
  t.equal(await consul.kv.set({ key: 'weft/leader', value: 'b', acquire: b }), true, 'an explicit release arms no lock delay');
  t.equal(((await consul.kv.get('weft/leader')) as unknown as { LockIndex: number }).LockIndex, 2);
});

t.test('acquire with an invalid session is a 500', async (t) => {
  const { consul } = await startTestConsul(t);
  const err = await consulError(consul.kv.set({ key: 'k', value: 'v', acquire: 'not-a-session' }));
  t.strictSame([err.statusCode, err.body], [500, 'invalid session "not-a-session"']);
});

t.test('an expired session releases its lock and arms the lock delay', async (t) => {
  const { consul } = await startTestConsul(t);
  // Consul invalidates a TTL session after 2 x TTL: 150 ms here, counted from its creation (a slow machine may
  // spend most of it before the blocking read below starts, so only the lower bound is certain).
  const created = performance.now();
  const { ID } = await consul.session.create({ ttl: '75ms', lockdelay: '400ms' });
  t.equal(await consul.kv.set({ key: 'weft/leader', value: 'me', acquire: ID }), true);
  const held = await withMeta((o) => consul.kv.get(o), { key: 'weft/leader' });
  const woke = await withMeta((o) => consul.kv.get(o), { key: 'weft/leader', index: String(held.index), wait: '5s' });
  const after = performance.now() - created;
  t.ok(after >= 150, `released ${Math.round(after)} ms after the session was created, not before 2 x TTL`);
  t.not(woke.index, held.index, 'the blocking read woke on the release, not at the end of its wait');
  t.notOk('Session' in (woke.body as object), 'the lock is released');
  t.equal((woke.body as { Value: string }).Value, 'me', 'behavior release keeps the value');
  t.equal(await consul.session.info(ID), undefined);

  const next = (await consul.session.create({})).ID;
  t.not(await consul.kv.set({ key: 'weft/leader', value: 'next', acquire: next }), true, 'lock delay refuses a new holder');
  await eventually(async () => (await consul.kv.set({ key: 'weft/leader', value: 'next', acquire: next })) === true, 2000, 'lock delay to pass');
  t.pass('acquired once the lock delay passed');
});

t.test('renewing keeps a TTL session alive', async (t) => {
  const { consul } = await startTestConsul(t);
  const { ID } = await consul.session.create({ ttl: '100ms' });
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 100));
    await consul.session.renew(ID);
  }
  t.ok(await consul.session.info(ID), 'alive after 500 ms of renewals');
});

t.test('behavior delete removes held keys; destroy releases at once', async (t) => {
  const { consul } = await startTestConsul(t);
  const del = (await consul.session.create({ behavior: 'delete', lockdelay: '0s' })).ID;
  await consul.kv.set({ key: 'locks/a', value: '1', acquire: del });
  await consul.kv.set('locks/b', 'unlocked');
  await consul.session.destroy(del);
  t.strictSame(await consul.kv.keys('locks/'), ['locks/b']);

  const rel = (await consul.session.create({})).ID;
  await consul.kv.set({ key: 'locks/c', value: '1', acquire: rel });
  await consul.session.destroy(rel);
  t.notOk('Session' in ((await consul.kv.get('locks/c')) as object));
});

t.test('a session dies when one of its checks turns critical', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.agent.check.register({ name: 'alive', ttl: '10s', status: 'passing' } as never);
  const { ID } = await consul.session.create({ checks: ['serfHealth', 'alive'], lockdelay: '0s' });
  t.match((await consul.session.info(ID)) as SessionInfo, { NodeChecks: ['serfHealth', 'alive'] });
  await consul.kv.set({ key: 'held', value: 'x', acquire: ID });
  await consul.agent.check.fail('alive');
  t.equal(await consul.session.info(ID), undefined);
  t.notOk('Session' in ((await consul.kv.get('held')) as object));
});

t.test('session reads block on the sessions index', async (t) => {
  const { consul } = await startTestConsul(t);
  const first = await withMeta((o) => consul.session.list(o), {});
  const parked = withMeta((o) => consul.session.list(o), { index: String(first.index), wait: '5s' });
  await new Promise((r) => setTimeout(r, 30));
  const { ID } = await consul.session.create({});
  const r = await parked;
  t.ok(r.index > first.index);
  t.strictSame(
    (r.body as SessionInfo[]).map((s) => s.ID),
    [ID],
  );
});
