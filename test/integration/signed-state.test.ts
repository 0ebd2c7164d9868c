/**
 * Signed desired state end to end for intentions, splits and allocations (docs/security.md,
 * "Signed desired state"): a real `weft scheduler`, an agent configured with
 * its host token that fetches the scheduler's public keys and hands them to
 * its proxy, a real `weft proxy` on that host, the dev Consul over HTTP.
 *
 * - the operator's deny applies; the same document tampered into an allow,
 *   a valid allow moved to this pair, and an allow written by hand are
 *   refused, logged once and counted, and the deny stays in force;
 * - a split moved from another service is refused and the signed one stays;
 * - allocations: the scheduler's run; a process allocation written into the
 *   host's prefix by hand is refused, reported and counted, and never runs;
 * - rotation while traffic flows: the new key is published, then signs; the
 *   leader re-signs every intention and split; nothing is refused meanwhile
 *   and the deny holds; then a rotation with no overlap: a document signed by
 *   the retired key is refused.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeIdentityFiles } from '../../certs/store.js';
import { silentLogger } from '../../base/log.js';
import { signDocument } from '../../base/signing.js';
import { loadConfig } from '../../src/config/load.js';
import { HostAgent } from '../../src/wiring/agent-process.js';
import { identitiesDir } from '../../src/wiring/proxy-identities.js';
import { SigningKeyStore } from '../../src/wiring/scheduler-signing.js';
import { agentToken } from '../../src/wiring/scheduler-token.js';
import { makeCa, makeIdentity, TD } from '../certs/fixtures.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { meshGet, type MeshReply } from '../helpers/mesh-get.js';
import { instanceRegistration, type SimHost, startApp, startProxy, writeLocal } from './proxy-hosts.js';
import { api, demoJob, schedulerDataDir, startSchedulerChild, TOKEN } from './scheduler-cluster.js';

// 127.0.16.x: other test files run at the same time on other addresses.
const ADDRESS = '127.0.16.2';
const consul = await startTestConsul(t);
const shared = await schedulerDataDir(t, consul);
const sched = await startSchedulerChild(t, shared);

// The host: an agent as an operator configures it (scheduler address and host token), with no workload and no
// identity manager of its own (the test writes the proxy's identities), fetching the keys every second.
const dataDir = await mkdtemp(join(tmpdir(), 'weft-signed-h1-'));
t.teardown(() => rm(dataDir, { recursive: true, force: true }));
const config = loadConfig({
  env: {},
  flags: {
    dataDir,
    nodeName: 'h1',
    'consul.address': consul.address,
    'agent.driver': 'process',
    'agent.address': ADDRESS,
    'agent.superviseProxy': false,
    'agent.metrics.port': 0,
    'agent.signingKeysRefreshMs': 1000,
    'client.address': sched.url,
    'client.token': agentToken(TOKEN, 'h1'),
  },
});
const agent = await HostAgent.start({ config, logger: silentLogger, signer: null, watchWaitMs: 2000 });
t.teardown(() => agent.close({ deregisterNode: true }));

const ca = makeCa();
for (const service of ['web', 'api', 'shop']) writeIdentityFiles(join(identitiesDir(dataDir), service), makeIdentity(ca, service));
await writeFile(join(dataDir, 'config.yaml'), `ca:\n  trustDomain: ${TD}\nproxy:\n  reloadIntervalMs: 100\n  shutdownGraceMs: 2000\n`);
const host: SimHost = { node: 'h1', address: ADDRESS, dataDir, inboundPort: await freePort(ADDRESS), metricsPort: await freePort(ADDRESS) };
const outboundPort = await freePort(ADDRESS);
await writeLocal(host, [{ service: 'web', outboundPort }]);
const apiApp = await startApp(t, 'api', ADDRESS);
await consul.consul.agent.service.register(instanceRegistration(host, 'h1-api-1', 'api', apiApp.port));
const shopV1 = await startApp(t, 'shop-v1', ADDRESS);
const shopV2 = await startApp(t, 'shop-v2', ADDRESS);
await consul.consul.agent.service.register(instanceRegistration(host, 'h1-shop-1', 'shop', shopV1.port, { version: 'v1' }));
await consul.consul.agent.service.register(instanceRegistration(host, 'h1-shop-2', 'shop', shopV2.port, { version: 'v2' }));
t.teardown(async () => {
  for (const id of ['h1-api-1', 'h1-shop-1', 'h1-shop-2']) await consul.consul.agent.service.deregister(id);
});
const proxy = await startProxy(t, host, consul.address);
t.teardown(() => proxy.stop());
const metricsUrl = `http://${host.address}:${host.metricsPort}/metrics`;

/** weft_proxy_signed_state_refused_total by `kind/reason`. */
async function refusals(): Promise<Record<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^weft_proxy_signed_state_refused_total\{([^}]*)\} (\d+)/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out[`${labels['kind']}/${labels['reason']}`] = Number(m[2]);
  }
  return out;
}

