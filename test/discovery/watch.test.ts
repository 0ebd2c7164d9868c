/**
 * Watches against the real dev agent: instances come and go, an outage keeps
 * the last good view, KV prefixes. Time is a manual clock (the agent's HTTP is
 * real): the tests advance it by hand and assert exact sequences.
 */
import t from 'tap';
import { type Backoff, backoffDelayMs } from '../../base/backoff.js';
import { seededRandom } from '../../base/clock.js';
import type { Registration } from '../../base/contracts/labels.js';
import { type ClientOptions, DiscoveryClient, type QueryResult, type RequestExtras } from '../../discovery/client.js';
import { deleteKey, putJSON } from '../../discovery/kv.js';
import { deregisterInstance, type Instance, registerInstance } from '../../discovery/registry.js';
import { watchKey, watchKeyPrefix, watchService } from '../../discovery/watch.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { type ManualClock, manualClock, waitStarts } from '../helpers/manual-clock.js';

/** A registration with no checks (always passing), so instance changes are the only thing that moves. */
function reg(service: string, port: number): Registration {
  return {
    service,
    port,
    weight: 1,
    version: 'v1',
    tags: [],
    check: { intervalMs: 1000, timeoutMs: 500, failures: 1, successes: 1 },
    upstreams: [],
  };
}

const ids = (list: Instance[] | undefined): string[] => (list ?? []).map((i) => i.id);

/** One read a watch made: the index it sent, when (on the manual clock), and how it ended. */
interface QueryRecord {
  index: bigint;
  at: number;
  outcome: 'pending' | 'answered' | 'failed';
  error?: unknown;
}

/** A DiscoveryClient that records every (blocking) read, so tests can see what the loop sent and when. */
class RecordingClient extends DiscoveryClient {
  readonly queries: QueryRecord[] = [];
  readonly #clock: ManualClock;
  #onQuery: Array<() => void> = [];

  constructor(address: string, clock: ManualClock, opts: ClientOptions = {}) {
    super({ address }, opts);
    this.#clock = clock;
  }

