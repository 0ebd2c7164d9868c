/** Watches against the real dev agent: instances come and go, an outage keeps the last good view, KV prefixes. */
import t from 'tap';
import { DiscoveryClient } from '../../discovery/client.js';
import { putJSON, deleteKey } from '../../discovery/kv.js';
import type { Registration } from '../../base/contracts/labels.js';
import { deregisterInstance, type Instance, registerInstance } from '../../discovery/registry.js';
import { watchKey, watchKeyPrefix, watchService } from '../../discovery/watch.js';
import { startTestConsul } from '../helpers/dev-consul.js';

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

t.test('a service watch sees an instance arrive and leave, and nothing else', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  await registerInstance(client, { host: 'h1', hostAddress: '127.0.0.1', instance: 'a', meshPort: 15443, registration: reg('api', 9001) });

  const w = watchService(client, 'api', { waitMs: 10_000 });
  t.teardown(() => w.close());
  const seen: string[][] = [];
  w.on('change', (list) => seen.push(ids(list)));
  t.strictSame(ids(await w.ready()), ['h1-a']);

  const started = Date.now();
  await registerInstance(client, { host: 'h2', hostAddress: '127.0.0.2', instance: 'b', meshPort: 15443, registration: reg('api', 9002) });
  const two = await w.next((l) => l.length === 2);
  t.ok(Date.now() - started < 1000, `new instance seen in ${Date.now() - started} ms (blocking, not polling)`);
  t.match(two[1], { id: 'h2-b', address: '127.0.0.2', port: 9002, host: 'h2', meshPort: 15443, healthy: true });

  // Another service changing wakes nobody up with a duplicate.
  await registerInstance(client, { host: 'h1', hostAddress: '127.0.0.1', instance: 'x', meshPort: 15443, registration: reg('other', 9100) });
  await deregisterInstance(client, 'h1-a');
  t.strictSame(ids(await w.next((l) => l.length === 1)), ['h2-b']);
  t.strictSame(seen, [['h1-a'], ['h1-a', 'h2-b'], ['h2-b']], 'one event per distinct set');
  t.ok(w.index > 0n, 'blocking on a real index');
  t.equal(w.stale, false);
});

t.test('an agent outage keeps the last known good view; backoff; recovery after restart', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address }, { requestTimeoutMs: 1000 });
  t.teardown(() => client.close());
  await registerInstance(client, { host: 'h1', hostAddress: '127.0.0.1', instance: 'a', meshPort: 15443, registration: reg('api', 9001) });
  await registerInstance(client, { host: 'h2', hostAddress: '127.0.0.2', instance: 'b', meshPort: 15443, registration: reg('api', 9002) });

  const w = watchService(client, 'api', { waitMs: 10_000, backoffBaseMs: 20, backoffMaxMs: 160 });
  t.teardown(() => w.close());
  t.strictSame(ids(await w.ready()), ['h1-a', 'h2-b']);
  const changes: string[][] = [];
  w.on('change', (l) => changes.push(ids(l)));
  const retries: Array<{ delay: number; at: number; code: string | undefined }> = [];
  w.on('retry', (err, delay) => retries.push({ delay, at: Date.now(), code: (err as { code?: string }).code }));

  const stale = new Promise<Error>((resolve) => w.once('stale', resolve));
  await c.agent.close(); // really stopped: the listener is gone
  const err = await stale;
  t.match(err, { code: 'WEFT_ERR_CONSUL_UNAVAILABLE' });
  await new Promise((r) => setTimeout(r, 800));
  t.strictSame(ids(w.current()), ['h1-a', 'h2-b'], 'the outage did not empty the view');
  t.equal(w.stale, true);
  t.match(w.lastError, { code: 'WEFT_ERR_CONSUL_UNAVAILABLE' });
  t.strictSame(changes, [], 'no change events during the outage');

  // Backoff: the ceiling doubles from 20 ms up to 160 ms, so 800 ms of outage is a handful of tries, not a spin.
  t.ok(retries.length >= 4 && retries.length <= 14, `${retries.length} retries in ~800 ms`);
  t.ok(
    retries.every((r) => r.code === 'WEFT_ERR_CONSUL_UNAVAILABLE'),
    'every retry is a coded unavailable error',
  );
  retries.forEach((r, i) => {
    const ceiling = Math.min(160, 20 * 2 ** i);
    t.ok(r.delay >= ceiling / 2 && r.delay <= ceiling, `retry ${i + 1}: ${r.delay} ms within [${ceiling / 2}, ${ceiling}]`);
  });

  const recovered = new Promise<void>((resolve) => w.once('recovered', () => resolve()));
  await c.restart(); // same port and data directory: the registrations come back
  await recovered;
  t.equal(w.stale, false);
  t.equal(w.lastError, undefined);
  t.strictSame(ids(w.current()), ['h1-a', 'h2-b'], 'same view after recovery');
  t.strictSame(changes, [], 'recovery with unchanged data emits nothing');

  // And it is blocking again against the new agent process.
  await registerInstance(client, { host: 'h3', hostAddress: '127.0.0.3', instance: 'c', meshPort: 15443, registration: reg('api', 9003) });
  t.strictSame(ids(await w.next((l) => l.length === 3)), ['h1-a', 'h2-b', 'h3-c']);
});

