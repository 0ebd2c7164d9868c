/**
 * One suite, both drivers: the same cases run against Docker (real dockerd,
 * the demo image, host network) and against plain child processes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { type Driver, type DriverEvent, runTask, type TaskSpec } from '../../agent/driver.js';
import { DockerDriver } from '../../agent/drivers/docker.js';
import { ProcessDriver } from '../../agent/drivers/process.js';
import { isWeftError } from '../../base/errors.js';
import type { TeardownHost } from '../helpers/dev-consul.js';
import { useDocker } from '../helpers/docker.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';

const DEMO_APP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'demo-app.mjs');

interface Harness {
  driver: Driver;
  /** A spec for the demo app listening on `port`, named uniquely. */
  demo(port: number, extra?: Partial<TaskSpec>): TaskSpec;
}

async function dockerHarness(t: TeardownHost): Promise<Harness> {
  const d = await useDocker(t);
  const driver = new DockerDriver();
  t.teardown(() => driver.close());
  return {
    driver,
    demo: (port, extra = {}) => ({
      name: `weft-drv-${process.pid}-${port}`,
      image: d.image,
      env: { HOST: '127.0.0.1', PORT: String(port), ...extra.env },
      labels: { ...d.testLabels, ...extra.labels },
      resources: { cpu: 500, memory: 128 },
      ...withoutEnvLabels(extra),
    }),
  };
}

async function processHarness(t: TeardownHost): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-procdrv-'));
  const driver = new ProcessDriver(dir);
  t.teardown(async () => {
    for (const task of await driver.list({ all: true })) await driver.remove(task.id, { force: true });
    await driver.close();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    driver,
    demo: (port, extra = {}) => ({
      name: `weft-drv-${port}`,
      command: process.execPath,
      args: [DEMO_APP],
      env: { HOST: '127.0.0.1', PORT: String(port), ...extra.env },
      labels: { ...extra.labels },
      ...withoutEnvLabels(extra),
    }),
  };
}

function withoutEnvLabels(extra: Partial<TaskSpec>): Partial<TaskSpec> {
  const { env: _e, labels: _l, ...rest } = extra;
  return rest;
}

async function get(port: number, path = '/'): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

function collect(driver: Driver): DriverEvent[] {
  const events: DriverEvent[] = [];
  driver.on('event', (e) => events.push(e));
  return events;
}