/** web calls `service` through h1's outbound port and h1's inbound. */
function call(service: string): Promise<MeshReply> {
  return meshGet(ADDRESS, outboundPort, service, { timeoutMs: 10_000 });
}
/** Which shop version answers 20 calls. */
async function shopShares(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < 20; i++) {
    const app = (JSON.parse((await call('shop')).body) as { app: string }).app;
    out[app] = (out[app] ?? 0) + 1;
  }
  return out;
}
const kvValue = async (key: string): Promise<string> => ((await consul.consul.kv.get(key)) as { Value: string }).Value;
const kidOf = async (key: string): Promise<string> => (JSON.parse(await kvValue(key)) as { kid: string }).kid;
const published = async (): Promise<string[]> => ((await api(sched.url, 'GET', '/v1/signing/keys')).body['keys'] as Array<{ kid: string }>).map((k) => k.kid);

t.test('the agent hands the keys it fetched with its host token to its proxy', async (t) => {
  t.strictSame(
    agent.signingKeys.current()?.keys.map((k) => k.kid),
    await published(),
    'the keys the scheduler publishes',
  );
  await eventually(async () => (await call('api')).status === 200, 15_000, 'web -> api through the mesh');
  t.strictSame(await refusals(), {}, 'nothing refused so far');
});

t.test('an intention tampered, moved or written by hand is refused and counted; the signed deny holds', async (t) => {
  t.equal((await api(sched.url, 'PUT', '/v1/intentions/web/api', { action: 'deny' })).status, 200);
  await eventually(async () => (await call('api')).status === 403, 10_000, 'the signed deny to apply');
  const hits = apiApp.hits;
  t.equal((await api(sched.url, 'PUT', '/v1/intentions/web/billing', { action: 'allow' })).status, 200);
  const envelope = JSON.parse(await kvValue('weft/intentions/web/api')) as Record<string, unknown>;
  await consul.consul.kv.set('weft/intentions/web/api', JSON.stringify({ ...envelope, doc: JSON.stringify({ action: 'allow' }) }));
  await eventually(async () => (await refusals())['intention/bad-signature'] === 1, 10_000, 'the tampered intention refused');
  await consul.consul.kv.set('weft/intentions/web/api', await kvValue('weft/intentions/web/billing'));
  await eventually(async () => (await refusals())['intention/bad-signature'] === 2, 10_000, "another pair's allow moved here refused");
  await consul.consul.kv.set('weft/intentions/web/api', JSON.stringify({ action: 'allow' }));
  await eventually(async () => (await refusals())['intention/unsigned'] === 1, 10_000, 'a hand-written allow refused');
  const denied = await call('api');
  t.equal(denied.status, 403, 'still denied');
  t.match(denied.reason, /denied by intention weft\/intentions\/web\/api$/, 'by the deny the scheduler signed');
  t.equal(apiApp.hits, hits, 'the app saw no call since the deny');
  t.equal(proxy.logs().match(/"code":"WEFT_ERR_SIGNED_STATE"[^\n]*"key":"weft\/intentions\/web\/api"/g)?.length, 3, 'each refused value logged once, with its key');
  t.equal((await api(sched.url, 'PUT', '/v1/intentions/web/api', { action: 'deny' })).status, 200, 'the operator writes it again');
});

