/**
 * Session locks against the real dev agent (its session TTL floor is lowered
 * for tests, so TTLs of a few hundred ms are real TTLs here).
 */
import t from 'tap';
import { DiscoveryClient } from '../../discovery/client.js';
import { fencedPutJSON, getEntry, getJSON } from '../../discovery/kv.js';
import { SessionLock } from '../../discovery/lock.js';
import type { WeftError } from '../../base/errors.js';
import { startTestConsul, type TeardownHost, type TestConsul } from '../helpers/dev-consul.js';

async function setup(t: TeardownHost): Promise<{ c: TestConsul; client: DiscoveryClient; lock: (name: string, ttlMs?: number, lockDelayMs?: number) => SessionLock }> {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address }, { requestTimeoutMs: 1000 });
  t.teardown(() => client.close());
  const lock = (name: string, ttlMs = 1000, lockDelayMs = 1000): SessionLock => {
    const l = new SessionLock(client, { name, ttlMs, lockDelayMs, value: { name }, watch: { waitMs: 5000, backoffBaseMs: 20, backoffMaxMs: 200 } });
    t.teardown(() => l.close());
    return l;
  };
  return { c, client, lock };
}

t.test('two contenders: only one holds; the key names its session', async (t) => {
  const { client, lock } = await setup(t);
  const a = lock('a');
  const b = lock('b');
  const [wonA, wonB] = await Promise.all([a.tryAcquire(), b.tryAcquire()]);
  t.equal(Number(wonA) + Number(wonB), 1, 'exactly one wins');
  const [holder, loser] = wonA ? [a, b] : [b, a];
  t.equal(holder.held, true);
  t.equal(loser.held, false);
  t.equal(await loser.tryAcquire(), false, 'trying again does not help');
  const entry = await getEntry(client, 'weft/leader');
  t.equal(entry?.session, holder.sessionId);
  t.ok(holder.sessionId !== loser.sessionId);
  t.match(await getJSON(client, 'weft/leader'), { value: { name: holder === a ? 'a' : 'b' } });
});

t.test('releasing hands over to the standby at once (no lock-delay); fencing follows the holder', async (t) => {
  const { client, lock } = await setup(t);
  const a = lock('a', 1000, 5000);
  const b = lock('b', 1000, 5000);
  t.equal(await a.tryAcquire(), true);
  await fencedPutJSON(client, a.fence(), 'weft/allocs/h1/x', { by: 'a' });

  let bAcquired = false;
  const standby = b.waitForLock().then(() => {
    bAcquired = true;
  });
  await new Promise((r) => setTimeout(r, 150));
  t.equal(bAcquired, false, 'the standby waits while the lock is held');

  const lostOnRelease: WeftError[] = [];
  a.on('lost', (e) => lostOnRelease.push(e));
  const started = Date.now();
  await a.release();
  await standby;
  t.ok(Date.now() - started < 1000, `handed over in ${Date.now() - started} ms, well under the 5 s lock-delay`);
  t.equal(b.held, true);
  t.equal(a.held, false);
  t.strictSame(lostOnRelease, [], 'a deliberate release is not a loss');

  const staleFence = { key: 'weft/leader', session: a.sessionId! };
  await t.rejects(fencedPutJSON(client, staleFence, 'weft/allocs/h1/x', { by: 'a' }), { code: 'WEFT_ERR_LOCK_LOST', key: 'weft/leader' });
  t.throws(() => a.fence(), { code: 'WEFT_ERR_LOCK_LOST' });
  await fencedPutJSON(client, b.fence(), 'weft/allocs/h1/x', { by: 'b' });
  t.match(await getJSON(client, 'weft/allocs/h1/x'), { value: { by: 'b' } });
  const cur = await getJSON(client, 'weft/allocs/h1/x');
  await t.rejects(fencedPutJSON(client, b.fence(), 'weft/allocs/h1/x', { by: 'b2' }, { cas: cur!.modifyIndex - 1 }), {
    code: 'WEFT_ERR_KV_CAS_CONFLICT',
  });

  // close() releases too: a closes nothing (not holding), b hands back to a new standby.
  const c2 = lock('c');
  const third = c2.waitForLock();
  await b.close();
  await third;
  t.equal(c2.held, true);
});

