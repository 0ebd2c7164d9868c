/**
 * Session locks against the real dev agent, on a manual clock: the lock's
 * renewals, retries and backoff wait on timers the test advances by hand, so
 * the tests assert exact sequences (when each renewal and attempt went out)
 * instead of sleeping. The agent's own clock is real: TTLs here are long
 * enough that it never expires a session by itself, and where a test needs
 * the agent's time to pass (a lock-delay running out, a session expiring) it
 * does that by hand too; dev-agent/session.test.ts and persistence.test.ts
 * cover the agent's timers.
 */
import t from 'tap';
import { backoffDelayMs } from '../../base/backoff.js';
import { seededRandom } from '../../base/clock.js';
import type { WeftError } from '../../base/errors.js';
import { type ClientOptions, DiscoveryClient, type QueryResult, type RequestExtras } from '../../discovery/client.js';
import { fencedPutJSON, getEntry, getJSON } from '../../discovery/kv.js';
import { ACQUIRE_BACKOFF, lockDelayRetryMs, SessionLock } from '../../discovery/lock.js';
import { startTestConsul, type TeardownHost, type TestConsul } from '../helpers/dev-consul.js';
import { type ManualClock, manualClock, settle, waitStarts } from '../helpers/manual-clock.js';

/** Default session TTL: the agent (2 x TTL, real time) never expires a session during a test. */
const TTL = 30_000;
/** Default lock-delay: a standby in it retries every lockDelayRetryMs(LOCK_DELAY) = 1 s. */
const LOCK_DELAY = 4_000;
const SEED = 11;

/** One request a lock made: the operation, when (on the manual clock), how it ended. */
interface Request {
  op: string;
  at: number;
  /** The index a read sent; above 0 the agent parks it. */
  index: bigint;
  outcome: 'pending' | 'ok' | 'failed';
  value?: unknown;
  /** Settles (never rejects) when the request does. */
  done: Promise<void>;
}

/** A DiscoveryClient that records every request, so a test knows what a lock sent, when, and when it is idle. */
class RecordingClient extends DiscoveryClient {
  readonly log: Request[] = [];
  readonly #clock: ManualClock;
  #onRequest: Array<() => void> = [];

  constructor(address: string, clock: ManualClock, opts: ClientOptions = {}) {
    super({ address }, opts);
    this.#clock = clock;
  }

  override call<T>(op: string, run: (consul: DiscoveryClient['consul']) => Promise<T>): Promise<T> {
    return this.#record(op, 0n, super.call(op, run));
  }

  override query<T>(
    op: string,
    run: (consul: DiscoveryClient['consul'], extras: RequestExtras) => Promise<unknown>,
    q: { index?: bigint; waitMs?: number; signal?: AbortSignal } = {},
  ): Promise<QueryResult<T>> {
    return this.#record(op, q.index ?? 0n, super.query<T>(op, run, q));
  }

  /** The requests of one operation as [clock time, outcome]. */
  times(op: string): Array<[number, Request['outcome']]> {
    return this.log.filter((r) => r.op === op).map((r) => [r.at, r.outcome]);
  }

  /** Acquire attempts as [clock time, won]. */
  attempts(): Array<[number, boolean]> {
    return this.log.filter((r) => r.op === 'kv.set acquire').map((r) => [r.at, r.value === true]);
  }

  /** True while a read carrying an index is in flight: the lock's key watch is parked in the agent. */
  parked(): boolean {
    return this.log.some((r) => r.outcome === 'pending' && r.index > 0n);
  }

