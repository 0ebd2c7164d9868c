/**
 * The scheduler's observer against the real dev agent: its views of the
 * allocation documents and status records follow the store through writes,
 * rewrites and deletes (only the changed entries parsed, off-thread decoding
 * of the answers); orphaned status records are known as both views change;
 * a big answer is applied in slices with the event loop free between them,
 * and a snapshot never holds part of one.
 */
import t from 'tap';
import type { Allocation, AllocStatus } from '../../../base/contracts/alloc.js';
import { silentLogger } from '../../../base/log.js';
import type { Verification } from '../../../base/signing.js';
import { createDiscoveryClient, deleteKey, type DiscoveryClient, putJSON } from '../../../discovery/index.js';
import { ClusterObserver } from '../../../src/wiring/scheduler-observer.js';
import { startTestConsul } from '../../helpers/dev-consul.js';

function doc(host: string, id: string): Allocation {
  return {
    id,
    job: 'shop',
    group: 'web',
    task: 'app',
    driver: 'process',
    command: '/bin/true',
    env: {},
    resources: { cpu: 10, memory: 8 },
    labels: {},
    restart: { attempts: 2, interval: 1_800_000, delay: 15_000, mode: 'fail' },
    placement: { instance: id, index: Number(id.replace(/\D/g, '')), version: 1, fingerprint: `f-${host}`, ports: [], reschedules: [], createdAt: 1_000 },
  };
}

function status(id: string, state: AllocStatus['state']): AllocStatus {
  return { id, state, restarts: 0, updatedAt: new Date(0).toISOString() } as AllocStatus;
}

/** Accepts every document as it is (signing is tested elsewhere); `cost` busy-waits per document read. */
function reader(cost = { ms: 0 }, reads = { n: 0 }): () => (key: string, raw: string | null) => Verification {
  return () => (_key, raw) => {
    reads.n++;
    const until = performance.now() + cost.ms;
    while (performance.now() < until) {
      // a slow read: what verifying a signature costs, times a hundred
    }
    return raw === null ? { ok: false, reason: 'unsigned', detail: 'no value' } : { ok: true, doc: raw, kid: '', signedAt: 0 };
  };
}

/** Writes many keys in transactions of `per` (at most 64). */
async function putMany(client: DiscoveryClient, entries: Array<[string, unknown]>, per = 64): Promise<void> {
  for (let i = 0; i < entries.length; i += per) {
    const ops = entries.slice(i, i + per).map(([key, value]) => ({ KV: { Verb: 'set', Key: key, Value: Buffer.from(JSON.stringify(value)).toString('base64') } }));
    await client.consul.transaction.create(ops as never);
  }
}

/** What the observer shows, in the store's terms: document keys -> status state (or '-'), orphaned status keys. */
function view(o: ClusterObserver): { docs: Map<string, string>; orphans: string[] } {
  const docs = new Map<string, string>();
  for (const task of o.snapshot().tasks) docs.set(`weft/allocs/${task.host}/${task.doc.id}`, task.status?.state ?? '-');
  return { docs, orphans: o.orphanStatuses().map((x) => x.key).sort() };
}

async function until(o: ClusterObserver, ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        o.off('change', done);
        resolve();
      };
      const timer = setTimeout(done, 200);
      o.on('change', done);
    });
  }
}