for (const [kind, make] of [
  ['docker', dockerHarness],
  ['process', processHarness],
] as const) {
  t.test(`${kind} driver`, async (t) => {
    const h = await make(t);
    const { driver } = h;
    await driver.watch();

    t.test('runs a task with env and labels; lists, inspects and logs it', async (t) => {
      const port = await freePort();
      const events = collect(driver);
      const id = await runTask(driver, h.demo(port, { env: { SERVICE: 'alpha' }, labels: { 'weft.service': 'alpha' } }));
      const body = await eventually(() => get(port, '/hello').then((r) => r.body).catch(() => undefined), 10_000, 'the app answering');
      t.match(JSON.parse(body), { service: 'alpha', port, path: '/hello' });
      const info = await driver.inspect(id);
      t.equal(info?.running, true);
      t.equal(info?.labels['weft.service'], 'alpha');
      t.ok(info?.pid, 'has a pid');
      t.ok((await driver.list({ label: 'weft.service=alpha' })).some((x) => x.id === id), 'listed by label');
      t.notOk((await driver.list({ label: 'weft.service=beta' })).some((x) => x.id === id), 'filtered out by another label');
      t.match(await eventually(async () => ((await driver.logs(id)).includes('listening') ? driver.logs(id, { tail: 5 }) : undefined), 5000, 'logs'), /demo-app listening on 127\.0\.0\.1:/);
      await eventually(async () => (events.some((e) => e.type === 'start' && e.id === id) ? true : undefined), 3000, 'start event');
      const start = events.find((e) => e.type === 'start' && e.id === id)!;
      t.equal(start.labels['weft.service'], 'alpha', 'events carry labels');
      await driver.stop(id, { timeoutMs: 2000 });
      await driver.remove(id);
    });

    t.test('stop sends SIGTERM: in-flight requests finish, exit code 0, die event', async (t) => {
      const port = await freePort();
      const events = collect(driver);
      const id = await runTask(driver, h.demo(port));
      await eventually(() => get(port, '/health').catch(() => undefined), 10_000, 'the app answering');
      const slow = get(port, '/slow?delay=700');
      await new Promise((r) => setTimeout(r, 150));
      await driver.stop(id, { timeoutMs: 5000 });
      t.equal((await slow).status, 200, 'the in-flight request completed');
      const info = await driver.inspect(id);
      t.equal(info?.running, false);
      t.equal(info?.exitCode, 0);
      await eventually(async () => (events.some((e) => e.type === 'die' && e.id === id) ? true : undefined), 3000, 'die event');
      t.equal(events.find((e) => e.type === 'die' && e.id === id)?.exitCode, 0);
      t.ok(events.some((e) => e.type === 'kill' && e.id === id), 'a kill event came first');
      await driver.remove(id);
      t.equal(await driver.inspect(id), undefined, 'removed');
    });

    t.test('a crash reports its exit code', async (t) => {
      const port = await freePort();
      const events = collect(driver);
      const id = await runTask(driver, h.demo(port));
      await eventually(() => get(port, '/health').catch(() => undefined), 10_000, 'the app answering');
      await get(port, '/exit?code=3').catch(() => undefined);
      const die = await eventually(async () => events.find((e) => e.type === 'die' && e.id === id), 5000, 'die event');
      t.equal(die.exitCode, 3);
      t.equal((await driver.inspect(id))?.exitCode, 3);
      t.notOk((await driver.list()).some((x) => x.id === id), 'not listed as running');
      t.ok((await driver.list({ all: true })).some((x) => x.id === id), 'listed with all');
      await driver.start(id);
      await eventually(() => get(port, '/health').catch(() => undefined), 10_000, 'restarted app answering');
      t.equal((await driver.inspect(id))?.running, true, 'a stopped task starts again');
      await driver.kill(id);
      await eventually(async () => ((await driver.inspect(id))?.running === false ? true : undefined), 5000, 'killed');
      await driver.remove(id);
    });

    t.test('remove --force stops a running task; unknown ids', async (t) => {
      const port = await freePort();
      const id = await runTask(driver, h.demo(port));
      await driver.remove(id, { force: true });
      t.equal(await driver.inspect(id), undefined);
      await driver.remove(id); // unknown: fine
      const err = await driver.start('0'.repeat(64)).then(
        () => undefined,
        (e: unknown) => e,
      );
      t.ok(isWeftError(err, 'WEFT_ERR_NO_SUCH_TASK'), 'an unknown id is WEFT_ERR_NO_SUCH_TASK');
    });

    t.test('a second driver instance (an agent restart) adopts running tasks and sees their death', async (t) => {
      const port = await freePort();
      const id = await runTask(driver, h.demo(port, { labels: { 'io.weft.alloc': 'a1' } }));
      await eventually(() => get(port, '/health').catch(() => undefined), 10_000, 'the app answering');
      const before = await driver.inspect(id);
      const again: Driver = kind === 'docker' ? new DockerDriver() : new ProcessDriver((driver as unknown as { dir: string }).dir);
      t.teardown(() => again.close());
      await again.watch();
      const events = collect(again);
      const adopted = (await again.list({ label: 'io.weft.alloc=a1' })).find((x) => x.id === id);
      t.equal(adopted?.running, true, 'still running');
      t.equal(adopted?.startedAt, before?.startedAt, 'not restarted');
      await again.kill(id, 'SIGKILL');
      await eventually(async () => (events.some((e) => e.type === 'die' && e.id === id) ? true : undefined), 3000, 'die seen by the new instance');
      await driver.remove(id);
    });
  });
}