  /** Resolves once parked(). */
  async blocking(): Promise<void> {
    while (!this.parked()) await new Promise<void>((resolve) => this.#onRequest.push(resolve));
  }

  /** The requests in flight that the agent answers at once (parked blocking reads excluded). */
  busy(): Request[] {
    return this.log.filter((r) => r.outcome === 'pending' && r.index === 0n);
  }

  #record<R>(op: string, index: bigint, p: Promise<R>): Promise<R> {
    const r: Request = { op, at: this.#clock.now(), index, outcome: 'pending', done: Promise.resolve() };
    r.done = p.then(
      (value) => {
        r.outcome = 'ok';
        r.value = value;
      },
      () => {
        r.outcome = 'failed';
      },
    );
    this.log.push(r);
    for (const wake of this.#onRequest.splice(0)) wake();
    return p;
  }
}

/**
 * Waits until none of `clients` has a request in flight but parked blocking
 * reads, and the code that awaited them has run: the locks wait on the clock
 * or on the agent again.
 */
async function quiet(...clients: RecordingClient[]): Promise<void> {
  for (;;) {
    await settle();
    const busy = clients.flatMap((c) => c.busy());
    if (busy.length === 0) return;
    await Promise.all(busy.map((r) => r.done));
  }
}

/** Advances to the soonest pending timer whose delay matches, once the code has armed it. */
async function advanceToNext(clock: ManualClock, pred: (ms: number) => boolean): Promise<number> {
  const timer = await clock.whenArmed(pred);
  clock.advanceTo(timer.at);
  return timer.at;
}

interface Setup {
  c: TestConsul;
  clock: ManualClock;
  /** The test's own client, for reads and writes outside the locks. */
  client: DiscoveryClient;
  /** A contender with its own recording client, on the manual clock. */
  lock(name: string, ttlMs?: number, lockDelayMs?: number): [SessionLock, RecordingClient];
}

async function setup(t: TeardownHost): Promise<Setup> {
  const c = await startTestConsul(t);
  const clock = manualClock();
  const client = new DiscoveryClient({ address: c.address }, { requestTimeoutMs: 1000 });
  t.teardown(() => client.close());
  const lock = (name: string, ttlMs = TTL, lockDelayMs = LOCK_DELAY): [SessionLock, RecordingClient] => {
    const io = new RecordingClient(c.address, clock, { requestTimeoutMs: 1000 });
    const l = new SessionLock(io, {
      name,
      ttlMs,
      lockDelayMs,
      value: { name },
      now: clock.now,
      timers: clock,
      random: seededRandom(SEED),
      // No rate limit, and a key-watch backoff (5-50 ms, its own seed) that no lock timer can be mistaken for.
      watch: { waitMs: 5000, minIntervalMs: 0, backoffBaseMs: 5, backoffMaxMs: 50, random: seededRandom(SEED + 1) },
    });
    t.teardown(async () => {
      await l.close();
      io.close();
    });
    return [l, io];
  };
  return { c, clock, client, lock };
}

t.test('two contenders: only one holds; the key names its session', async (t) => {
  const { client, clock, lock } = await setup(t);
  const [a] = lock('a');
  const [b] = lock('b');
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
  t.strictSame(clock.pending(), [
    { at: TTL / 2, ms: TTL / 2 },
    { at: TTL / 2, ms: TTL / 2 },
  ], 'each session renews at TTL/2, on the injected timers');
});

t.test('releasing hands over to the standby at once (no lock-delay); fencing follows the holder', async (t) => {
  const { client, clock, lock } = await setup(t);
  const [a] = lock('a');
  const [b, bio] = lock('b');
  t.equal(await a.tryAcquire(), true);
  await fencedPutJSON(client, a.fence(), 'weft/allocs/h1/x', { by: 'a' });

  let bAcquired = false;
  const standby = b.waitForLock().then(() => {
    bAcquired = true;
  });
  await bio.blocking();
  await quiet(bio);
  t.strictSame(bio.attempts(), [[0, false]], 'one attempt, refused: the key is held');
  await clock.advanceAndSettle(10 * lockDelayRetryMs(LOCK_DELAY));
  await quiet(bio);
  t.equal(bAcquired, false, 'the standby waits while the lock is held');
  t.strictSame(bio.attempts(), [[0, false]], 'parked on the key, not polling: ten retry periods passed without an attempt');

  const lostOnRelease: WeftError[] = [];
  a.on('lost', (e) => lostOnRelease.push(e));
  const releasedAt = clock.now();
  await a.release();
  await standby;
  t.strictSame(bio.attempts(), [
    [0, false],
    [releasedAt, true],
  ], 'handed over with no time passing: neither the 4 s lock-delay nor a retry timer');
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

  // close() releases too: b hands over to a new standby.
  const [c2, c2io] = lock('c');
  const third = c2.waitForLock();
  await c2io.blocking();
  await quiet(c2io);
  await b.close();
  await third;
  t.equal(c2.held, true);
});

t.test("a session invalidated behind the holder's back emits lost once; the standby waits out the lock-delay", async (t) => {
  const { c, clock, lock } = await setup(t);
  const [a, aio] = lock('a');
  const [b, bio] = lock('b');
  t.equal(await a.tryAcquire(), true);
  await aio.blocking(); // the holder's key watch is parked: it sees the invalidation by itself
  const lost: WeftError[] = [];
  a.on('lost', (e) => lost.push(e));
  const gotLost = new Promise((resolve) => a.once('lost', resolve));
  await c.consul.session.destroy(a.sessionId!); // what expiry does, without waiting for it
  await gotLost;
  t.equal(a.held, false);
  t.match(lost[0], { code: 'WEFT_ERR_LOCK_LOST', key: 'weft/leader' });

  // The agent armed the key's lock-delay on its own, real, clock. Hold it there and end it by
  // hand when the manual clock reaches it, so the standby's side runs on the manual clock alone.
  t.ok(c.agent.store.lockDelays.has('weft/leader'), 'the agent armed the lock-delay');
  c.agent.store.lockDelays.set('weft/leader', Number.POSITIVE_INFINITY);
  const destroyedAt = clock.now();
  const retryMs = lockDelayRetryMs(LOCK_DELAY);
  let acquired = false;
  const standby = b.waitForLock().then(() => {
    acquired = true;
  });
  while (!acquired) {
    const timer = await Promise.race([clock.whenArmed((ms) => ms === retryMs), standby.then(() => undefined)]);
    if (timer === undefined) break;
    if (timer.at >= destroyedAt + LOCK_DELAY) c.agent.store.lockDelays.delete('weft/leader'); // ran out by then
    clock.advanceTo(timer.at);
  }
  await standby;
  t.strictSame(
    bio.attempts(),
    [
      [0, false],
      [1000, false],
      [2000, false],
      [3000, false],
      [4000, true],
    ],
    'refused during the lock-delay, retried every second on the injected timers, acquired at its end',
  );

  // a's renewal at TTL/2 finds the session gone (404): that is not a second loss.
  await clock.advanceAndSettle(TTL / 2);
  await quiet(aio, bio);
  t.strictSame(aio.times('session.renew'), [[TTL / 2, 'failed']]);
  t.equal(a.sessionId, undefined, 'the renewer dropped the dead session');
  t.equal(lost.length, 1, 'lost is emitted once');
});

t.test('a session whose renewals fail for a whole TTL emits lost, exactly one TTL after the last renewal', async (t) => {
  const { c, clock, lock } = await setup(t);
  const ttl = 20_000; // renewals every 10 s; after a failure, every second
  const [a, aio] = lock('a', ttl, 0);
  t.equal(await a.tryAcquire(), true);
  const oldSession = a.sessionId!;
  for (let i = 0; i < 3; i++) {
    await advanceToNext(clock, (ms) => ms === ttl / 2);
    await quiet(aio);
  }
  t.strictSame(aio.times('session.renew'), [
    [10_000, 'ok'],
    [20_000, 'ok'],
    [30_000, 'ok'],
  ]);
  t.equal(a.held, true, 'renewals at TTL/2 keep the session alive past its TTL');

  let lostAt: number | undefined;
  const gotLost = new Promise<WeftError>((resolve) => a.once('lost', resolve)).then((err) => {
    lostAt = clock.now();
    return err;
  });
  await c.agent.close(); // Consul unreachable: renewals fail
  while (lostAt === undefined) {
    const timer = await Promise.race([clock.whenArmed((ms) => ms === ttl / 2 || ms === 1000), gotLost.then(() => undefined)]);
    if (timer === undefined) break;
    clock.advanceTo(timer.at);
    await quiet(aio);
  }
  const err = await gotLost;
  t.match(err, { code: 'WEFT_ERR_LOCK_LOST', message: /not renewed for 20s/ });
  t.equal(lostAt, 50_000, 'lost when a whole TTL passed since the last renewal at 30 s');
  t.strictSame(
    aio.times('session.renew').slice(3),
    Array.from({ length: 11 }, (_, i) => [40_000 + i * 1000, 'failed']),
    'the renewal due at 40 s failed, then one try a second',
  );
  t.equal(a.held, false);
  t.equal(a.sessionId, undefined, 'the session is forgotten: a new one is made on the next attempt');

  await c.restart();
  const [again, againio] = lock('a2', ttl, 0);
  const standby = again.waitForLock();
  await againio.blocking();
  await quiet(againio);
  t.equal(again.held, false, 'the old session still holds the key in the restarted agent');
  // What the agent's TTL does, on its real clock, 2 x TTL after the last renewal.
  await c.consul.session.destroy(oldSession);
  await standby;
  t.equal(again.held, true, 'once the old session expired in the restarted agent, the lock is free again');
});

t.test('a short outage: the holder keeps the lock, the standby keeps waiting, then takes over', async (t) => {
  const { c, clock, lock } = await setup(t);
  const ttl = 20_000;
  const [a, aio] = lock('a', ttl, 0);
  const [b, bio] = lock('b', ttl, 0);
  t.equal(await a.tryAcquire(), true);
  const lost: WeftError[] = [];
  a.on('lost', (e) => lost.push(e));
  const standby = b.waitForLock();
  await bio.blocking();
  await quiet(bio);

  await c.agent.close();
  // 15 s of a 20 s TTL without Consul: the renewals due at 10 s fail, then one try a second.
  while (clock.now() < 15_000) {
    await advanceToNext(clock, (ms) => ms === ttl / 2 || ms === 1000);
    await quiet(aio, bio);
  }
  await c.restart();
  await advanceToNext(clock, (ms) => ms === 1000);
  await quiet(aio, bio);
  // Let the key watches retry (their backoff is at most 50 ms) until the standby's is parked in the restarted agent.
  while (!bio.parked()) {
    await clock.advanceAndSettle(50);
    await quiet(aio, bio);
  }
  t.strictSame(aio.times('session.renew'), [
    ...Array.from({ length: 6 }, (_, i): [number, string] => [10_000 + i * 1000, 'failed']),
    [16_000, 'ok'],
  ], 'failed renewals from 10 s to 15 s, then the one at 16 s went through');
  t.equal(a.held, true, 'an outage shorter than the TTL does not depose the holder');
  t.strictSame(lost, []);
  t.equal(b.held, false);

  await a.release();
  await standby;
  t.equal(b.held, true, 'the standby survived the outage and took over');
});

t.test('a standby that cannot reach Consul backs off its attempts, then acquires when Consul is back', async (t) => {
  const { c, clock, lock } = await setup(t);
  const [b, bio] = lock('b');
  await c.agent.close();
  const standby = b.waitForLock();
  // Acquire backoff delays start at 125 ms; the key watch's stay under 50 ms.
  for (let i = 0; i < 5; i++) {
    await advanceToNext(clock, (ms) => ms > 50);
    await quiet(bio);
  }
  const random = seededRandom(SEED);
  const delays = [1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(n, ACQUIRE_BACKOFF, random));
  const starts = waitStarts(delays);
  t.strictSame(
    bio.times('session.create'),
    starts.slice(0, 6).map((at) => [at, 'failed']),
    'each attempt waits the next ACQUIRE_BACKOFF delay (250 ms doubling, equal jitter, from the seed)',
  );
  t.strictSame(
    clock.pending().filter((p) => p.ms > 50),
    [{ at: starts[6], ms: delays[5] }],
    'the sixth delay is armed',
  );

  await c.restart();
  await advanceToNext(clock, (ms) => ms > 50);
  await standby;
  t.equal(b.held, true);
  t.strictSame(bio.attempts(), [[starts[6], true]], 'acquired at the first attempt after the agent came back');
});

t.test('waitForLock honours its signal', async (t) => {
  const { lock } = await setup(t);
  const [a] = lock('a');
  const [b, bio] = lock('b');
  t.equal(await a.tryAcquire(), true);
  const ac = new AbortController();
  const waiting = b.waitForLock(ac.signal);
  await bio.blocking();
  await quiet(bio);
  ac.abort(new Error('shutting down'));
  await t.rejects(waiting, { message: 'shutting down' });
  t.equal(b.held, false);
  const closing = t.rejects(b.waitForLock(), { code: 'WEFT_ERR_LOCK_LOST', message: /lock closed/ }, 'close() ends a pending wait');
  await bio.blocking();
  await quiet(bio);
  await b.close();
  await closing;
});