t.test('the views follow the store through writes, rewrites and deletes', async (t) => {
  const c = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: c.address } });
  t.teardown(() => client.close());
  const reads = { n: 0 };
  const observer = new ClusterObserver({ client, logger: silentLogger, waitMs: 2_000, readAllocations: reader({ ms: 0 }, reads) });
  t.teardown(() => observer.close());
  await observer.ready();

  const store = new Map<string, string>(); // document key -> the state of its status record, or '-'
  const statuses = new Set<string>();
  const initial: Array<[string, unknown]> = [];
  for (let i = 0; i < 300; i++) {
    const host = `h${i % 7}`;
    const id = `a${i}`;
    initial.push([`weft/allocs/${host}/${id}`, doc(host, id)]);
    store.set(`weft/allocs/${host}/${id}`, '-');
    if (i % 3 === 0) {
      initial.push([`weft/alloc-status/${host}/${id}`, status(id, 'pending')]);
      store.set(`weft/allocs/${host}/${id}`, 'pending');
      statuses.add(`weft/alloc-status/${host}/${id}`);
    }
  }
  await putMany(client, initial);
  const orphans = (): string[] => [...statuses].filter((k) => !store.has(`weft/allocs/${k.slice('weft/alloc-status/'.length)}`)).sort();
  const same = (): boolean => {
    const v = view(observer);
    return v.docs.size === store.size && [...store].every(([k, s]) => v.docs.get(k) === s) && JSON.stringify(v.orphans) === JSON.stringify(orphans());
  };
  await until(observer, same, 'the first 300 documents');
  t.equal(reads.n, 300, 'each document read once');

  // Rounds of changes: statuses move on, documents go (their statuses stay: orphans), new ones come.
  for (let round = 1; round <= 4; round++) {
    const before = reads.n;
    const writes: Array<[string, unknown]> = [];
    let added = 0;
    let i = 0;
    for (const key of [...store.keys()]) {
      i++;
      const [, , host, id] = key.split('/') as [string, string, string, string];
      if (i % 11 === round) {
        await deleteKey(client, key);
        store.delete(key);
      } else if (i % 5 === round) {
        writes.push([`weft/alloc-status/${host}/${id}`, status(id, round % 2 === 0 ? 'running' : 'failed')]);
        store.set(key, round % 2 === 0 ? 'running' : 'failed');
        statuses.add(`weft/alloc-status/${host}/${id}`);
      }
    }
    for (let k = 0; k < 20; k++, added++) {
      const id = `r${round}x${k}`;
      writes.push([`weft/allocs/h${k % 3}/${id}`, doc(`h${k % 3}`, id)]);
      store.set(`weft/allocs/h${k % 3}/${id}`, '-');
    }
    await putMany(client, writes);
    await until(observer, same, `round ${round}`);
    t.equal(reads.n - before, added, `round ${round}: only the ${added} new documents were read, not the ${store.size} stored`);
  }
  t.ok(orphans().length > 0, `${orphans().length} status records left by deleted documents are known as orphans`);

  // One rewritten in place is read again; its status record is no orphan once the document is back.
  const [orphan] = orphans();
  const [, , host, id] = orphan!.split('/') as [string, string, string, string];
  await putJSON(client, `weft/allocs/${host}/${id}`, doc(host, id));
  store.set(`weft/allocs/${host}/${id}`, view(observer).docs.get(`weft/allocs/${host}/${id}`) ?? 'x');
  await until(observer, () => !view(observer).orphans.includes(orphan!), 'the document back');
  t.notOk(view(observer).orphans.includes(orphan!));
});

t.test('an unchanged task keeps its object from one snapshot to the next', async (t) => {
  const c = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: c.address } });
  t.teardown(() => client.close());
  const observer = new ClusterObserver({ client, logger: silentLogger, waitMs: 2_000, readAllocations: reader() });
  t.teardown(() => observer.close());
  await observer.ready();
  await putMany(client, [
    ['weft/allocs/h1/a1', doc('h1', 'a1')],
    ['weft/allocs/h1/a2', doc('h1', 'a2')],
  ]);
  await until(observer, () => observer.snapshot().tasks.length === 2, 'two tasks');
  const first = observer.snapshot().tasks;
  await putJSON(client, 'weft/alloc-status/h1/a2', status('a2', 'running'));
  await until(observer, () => observer.snapshot().tasks.some((x) => x.status?.state === 'running'), 'a status');
  const next = observer.snapshot().tasks;
  t.equal(next.find((x) => x.doc.id === 'a1'), first.find((x) => x.doc.id === 'a1'), 'the task that did not change: the same object');
  t.not(next.find((x) => x.doc.id === 'a2'), first.find((x) => x.doc.id === 'a2'), 'the one whose status changed: a new one');
});

t.test('a big answer is applied in slices, and a snapshot never holds part of one', async (t) => {
  const c = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: c.address } });
  t.teardown(() => client.close());
  const cost = { ms: 0 };
  const reads = { n: 0 };
  const observer = new ClusterObserver({ client, logger: silentLogger, waitMs: 2_000, readAllocations: reader(cost, reads) });
  t.teardown(() => observer.close());
  await observer.ready();

  const count = 2_000;
  cost.ms = 0.5; // a second of reading in all, were it one block
  const entries: Array<[string, unknown]> = [];
  for (let i = 0; i < count; i++) entries.push([`weft/allocs/h${i % 50}/b${i}`, doc(`h${i % 50}`, `b${i}`)]);
  // Meanwhile: a timer every 5 ms, and what each snapshot holds.
  const seen = new Set<number>();
  let ticks = 0;
  let ticksWhileReading = 0;
  const timer = setInterval(() => {
    ticks++;
    if (reads.n > 0 && reads.n < count) ticksWhileReading++;
    seen.add(observer.snapshot().tasks.length);
  }, 5);
  t.teardown(() => clearInterval(timer));
  await putMany(client, entries, 50); // any read of the store sees whole transactions: a multiple of 50 documents
  await until(observer, () => observer.snapshot().tasks.length === count, 'every document');
  clearInterval(timer);
  t.equal(reads.n, count);
  t.ok(ticksWhileReading >= 20, `the event loop ran a 5 ms timer ${ticksWhileReading} times while ${count} documents were read (${ticks} in all)`);
  t.strictSame(
    [...seen].filter((n) => n % 50 !== 0),
    [],
    `snapshots held whole answers only (${[...seen].length} sizes seen: ${[...seen].sort((a, b) => a - b).join(', ')})`,
  );
  t.ok(seen.size >= 2, 'and were taken while the answers were applied');
});