t.test('a session invalidated behind the holder\'s back emits lost once; lock-delay then applies', async (t) => {
  const { c, lock } = await setup(t);
  const a = lock('a', 1000, 400);
  const b = lock('b', 1000, 400);
  t.equal(await a.tryAcquire(), true);
  const lost: WeftError[] = [];
  a.on('lost', (e) => lost.push(e));
  const gotLost = new Promise((resolve) => a.once('lost', resolve));
  await c.consul.session.destroy(a.sessionId!); // what expiry does, without waiting for it
  const destroyedAt = Date.now();
  await gotLost;
  t.equal(a.held, false);
  t.match(lost[0], { code: 'WEFT_ERR_LOCK_LOST', key: 'weft/leader' });

  await b.waitForLock();
  const waited = Date.now() - destroyedAt;
  t.ok(waited >= 300, `the standby waited out the lock-delay (${waited} ms)`);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(lost.length, 1, 'lost is emitted once');
});

t.test('a session whose TTL runs out (renewals failing) emits lost', async (t) => {
  const { c, lock } = await setup(t);
  const a = lock('a', 400, 100);
  t.equal(await a.tryAcquire(), true);
  await new Promise((r) => setTimeout(r, 600));
  t.equal(a.held, true, 'renewals at TTL/2 keep the session alive past its TTL');

  const gotLost = new Promise<WeftError>((resolve) => a.once('lost', resolve));
  const cutAt = Date.now();
  await c.agent.close(); // Consul unreachable: renewals fail
  const err = await gotLost;
  const after = Date.now() - cutAt;
  t.match(err, { code: 'WEFT_ERR_LOCK_LOST' });
  t.ok(after < 1500, `gave up within about a TTL of the last renewal (${after} ms)`);
  t.equal(a.held, false);
  t.equal(a.sessionId, undefined, 'the session is forgotten: a new one is made on the next attempt');

  await c.restart();
  const again = lock('a2', 400, 100);
  await again.waitForLock(AbortSignal.timeout(5000));
  t.equal(again.held, true, 'after the old session expired in the restarted agent, the lock is free again');
});

t.test('a short outage: the holder keeps the lock, the standby keeps waiting, then takes over', async (t) => {
  const { c, lock } = await setup(t);
  const a = lock('a', 2000, 100);
  const b = lock('b', 2000, 100);
  t.equal(await a.tryAcquire(), true);
  const lost: WeftError[] = [];
  a.on('lost', (e) => lost.push(e));
  const standby = b.waitForLock();
  await new Promise((r) => setTimeout(r, 100));

  await c.agent.close();
  await new Promise((r) => setTimeout(r, 400)); // shorter than the TTL
  await c.restart();
  await new Promise((r) => setTimeout(r, 300));
  t.equal(a.held, true, 'an outage shorter than the TTL does not depose the holder');
  t.strictSame(lost, []);
  t.equal(b.held, false);

  await a.release();
  await standby;
  t.equal(b.held, true, 'the standby survived the outage and took over');
});

t.test('waitForLock honours its signal', async (t) => {
  const { lock } = await setup(t);
  const a = lock('a');
  const b = lock('b');
  t.equal(await a.tryAcquire(), true);
  const ac = new AbortController();
  const waiting = b.waitForLock(ac.signal);
  await new Promise((r) => setTimeout(r, 100));
  ac.abort(new Error('shutting down'));
  await t.rejects(waiting, { message: 'shutting down' });
  t.equal(b.held, false);
  const closing = t.rejects(b.waitForLock(), { code: 'WEFT_ERR_LOCK_LOST', message: /lock closed/ }, 'close() ends a pending wait');
  await new Promise((r) => setTimeout(r, 50));
  await b.close();
  await closing;
});
