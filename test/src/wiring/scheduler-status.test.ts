/**
 * The job event ring has two writers: the API appends (check-and-set) and the
 * leader writes its cached record (fenced). Neither may lose the other's events.
 */
import t from 'tap';
import { createDiscoveryClient } from '../../../discovery/client.js';
import { fencedTxn, getEntry, getJSON, putJSON, update } from '../../../discovery/kv.js';
import type { JobEvent } from '../../../base/contracts/scheduler-api.js';
import { observeStatus, writeStatuses } from '../../../src/wiring/scheduler-status.js';
import { EVENT_RING, emptyStatus, jobKey, mergeEvents, pushEvents, type StatusRecord, statusKey } from '../../../src/wiring/scheduler-store.js';
import { startTestConsul } from '../../helpers/dev-consul.js';

const ev = (ms: number, type: string, message = type): JobEvent => ({ at: new Date(ms).toISOString(), type, message });

t.test('mergeEvents: the union, oldest first, newest EVENT_RING kept', async (t) => {
  const a1 = ev(1000, 'submitted');
  const l1 = ev(1001, 'placed', 'app[0] placed');
  const l2 = ev(1001, 'deployment');
  const a2 = ev(1500, 'scaled');
  const cases: Array<[string, JobEvent[], JobEvent[], JobEvent[]]> = [
    ['both empty', [], [], []],
    ['only one side', [l1, l2], [], [l1, l2]],
    ['the same events on both sides count once', [a1, l1], [a1, l1], [a1, l1]],
    ['an API event the leader lacks joins in time order', [a1, l1, l2], [a1, a2], [a1, l1, l2, a2]],
    ['equal timestamps keep their writer order', [l1, l2], [a1], [a1, l1, l2]],
    ['an out-of-order ring is sorted', [a2, a1], [], [a1, a2]],
    ['same time and type, other message: two events', [ev(5, 'placed', 'a')], [ev(5, 'placed', 'b')], [ev(5, 'placed', 'a'), ev(5, 'placed', 'b')]],
  ];
  for (const [what, a, b, want] of cases) t.strictSame(mergeEvents(a, b), want, what);
  const many = Array.from({ length: EVENT_RING }, (_, i) => ev(i, 'placed', `p${i}`));
  const merged = mergeEvents(many, [ev(EVENT_RING + 5, 'scaled')]);
  t.equal(merged.length, EVENT_RING, 'capped');
  t.strictSame([merged[0]!.message, merged.at(-1)!.type], ['p1', 'scaled'], 'the oldest one leaves');
});

t.test("observeStatus: the leader's fields win, events are merged", async (t) => {
  const mine: StatusRecord = { ...emptyStatus(), stableVersions: [1, 2], events: [ev(2, 'placed')] };
  const seen: StatusRecord = { ...emptyStatus(), stableVersions: [1], events: [ev(1, 'submitted')] };
  t.strictSame(observeStatus(mine, seen), { ...mine, events: [ev(1, 'submitted'), ev(2, 'placed')] });
  t.strictSame(observeStatus(undefined, seen), seen, 'no copy yet: the stored record');
});

