/**
 * Allocations from KV against real dockerd and the dev Consul agent: start,
 * register, restart per policy after `docker kill`, fail when the budget is
 * spent, adopt after an agent restart, drain and remove when unassigned; only
 * documents the scheduler signed for their key run (signed as the scheduler
 * does, by a real key store: test/helpers/signing.ts).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { AllocRunner } from '../../agent/allocations.js';
import type { Driver } from '../../agent/driver.js';
import { DockerDriver } from '../../agent/drivers/docker.js';
import { ProcessDriver } from '../../agent/drivers/process.js';
import { Registrar } from '../../agent/registrar.js';
import { SigningKeys } from '../../agent/signing-keys.js';
import { getJSON } from '../../discovery/kv.js';
import type { DiscoveryClient } from '../../discovery/client.js';
import { type Allocation, type AllocStatus, allocKey, allocStatusKey } from '../../base/contracts/alloc.js';
import { startTestConsul, type TestConsul } from '../helpers/dev-consul.js';
import { useDocker } from '../helpers/docker.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { type TestSigner, testSigner } from '../helpers/signing.js';
import { captureLogger, clientFor, passing, servicesWithPrefix } from './helpers.js';

const DEMO_APP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'demo-app.mjs');
const HOST = `alloc-${process.pid}`;

/** One agent's worth of allocation handling (what `weft agent` assembles), with the keys of `signer`'s scheduler. */
async function startAgent(driver: Driver, client: DiscoveryClient, signer: TestSigner) {
  const { logger, lines } = captureLogger();
  // Without a host token the agent reads the scheduler's public keys on its own machine: the signer's data directory.
  const signingKeys = new SigningKeys({ dataDir: signer.dataDir, refreshMs: 60_000, logger });
  await signingKeys.start();
  // Other test files share the dockerd: register only this file's containers (allocations carry the label).
  const labelFilter = driver.kind === 'docker' ? `io.weft.test=${process.pid}` : undefined;
  const registrar = new Registrar({ driver, client, host: HOST, hostAddress: '127.0.0.1', meshPort: 15443, logger, drainDelayMs: 200, ...(labelFilter === undefined ? {} : { labelFilter }) });
  await registrar.start();
  const runner = new AllocRunner({ driver, client, registrar, host: HOST, hostAddress: '127.0.0.1', logger, stopDeadlineMs: 3000, watchWaitMs: 5000, signingKeys });
  await runner.start();
  return {
    registrar,
    runner,
    signingKeys,
    lines,
    async stop() {
      signingKeys.stop();
      await runner.stop();
      registrar.stop();
      await driver.close();
    },
  };
}

async function status(client: DiscoveryClient, id: string): Promise<AllocStatus | undefined> {
  return (await getJSON<AllocStatus>(client, allocStatusKey(HOST, id)))?.value;
}

function alloc(id: string, port: number, extra: Partial<Allocation>): Allocation {
  return {
    id,
    job: 'shop',
    group: 'api',
    task: 'server',
    driver: 'docker',
    env: { LATENCY_MS: '0' },
    port,
    resources: { cpu: 250, memory: 128 },
    labels: { 'weft.service': id, 'weft.check.http': '/health', 'weft.check.interval': '1s', 'weft.check.timeout': '500ms' },
    restart: { attempts: 2, interval: 60_000, delay: 100, mode: 'fail' },
    ...extra,
  };
}

