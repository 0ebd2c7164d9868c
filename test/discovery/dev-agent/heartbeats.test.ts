/**
 * TTL heartbeats under the write load of a big deploy, against the dev agent
 * in its own process, over HTTP, as a cluster uses it:
 *
 *   200 hosts     a weft-agent service with a 6 s TTL check each, passed every
 *                 second with a note that changes every time (as agent/node.ts
 *                 does; 5 s of slack for a busy CI machine, where the load used
 *                 to delay heartbeats by tens of seconds), and a parked
 *                 blocking query on its weft/allocs/<host>/
 *   a scheduler   2,000 allocation documents in transactions of 63, two in
 *                 flight, and blocking reads of weft/allocs/ and
 *                 weft/alloc-status/ (the whole prefixes, paced at 100 ms)
 *   the agents    two status PUTs per allocation, one request each, 32 in flight
 *
 * This is the load under which heartbeats used to wait tens of seconds (every
 * write woke and re-evaluated every parked query; the whole state file was
 * rewritten after every heartbeat), so hosts that never stopped beating were
 * marked critical. The test asserts that no check of a beating host turned
 * critical, watching the critical list with a blocking query throughout.
 * Every loop is bounded; the agent process is stopped at teardown.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const AGENT = join(import.meta.dirname, '../../../discovery/dev-agent/index.ts');
const HOSTS = 200;
const ALLOCS = 2000;
const TTL = '6s';
const BEAT_MS = 1000;

// Generous: on a busy 2-core CI machine the load takes a while; it used to take forever.
t.setTimeout(300_000);

/**
 * The dev agent in its own process (the test's load must not share its event
 * loop), started from the sources with production timings; it exits when the
 * IPC channel to this process closes, so it never outlives the test, even one
 * that is killed.
 */