t.test('a watch that never reached Consul has no value, only an error', async (t) => {
  const c = await startTestConsul(t);
  await c.close();
  const client = new DiscoveryClient({ address: c.address }, { requestTimeoutMs: 500 });
  t.teardown(() => client.close());
  const w = watchService(client, 'api', { backoffBaseMs: 20, backoffMaxMs: 50 });
  t.teardown(() => w.close());
  await new Promise<void>((resolve) => w.once('stale', () => resolve()));
  t.equal(w.current(), undefined, '"nothing known yet" is not "no instances"');
  t.equal(w.stale, true);
});

t.test('close() ends a parked blocking query at once', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  const w = watchService(client, 'api', { waitMs: 30_000 });
  await w.ready();
  await new Promise((r) => setTimeout(r, 50)); // now parked in the agent
  const started = Date.now();
  await w.close();
  t.ok(Date.now() - started < 200, `closed in ${Date.now() - started} ms`);
});

t.test('KV prefix and single-key watches share the loop', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  const splits = watchKeyPrefix(client, 'weft/splits/', { waitMs: 10_000 });
  const leader = watchKey(client, 'weft/leader', { waitMs: 10_000 });
  t.teardown(() => splits.close());
  t.teardown(() => leader.close());
  t.strictSame(await splits.ready(), [], 'an absent prefix is an empty list');
  t.equal(await leader.ready(), null, 'an absent key is null');

  let events = 0;
  splits.on('change', () => events++);
  await putJSON(client, 'weft/splits/web', { v1: 90, v2: 10 });
  const one = await splits.next((e) => e.length === 1);
  t.match(one, [{ key: 'weft/splits/web', value: '{"v1":90,"v2":10}', session: undefined }]);
  t.ok(one[0]!.modifyIndex > 0);

  await putJSON(client, 'weft/intentions/a/b', { action: 'allow' }); // another prefix
  await putJSON(client, 'weft/splits/api', { v1: 100 });
  t.strictSame(
    (await splits.next((e) => e.length === 2)).map((e) => e.key),
    ['weft/splits/api', 'weft/splits/web'],
    'sorted by key',
  );
  await deleteKey(client, 'weft/splits/web');
  t.strictSame(
    (await splits.next((e) => e.length === 1)).map((e) => e.key),
    ['weft/splits/api'],
  );
  t.equal(events, 3, 'the write under weft/intentions/ did not wake this watch with an event');

  await putJSON(client, 'weft/leader', { who: 'x' });
  t.match(await leader.next((e) => e !== null), { key: 'weft/leader', value: '{"who":"x"}' });
  await deleteKey(client, 'weft/leader');
  t.equal(await leader.next((e) => e === null), null);
});