  override async query<T>(
    op: string,
    run: (consul: DiscoveryClient['consul'], extras: RequestExtras) => Promise<unknown>,
    q: { index?: bigint; waitMs?: number; signal?: AbortSignal } = {},
  ): Promise<QueryResult<T>> {
    const record: QueryRecord = { index: q.index ?? 0n, at: this.#clock.now(), outcome: 'pending' };
    this.queries.push(record);
    for (const wake of this.#onQuery.splice(0)) wake();
    try {
      const result = await super.query<T>(op, run, q);
      record.outcome = 'answered';
      return result;
    } catch (err) {
      record.outcome = 'failed';
      record.error = err;
      throw err;
    }
  }

  /** Resolves once a read carrying an index (one the agent parks) is in flight. */
  async blocking(): Promise<QueryRecord> {
    for (;;) {
      const parked = this.queries.find((r) => r.outcome === 'pending' && r.index > 0n);
      if (parked !== undefined) return parked;
      await new Promise<void>((resolve) => this.#onQuery.push(resolve));
    }
  }
}

const SEED = 7;

t.test('a service watch sees an instance arrive and leave, and nothing else', async (t) => {
  const c = await startTestConsul(t);
  const clock = manualClock();
  const client = new RecordingClient(c.address, clock);
  t.teardown(() => client.close());
  await registerInstance(client, { host: 'h1', hostAddress: '127.0.0.1', instance: 'a', meshPort: 15443, registration: reg('api', 9001) });

  const w = watchService(client, 'api', { waitMs: 10_000, now: clock.now, timers: clock });
  t.teardown(() => w.close());
  const seen: string[][] = [];
  w.on('change', (list) => seen.push(ids(list)));
  t.strictSame(ids(await clock.runUntil(w.ready())), ['h1-a']);
  const first = w.index;
  t.strictSame(clock.pending(), [{ at: 100, ms: 100 }], 'the next read waits out the 100 ms rate limit, on the injected timers');

  clock.advance(100);
  await client.blocking(); // the read with the index is out, parked in the agent
  await registerInstance(client, { host: 'h2', hostAddress: '127.0.0.2', instance: 'b', meshPort: 15443, registration: reg('api', 9002) });
  const two = await clock.runUntil(w.next((l) => l.length === 2)); // runUntil: a wrong loop fails the asserts below rather than hanging
  t.match(two[1], { id: 'h2-b', address: '127.0.0.2', port: 9002, host: 'h2', meshPort: 15443, healthy: true });
  t.strictSame(
    client.queries.map((q) => [q.index, q.at, q.outcome]),
    [
      [0n, 0, 'answered'],
      [first, 100, 'answered'],
    ],
    'the one read parked with the index brought the new instance, with the clock still at 100 ms: blocking, not polling',
  );

  // Another service changing wakes nobody up with a duplicate.
  await registerInstance(client, { host: 'h1', hostAddress: '127.0.0.1', instance: 'x', meshPort: 15443, registration: reg('other', 9100) });
  await deregisterInstance(client, 'h1-a');
  t.strictSame(ids(await clock.runUntil(w.next((l) => l.length === 1))), ['h2-b']);
  t.strictSame(seen, [['h1-a'], ['h1-a', 'h2-b'], ['h2-b']], 'one event per distinct set');
  t.ok(w.index > 0n, 'blocking on a real index');
  t.equal(w.stale, false);
  t.ok(
    client.queries.slice(1).every((q) => q.index > 0n),
    'every read after the first carried an index',
  );
});

t.test('an agent outage keeps the last known good view; retries are exactly the backoff; recovery after restart', async (t) => {
  const c = await startTestConsul(t);
  const clock = manualClock();
  const client = new RecordingClient(c.address, clock, { requestTimeoutMs: 1000 });
  t.teardown(() => client.close());
  await registerInstance(client, { host: 'h1', hostAddress: '127.0.0.1', instance: 'a', meshPort: 15443, registration: reg('api', 9001) });
  await registerInstance(client, { host: 'h2', hostAddress: '127.0.0.2', instance: 'b', meshPort: 15443, registration: reg('api', 9002) });

  // No rate limit here (watch-loop.test.ts covers it): every timer armed is a retry.
  const backoff: Backoff = { baseMs: 20, maxMs: 160, jitter: 'equal' };
  const w = watchService(client, 'api', {
    waitMs: 10_000,
    minIntervalMs: 0,
    backoffBaseMs: backoff.baseMs,
    backoffMaxMs: backoff.maxMs,
    now: clock.now,
    timers: clock,
    random: seededRandom(SEED),
  });
  t.teardown(() => w.close());
  t.strictSame(ids(await clock.runUntil(w.ready())), ['h1-a', 'h2-b']);
  const changes: string[][] = [];
  w.on('change', (l) => changes.push(ids(l)));
  const retries: Array<{ delay: number; attempt: number; at: number; code: string | undefined }> = [];
  w.on('retry', (err, delay, attempt) => retries.push({ delay, attempt, at: clock.now(), code: (err as { code?: string }).code }));

  const stale = new Promise<Error>((resolve) => w.once('stale', resolve));
  await c.agent.close(); // really stopped: the listener is gone
  const err = await stale;
  t.match(err, { code: 'WEFT_ERR_CONSUL_UNAVAILABLE' });
  const triesFrom = client.queries.length; // the reads after the first failure are the retries

  // Eight more tries, each let out by hand exactly when its timer is due.
  for (let i = 0; i < 8; i++) clock.advanceTo((await clock.whenArmed()).at);
  await clock.whenArmed(); // the ninth failure is in, its retry armed
  t.strictSame(ids(w.current()), ['h1-a', 'h2-b'], 'the outage did not empty the view');
  t.equal(w.stale, true);
  t.match(w.lastError, { code: 'WEFT_ERR_CONSUL_UNAVAILABLE' });
  t.strictSame(changes, [], 'no change events during the outage');

  const random = seededRandom(SEED);
  const want = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((a) => backoffDelayMs(a, backoff, random));
  t.strictSame(
    retries.map((r) => r.delay),
    want,
    'the retry delays are the backoff decisions (20 ms doubling to the 160 ms cap, equal jitter, from the seed)',
  );
  t.strictSame(
    retries.map((r) => r.attempt),
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  t.strictSame(clock.armed, want, 'and the only timers the watch armed');
  t.strictSame(
    retries.map((r) => r.at),
    waitStarts(want.slice(0, -1)),
    'each try went out exactly when the previous delay ran out',
  );
  t.ok(
    retries.every((r) => r.code === 'WEFT_ERR_CONSUL_UNAVAILABLE'),
    'every retry is a coded unavailable error',
  );

  const recovered = new Promise<void>((resolve) => w.once('recovered', () => resolve()));
  await c.restart(); // same port and data directory: the registrations come back
  await clock.runUntil(recovered);
  t.equal(w.stale, false);
  t.equal(w.lastError, undefined);
  t.strictSame(ids(w.current()), ['h1-a', 'h2-b'], 'same view after recovery');
  t.strictSame(changes, [], 'recovery with unchanged data emits nothing');
  t.strictSame(
    client.queries.slice(triesFrom, triesFrom + 8).map((q) => [q.index, q.outcome]),
    Array.from({ length: 8 }, () => [0n, 'failed']),
    'one read per retry (no spin), none blocking',
  );
  t.match(
    client.queries.slice(triesFrom + 8).find((q) => q.outcome === 'answered'),
    { index: 0n },
    'so the restarted agent answered the first read that reached it at once',
  );

  // And it is blocking again against the new agent process.
  await clock.runUntil(client.blocking());
  await registerInstance(client, { host: 'h3', hostAddress: '127.0.0.3', instance: 'c', meshPort: 15443, registration: reg('api', 9003) });
  t.strictSame(ids(await clock.runUntil(w.next((l) => l.length === 3))), ['h1-a', 'h2-b', 'h3-c']);
});

t.test('a watch that never reached Consul has no value, only an error', async (t) => {
  const c = await startTestConsul(t);
  await c.close();
  const clock = manualClock();
  const client = new DiscoveryClient({ address: c.address }, { requestTimeoutMs: 500 });
  t.teardown(() => client.close());
  const w = watchService(client, 'api', { backoffBaseMs: 20, backoffMaxMs: 50, now: clock.now, timers: clock, random: seededRandom(SEED) });
  t.teardown(() => w.close());
  await new Promise<void>((resolve) => w.once('stale', () => resolve()));
  t.equal(w.current(), undefined, '"nothing known yet" is not "no instances"');
  t.equal(w.stale, true);
});

t.test('close() ends a parked blocking query at once', async (t) => {
  const c = await startTestConsul(t);
  const clock = manualClock();
  const client = new RecordingClient(c.address, clock);
  t.teardown(() => client.close());
  const w = watchService(client, 'api', { waitMs: 30_000, now: clock.now, timers: clock });
  await clock.runUntil(w.ready());
  const parked = await clock.runUntil(client.blocking()); // past the rate limit: parked in the agent for up to 30 s
  await w.close();
  t.equal(parked.outcome, 'failed', 'the parked read was cut, not answered: close() did not wait out the 30 s');
  t.match(parked.error, { code: 'WEFT_ERR_CONSUL_UNAVAILABLE', message: /closed/ }, 'with the close reason');
  t.equal(clock.now(), 100, 'no time passed beyond the rate limit');
});

t.test('KV prefix and single-key watches share the loop', async (t) => {
  const c = await startTestConsul(t);
  const clock = manualClock();
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  const splits = watchKeyPrefix(client, 'weft/splits/', { waitMs: 10_000, now: clock.now, timers: clock });
  const leader = watchKey(client, 'weft/leader', { waitMs: 10_000, now: clock.now, timers: clock });
  t.teardown(() => splits.close());
  t.teardown(() => leader.close());
  t.strictSame(await clock.runUntil(splits.ready()), [], 'an absent prefix is an empty list');
  t.equal(await clock.runUntil(leader.ready()), null, 'an absent key is null');

  let events = 0;
  splits.on('change', () => events++);
  await putJSON(client, 'weft/splits/web', { v1: 90, v2: 10 });
  const one = await clock.runUntil(splits.next((e) => e.length === 1));
  t.match(one, [{ key: 'weft/splits/web', value: '{"v1":90,"v2":10}', session: undefined }]);
  t.ok(one[0]!.modifyIndex > 0);

  await putJSON(client, 'weft/intentions/a/b', { action: 'allow' }); // another prefix
  await putJSON(client, 'weft/splits/api', { v1: 100 });
  t.strictSame(
    (await clock.runUntil(splits.next((e) => e.length === 2))).map((e) => e.key),
    ['weft/splits/api', 'weft/splits/web'],
    'sorted by key',
  );
  await deleteKey(client, 'weft/splits/web');
  t.strictSame(
    (await clock.runUntil(splits.next((e) => e.length === 1))).map((e) => e.key),
    ['weft/splits/api'],
  );
  t.equal(events, 3, 'the write under weft/intentions/ did not wake this watch with an event');

  await putJSON(client, 'weft/leader', { who: 'x' });
  t.match(await clock.runUntil(leader.next((e) => e !== null)), { key: 'weft/leader', value: '{"who":"x"}' });
  await deleteKey(client, 'weft/leader');
  t.equal(await clock.runUntil(leader.next((e) => e === null)), null);
});