async function startAgentProcess(t: { teardown(fn: () => unknown): void }): Promise<{ base: string; proc: ChildProcess }> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-hb-'));
  const script = [
    `const { startDevConsul } = await import(${JSON.stringify(AGENT)});`,
    `const agent = await startDevConsul({ bind: '127.0.0.1', port: 0, dataDir: ${JSON.stringify(dir)}, nodeName: 'hb', datacenter: 'dc1' });`,
    `process.send({ port: agent.port });`,
    `process.on('disconnect', () => void agent.close().finally(() => process.exit(0)));`,
  ].join('\n');
  const proc = spawn(process.execPath, [...(process.env['HB_PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['HB_PROF']}`] : []), '--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const exited = new Promise((r) => proc.once('exit', r));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.disconnect();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('message', (m: { port: number }) => resolve(m.port));
    proc.once('exit', (code) => reject(new Error(`the dev agent exited (${code}) before listening`)));
  });
  return { base: `http://127.0.0.1:${port}`, proc };
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; index: number; body: string }> {
  const res = await fetch(url, init);
  const body = await res.text();
  return { status: res.status, index: Number(res.headers.get('x-consul-index') ?? 0), body };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

t.test('no host is marked down while a deploy writes thousands of documents and statuses', async (t) => {
  const { base } = await startAgentProcess(t);
  const hosts = Array.from({ length: HOSTS }, (_, i) => `h${String(i).padStart(3, '0')}`);
  const checkId = (h: string): string => `service:weft-agent-${h}:ttl`;

  await pool(hosts, 16, async (h) => {
    const reg = await call(`${base}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ ID: `weft-agent-${h}`, Name: 'weft-agent', Tags: ['weft'], Meta: { weft_host: h }, Checks: [{ CheckID: checkId(h), Name: `heartbeat ${h}`, TTL, DeregisterCriticalServiceAfter: '72h' }] }),
    });
    if (reg.status !== 200) throw new Error(`register ${h}: ${reg.status} ${reg.body}`);
    await call(`${base}/v1/agent/check/pass/${encodeURIComponent(checkId(h))}?note=start`, { method: 'PUT' });
  });

  let running = true;
  const rtts: number[] = [];
  const beats = hosts.map(async (h, i) => {
    await new Promise((r) => setTimeout(r, (i * BEAT_MS) / HOSTS)); // spread over the interval, as real hosts are
    while (running) {
      const t0 = performance.now();
      await call(`${base}/v1/agent/check/pass/${encodeURIComponent(checkId(h))}?note=${encodeURIComponent(`alive ${new Date().toISOString()}`)}`, { method: 'PUT' });
      rtts.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, BEAT_MS));
    }
  });

  // Every check that turned critical while the load ran (a blocking query on the critical list).
  const wentCritical = new Set<string>();
  const critical = (async () => {
    let index = 0;
    while (running) {
      const r = await call(`${base}/v1/health/state/critical?index=${index}&wait=2s`);
      index = r.index;
      for (const c of JSON.parse(r.body) as Array<{ CheckID: string }>) wentCritical.add(c.CheckID);
    }
  })();

  // Parked queries: one per host on its allocations, and the scheduler's two whole prefixes.
  const parked = [
    ...hosts.map(async (h) => {
      let index = 0;
      while (running) index = (await call(`${base}/v1/kv/weft/allocs/${h}/?recurse&index=${index}&wait=5s`)).index;
    }),
    ...['weft/allocs/', 'weft/alloc-status/'].map(async (prefix) => {
      let index = 0;
      while (running) {
        index = (await call(`${base}/v1/kv/${prefix}?recurse&index=${index}&wait=5s`)).index;
        await new Promise((r) => setTimeout(r, 100));
      }
    }),
  ];

  const doc = (i: number): { key: string; value: string } => {
    const h = hosts[i % HOSTS]!;
    const id = `web-${i}-t`;
    const value = JSON.stringify({ id, job: 'web', group: 'g', task: 't', driver: 'process', command: '/bin/true', env: { A: 'x'.repeat(200) }, resources: { cpu: 10, memory: 8 }, labels: {}, restart: { attempts: 2, interval: 1800000, delay: 15000, mode: 'fail' } });
    return { key: `weft/allocs/${h}/${id}`, value };
  };
  const batches: number[][] = [];
  for (let i = 0; i < ALLOCS; i += 63) batches.push(Array.from({ length: Math.min(63, ALLOCS - i) }, (_, j) => i + j));
  const loadStart = performance.now();
  await pool(batches, 2, async (batch) => {
    const ops = batch.map((i) => {
      const d = doc(i);
      return { KV: { Verb: 'set', Key: d.key, Value: Buffer.from(d.value).toString('base64') } };
    });
    const r = await call(`${base}/v1/txn`, { method: 'PUT', body: JSON.stringify(ops) });
    if (r.status !== 200) throw new Error(`txn: ${r.status} ${r.body}`);
  });
  const statuses = Array.from({ length: ALLOCS * 2 }, (_, n) => n);
  await pool(statuses, 32, async (n) => {
    const i = n % ALLOCS;
    const h = hosts[i % HOSTS]!;
    const state = n < ALLOCS ? 'pending' : 'running';
    const r = await call(`${base}/v1/kv/weft/alloc-status/${h}/web-${i}-t`, { method: 'PUT', body: JSON.stringify({ id: `web-${i}-t`, state, restarts: 0, updatedAt: new Date().toISOString() }) });
    if (r.status !== 200) throw new Error(`status: ${r.status} ${r.body}`);
  });
  const loadMs = performance.now() - loadStart;
  // One more TTL with every beat still going: an expiry owed to the load would show now.
  await new Promise((r) => setTimeout(r, 6000));
  running = false;
  await Promise.all([...beats, critical, ...parked]);

  rtts.sort((a, b) => a - b);
  t.comment(`load ${Math.round(loadMs)} ms; heartbeat round trips: ${rtts.length}, p99 ${Math.round(rtts[Math.floor(rtts.length * 0.99)] ?? 0)} ms, max ${Math.round(rtts.at(-1) ?? 0)} ms`);
  const statusKeys = JSON.parse((await call(`${base}/v1/kv/weft/alloc-status/?keys`)).body) as string[];
  t.equal(statusKeys.length, ALLOCS, 'the load was applied');
  t.strictSame([...wentCritical].filter((c) => c.startsWith('service:weft-agent-')), [], 'no beating host was marked down');
});