t.test('writeStatuses against concurrent API appends: no event is lost', async (t) => {
  const consul = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: consul.address } });
  t.teardown(() => client.close());
  const session = ((await consul.consul.session.create({ ttl: '30s' })) as { ID: string }).ID;
  t.ok(await consul.consul.kv.set({ key: 'weft/leader', value: 'me', acquire: session }), 'holds the lock');
  const fence = { key: 'weft/leader', session };
  const key = statusKey('web');
  await putJSON(client, jobKey('web'), { version: 1 });
  const incarnation = new Map([['web', (await getEntry(client, jobKey('web')))!.createIndex]]);

  // The API appends 30 events while the leader writes 30 times from its own copy.
  const api = (async () => {
    for (let i = 0; i < 30; i++) {
      await update<StatusRecord>(client, key, (cur) => pushEvents(cur ?? emptyStatus(), [ev(Date.now(), 'scaled', `api ${i}`)]), { maxAttempts: 50 });
    }
  })();
  const leader = (async () => {
    let mine: StatusRecord = emptyStatus();
    for (let i = 0; i < 30; i++) {
      const next = pushEvents(mine, [ev(Date.now(), 'placed', `leader ${i}`)]);
      mine = (await writeStatuses(client, fence, new Map([['web', next]]), incarnation)).get('web')!;
    }
  })();
  await Promise.all([api, leader]);
  const stored = (await getJSON<StatusRecord>(client, key))!.value;
  const messages = new Set(stored.events.map((e) => e.message));
  t.equal(stored.events.length, 60, 'every event is stored');
  for (let i = 0; i < 30; i++) {
    t.ok(messages.has(`api ${i}`) && messages.has(`leader ${i}`), `api ${i} and leader ${i}`);
  }
});

t.test('writeStatuses: a deposed leader writes nothing; cas ops fail with the key', async (t) => {
  const consul = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: consul.address } });
  t.teardown(() => client.close());
  const other = ((await consul.consul.session.create({ ttl: '30s' })) as { ID: string }).ID;
  await consul.consul.kv.set({ key: 'weft/leader', value: 'other', acquire: other });
  const mine = ((await consul.consul.session.create({ ttl: '30s' })) as { ID: string }).ID;
  await putJSON(client, jobKey('web'), { version: 1 });
  const incarnation = new Map([['web', (await getEntry(client, jobKey('web')))!.createIndex]]);
  await t.rejects(writeStatuses(client, { key: 'weft/leader', session: mine }, new Map([['web', emptyStatus()]]), incarnation), { code: 'WEFT_ERR_LOCK_LOST' });
  t.equal(await getJSON(client, statusKey('web')), undefined, 'nothing written');
  await consul.consul.kv.set('weft/job-status/api', '{}');
  await t.rejects(fencedTxn(client, { key: 'weft/leader', session: other }, [{ verb: 'cas', key: 'weft/job-status/api', value: {}, index: 0 }]), {
    code: 'WEFT_ERR_KV_CAS_CONFLICT',
    key: 'weft/job-status/api',
  });
});

t.test('writeStatuses: a purged job stays purged; a job submitted again starts afresh', async (t) => {
  const consul = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: consul.address } });
  t.teardown(() => client.close());
  const session = ((await consul.consul.session.create({ ttl: '30s' })) as { ID: string }).ID;
  await consul.consul.kv.set({ key: 'weft/leader', value: 'me', acquire: session });
  const fence = { key: 'weft/leader', session };
  const old = { ...emptyStatus(), events: [ev(1, 'placed', 'old incarnation')] };

  await putJSON(client, jobKey('web'), { version: 1 });
  const first = (await getEntry(client, jobKey('web')))!.createIndex;
  await consul.consul.kv.del(jobKey('web')); // purged after the leader planned
  t.strictSame([...(await writeStatuses(client, fence, new Map([['web', old]]), new Map([['web', first]]))).keys()], [], 'nothing written for a purged job');
  t.equal(await getJSON(client, statusKey('web')), undefined, 'the record is not resurrected');

  // A half-finished purge left the old record; the job is submitted again (a new CreateIndex).
  await putJSON(client, statusKey('web'), old);
  await putJSON(client, jobKey('web'), { version: 1 });
  const second = (await getEntry(client, jobKey('web')))!.createIndex;
  t.strictSame([...(await writeStatuses(client, fence, new Map([['web', old]]), new Map([['web', first]]))).keys()], [], "a plan for the old incarnation writes nothing");
  const fresh = { ...emptyStatus(), events: [ev(2, 'submitted')] };
  await writeStatuses(client, fence, new Map([['web', fresh]]), new Map([['web', second]]));
  t.strictSame((await getJSON<StatusRecord>(client, statusKey('web')))!.value.events, [ev(2, 'submitted')], 'the old events are not merged in');
});
