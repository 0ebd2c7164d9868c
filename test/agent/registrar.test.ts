/**
 * Registration by label against a real dockerd and the dev Consul agent:
 * containers started by hand with `docker run --label weft.service=...`.
 */
import t from 'tap';
import { DockerDriver } from '../../agent/drivers/docker.js';
import { Registrar } from '../../agent/registrar.js';
import { registerInstance } from '../../discovery/registry.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { useDocker } from '../helpers/docker.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { captureLogger, clientFor, passing, servicesWithPrefix, sleep } from './helpers.js';

const HOST = `reg-${process.pid}`;

t.test('registration by label', async (t) => {
  const d = await useDocker(t);
  const consul = await startTestConsul(t);
  const client = clientFor(t, consul);
  const driver = new DockerDriver();
  t.teardown(() => driver.close());
  const { logger, lines } = captureLogger();

  /** `docker run` by hand, on the host network, with the test's cleanup label. */
  async function dockerRun(name: string, port: number, labels: Record<string, string>, env: Record<string, string> = {}): Promise<string> {
    const args = ['run', '-d', '--network', 'host', '--name', `${name}-${process.pid}`];
    for (const [k, v] of Object.entries({ ...d.testLabels, ...labels })) args.push('--label', `${k}=${v}`);
    for (const [k, v] of Object.entries({ HOST: '127.0.0.1', PORT: String(port), ...env })) args.push('-e', `${k}=${v}`);
    return (await d.cli(...args, d.image)).trim();
  }

  // Started before the agent: resync must pick it up. A stale registration of this host too.
  const earlyPort = await freePort();
  const early = await dockerRun('early', earlyPort, { 'weft.service': 'early', 'weft.port': String(earlyPort) });
  await registerInstance(client, {
    host: HOST,
    hostAddress: '127.0.0.1',
    instance: 'gone0000000',
    meshPort: 15443,
    registration: { service: 'early', port: 1, weight: 1, version: 'v', tags: [], check: { intervalMs: 10_000, timeoutMs: 1000, failures: 1, successes: 1 }, upstreams: [] },
  });
  await registerInstance(client, {
    host: 'another-host',
    hostAddress: '127.0.0.9',
    instance: 'keep',
    meshPort: 15443,
    registration: { service: 'early', port: 1, weight: 1, version: 'v', tags: [], check: { intervalMs: 10_000, timeoutMs: 1000, failures: 1, successes: 1 }, upstreams: [] },
  });

  const registrar = new Registrar({ driver, client, host: HOST, hostAddress: '127.0.0.1', meshPort: 15443, logger, drainDelayMs: 300, labelFilter: `io.weft.test=${process.pid}` });
  t.teardown(() => registrar.stop());
  await registrar.start();

  t.test('resync on start: registers running containers and removes stale registrations of this host only', async (t) => {
    const mine = await servicesWithPrefix(consul, `${HOST}-`);
    t.strictSame(
      mine.map((s) => s.ID),
      [`${HOST}-${early.slice(0, 12)}`],
    );
    t.equal((await servicesWithPrefix(consul, 'another-host-')).length, 1, "another host's registration is left alone");
  });

  t.test('a container started by hand is registered with the Meta contract, its checks, and becomes routable', async (t) => {
    const port = await freePort();
    const id = await dockerRun('web', port, {
      'weft.service': 'web',
      'weft.port': String(port),
      'weft.version': 'v2',
      'weft.weight': '7',
      'weft.tags': 'blue,canary',
      'weft.check.http': '/health',
      'weft.check.interval': '1s',
      'weft.check.timeout': '500ms',
      'weft.check.failures': '2',
      'weft.check.successes': '1',
    });
    const svc = await eventually(async () => (await servicesWithPrefix(consul, `${HOST}-${id.slice(0, 12)}`))[0], 5000, 'registration');
    t.match(svc, {
      Service: 'web',
      Address: '127.0.0.1',
      Port: port,
      Meta: { weft_host: HOST, weft_instance: id.slice(0, 12), weft_version: 'v2', weft_weight: '7', weft_mesh_port: '15443' },
    });
    t.strictSame([...svc.Tags].sort(), ['blue', 'canary', 'weft']);
    const checks = (await consul.consul.agent.check.list()) as Record<string, { ServiceID: string; Definition?: { HTTP?: string } }>;
    const mineChecks = Object.values(checks).filter((c) => c.ServiceID === svc.ID);
    t.equal(mineChecks.length, 1, 'one HTTP check');
    const healthy = await eventually(async () => (await passing(consul, 'web')).find((e) => e.Service.ID === svc.ID), 5000, 'passing');
    const res = await fetch(`http://${healthy.Service.Address}:${healthy.Service.Port}/hi`);
    t.equal(res.status, 200, 'the registered address answers');
  });

  t.test('docker kill deregisters within 2 s', async (t) => {
    const port = await freePort();
    const id = await dockerRun('victim', port, { 'weft.service': 'victim', 'weft.port': String(port) });
    await eventually(async () => (await servicesWithPrefix(consul, `${HOST}-${id.slice(0, 12)}`))[0], 5000, 'registration');
    const killedAt = Date.now();
    await d.cli('kill', id);
    await eventually(async () => ((await servicesWithPrefix(consul, `${HOST}-${id.slice(0, 12)}`)).length === 0 ? true : undefined), 2000, 'deregistration', 20);
    const took = Date.now() - killedAt;
    t.ok(took < 2000, `deregistered ${took} ms after docker kill`);
  });

  t.test('bad labels: a warning names the container, key and value; only that container is skipped', async (t) => {
    const goodPort = await freePort();
    const bad = await dockerRun('bad', goodPort + 1, { 'weft.service': 'bad', 'weft.port': 'eighty', 'weft.check.interval': 'soon', 'weft.chek.http': '/x' });
    const good = await dockerRun('good', goodPort, { 'weft.service': 'good', 'weft.port': String(goodPort) });
    await eventually(async () => (await servicesWithPrefix(consul, `${HOST}-${good.slice(0, 12)}`))[0], 5000, 'the good one registered');
    t.equal((await servicesWithPrefix(consul, `${HOST}-${bad.slice(0, 12)}`)).length, 0, 'the bad one is not');
    const warnings = lines.filter((l) => l['level'] === 40 && l['containerId'] === bad.slice(0, 12));
    const byKey = new Map(warnings.map((w) => [w['key'], w]));
    t.equal(byKey.get('weft.port')?.['value'], 'eighty');
    t.equal(byKey.get('weft.check.interval')?.['value'], 'soon');
    t.equal(byKey.get('weft.chek.http')?.['code'], 'WEFT_ERR_LABEL_UNKNOWN');
    t.match(String(byKey.get('weft.port')?.['msg']), `container bad-${process.pid} skipped`);
    await registrar.resync();
    t.equal(lines.filter((l) => l['level'] === 40 && l['containerId'] === bad.slice(0, 12)).length, warnings.length, 'warned once, not on every resync');
  });

  t.test("Registrator's SERVICE_NAME registers too", async (t) => {
    const port = await freePort();
    const id = await dockerRun('legacy', port, { SERVICE_NAME: 'legacy', [`SERVICE_${port}_CHECK_TCP`]: 'true', 'weft.port': String(port) });
    const svc = await eventually(async () => (await servicesWithPrefix(consul, `${HOST}-${id.slice(0, 12)}`))[0], 5000, 'registration');
    t.equal(svc.Service, 'legacy');
  });

  t.test('docker stop: leaves routing at the SIGTERM, before the container exits', async (t) => {
    const port = await freePort();
    const id = await dockerRun('graceful', port, { 'weft.service': 'graceful', 'weft.port': String(port) });
    await eventually(async () => (await servicesWithPrefix(consul, `${HOST}-${id.slice(0, 12)}`))[0], 5000, 'registration');
    await eventually(() => fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined), 5000, 'app up');
    const slow = fetch(`http://127.0.0.1:${port}/slow?delay=1200`);
    await sleep(100);
    const stopping = d.cli('stop', '-t', '5', id);
    await eventually(async () => ((await servicesWithPrefix(consul, `${HOST}-${id.slice(0, 12)}`)).length === 0 ? true : undefined), 1000, 'deregistered on the kill event', 20);
    t.equal((await driver.inspect(id))?.running, true, 'deregistered while still running (draining)');
    await registrar.resync();
    t.equal((await servicesWithPrefix(consul, `${HOST}-${id.slice(0, 12)}`)).length, 0, 'a resync while it drains does not put it back');
    t.equal((await slow).status, 200, 'the in-flight request finished');
    await stopping;
  });

  t.test('drainAndStop loses no in-flight request', async (t) => {
    const port = await freePort();
    const id = await dockerRun('drained', port, { 'weft.service': 'drained', 'weft.port': String(port) });
    await eventually(async () => (await servicesWithPrefix(consul, `${HOST}-${id.slice(0, 12)}`))[0], 5000, 'registration');
    await eventually(() => fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined), 5000, 'app up');
    const inflight = Array.from({ length: 20 }, (_, i) => fetch(`http://127.0.0.1:${port}/work?delay=${300 + i * 40}`).then((r) => r.status));
    await sleep(50);
    const started = Date.now();
    await registrar.drainAndStop(id, 5000);
    t.strictSame(await Promise.all(inflight), Array(20).fill(200), 'all 20 in-flight requests answered 200');
    t.equal((await servicesWithPrefix(consul, `${HOST}-${id.slice(0, 12)}`)).length, 0, 'deregistered');
    t.equal((await driver.inspect(id))?.exitCode, 0, 'exited cleanly, not killed');
    t.ok(Date.now() - started >= 300, 'waited the drain delay');
  });
});
