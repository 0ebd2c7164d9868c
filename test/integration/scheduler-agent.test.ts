/**
 * The agent against a real `weft scheduler`, configured as an operator would
 * (client.address + its host token): file and env secrets through the
 * process driver (the values in no log, API answer, KV value or state file;
 * re-fetched on restart; files gone with the allocation), mesh identities
 * signed by the scheduler's CSR route (refused for a service not allocated to
 * the host, the agent keeps running), and a purged job's status record that
 * stays gone.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CertificateAuthority } from '../../certs/ca.js';
import { saveCa } from '../../certs/store.js';
import { spiffeIdOf } from '../../certs/verify.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { api, DEMO_APP, demoJob, schedulerDataDir, startSchedulerChild, startSimAgent } from './scheduler-cluster.js';

const DEMO = DEMO_APP;
const TD = 'weft.agent-test';
const FILE_VALUE = 'file-secret-value-5b1e77c2';
const ENV_VALUE = 'env-secret-value-0d93aa41';
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

function job(name: string, service: string) {
  return demoJob(name, service, {
    group: { restart: { attempts: 5, interval: '10m', delay: '0s', mode: 'fail' } },
    task: {
      check: { http: '/health', interval: '1s', timeout: '500ms', failures: 1 },
      secrets: [
        { name: 'db-file', file: '/secrets/db' },
        { name: 'db-env', env: 'SERVICE' },
      ],
    },
  });
}

interface Status {
  allocations: Array<{ id: string; node: string; status: string; healthy?: boolean; ports: number[] }>;
  events: Array<{ type: string; message: string }>;
}

t.test('agent and scheduler', async (t) => {
  const consul = await startTestConsul(t);
  const shared = await schedulerDataDir(t, consul);
  saveCa(shared.dataDir, CertificateAuthority.create({ trustDomain: TD }));
  const sched = await startSchedulerChild(t, shared);
  const url = (): string => sched.url;
  // 127.0.6.x: other test files run at the same time on other addresses.
  const sim = await startSimAgent(t, consul, 'a1', '127.0.6.2', url, { asConfigured: true });
  const status = async (name: string): Promise<Status> => (await api(url(), 'GET', `/v1/jobs/${name}/status`)).body as unknown as Status;
  const running = async (name: string, what: string): Promise<Status['allocations'][number]> =>
    eventually(
      async () => {
        const a = (await status(name)).allocations?.[0];
        return a?.status === 'running' && a.healthy === true ? a : undefined;
      },
      30_000,
      what,
      250,
    );
  // "running" is the process started, not yet listening: a refused connection means "not yet".
  const ask = (port: number) =>
    eventually(
      async () => (await (await fetch(`http://127.0.6.2:${port}/`)).json()) as { service: string | null; secretFiles?: Record<string, string | null> },
      10_000,
      `the demo app on :${port}`,
    );
  const stateFiles = (): string[] => {
    const dir = join(sim.dataDir, 'agent', 'processes');
    return readdirSync(dir)
      .filter((n) => n.endsWith('.json'))
      .map((n) => readFileSync(join(dir, n), 'utf8'));
  };

  t.equal((await api(url(), 'PUT', '/v1/secrets/db-file', { value: FILE_VALUE })).status, 200);
  t.equal((await api(url(), 'PUT', '/v1/secrets/db-env', { value: ENV_VALUE })).status, 200);

  let allocId = '';
  await t.test('file and env secrets reach the process; the values are nowhere else', async (t) => {
    t.equal((await api(url(), 'POST', '/v1/jobs', { spec: job('shop', 'shop') })).status, 200);
    const a = await running('shop', 'shop running');
    allocId = `${a.id}-demo`;
    const answer = await ask(a.ports[0]!);
    t.equal(answer.service, ENV_VALUE, 'the env secret');
    t.strictSame(answer.secretFiles, { WEFT_SECRET_DB_FILE: sha(FILE_VALUE) }, 'the process reads the file named by WEFT_SECRET_DB_FILE');
    const dir = join(sim.dataDir, 'agent', 'secrets', allocId);
    t.equal(statSync(dir).mode & 0o777, 0o700, 'the directory is 0700');
    t.equal(statSync(join(dir, 'db-file')).mode & 0o777, 0o600, 'the file is 0600');
    t.equal(readFileSync(join(dir, 'db-file'), 'utf8'), FILE_VALUE);

    const places = [
      ...stateFiles(),
      JSON.stringify(sim.logs),
      sched.output(),
      (await api(url(), 'GET', '/v1/jobs/shop/status')).text,
      (await api(url(), 'GET', '/v1/jobs/shop')).text,
      (await api(url(), 'GET', '/v1/secrets')).text,
      JSON.stringify(await consul.consul.kv.get({ key: 'weft/', recurse: true })),
    ];
    t.ok(stateFiles().length > 0, 'the process driver has a state file');
    for (const p of places) t.notOk(p.includes(FILE_VALUE) || p.includes(ENV_VALUE), 'no value in state files, agent log, scheduler log, API or KV');
  });

  await t.test('a restart after an agent restart gets the values again from the scheduler', async (t) => {
    await sim.crash();
    await sim.start(); // adopts the running process: its env is not in the state file
    const before = await running('shop', 'adopted');
    await fetch(`http://127.0.6.2:${before.ports[0]}/exit?code=3`).catch(() => undefined);
    const answer = await eventually(
      async () => {
        const r = await ask(before.ports[0]!).catch(() => undefined);
        const rs = (await consul.consul.kv.get(`weft/alloc-status/a1/${allocId}`)) as { Value: string } | undefined;
        return r !== undefined && rs !== undefined && (JSON.parse(rs.Value) as { restarts: number }).restarts >= 1 ? r : undefined;
      },
      20_000,
      'restarted by its policy',
      200,
    );
    t.equal(answer.service, ENV_VALUE, 'the env secret, re-fetched');
    t.strictSame(answer.secretFiles, { WEFT_SECRET_DB_FILE: sha(FILE_VALUE) }, 'the file, rewritten');
    for (const p of stateFiles()) t.notOk(p.includes(ENV_VALUE), 'still not in the state file');
  });

  await t.test('identities: signed by the scheduler for an allocated service; refused otherwise', async (t) => {
    const certPath = join(sim.dataDir, 'proxy', 'identities', 'shop', 'cert.pem');
    await eventually(async () => (existsSync(certPath) ? true : undefined), 20_000, 'the identity of shop');
    const cert = new X509Certificate(readFileSync(certPath));
    t.equal(spiffeIdOf(cert, { trustDomain: TD }).uri, `spiffe://${TD}/ns/default/svc/shop`, "the scheduler's CA signed it");
    t.ok(existsSync(join(sim.dataDir, 'proxy', 'identities', 'shop', 'key.pem')), 'the key was made on the host');
    t.notOk(existsSync(join(sim.dataDir, 'ca')), 'the host holds no CA');

    // A hand-started task labelled with a service the scheduler never allocated here.
    const id = await sim.agent.driver.create({
      name: 'rogue',
      command: process.execPath,
      args: [DEMO],
      env: { PORT: '0', HOST: '127.0.6.2' },
      labels: { 'weft.service': 'billing', 'weft.port': '1', 'io.weft.host': 'a1' },
    });
    await sim.agent.driver.start(id);
    const refused = await eventually(
      async () => sim.logs.find((l) => l['service'] === 'billing' && l['code'] === 'WEFT_ERR_CSR_IDENTITY'),
      20_000,
      'the refusal in the log',
    );
    t.match(String(refused['msg']), /billing/, `logged: ${String(refused['msg'])}`);
    t.notOk(existsSync(join(sim.dataDir, 'proxy', 'identities', 'billing', 'cert.pem')), 'no identity for billing');
    await sim.agent.driver.remove(id, { force: true });
    t.ok((await ask((await running('shop', 'shop still running')).ports[0]!)).service === ENV_VALUE, 'the agent and its allocation keep running');
    const local = JSON.parse(readFileSync(join(sim.dataDir, 'proxy', 'local.json'), 'utf8')) as { services: Array<{ service: string }> };
    t.ok(local.services.some((s) => s.service === 'shop'), 'local.json still lists shop');
  });

  await t.test('purge: the record stays gone; the same name again starts with fresh events', async (t) => {
    const dir = join(sim.dataDir, 'agent', 'secrets', allocId);
    t.equal((await api(url(), 'DELETE', '/v1/jobs/shop?purge=true')).body['purged'], true);
    await eventually(async () => ((await sim.agent.driver.list()).length === 0 ? true : undefined), 20_000, 'the process stopped');
    await eventually(async () => (existsSync(dir) ? undefined : true), 10_000, 'the secret files removed');
    await new Promise((r) => setTimeout(r, 2500)); // a couple of reconcile intervals (1 s in the harness)
    t.equal(await consul.consul.kv.get('weft/job-status/shop'), undefined, 'no status record came back');
    t.equal((await api(url(), 'GET', '/v1/jobs/shop/status')).status, 404);

    t.equal((await api(url(), 'POST', '/v1/jobs', { spec: job('shop', 'shop') })).status, 200);
    await running('shop', 'shop again');
    await new Promise((r) => setTimeout(r, 1500));
    const events = (await status('shop')).events;
    t.equal(events.filter((e) => e.type === 'submitted').length, 1, 'one submitted event');
    t.equal(events.filter((e) => e.type === 'placed').length, 1, 'one placement');
    t.notOk(
      events.some((e) => e.type === 'stopped-alloc'),
      `nothing from the purged incarnation: ${events.map((e) => e.type).join(', ')}`,
    );
    await api(url(), 'DELETE', '/v1/jobs/shop?purge=true');
    await eventually(async () => ((await sim.agent.driver.list()).length === 0 ? true : undefined), 20_000, 'stopped at the end');
  });
});
