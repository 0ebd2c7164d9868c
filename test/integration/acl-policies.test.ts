/**
 * weft under Consul ACLs with default deny, one token per process, each from
 * its shipped policy (docs/acl/*.hcl): a REAL `weft scheduler` (token in its
 * config file), an in-process host agent with the process driver (its host's
 * agent policy) and a REAL `weft proxy` for that host (the proxy policy)
 * deploy a job end to end: placed, started, healthy, its mesh identity signed,
 * and a request through the proxy's outbound port reaches it over mTLS. No
 * process is refused anything it needs (no `Permission denied` in any log),
 * and neither the agent's nor the proxy's token can plant an allocation: the
 * scheduler's token is the only one that makes a host run code.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AGENT_LABELS } from '../../agent/driver.js';
import { CertificateAuthority } from '../../certs/ca.js';
import { saveCa } from '../../certs/store.js';
import { loadConfig } from '../../src/config/load.js';
import { HostAgent } from '../../src/wiring/agent-process.js';
import { agentToken } from '../../src/wiring/scheduler-token.js';
import { captureLogger } from '../agent/helpers.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { meshGet } from '../helpers/mesh-get.js';
import { aclCall, loadShippedPolicies } from './acl-tokens.js';
import { startProxy } from './proxy-hosts.js';
import { api, demoJob, startSchedulerChild, TOKEN } from './scheduler-cluster.js';

const TD = 'weft.acl-test';
const MANAGEMENT = '0b5e8f0e-7d1c-4a8e-9b0a-5d0c1a2b3c4d';
// Other test files run at the same time on other 127.0.0.0/8 addresses.
const ADDRESS = '127.0.11.2';
const HOST = 'a1';

interface Status {
  allocations: Array<{ id: string; node: string; status: string; healthy?: boolean; ports: number[] }>;
}

t.test('scheduler, agent and proxy, each with its own token under default deny, deploy and serve a job', async (t) => {
  const consul = await startTestConsul(t, { acl: { enabled: true, defaultPolicy: 'deny', initialManagementToken: MANAGEMENT } });
  const tokens = await loadShippedPolicies(consul.address, MANAGEMENT, [HOST]);

  // The scheduler: its Consul token in its config file, readable by its owner only.
  const schedDir = await mkdtemp(join(tmpdir(), 'weft-acl-sched-'));
  t.teardown(() => rm(schedDir, { recursive: true, force: true }));
  saveCa(schedDir, CertificateAuthority.create({ trustDomain: TD }));
  const configFile = join(schedDir, 'config.yaml');
  await writeFile(
    configFile,
    [
      `consul:\n  address: ${consul.address}\n  token: ${tokens.scheduler}`,
      'log:\n  format: json\n  level: info',
      `scheduler:\n  token: ${TOKEN}\n  leaderTtlMs: 2000\n  lostAfterMs: 3000\n  reconcileIntervalMs: 1000\n  register: true`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const sched = await startSchedulerChild(t, { dataDir: schedDir, configFile });

  // The host agent: its host's token, configured as an operator would (CSRs and secrets through the scheduler).
  const agentDir = await mkdtemp(join(tmpdir(), `weft-acl-${HOST}-`));
  const inboundPort = await freePort(ADDRESS);
  const { logger, lines } = captureLogger();
  const config = loadConfig({
    env: {},
    flags: {
      dataDir: agentDir,
      nodeName: HOST,
      'consul.address': consul.address,
      'consul.token': tokens.agents[HOST]!,
      'agent.driver': 'process',
      'agent.address': ADDRESS,
      'agent.cpu': 4000,
      'agent.memory': 4096,
      'agent.heartbeatTtlMs': 1000,
      'agent.drainDelayMs': 50,
      'agent.stopDeadlineMs': 2000,
      'agent.superviseProxy': false,
      'proxy.inbound.port': inboundPort,
      'client.address': sched.url,
      'client.token': agentToken(TOKEN, HOST),
    },
  });
  const ownTasks = `${AGENT_LABELS.host}=${HOST}`;
  const agent = await HostAgent.start({ config, logger, watchWaitMs: 2000, labelFilter: ownTasks });
  t.teardown(async () => {
    for (const task of await agent.driver.list({ all: true, label: ownTasks }).catch(() => [])) await agent.driver.remove(task.id, { force: true }).catch(() => {});
    await agent.close({ deregisterNode: true }).catch(() => {});
    await rm(agentDir, { recursive: true, force: true });
  });

  // The host's proxy: its own token, in its own config file.
  const proxyConfig = join(agentDir, 'config.yaml');
  await writeFile(proxyConfig, `ca:\n  trustDomain: ${TD}\nconsul:\n  token: ${tokens.proxy}\nproxy:\n  reloadIntervalMs: 100\n  shutdownGraceMs: 2000\n`, { mode: 0o600 });
  const proxy = await startProxy(t, { node: HOST, address: ADDRESS, dataDir: agentDir, inboundPort, metricsPort: await freePort(ADDRESS) }, consul.address);

  await t.test('a job is deployed end to end', async (t) => {
    t.equal((await api(sched.url, 'PUT', '/v1/secrets/greeting', { value: 'acl-secret-9f2c' })).status, 200, 'the scheduler seals a secret into KV');
    const spec = demoJob('shop', 'shop', {
      task: { check: { http: '/health', interval: '1s', timeout: '500ms', failures: 1 }, secrets: [{ name: 'greeting', env: 'SERVICE' }] },
    });
    const submitted = await api(sched.url, 'POST', '/v1/jobs', { spec });
    t.equal(submitted.status, 200, submitted.text);
    const alloc = await eventually(
      async () => {
        const a = ((await api(sched.url, 'GET', '/v1/jobs/shop/status')).body as unknown as Status).allocations?.[0];
        return a?.status === 'running' && a.healthy === true ? a : undefined;
      },
      40_000,
      `shop running and healthy\n${sched.output().slice(-2000)}`,
      250,
    );
    t.equal(alloc.node, HOST);
    const direct = (await (await fetch(`http://${ADDRESS}:${alloc.ports[0]}/`)).json()) as { service: string | null };
    t.equal(direct.service, 'acl-secret-9f2c', 'the secret reached the process');

    // Through the mesh: the proxy found the instance with its read-only token and called it over mTLS.
    const localJson = join(agentDir, 'proxy', 'local.json');
    const outboundPort = await eventually(
      async () => (JSON.parse(await readFile(localJson, 'utf8')) as { services: Array<{ service: string; outboundPort: number }> }).services.find((s) => s.service === 'shop')?.outboundPort,
      20_000,
      'the outbound port of shop',
    );
    const viaMesh = await eventually(
      async () => {
        const r = await meshGet(ADDRESS, outboundPort, 'shop');
        return r.status === 200 ? r : undefined;
      },
      30_000,
      `a request through the proxy\n${proxy.logs().slice(-3000)}`,
      250,
    );
    t.match(JSON.parse(viaMesh.body), { service: 'acl-secret-9f2c' }, 'answered by the instance, through weft proxy');

    const catalog = await aclCall(consul.address, 'GET', '/v1/catalog/services', { token: MANAGEMENT });
    t.match(catalog.json, { 'weft-scheduler': [], 'weft-agent': [], 'weft-proxy': [], shop: [] }, 'each registered itself with its own token');
  });

  await t.test('only the scheduler token can make the host run code', async (t) => {
    const plant = async (token: string): Promise<number> =>
      (await aclCall(consul.address, 'PUT', `/v1/kv/weft/allocs/${HOST}/evil`, { token, body: JSON.stringify({ id: 'evil' }) })).status;
    t.equal(await plant(tokens.agents[HOST]!), 403, "the agent's token");
    t.equal(await plant(tokens.proxy), 403, "the proxy's token");
    t.equal(await plant(tokens.prometheus), 403, "Prometheus' token");
    t.equal(await plant(''), 403, 'no token');
    const txn = await aclCall(consul.address, 'PUT', '/v1/txn', {
      token: tokens.agents[HOST]!,
      body: [{ KV: { Verb: 'set', Key: `weft/allocs/${HOST}/evil`, Value: Buffer.from('{}').toString('base64') } }],
    });
    t.equal(txn.status, 409, 'not through a transaction either');
    t.equal((await aclCall(consul.address, 'GET', `/v1/kv/weft/allocs/${HOST}/evil`, { token: MANAGEMENT })).status, 404, 'nothing was planted');
  });

  await t.test('no process was refused anything it needs', async (t) => {
    const denied = (text: string): boolean => text.includes('Permission denied') || text.includes('ACL not found');
    t.notOk(denied(sched.output()), 'the scheduler');
    t.notOk(denied(JSON.stringify(lines)), 'the agent');
    t.notOk(denied(proxy.logs()), 'the proxy');
  });

  await t.test('the tokens are in no log', async (t) => {
    const all = [sched.output(), JSON.stringify(lines), proxy.logs()].join('\n');
    for (const [name, secret] of Object.entries({ scheduler: tokens.scheduler, agent: tokens.agents[HOST]!, proxy: tokens.proxy })) {
      t.notOk(all.includes(secret), `the ${name} token`);
    }
  });

});

