/**
 * The scheduler end to end: two real `weft scheduler` processes (leader +
 * standby), three in-process host agents on 127.0.0.2-4 with the process
 * driver, the dev Consul agent, and the demo app as the workload.
 */
import t from 'tap';
import { fencedTxn } from '../../discovery/kv.js';
import { formatSpecError } from '../../scheduler/spec/errors.js';
import { parseJobSpec, validateJobSpec } from '../../scheduler/spec/validate.js';
import { createDiscoveryClient } from '../../discovery/client.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { api, schedulerDataDir, startSchedulerChild, startSimAgent } from './scheduler-cluster.js';

/** Bad specs only the scheduler can refuse: they are valid on their own. */
const NEEDS_CLUSTER_STATE = new Set(['unknown secret']);

const DEMO = new URL('../../scripts/demo-app.mjs', import.meta.url).pathname;
const SECRET = 'sekrit-value-7f3a9c';

function jobSpec(opts: { count: number; env?: Record<string, string>; autoRevert?: boolean }) {
  return {
    name: 'web',
    update: { minHealthyTime: '1s', healthDeadline: '6s', autoRevert: opts.autoRevert ?? true },
    groups: [
      {
        name: 'app',
        count: opts.count,
        tasks: [
          {
            name: 'demo',
            driver: 'process',
            command: process.execPath,
            args: [DEMO],
            port: 0,
            resources: { cpu: 100, memory: 64 },
            env: { DRAIN_MS: '200', ...(opts.env ?? {}) },
            check: { http: '/health', interval: '1s', timeout: '500ms', failures: 1 },
            secrets: [{ name: 'demo-secret', env: 'SERVICE' }],
          },
        ],
      },
    ],
  };
}

