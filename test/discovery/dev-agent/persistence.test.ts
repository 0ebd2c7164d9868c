/** State in the data directory: restarts keep KV, registrations, sessions and a monotonic index. */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The `consul` client's typings demand fields Consul does not (a check `timeout`, lower-case txn
// ops), so option objects it would reject at compile time are passed `as never`.
import t from 'tap';
import { startDevConsul } from '../../../discovery/dev-agent/index.js';
import { STATE_FILE } from '../../../discovery/dev-agent/state/persistence.js';
import { isWeftError } from '../../../base/errors.js';
import { eventually } from '../../helpers/eventually.js';
import { startTestConsul, withMeta } from '../../helpers/dev-consul.js';

t.test('a restart keeps KV, services, checks and sessions; the index never goes back', async (t) => {
  const c = await startTestConsul(t);
  await c.consul.kv.set({ key: 'weft/jobs/web', value: 'spec', flags: 3 });
  await c.consul.agent.service.register({ name: 'web', id: 'w1', port: 80, tags: ['weft'], check: { ttl: '10s', status: 'passing' } } as never);
  const { ID } = await c.consul.session.create({ name: 'leader', ttl: '10s' });
  await c.consul.kv.set({ key: 'weft/leader', value: 'me', acquire: ID });
  await c.consul.kv.set('gone', 'x');
  await c.consul.kv.del('gone');
  const kvBefore = await withMeta((o) => c.consul.kv.get(o), { key: 'weft/jobs/web' });
  const healthBefore = await withMeta((o) => c.consul.health.service(o), { service: 'web' });
  const storeIndex = c.agent.store.index;

  await c.restart();

  const kv = await withMeta((o) => c.consul.kv.get(o), { key: 'weft/jobs/web' });
  t.strictSame(kv.body, kvBefore.body, 'the entry with its indexes and flags');
  t.equal(kv.index, kvBefore.index);
  const health = await withMeta((o) => c.consul.health.service(o), { service: 'web' });
  t.ok(health.index >= healthBefore.index, 'health index not behind');
  t.match(health.body, [{ Service: { ID: 'w1', Port: 80, Tags: ['weft'] }, Checks: [{}, { Status: 'passing' }] }], 'check status kept');
  t.match(await c.consul.session.info(ID), { ID, Name: 'leader' });
  t.match(await c.consul.kv.get('weft/leader'), { Session: ID });
  const missing = await withMeta((o) => c.consul.kv.get(o), { key: 'gone' });
  t.equal(missing.status, 404);
  t.ok(missing.index >= kvBefore.index);

  t.equal(c.agent.store.index, storeIndex + 1, 'the index is bumped by one on load');
  await c.consul.kv.set('after', 'restart');
  t.ok((await c.consul.kv.get('after'))!.ModifyIndex > storeIndex + 1, 'new writes are past every index handed out before');

  // A blocking query with a pre-restart index keeps waiting rather than answering stale data.
  const parked = withMeta((o) => c.consul.kv.get(o), { key: 'weft/jobs/web', index: String(kv.index), wait: '5s' });
  await new Promise((r) => setTimeout(r, 50));
  await c.consul.kv.set('weft/jobs/web', 'v2');
  t.equal(((await parked).body as { Value: string }).Value, 'v2');
});

t.test('checks run again after a restart and TTL clocks start over', async (t) => {
  const c = await startTestConsul(t);
  await c.consul.agent.check.register({ name: 'beat', ttl: '300ms', status: 'passing' } as never);
  await c.consul.session.create({ name: 's', ttl: '200ms' }); // expires 400 ms after its clock starts
  await new Promise((r) => setTimeout(r, 150));
  // Taken before restart(): the new clock starts inside it, so load can only make
  // the gap longer. A TTL counted from the registration would fire ~150 ms after this.
  const restartedAt = performance.now();
  await c.restart();
  t.equal(((await c.consul.agent.checks()) as Record<string, { Status: string }>)['beat']?.Status, 'passing');
  t.equal((await c.consul.session.list()).length, 1, 'session alive after restart');
  await eventually(async () => ((await c.consul.agent.checks()) as Record<string, { Status: string }>)['beat']?.Status === 'critical', 2000, 'TTL');
  t.ok(performance.now() - restartedAt >= 280, 'the TTL counted from the restart');
  await eventually(async () => (await c.consul.session.list()).length === 0, 2000, 'session expiry');
});

t.test('close flushes pending writes despite a long debounce; no temp files left', async (t) => {
  const c = await startTestConsul(t, { persistDebounceMs: 60_000 });
  await c.consul.kv.set('k', 'v');
  await c.agent.close();
  const files = await readdir(c.dataDir);
  t.strictSame(files, [STATE_FILE]);
  const snap = JSON.parse(await readFile(join(c.dataDir, STATE_FILE), 'utf8')) as { kv: Array<{ key: string; value: string }> };
  t.strictSame(
    snap.kv.map((e) => [e.key, Buffer.from(e.value, 'base64').toString()]),
    [['k', 'v']],
  );
});

t.test('a corrupt data file is a coded error naming the file, and is left alone', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-dev-consul-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, STATE_FILE);
  await writeFile(file, '{"format": 1, "index": ');
  const opts = { bind: '127.0.0.1', port: 0, dataDir: dir, nodeName: 'n', datacenter: 'dc1' };
  const err = await startDevConsul(opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isWeftError(err, 'WEFT_ERR_DEV_CONSUL_DATA_DIR'), 'coded error');
  t.match((err as Error).message, file, 'the message names the file');
  t.equal(await readFile(file, 'utf8'), '{"format": 1, "index": ', 'the data is not overwritten');
  await writeFile(file, '{"hello": "world"}');
  await t.rejects(startDevConsul(opts), { code: 'WEFT_ERR_DEV_CONSUL_DATA_DIR', value: file });
});

t.test('a data directory that cannot be created is a coded error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-dev-consul-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const blocker = join(dir, 'file');
  await writeFile(blocker, 'not a directory');
  await t.rejects(startDevConsul({ bind: '127.0.0.1', port: 0, dataDir: join(blocker, 'sub'), nodeName: 'n', datacenter: 'dc1' }), {
    code: 'WEFT_ERR_DEV_CONSUL_DATA_DIR',
  });
});
