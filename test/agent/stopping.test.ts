/**
 * A task sent SIGTERM by hand leaves routing at once and stays out while it
 * still runs: a resync must not put a task that is shutting down back into
 * routing. Only one still running after `stoppingGraceMs` (it ignored the
 * signal) is registered again, with a warning; a restart is a fresh run.
 * Process driver (a task that ignores SIGTERM) and the dev Consul agent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runTask } from '../../agent/driver.js';
import { ProcessDriver } from '../../agent/drivers/process.js';
import { Registrar } from '../../agent/registrar.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { captureLogger, clientFor, servicesWithPrefix, sleep } from './helpers.js';

const HOST = `stop-${process.pid}`;
const GRACE_MS = 1500;
/** An HTTP server that ignores SIGTERM (SIGKILL still ends it). */
const STUBBORN = "process.on('SIGTERM', () => {}); require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1')";

t.test('a task sent SIGTERM stays out of routing until it exits', async (t) => {
  const consul = await startTestConsul(t);
  const client = clientFor(t, consul);
  const dir = await mkdtemp(join(tmpdir(), 'weft-stopping-'));
  const driver = new ProcessDriver(dir);
  t.teardown(async () => {
    for (const task of await driver.list({ all: true })) await driver.remove(task.id, { force: true });
    await driver.close();
    await rm(dir, { recursive: true, force: true });
  });
  const { logger, lines } = captureLogger();
  // resyncIntervalMs is long: the test calls resync() itself, at the moments that matter.
  const registrar = new Registrar({ driver, client, host: HOST, hostAddress: '127.0.0.1', meshPort: 15443, logger, drainDelayMs: 0, resyncIntervalMs: 600_000, stoppingGraceMs: GRACE_MS });
  t.teardown(() => registrar.stop());
  await registrar.start();

  async function startStubborn(name: string): Promise<{ id: string; sid: string; port: number }> {
    const port = await freePort();
    const id = await runTask(driver, { name, command: process.execPath, args: ['-e', STUBBORN], env: { PORT: String(port) }, labels: { 'weft.service': name, 'weft.port': String(port) } });
    const sid = `${HOST}-${id.slice(0, 12)}`;
    await eventually(async () => (await servicesWithPrefix(consul, sid))[0], 5000, `${name} registered`, 20);
    await eventually(() => fetch(`http://127.0.0.1:${port}/`).then((r) => (r.ok ? true : undefined)), 5000, `${name} listening`, 20);
    return { id, sid, port };
  }
  const registered = async (sid: string): Promise<boolean> => (await servicesWithPrefix(consul, sid)).length > 0;

  t.test('deregistered at the signal; a resync while it still runs does not re-register it; past the grace it does, with a warning', async (t) => {
    const { id, sid } = await startStubborn('stubborn');
    const signalledAt = Date.now();
    await driver.kill(id, 'SIGTERM');
    await eventually(async () => ((await registered(sid)) ? undefined : true), 2000, 'deregistration at the signal', 20);
    await sleep(200);
    t.equal((await driver.inspect(id))?.running, true, 'it ignored SIGTERM and still runs');
    await registrar.resync();
    t.notOk(await registered(sid), 'a resync inside the grace leaves it out of routing');
    t.equal(registrar.instanceOf(id), undefined);
    await sleep(Math.max(0, GRACE_MS - (Date.now() - signalledAt)) + 100);
    await registrar.resync();
    t.ok(await registered(sid), 'registered again once the grace has passed');
    const warning = lines.find((l) => l['level'] === 40 && l['containerId'] === id.slice(0, 12));
    t.match(String(warning?.['msg']), /still runs \d+ s after a terminating signal: registering it again/);
  });

  t.test('a restart after the signal is a fresh run: registered at once, not after the grace', async (t) => {
    const { id, sid } = await startStubborn('restarted');
    await driver.kill(id, 'SIGTERM');
    await eventually(async () => ((await registered(sid)) ? undefined : true), 2000, 'deregistration at the signal', 20);
    await driver.stop(id, { timeoutMs: 100 }); // SIGKILL after 100 ms: it exits (die)
    await driver.start(id);
    await eventually(async () => ((await registered(sid)) ? true : undefined), 2000, 're-registration on start', 20);
    t.pass('registered on the start event, well inside the grace');
  });

  t.test('a task that exits after the signal stays deregistered and leaves no mark behind', async (t) => {
    const { id, sid } = await startStubborn('exits');
    await driver.stop(id, { timeoutMs: 100 });
    await registrar.resync();
    t.notOk(await registered(sid));
    t.equal((await driver.inspect(id))?.running, false);
  });
});