t.test('allocations', async (t) => {
  const d = await useDocker(t);
  const consul: TestConsul = await startTestConsul(t);
  const client = clientFor(t, consul);
  const signer = await testSigner(t);
  let agent = await startAgent(new DockerDriver(), client, signer);
  t.teardown(() => agent.stop());

  const port = await freePort();
  const a = alloc('api1', port, { image: d.image, labels: { ...alloc('api1', port, {}).labels, ...d.testLabels } });

  t.test('a new allocation starts, reports running, registers and passes', async (t) => {
    await signer.put(consul.consul, allocKey(HOST, 'api1'), a);
    const st = await eventually(async () => ((await status(client, 'api1'))?.state === 'running' ? status(client, 'api1') : undefined), 10_000, 'running');
    t.equal(st?.restarts, 0);
    t.ok(st?.containerId, 'reports the container id');
    const healthy = await eventually(async () => (await passing(consul, 'api1'))[0], 5000, 'passing');
    t.equal(healthy.Service.Port, port);
    const info = await d.docker.getContainer(st!.containerId!).inspect();
    t.equal(info.HostConfig.NanoCpus, 250_000_000, 'cpu limit');
    t.equal(info.HostConfig.Memory, 128 * 1024 * 1024, 'memory limit');
    t.ok(info.Config.Env.includes(`PORT=${port}`), 'PORT set');
  });

  t.test('docker kill: deregistered within 2 s, restarted per policy in the same container', async (t) => {
    const before = (await status(client, 'api1'))!;
    const killedAt = Date.now();
    await d.cli('kill', before.containerId!);
    await eventually(async () => ((await servicesWithPrefix(consul, `${HOST}-api1`)).length === 0 ? true : undefined), 2000, 'deregistered', 20);
    t.ok(Date.now() - killedAt < 2000, 'deregistered within 2 s');
    const after = await eventually(async () => {
      const s = await status(client, 'api1');
      return s?.state === 'running' && s.restarts === 1 ? s : undefined;
    }, 5000, 'restarted');
    t.equal(after.containerId, before.containerId, 'same container');
    t.equal(after.exitCode, 137, 'the exit code of the kill');
    await eventually(async () => (await passing(consul, 'api1'))[0], 5000, 'passing again');
  });

  t.test('the agent restarts: running allocations are adopted, not restarted', async (t) => {
    const before = (await status(client, 'api1'))!;
    const startedAt = (await d.docker.getContainer(before.containerId!).inspect()).State.StartedAt;
    await agent.stop();
    agent = await startAgent(new DockerDriver(), client, signer);
    const info = await d.docker.getContainer(before.containerId!).inspect();
    t.equal(info.State.StartedAt, startedAt, 'same start time: not restarted');
    t.equal(info.RestartCount, 0);
    const after = (await status(client, 'api1'))!;
    t.equal(after.containerId, before.containerId, 'same container id');
    t.equal(after.restarts, 1, 'the restart count carries over');
    t.strictSame(agent.runner.snapshot().map((s) => s.taskId), [before.containerId]);
    t.ok(agent.lines.some((l) => l['msg'] === 'adopted a running allocation'), 'logged the adoption');
    t.equal((await servicesWithPrefix(consul, `${HOST}-api1`)).length, 1, 'still registered');
  });

  t.test('the restart budget spent: failed with the exit code', async (t) => {
    const id = (await status(client, 'api1'))!.containerId!;
    await d.cli('kill', id);
    await eventually(async () => ((await status(client, 'api1'))?.restarts === 2 && (await status(client, 'api1'))?.state === 'running' ? true : undefined), 5000, 'second restart');
    await d.cli('kill', id);
    const failed = await eventually(async () => ((await status(client, 'api1'))?.state === 'failed' ? status(client, 'api1') : undefined), 5000, 'failed');
    t.equal(failed?.exitCode, 137);
    t.match(failed?.message, /restart budget spent/);
    t.equal((await servicesWithPrefix(consul, `${HOST}-api1`)).length, 0, 'not registered');
  });

  t.test('an unassigned allocation is drained, removed, and its status deleted', async (t) => {
    const p2 = await freePort();
    const b = alloc('api2', p2, { image: d.image, labels: { ...alloc('api2', p2, {}).labels, ...d.testLabels } });
    await signer.put(consul.consul, allocKey(HOST, 'api2'), b);
    const st = await eventually(async () => ((await status(client, 'api2'))?.state === 'running' ? status(client, 'api2') : undefined), 10_000, 'running');
    await eventually(() => fetch(`http://127.0.0.1:${p2}/health`).catch(() => undefined), 5000, 'app up');
    const inflight = Array.from({ length: 10 }, (_, i) => fetch(`http://127.0.0.1:${p2}/w?delay=${400 + i * 50}`).then((r) => r.status));
    await consul.consul.kv.del(allocKey(HOST, 'api2'));
    await eventually(async () => ((await status(client, 'api2')) === undefined ? true : undefined), 10_000, 'status deleted');
    t.strictSame(await Promise.all(inflight), Array(10).fill(200), 'no in-flight request lost');
    t.equal((await d.docker.listContainers({ all: true, filters: { id: [st!.containerId!] } })).length, 0, 'container removed');
    t.equal((await servicesWithPrefix(consul, `${HOST}-api2`)).length, 0, 'deregistered');
  });

  t.test('an invalid document is reported failed and touches nothing else', async (t) => {
    await signer.put(consul.consul, allocKey(HOST, 'broken'), { id: 'broken', driver: 'docker' });
    const st = await eventually(async () => status(client, 'broken'), 5000, 'status');
    t.equal(st.state, 'failed');
    t.match(st.message, /weft\/allocs\/.*broken/);
    await consul.consul.kv.del(allocKey(HOST, 'broken'));
  });
});

/** A dev Consul, a signer and an agent on the process driver whose tasks are removed at teardown. */
async function processHost(t: Test) {
  const consul = await startTestConsul(t);
  const client = clientFor(t, consul);
  const dir = await mkdtemp(join(tmpdir(), 'weft-alloc-proc-'));
  const driver = new ProcessDriver(dir);
  const signer = await testSigner(t);
  const agent = await startAgent(driver, client, signer);
  t.teardown(async () => {
    await agent.stop();
    for (const task of await driver.list({ all: true })) await driver.remove(task.id, { force: true });
    await rm(dir, { recursive: true, force: true });
  });
  return { consul, client, dir, driver, signer, agent };
}

