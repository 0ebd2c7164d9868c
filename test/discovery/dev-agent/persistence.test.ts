/**
 * State in the data directory: restarts keep KV, registrations, sessions and a
 * monotonic index; a snapshot plus an append-only log, safe against a crash
 * in the middle of an append; heartbeats write nothing.
 */
import { appendFile, copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The `consul` client's typings demand fields Consul does not (a check `timeout`, lower-case txn
// ops), so option objects it would reject at compile time are passed `as never`.
import t from 'tap';
import { startDevConsul } from '../../../discovery/dev-agent/index.js';
import { LOG_FILE, STATE_FILE } from '../../../discovery/dev-agent/state/persistence.js';
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

/** The files of a data directory as a crash would leave them: copied while the agent runs, no clean stop. */
async function crashCopy(t: { teardown(fn: () => unknown): void }, from: string): Promise<string> {
  const to = await mkdtemp(join(tmpdir(), 'weft-dev-consul-crash-'));
  t.teardown(() => rm(to, { recursive: true, force: true }));
  for (const f of await readdir(from)) await copyFile(join(from, f), join(to, f));
  return to;
}

t.test('writes are appended to a log after the snapshot; a crash loses nothing flushed and a torn last record is ignored', async (t) => {
  const c = await startTestConsul(t);
  await c.consul.kv.set('a', '1');
  await c.agent.flush(); // the first save of an empty directory is a snapshot
  await c.consul.kv.set('b', '2');
  await c.consul.kv.set('a', '1b');
  await c.consul.kv.del('gone-before-snapshot');
  await c.agent.flush();
  await c.consul.kv.set('c', '3');
  await c.agent.flush();
  const log = (await readFile(join(c.dataDir, LOG_FILE), 'utf8')).split('\n');
  t.match(JSON.parse(log[0]!), { weftDevConsulLog: 1, generation: 1 }, 'the log continues the first snapshot');
  t.match(log.at(-2), /"c"/, 'the last flush is its last line');
  const snap = JSON.parse(await readFile(join(c.dataDir, STATE_FILE), 'utf8')) as { kv: Array<{ key: string }> };
  t.notOk(
    snap.kv.some((e) => e.key === 'b' || e.key === 'c'),
    'the snapshot was not rewritten for later writes',
  );

  // A crash in the middle of an append: half a record at the end of the log.
  const dir = await crashCopy(t, c.dataDir);
  const torn = `${JSON.stringify({ i: 999, ti: {}, tf: 0, ab: 0, tb: [], si: [], r: [['kvs', 'torn', { key: 'torn' }]] })}`.slice(0, 40);
  await appendFile(join(dir, LOG_FILE), torn);
  const indexBefore = c.agent.store.index;
  const d = await startTestConsul(t, { dataDir: dir });
  t.equal((await d.consul.kv.get('a'))?.Value, '1b');
  t.equal((await d.consul.kv.get('b'))?.Value, '2');
  t.equal((await d.consul.kv.get('c'))?.Value, '3');
  t.equal(await d.consul.kv.get('torn'), undefined, 'the torn record is ignored');
  t.ok(d.agent.store.index > indexBefore, 'the index is past every one handed out before the crash');
  // The next append starts after the cut, and the log loads again.
  await d.consul.kv.set('d', '4');
  await d.agent.flush();
  t.notOk((await readFile(join(dir, LOG_FILE), 'utf8')).includes(torn), 'the torn bytes were cut off before appending');
  const again = await crashCopy(t, dir);
  const e = await startTestConsul(t, { dataDir: again });
  t.strictSame(
    ((await e.consul.kv.get({ key: '', recurse: true })) as Array<{ Key: string; Value: string }>).map((x) => [x.Key, x.Value]),
    [
      ['a', '1b'],
      ['b', '2'],
      ['c', '3'],
      ['d', '4'],
    ],
  );
});

t.test('a bad record before the last one is a coded error naming the log', async (t) => {
  const c = await startTestConsul(t);
  await c.consul.kv.set('a', '1');
  await c.agent.flush();
  await c.consul.kv.set('b', '2');
  await c.agent.flush();
  const dir = await crashCopy(t, c.dataDir);
  const file = join(dir, LOG_FILE);
  const lines = (await readFile(file, 'utf8')).split('\n');
  await writeFile(file, [lines[0], '{"i": not json', ...lines.slice(1)].join('\n'));
  await t.rejects(startDevConsul({ bind: '127.0.0.1', port: 0, dataDir: dir, nodeName: 'n', datacenter: 'dc1' }), { code: 'WEFT_ERR_DEV_CONSUL_DATA_DIR', value: file, message: /line 2/ });
});

t.test('TTL heartbeats that only change the note write nothing to disk', async (t) => {
  const c = await startTestConsul(t);
  await c.consul.agent.service.register({ name: 'weft-agent', id: 'weft-agent-h1', check: { ttl: '30s', status: 'passing' } } as never);
  await c.agent.flush();
  await c.consul.kv.set('x', 'y'); // a log exists
  await c.agent.flush();
  const sizes = async (): Promise<number[]> => Promise.all([STATE_FILE, LOG_FILE].map(async (f) => (await stat(join(c.dataDir, f))).size));
  const before = await sizes();
  for (let i = 0; i < 20; i++) await c.consul.agent.check.pass({ id: 'service:weft-agent-h1', note: `alive ${i}` });
  await c.agent.flush();
  t.strictSame(await sizes(), before, 'neither file grew');
  t.match(((await c.consul.agent.checks()) as Record<string, { Output: string }>)['service:weft-agent-h1'], { Output: 'alive 19' }, 'the note is applied');
  // A clean stop saves the note with the snapshot.
  await c.agent.close();
  const snap = JSON.parse(await readFile(join(c.dataDir, STATE_FILE), 'utf8')) as { checks: Array<{ checkId: string; output: string }> };
  t.equal(snap.checks.find((x) => x.checkId === 'service:weft-agent-h1')?.output, 'alive 19');
});

t.test('the log is folded into a new snapshot once it is as large as the snapshot', async (t) => {
  const c = await startTestConsul(t);
  await c.consul.kv.set('small', 'x');
  await c.agent.flush();
  const big = 'v'.repeat(400 * 1024);
  for (const k of ['b1', 'b2', 'b3']) {
    await c.consul.kv.set(k, big);
    await c.agent.flush();
  }
  const snap = JSON.parse(await readFile(join(c.dataDir, STATE_FILE), 'utf8')) as { generation: number; kv: Array<{ key: string }> };
  // 2 x 400 KiB (base64: 1.07 MB) pass the 1 MiB floor: folded after b2; b3 goes to the new log.
  t.strictSame(snap.kv.map((e) => e.key).sort(), ['b1', 'b2', 'small'], 'the snapshot holds what the log held');
  const log = (await readFile(join(c.dataDir, LOG_FILE), 'utf8')).split('\n');
  t.strictSame(JSON.parse(log[0]!), { weftDevConsulLog: 1, generation: snap.generation }, 'a new log continues the new snapshot');
  t.equal(log.length, 3, 'and holds only what came after it (a header, b3, the end of the last line)');
  const d = await startTestConsul(t, { dataDir: await crashCopy(t, c.dataDir) });
  t.equal(((await d.consul.kv.get('b3')) as { Value: string }).Value.length, big.length);
});

t.test('a state.json written before the log existed (format 1) still loads', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-dev-consul-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tables = { kvs: 7, nodes: 1, services: 1, checks: 1, sessions: 0, 'acl-tokens': 0, 'acl-policies': 0 };
  await writeFile(
    join(dir, STATE_FILE),
    JSON.stringify({
      format: 1,
      nodeId: 'old-node-id',
      index: 7,
      tableIndex: tables,
      serviceIndex: [],
      tombstoneFloor: 0,
      kv: [{ key: 'weft/jobs/old', flags: 0, value: Buffer.from('kept').toString('base64'), lockIndex: 0, createIndex: 7, modifyIndex: 7 }],
      tombstones: [],
      nodes: [],
      services: [],
      checks: [],
      sessions: [],
    }),
  );
  const c = await startTestConsul(t, { dataDir: dir });
  t.match(await c.consul.kv.get('weft/jobs/old'), { Value: 'kept', ModifyIndex: 7 });
  await c.agent.close();
  t.match(JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')), { format: 2, nodeId: 'old-node-id' }, 'saved again in the current format');
});
