/**
 * What a purged job (or one scaled to 0) leaves on a host, against the real
 * agent (HostAgent, process driver, local CA) and the dev Consul agent over
 * HTTP: its service's outbound listener leaves local.json and its identity
 * folder is deleted once nothing on the host uses it (after the grace); a
 * stop-first replacement on the same host keeps the listener and its port; a
 * refused allocation document's status record goes with the document;
 * another job's entries, identity and status are untouched throughout.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { HostAgent } from '../../src/wiring/agent-process.js';
import { CertificateAuthority } from '../../certs/ca.js';
import { saveCa } from '../../certs/store.js';
import { loadConfig } from '../../src/config/load.js';
import { deleteKey, getJSON } from '../../discovery/kv.js';
import { type Allocation, type AllocStatus, allocKey, allocStatusKey } from '../../base/contracts/alloc.js';
import type { HostProxyLocal } from '../../base/contracts/host-proxy.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { testSigner } from '../helpers/signing.js';
import { captureLogger, clientFor, servicesWithPrefix } from './helpers.js';

const DEMO_APP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'demo-app.mjs');
const HOST = `leftovers-${process.pid}`;
/** Long enough for this test to write a replacement after the old task exited, on a loaded machine. */
const GRACE_MS = 5000;

function alloc(id: string, job: string, port: number, labels: Record<string, string>): Allocation {
  return {
    id,
    job,
    group: 'app',
    task: 'demo',
    driver: 'process',
    command: process.execPath,
    args: [DEMO_APP],
    env: { DRAIN_MS: '100' },
    port,
    resources: { cpu: 100, memory: 64 },
    labels,
    restart: { attempts: 2, interval: 60_000, delay: 100, mode: 'fail' },
  };
}