t.test('allocations on the process driver', async (t) => {
  const { consul, client, driver, signer } = await processHost(t);
  const port = await freePort();
  await signer.put(consul.consul, allocKey(HOST, 'p1'), alloc('p1', port, { driver: 'process', command: process.execPath, args: [DEMO_APP] }));
  const st = await eventually(async () => ((await status(client, 'p1'))?.state === 'running' ? status(client, 'p1') : undefined), 10_000, 'running');
  await eventually(async () => (await passing(consul, 'p1'))[0], 5000, 'passing');
  await fetch(`http://127.0.0.1:${port}/exit?code=4`).catch(() => undefined);
  const restarted = await eventually(async () => {
    const s = await status(client, 'p1');
    return s?.state === 'running' && s.restarts === 1 ? s : undefined;
  }, 5000, 'restarted');
  t.equal(restarted.exitCode, 4);
  t.equal(restarted.containerId, st?.containerId, 'same task id');
  await consul.consul.kv.del(allocKey(HOST, 'p1'));
  await eventually(async () => ((await status(client, 'p1')) === undefined ? true : undefined), 10_000, 'status deleted');
  t.strictSame(await driver.list({ all: true }), [], 'process task removed');
});

t.test('only what the scheduler signed for this host and name runs', async (t) => {
  const { consul, client, dir, driver, signer, agent } = await processHost(t);
  // A process allocation that leaves a file behind when its command runs at all.
  const marking = (id: string): Allocation => {
    const marker = join(dir, `${id}.ran`);
    return alloc(id, 1, { driver: 'process', command: process.execPath, args: ['-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran'); setInterval(() => {}, 1000)`], labels: {} });
  };
  const refusedStatus = (id: string) =>
    eventually(async () => {
      const s = await status(client, id);
      return s?.state === 'failed' && /refused/.test(s.message ?? '') ? s : undefined;
    }, 10_000, `${id} reported refused`);
  const neverRan = async (t: Test, id: string) => {
    t.notOk(existsSync(join(dir, `${id}.ran`)), `${id}: its command never ran`);
    t.notOk((await driver.list({ all: true })).some((task) => task.name === `weft-${id}`), `${id}: no task`);
  };

  t.test('a document written into KV by hand, without the scheduler, never runs', async (t) => {
    await consul.consul.kv.set(allocKey(HOST, 'evil'), JSON.stringify(marking('evil')));
    const st = await refusedStatus('evil');
    t.match(st.message, /unsigned/);
    await neverRan(t, 'evil');
    t.equal(agent.runner.refusals().get('unsigned'), 1, 'counted once');
    t.ok(agent.lines.some((l) => l['code'] === 'WEFT_ERR_SIGNED_STATE' && l['key'] === allocKey(HOST, 'evil')), 'logged with its key path');
  });

  t.test('signed for another host, or under another name: refused', async (t) => {
    const moved = signer.value(allocKey('other-host', 'moved'), marking('moved'));
    await consul.consul.kv.set(allocKey(HOST, 'moved'), moved);
    const renamedDoc = { ...marking('renamed') };
    await consul.consul.kv.set(allocKey(HOST, 'renamed'), signer.value(allocKey(HOST, 'original'), renamedDoc));
    t.match((await refusedStatus('moved')).message, /bad-signature/);
    t.match((await refusedStatus('renamed')).message, /bad-signature/);
    await neverRan(t, 'moved');
    await neverRan(t, 'renamed');
  });

  t.test('a running allocation: a tampered version is refused and the verified one keeps running', async (t) => {
    const good = marking('kept');
    await signer.put(consul.consul, allocKey(HOST, 'kept'), good);
    const running = await eventually(async () => ((await status(client, 'kept'))?.state === 'running' ? status(client, 'kept') : undefined), 10_000, 'kept running');
    await eventually(async () => (existsSync(join(dir, 'kept.ran')) ? true : undefined), 10_000, 'the signed one ran');
    const envelope = JSON.parse(signer.value(allocKey(HOST, 'kept'), good)) as { doc: string };
    envelope.doc = JSON.stringify({ ...good, args: ['-e', `require('node:fs').writeFileSync(${JSON.stringify(join(dir, 'pwned'))}, 'x')`] });
    const before = agent.runner.refusals().get('bad-signature') ?? 0;
    await consul.consul.kv.set(allocKey(HOST, 'kept'), JSON.stringify(envelope));
    await eventually(async () => ((agent.runner.refusals().get('bad-signature') ?? 0) > before ? true : undefined), 10_000, 'the tampered version refused');
    const after = await status(client, 'kept');
    t.equal(after?.state, 'running', 'still running');
    t.equal(after?.containerId, running?.containerId, 'the same task: neither replaced nor stopped');
    t.notOk(existsSync(join(dir, 'pwned')), "the tampered command never ran");
  });

  t.test('a key retired at once: what it signed before is refused; the new key runs', async (t) => {
    const stale = signer.value(allocKey(HOST, 'stale'), marking('stale'));
    signer.store.rotate(0, 0); // a key believed stolen: retired at once
    await agent.signingKeys.refresh();
    await consul.consul.kv.set(allocKey(HOST, 'stale'), stale);
    t.match((await refusedStatus('stale')).message, /retired-key/);
    await neverRan(t, 'stale');
    await signer.put(consul.consul, allocKey(HOST, 'fresh'), marking('fresh'));
    await eventually(async () => ((await status(client, 'fresh'))?.state === 'running' ? true : undefined), 10_000, 'signed with the new key: runs');
  });
});