t.test('a split moved from another service is refused; the signed one stays in force', async (t) => {
  t.equal((await api(sched.url, 'PUT', '/v1/splits/shop', { weights: { v1: 0, v2: 1 } })).status, 200);
  await eventually(async () => (await shopShares())['shop-v2'] === 20, 10_000, 'all of shop on v2');
  t.equal((await api(sched.url, 'PUT', '/v1/splits/cart', { weights: { v1: 1, v2: 0 } })).status, 200);
  await consul.consul.kv.set('weft/splits/shop', await kvValue('weft/splits/cart'));
  await eventually(async () => (await refusals())['split/bad-signature'] === 1, 10_000, 'the moved split refused');
  t.strictSame(await shopShares(), { 'shop-v2': 20 }, 'the signed split stays in force');
  t.equal((await api(sched.url, 'PUT', '/v1/splits/shop', { weights: { v1: 0, v2: 1 } })).status, 200);
});

/** The job the allocation tests run: stopped after the rotations (or at teardown when a test failed first). */
let jobStopped = false;
async function stopJob(): Promise<void> {
  if (jobStopped) return;
  jobStopped = true;
  await api(sched.url, 'DELETE', '/v1/jobs/signed-job?purge=true');
  await eventually(async () => (agent.allocations.snapshot().length === 0 ? true : undefined), 20_000, 'the job stopped on h1');
}
let runningTask: string | undefined;
t.teardown(stopJob);