t.test('scheduler cluster', async (t) => {
  const consul = await startTestConsul(t);
  const shared = await schedulerDataDir(t, consul);
  const s1 = await startSchedulerChild(t, shared);
  const s2 = await startSchedulerChild(t, shared);
  const schedulers = [s1, s2];
  let live = [s1, s2];
  const anyUrl = (): string => live[0]!.url;
  const agents = [
    await startSimAgent(t, consul, 'h1', '127.0.0.2', anyUrl),
    await startSimAgent(t, consul, 'h2', '127.0.0.3', anyUrl),
    await startSimAgent(t, consul, 'h3', '127.0.0.4', anyUrl),
  ];
  const leader = async () =>
    eventually(
      async () => {
        for (const s of live) if ((await api(s.url, 'GET', '/v1/health', undefined, null)).body['leader'] === true) return s;
        return undefined;
      },
      20_000,
      'a leader',
    );
  const status = async () => (await api(anyUrl(), 'GET', '/v1/jobs/web/status')).body as { version: number; allocations: Array<{ id: string; node: string; status: string; healthy?: boolean; ports: number[] }>; events: Array<{ type: string; message: string }>; deployment?: { status: string } };
  const healthyOn = async (n: number) =>
    eventually(
      async () => {
        const s = await status();
        const ok = s.allocations.filter((a) => a.status === 'running' && a.healthy === true);
        return s.allocations.length === n && ok.length === n ? s : undefined;
      },
      30_000,
      `${n} healthy allocations`,
      250,
    );
  const passing = async () => ((await consul.consul.health.service({ service: 'demo', passing: true })) as unknown[]).length;

  await t.test('health is open; everything else wants the token', async (t) => {
    await leader();
    t.equal((await api(s1.url, 'GET', '/v1/health', undefined, null)).status, 200);
    for (const [m, p] of [['GET', '/v1/jobs'], ['POST', '/v1/jobs'], ['GET', '/v1/nodes'], ['GET', '/v1/secrets'], ['GET', '/metrics']] as const) {
      const r = await api(s1.url, m, p, m === 'POST' ? { spec: {} } : undefined, null);
      t.equal(r.status, 401, `${m} ${p}`);
      t.equal(r.body['code'], 'WEFT_ERR_API_UNAUTHORIZED');
    }
    t.equal((await api(s1.url, 'GET', '/v1/jobs', undefined, 'wrong-token')).status, 401, 'a wrong token');
    t.equal((await api(s1.url, 'GET', '/v1/nodes/h1/../../jobs', undefined, 'weft-host.h1.bogus')).status, 401, 'a forged agent token');
  });

  await t.test('bad specs: 400 with the path, nothing stored', async (t) => {
    await api(anyUrl(), 'PUT', '/v1/secrets/demo-secret', { value: SECRET });
    const good = jobSpec({ count: 1 });
    const task = good.groups[0]!.tasks[0]!;
    const bad: Array<[string, unknown, string]> = [
      ['not a mapping', '- a\n- b\n', ''],
      ['YAML syntax', 'name: web\ngroups: [\n', ''],
      ['no name', { groups: good.groups }, 'name'],
      ['bad name', { ...good, name: 'Web_1' }, 'name'],
      ['no groups', { name: 'web' }, 'groups'],
      ['empty groups', { name: 'web', groups: [] }, 'groups'],
      ['unknown top key', { ...good, grups: [] }, 'grups'],
      ['negative count', { ...good, groups: [{ ...good.groups[0], count: -1 }] }, 'groups[0].count'],
      ['no tasks', { ...good, groups: [{ name: 'app', tasks: [] }] }, 'groups[0].tasks'],
      ['bad driver', { ...good, groups: [{ name: 'app', tasks: [{ ...task, driver: 'lxc' }] }] }, 'groups[0].tasks[0].driver'],
      ['process without command', { ...good, groups: [{ name: 'app', tasks: [{ name: 'demo', driver: 'process' }] }] }, 'groups[0].tasks[0]'],
      ['docker without image', { ...good, groups: [{ name: 'app', tasks: [{ name: 'demo', driver: 'docker' }] }] }, 'groups[0].tasks[0]'],
      ['memory too small', { ...good, groups: [{ name: 'app', tasks: [{ ...task, resources: { memory: 1 } }] }] }, 'groups[0].tasks[0].resources.memory'],
      ['cpu not a number', { ...good, groups: [{ name: 'app', tasks: [{ ...task, resources: { cpu: 'lots' } }] }] }, 'groups[0].tasks[0].resources.cpu'],
      ['port too big', { ...good, groups: [{ name: 'app', tasks: [{ ...task, port: 70000 }] }] }, 'groups[0].tasks[0].port'],
      ['bad env name', { ...good, groups: [{ name: 'app', tasks: [{ ...task, env: { '1X': 'a' } }] }] }, 'groups[0].tasks[0].env'],
      ['bad duration', { ...good, update: { minHealthyTime: 'soon' } }, 'update.minHealthyTime'],
      ['bad update order', { ...good, update: { order: 'sideways' } }, 'update.order'],
      ['duplicate task names', { ...good, groups: [{ name: 'app', tasks: [task, task] }] }, 'groups[0].tasks[1].name'],
      ['unknown secret', { ...good, groups: [{ name: 'app', tasks: [{ ...task, secrets: [{ name: 'nope' }] }] }] }, 'groups[0].tasks[0].secrets[0].name'],
      ['bad label', { ...good, groups: [{ name: 'app', tasks: [{ ...task, labels: { 'weft.weight': 'heavy' } }] }] }, 'groups[0].tasks[0].labels'],
      ['unknown weft label', { ...good, groups: [{ name: 'app', tasks: [{ ...task, labels: { 'weft.servce': 'x' } }] }] }, 'groups[0].tasks[0].labels'],
      ['bad constraint operator', { ...good, constraints: [{ attribute: 'zone', operator: '~' }] }, 'constraints[0].operator'],
    ];
    for (const [what, spec, path] of bad) {
      const r = await api(anyUrl(), 'POST', '/v1/jobs', typeof spec === 'string' ? spec : { spec });
      t.equal(r.status, 400, `${what}: 400`);
      t.equal(r.body['code'], 'WEFT_ERR_JOB_INVALID', `${what}: code`);
      if (path !== '') t.match(String(r.body['key']), path, `${what}: names ${path} (${r.body['message']})`);
      // The API says what `weft plan` and the library say: one validator, one text. Only
      // what needs the cluster's state (which secrets exist) is the API's alone.
      const local = typeof spec === 'string' ? parseJobSpec(spec) : validateJobSpec(spec);
      if (NEEDS_CLUSTER_STATE.has(what)) t.ok(local.ok, `${what}: the library cannot know, the API does`);
      else if (!local.ok) t.match(String(r.body['message']), formatSpecError(local.errors[0]!), `${what}: the library's first error`);
      else t.fail(`${what}: the library accepts what the API refused`);
    }
    const extra = await api(anyUrl(), 'POST', '/v1/jobs', { spec: good, extra: 1 });
    t.equal(extra.body['code'], 'WEFT_ERR_API_REQUEST_INVALID', 'an unknown body field');
    t.strictSame((await api(anyUrl(), 'GET', '/v1/jobs')).body['jobs'], [], 'nothing stored');
    t.equal((await consul.consul.kv.get({ key: 'weft/jobs/', recurse: true })) ?? undefined, undefined, 'no KV key');
  });

  await t.test('deploy: running and passing on three hosts; the secret reaches the process only', async (t) => {
    const plan = await api(anyUrl(), 'POST', '/v1/jobs/plan', { spec: jobSpec({ count: 3 }) });
    t.equal(plan.status, 200);
    t.equal((plan.body['place'] as unknown[]).length, 3, 'the dry run places 3');
    t.strictSame((await api(anyUrl(), 'GET', '/v1/jobs')).body['jobs'], [], 'a plan stores nothing');
    const r = await api(anyUrl(), 'POST', '/v1/jobs', { spec: jobSpec({ count: 3 }) });
    t.equal(r.status, 200, JSON.stringify(r.body));
    t.equal(r.body['change'], 'create');
    const s = await healthyOn(3);
    await eventually(async () => ((await passing()) === 3 ? true : undefined), 15_000, '3 passing in Consul');
    const a = s.allocations[0]!;
    const host = agents.find((x) => x.host === a.node)!.address;
    const answer = (await (await fetch(`http://${host}:${a.ports[0]}/`)).json()) as { service: string };
    t.equal(answer.service, SECRET, 'the process got the secret in its environment');
    const outputs = [
      (await api(anyUrl(), 'GET', '/v1/jobs/web/status')).text,
      (await api(anyUrl(), 'GET', '/v1/jobs/web')).text,
      (await api(anyUrl(), 'GET', '/v1/secrets')).text,
      (await api(anyUrl(), 'GET', '/v1/jobs')).text,
      JSON.stringify(await consul.consul.kv.get({ key: 'weft/', recurse: true })),
      ...schedulers.map((x) => x.output()),
    ];
    for (const o of outputs) t.notOk(o.includes(SECRET), 'the value is in no API answer, KV value or scheduler log');
    const nodes = (await api(anyUrl(), 'GET', '/v1/nodes')).body['nodes'] as Array<{ name: string; readiness: string }>;
    t.strictSame(nodes.map((n) => [n.name, n.readiness]), [['h1', 'ready'], ['h2', 'ready'], ['h3', 'ready']]);
    const metrics = await api(anyUrl(), 'GET', '/metrics');
    t.match(metrics.text, /weft_scheduler_leader/);
  });

  await t.test('scale up and down', async (t) => {
    const up = await api(anyUrl(), 'POST', '/v1/jobs/web/scale', { count: 5 });
    t.equal(up.body['previous'], 3);
    await healthyOn(5);
    await api(anyUrl(), 'POST', '/v1/jobs/web/scale', { count: 2 });
    await healthyOn(2);
    await eventually(async () => ((await passing()) === 2 ? true : undefined), 15_000, '2 passing in Consul');
    const m = await api((await leader()).url, 'GET', '/metrics');
    t.match(m.text, /weft_scheduler_replicas\{job="web",group="app",state="desired"\} 2/);
  });

  await t.test('a host agent dies: replaced within 60 s, no duplicates when it returns', async (t) => {
    const s = await status();
    const victim = agents.find((a) => s.allocations.some((x) => x.node === a.host))!;
    await victim.crash();
    const started = Date.now();
    await eventually(
      async () => {
        const now = await status();
        const elsewhere = now.allocations.filter((a) => a.node !== victim.host && a.status === 'running' && a.healthy === true);
        return elsewhere.length === 2 && now.allocations.length === 2 ? true : undefined;
      },
      60_000,
      'replacements',
      250,
    );
    t.ok(Date.now() - started < 60_000, `replaced in ${Date.now() - started} ms`);
    await victim.start();
    await eventually(async () => ((await passing()) === 2 ? true : undefined), 20_000, 'the returning host stops its stale instance');
    await new Promise((r) => setTimeout(r, 1500));
    t.equal(await passing(), 2, 'still exactly 2');
    t.equal((await status()).allocations.length, 2);
  });

  await t.test('leader failover; a deposed session cannot write', async (t) => {
    const old = await leader();
    await old.kill('SIGKILL');
    live = live.filter((x) => x !== old);
    const killedAt = Date.now();
    const next = await leader();
    t.not(next, old);
    t.ok(Date.now() - killedAt < 15_000, `took over in ${Date.now() - killedAt} ms`);
    await api(next.url, 'POST', '/v1/jobs/web/scale', { count: 3 });
    await healthyOn(3);

    const client = createDiscoveryClient({ consul: { address: consul.address } });
    t.teardown(() => client.close());
    const session = (await consul.consul.session.create({ ttl: '10s' })) as { ID: string };
    await t.rejects(fencedTxn(client, { key: 'weft/leader', session: session.ID }, [{ verb: 'set', key: 'weft/allocs/h1/evil', value: {} }]), { code: 'WEFT_ERR_LOCK_LOST' });
    t.equal(await consul.consul.kv.get('weft/allocs/h1/evil'), undefined, 'nothing written');
  });

  await t.test('a rolling update to a failing version reverts on its own', async (t) => {
    const before = await status();
    const r = await api(anyUrl(), 'POST', '/v1/jobs', { spec: jobSpec({ count: 3, env: { HEALTHY: '0' } }) });
    t.equal(r.body['change'], 'update');
    const v2 = r.body['version'] as number;
    t.equal(v2, before.version + 1);
    const reverted = await eventually(
      async () => {
        const s = await status();
        return s.version > v2 && s.events.some((e) => e.type === 'reverted') ? s : undefined;
      },
      45_000,
      'auto-revert',
      500,
    );
    t.ok(reverted.events.some((e) => e.type === 'deployment' && /failed/.test(e.message)), 'the failed deployment is an event');
    const job = (await api(anyUrl(), 'GET', '/v1/jobs/web')).body as { spec: { groups: Array<{ tasks: Array<{ env: Record<string, string> }> }> } };
    t.equal(job.spec.groups[0]!.tasks[0]!.env['HEALTHY'], undefined, 'the stable spec is back');
    await healthyOn(3);
  });

  await t.test('stop and purge: every instance stops', async (t) => {
    await eventually(async () => ((await passing()) === 3 ? true : undefined), 15_000, '3 passing before the stop');
    const r = await api(anyUrl(), 'DELETE', '/v1/jobs/web?purge=true');
    t.equal(r.body['purged'], true);
    await eventually(async () => ((await passing()) === 0 ? true : undefined), 20_000, 'no instance left');
    t.equal((await api(anyUrl(), 'GET', '/v1/jobs/web')).status, 404);
    await eventually(
      async () => {
        for (const a of agents) if ((await a.agent.driver.list()).length > 0) return undefined;
        return true;
      },
      20_000,
      'no process left on any host',
    );
  });
});
