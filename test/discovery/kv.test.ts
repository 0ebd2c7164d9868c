/** KV helpers against the real dev agent: JSON round trips, CAS races between concurrent updaters, bad keys and values. */
import t from 'tap';
import { backoffDelayMs } from '../../base/backoff.js';
import { seededRandom } from '../../base/clock.js';
import { DiscoveryClient } from '../../discovery/client.js';
import { CAS_BACKOFF, checkKey, deleteKey, getJSON, list, putJSON, update } from '../../discovery/kv.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { manualClock } from '../helpers/manual-clock.js';

t.test('JSON round trip with ModifyIndex; create-only and CAS writes; list and delete', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());

  t.equal(await getJSON(client, 'weft/jobs/web'), undefined, 'absent');
  t.equal(await putJSON(client, 'weft/jobs/web', { replicas: 2 }, { cas: 0 }), true, 'create-only write on an absent key');
  t.equal(await putJSON(client, 'weft/jobs/web', { replicas: 9 }, { cas: 0 }), false, 'create-only write on an existing key loses');
  const got = await getJSON<{ replicas: number }>(client, 'weft/jobs/web');
  t.match(got, { key: 'weft/jobs/web', value: { replicas: 2 } });
  t.ok(got!.modifyIndex > 0);
  t.equal(await putJSON(client, 'weft/jobs/web', { replicas: 3 }, { cas: got!.modifyIndex + 1000 }), false, 'stale CAS index');
  t.equal(await putJSON(client, 'weft/jobs/web', { replicas: 3 }, { cas: got!.modifyIndex }), true, 'current CAS index');

  await putJSON(client, 'weft/jobs/api', { replicas: 1 });
  await putJSON(client, 'weft/allocs/h1/a1', { job: 'web' });
  t.strictSame(
    (await list<{ replicas: number }>(client, 'weft/jobs/')).map((d) => [d.key, d.value.replicas]),
    [
      ['weft/jobs/api', 1],
      ['weft/jobs/web', 3],
    ],
  );
  t.strictSame(await list(client, 'weft/splits/'), [], 'an empty prefix lists nothing');
  t.equal(await deleteKey(client, 'weft/jobs/', { recurse: true }), true);
  t.strictSame(await list(client, 'weft/jobs/'), []);
  t.equal((await list(client, 'weft/allocs/')).length, 1, 'other prefixes untouched');
});

t.test('two concurrent updaters: CAS conflicts are retried and no increment is lost', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  const other = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  t.teardown(() => other.close());

  const perWriter = 15;
  let calls = 0;
  const increment = async (cur: { n: number } | undefined): Promise<{ n: number }> => {
    calls++;
    await new Promise((r) => setTimeout(r, 2)); // think time: the rival reads the same version meanwhile
    return { n: (cur?.n ?? 0) + 1 };
  };
  const writer = async (cl: DiscoveryClient): Promise<void> => {
    for (let i = 0; i < perWriter; i++) await update(cl, 'weft/counter', increment, { maxAttempts: 50 });
  };
  await Promise.all([writer(client), writer(other)]);
  t.match(await getJSON(client, 'weft/counter'), { value: { n: 2 * perWriter } }, 'every increment landed');
  t.ok(calls > 2 * perWriter, `${calls} attempts for ${2 * perWriter} increments (${calls - 2 * perWriter} lost a CAS race and retried)`);
});

t.test('a writer that keeps losing gives up with WEFT_ERR_KV_CAS_CONFLICT, waiting CAS_BACKOFF between attempts', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  await putJSON(client, 'weft/splits/web', { v1: 100 });
  const clock = manualClock();
  let attempts = 0;
  const startedAt: number[] = [];
  const err = await clock.runUntil(
    update<{ v1: number }>(
      client,
      'weft/splits/web',
      async (cur) => {
        attempts++;
        startedAt.push(clock.now());
        await putJSON(client, 'weft/splits/web', { v1: attempts }); // a rival writes between our read and our write
        return { v1: (cur?.v1 ?? 0) - 1 };
      },
      { maxAttempts: 3, random: seededRandom(5), timers: clock },
    ).catch((e: unknown) => e),
  );
  t.match(err, { code: 'WEFT_ERR_KV_CAS_CONFLICT', key: 'weft/splits/web', value: 3, statusCode: 409 });
  t.equal(attempts, 3);
  const random = seededRandom(5);
  const waits = [1, 2].map((a) => backoffDelayMs(a, CAS_BACKOFF, random));
  t.strictSame(clock.armed, waits, 'a full-jitter wait under the 10 ms, then 20 ms, ceiling after each lost attempt but the last');
  t.strictSame(startedAt, [0, waits[0], waits[0]! + waits[1]!], 'each attempt starts when its wait ran out');

  const same = await update<{ v1: number }>(client, 'weft/splits/web', () => undefined);
  t.match(same, { value: { v1: 3 } }, 'returning undefined leaves the key as is');
});

t.test('bad keys and bad values are coded errors naming the key', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  for (const key of ['jobs/web', '/weft/jobs/web', 'weft//x', 'weft/a/../b', 'weft/']) {
    t.throws(() => checkKey(key), { code: 'WEFT_ERR_KV_KEY_INVALID', value: key }, JSON.stringify(key));
  }
  t.equal(checkKey('weft/splits/', { prefix: true }), 'weft/splits/');
  await t.rejects(putJSON(client, 'jobs/web', {}), { code: 'WEFT_ERR_KV_KEY_INVALID' });

  await c.consul.kv.set('weft/jobs/broken', '{not json');
  await t.rejects(getJSON(client, 'weft/jobs/broken'), { code: 'WEFT_ERR_KV_VALUE_INVALID', key: 'weft/jobs/broken', value: '{not json' });
  await putJSON(client, 'weft/jobs/typed', { replicas: 'two' });
  const decode = (v: unknown): { replicas: number } => {
    if (typeof (v as { replicas?: unknown }).replicas !== 'number') throw new Error('replicas must be a number');
    return v as { replicas: number };
  };
  await t.rejects(getJSON(client, 'weft/jobs/typed', decode), {
    code: 'WEFT_ERR_KV_VALUE_INVALID',
    message: 'weft/jobs/typed: replicas must be a number',
  });
});