t.test("allocations: what the scheduler places runs; a process allocation written into the host's prefix by hand never runs", async (t) => {
  const submitted = await api(sched.url, 'POST', '/v1/jobs', { spec: demoJob('signed-job', 'signed-job', { task: { env: { DRAIN_MS: '100' } } }) });
  t.equal(submitted.status, 200, submitted.text);
  runningTask = await eventually(async () => agent.allocations.snapshot().find((a) => a.state === 'running')?.taskId, 20_000, "the scheduler's allocation runs on h1");
  const value = JSON.parse((await consul.consul.kv.get({ key: 'weft/allocs/h1/', recurse: true }) as Array<{ Value: string }>)[0]!.Value) as Record<string, unknown>;
  t.strictSame(Object.keys(value).sort(), ['doc', 'kid', 'sig', 'signedAt', 'weft_signed'], 'stored as a signed envelope');

  const marker = join(dataDir, 'evil.ran');
  const evil = {
    id: 'evil-1',
    job: 'signed-job',
    group: 'app',
    task: 'demo',
    driver: 'process',
    command: process.execPath,
    args: ['-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran')`],
    env: {},
    resources: { cpu: 10, memory: 16 },
    labels: {},
    restart: { attempts: 0, interval: 60_000, delay: 100, mode: 'fail' },
    secrets: [{ name: 'db-pass', env: 'DB_PASS' }],
  };
  const secretValue = 'hunter2-signed-state-test';
  t.equal((await api(sched.url, 'PUT', '/v1/secrets/db-pass', { value: secretValue })).status, 200);
  await consul.consul.kv.set('weft/allocs/h1/evil-1', JSON.stringify(evil));
  const status = await eventually(
    async () => {
      const r = (await consul.consul.kv.get('weft/alloc-status/h1/evil-1')) as { Value: string } | undefined;
      return r === undefined ? undefined : (JSON.parse(r.Value) as { state: string; message?: string });
    },
    10_000,
    'the agent reports the hand-written document',
  );
  t.equal(status.state, 'failed');
  t.match(status.message, /refused: .*unsigned/);
  t.notOk(existsSync(marker), 'its command never ran');
  t.notOk(agent.allocations.snapshot().some((a) => a.id === 'evil-1'), 'the agent does not manage it');
  const metrics = await (await fetch(`http://${agent.metrics!.address.host}:${agent.metrics!.address.port}/metrics`)).text();
  t.match(metrics, /^weft_agent_signed_state_refused_total\{reason="unsigned"\} 1$/m, 'counted once on the agent');
  // The scheduler reveals no secret for it, even to the host's own token (it would for a document it signed).
  const secrets = await api(sched.url, 'GET', '/v1/allocations/h1/evil-1/secrets', undefined, agentToken(TOKEN, 'h1'));
  t.equal(secrets.status, 404, `the secrets route refuses it (${secrets.body['code']})`);
  t.notOk(secrets.text.includes(secretValue), 'the value is not in the answer');
  await consul.consul.kv.del('weft/allocs/h1/evil-1');
});

t.test('rotation while traffic flows: published, then signing, everything re-signed, nothing refused; then a key retired at once', async (t) => {
  const before = await refusals();
  const r1 = await api(sched.url, 'POST', '/v1/signing/rotate', { publishSeconds: 3, overlapHours: 1 });
  t.equal(r1.status, 200, r1.text);
  await eventually(() => agent.signingKeys.current()?.keys.some((k) => k.kid === r1.body['kid']), 10_000, 'the agent fetched the new key while it is only published');
  const keys = ['weft/intentions/web/api', 'weft/intentions/web/billing', 'weft/splits/shop', 'weft/splits/cart'];
  await eventually(async () => (await Promise.all(keys.map(kidOf))).every((k) => k === r1.body['kid']), 20_000, "the leader's sweep re-signs every intention and split once the key signs", 250);
  await eventually(async () => (await call('api')).status === 403 && (await shopShares())['shop-v2'] === 20, 10_000, 'the proxy on the re-signed documents');
  t.strictSame(await refusals(), before, 'nothing refused: the proxy knew the key before it met it');

  // A key believed stolen: no publication, no overlap.
  const stolen = SigningKeyStore.open(shared.dataDir).store.signingKey();
  t.equal(stolen.kid, r1.body['kid']);
  const r2 = await api(sched.url, 'POST', '/v1/signing/rotate', { publishSeconds: 0, overlapHours: 0 });
  t.equal(r2.status, 200, r2.text);
  t.ok((r2.body['resigned'] as number) >= 4, 're-signed at once');
  t.equal((await call('api')).status, 403, 'the deny holds meanwhile (what the proxy verified stays in force)');
  // The proxy has the new key once it logged loading it: from then on nothing of the switch is refused.
  await eventually(() => proxy.logs().split('\n').some((l) => l.includes('signing keys loaded') && l.includes(r2.body['kid'] as string)), 10_000, 'the proxy loaded the new key');
  const settled = await refusals();
  await consul.consul.kv.set('weft/intentions/web/api', signDocument(stolen, 'weft/intentions/web/api', JSON.stringify({ action: 'allow' }), Date.now()));
  await eventually(async () => (await refusals())['intention/retired-key'] === (settled['intention/retired-key'] ?? 0) + 1, 10_000, "the retired key's allow refused");
  t.equal((await call('api')).status, 403, 'still denied');
});

t.test("after both rotations the scheduler's allocation still runs, the same task, re-signed by the current key", async (t) => {
  const current = SigningKeyStore.open(shared.dataDir).store.signingKey().kid;
  const allocs = async () => (await consul.consul.kv.get({ key: 'weft/allocs/h1/', recurse: true })) as Array<{ Key: string; Value: string }>;
  await eventually(async () => ((await allocs()).every((e) => (JSON.parse(e.Value) as { kid: string }).kid === current) ? true : undefined), 20_000, "the leader's sweep re-signs the allocations").catch((err) => {
    console.error(sched.output().split('\n').filter((l) => /alloc|sign|plan|stop/i.test(l)).slice(-40).join('\n'));
    throw err;
  });
  const running = agent.allocations.snapshot();
  t.equal(running.length, 1);
  t.equal(running[0]?.taskId, runningTask, 'never restarted');
  t.equal(running[0]?.state, 'running');
  await stopJob();
});