t.test('leftovers of a purged job', async (t) => {
  const consul = await startTestConsul(t);
  const client = clientFor(t, consul);
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-leftovers-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  saveCa(dataDir, CertificateAuthority.create({ trustDomain: 'weft.test' }));
  // The scheduler's signing keys on this machine, as beside the local CA: the agent runs only what they signed.
  const signer = await testSigner(t);
  await signer.installFor(dataDir);
  const config = loadConfig({
    env: {},
    flags: {
      dataDir,
      nodeName: HOST,
      'consul.address': consul.address,
      'agent.driver': 'process',
      'agent.address': '127.0.0.1',
      'agent.heartbeatTtlMs': 1500,
      'agent.drainDelayMs': 50,
      'agent.stopDeadlineMs': 2000,
      'agent.superviseProxy': false,
      'agent.outboundPortBase': 25301,
    },
  });
  const { logger, lines } = captureLogger();
  const agent = await HostAgent.start({ config, logger, watchWaitMs: 2000, retireGraceMs: GRACE_MS });
  t.teardown(async () => {
    for (const task of await agent.driver.list({ all: true }).catch(() => [])) await agent.driver.remove(task.id, { force: true }).catch(() => {});
    await agent.close({ deregisterNode: true });
  });

  const localPath = join(dataDir, 'proxy', 'local.json');
  const identity = (service: string): string => join(dataDir, 'proxy', 'identities', service);
  const local = (): HostProxyLocal => JSON.parse(readFileSync(localPath, 'utf8')) as HostProxyLocal;
  const portOf = (service: string): number | undefined => local().services.find((s) => s.service === service)?.outboundPort;
  const status = async (id: string): Promise<AllocStatus | undefined> => (await getJSON<AllocStatus>(client, allocStatusKey(HOST, id)))?.value;
  const ready = (service: string, what: string) =>
    eventually(() => (portOf(service) !== undefined && existsSync(join(identity(service), 'cert.pem')) ? true : undefined), 20_000, what, 100);

  const shopPort = await freePort();
  const otherPort = await freePort();
  await signer.put(consul.consul, allocKey(HOST, 'shop-1'), alloc('shop-1', 'shop', shopPort, { 'weft.service': 'shop', 'weft.upstreams': 'db' }));
  await signer.put(consul.consul, allocKey(HOST, 'other-1'), alloc('other-1', 'other', otherPort, { 'weft.service': 'other' }));
  await ready('shop', 'shop in local.json with an identity');
  await ready('other', 'other in local.json with an identity');
  const other = { port: portOf('other'), cert: readFileSync(join(identity('other'), 'cert.pem'), 'utf8') };
  const untouched = async (t: Test): Promise<void> => {
    t.equal(portOf('other'), other.port, "the other job's listener keeps its port");
    t.equal(readFileSync(join(identity('other'), 'cert.pem'), 'utf8'), other.cert, "the other job's identity is untouched");
    t.equal((await status('other-1'))?.state, 'running', "the other job's status record stays");
  };

  await t.test('a stop-first replacement on the same host keeps the listener and its port', async (t) => {
    const port = portOf('shop');
    let gaps = 0;
    const sampler = setInterval(() => {
      try {
        if (portOf('shop') !== port) gaps++;
      } catch {
        // between writes: local.json is replaced by rename, never half-written
      }
    }, 20);
    t.teardown(() => clearInterval(sampler));
    await deleteKey(client, allocKey(HOST, 'shop-1'));
    await eventually(async () => ((await agent.driver.list()).some((task) => task.labels['io.weft.alloc'] === 'shop-1') ? undefined : true), 20_000, 'shop-1 stopped');
    await signer.put(consul.consul, allocKey(HOST, 'shop-2'), alloc('shop-2', 'shop', shopPort, { 'weft.service': 'shop', 'weft.upstreams': 'db' }));
    await eventually(async () => ((await status('shop-2'))?.state === 'running' ? true : undefined), 20_000, 'shop-2 running');
    await eventually(async () => ((await servicesWithPrefix(consul, `${HOST}-shop-2`)).length === 1 ? true : undefined), 20_000, 'shop-2 registered');
    clearInterval(sampler);
    t.equal(gaps, 0, 'local.json listed shop on the same port throughout');
    t.ok(existsSync(join(identity('shop'), 'cert.pem')), 'the identity stayed');
  });

  await t.test('purge (or scale to 0): the listener leaves local.json, the identity is deleted', async (t) => {
    await deleteKey(client, allocKey(HOST, 'shop-2'));
    await eventually(() => (portOf('shop') === undefined ? true : undefined), 20_000 + GRACE_MS, 'shop gone from local.json', 200);
    await eventually(() => (existsSync(identity('shop')) ? undefined : true), 5000, 'the identity folder of shop deleted');
    t.equal(await status('shop-2'), undefined, 'its status record is gone');
    t.notOk(
      local().services.some((s) => s.service === 'db'),
      'nothing for the upstream db either',
    );
    t.ok(lines.some((l) => l['service'] === 'shop' && String(l['msg']).includes('outbound listener removed')), 'the removal is logged');
    await untouched(t);
  });

  await t.test("a refused allocation document's status record goes with the document", async (t) => {
    // driver process without a command: the agent refuses it and reports it failed.
    const bad = { ...alloc('bad-1', 'broken', await freePort(), { 'weft.service': 'broken' }), command: undefined };
    await signer.put(consul.consul, allocKey(HOST, 'bad-1'), bad);
    const failed = await eventually(async () => {
      const s = await status('bad-1');
      return s?.state === 'failed' ? s : undefined;
    }, 20_000, 'bad-1 reported failed');
    t.match(failed.message, /command/, `refused: ${failed.message ?? ''}`);
    await deleteKey(client, allocKey(HOST, 'bad-1'));
    await eventually(async () => ((await status('bad-1')) === undefined ? true : undefined), 20_000, 'the status record of bad-1 removed');
    t.pass('removed');
    await untouched(t);
  });

  await t.test('a hand-started labelled task: its service goes once the task is gone', async (t) => {
    const port = await freePort();
    const id = await agent.driver.create({ name: 'manual', command: process.execPath, args: [DEMO_APP], env: { PORT: String(port), DRAIN_MS: '100' }, labels: { 'weft.service': 'manual', 'weft.port': String(port) } });
    await agent.driver.start(id);
    await ready('manual', 'manual in local.json with an identity');
    await agent.driver.remove(id, { force: true });
    await eventually(() => (portOf('manual') === undefined && !existsSync(identity('manual')) ? true : undefined), 20_000 + GRACE_MS, 'manual removed', 200);
    t.pass('removed');
    await untouched(t);
  });
});
