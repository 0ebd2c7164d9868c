/**
 * The scheduler with Docker on one host and sticky host volumes: a real
 * `weft scheduler`, three process-driver hosts and one Docker host (the test
 * dockerd, test/helpers/docker.ts), the dev Consul agent, the demo app as the
 * workload. Feasibility by driver and by host volume is asserted on what the
 * agents advertise (Meta weft_driver, weft_volumes), and the workloads prove
 * the mounts: each writes a marker file into its volume.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { useDocker } from '../helpers/docker.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { api, schedulerDataDir, startSchedulerChild, startSimAgent } from './scheduler-cluster.js';

const DEMO = new URL('../../scripts/demo-app.mjs', import.meta.url).pathname;
/** Writes a marker named after the allocation into the mounted volume, then runs the demo app. */
const MARK = (server: string): string => `require('fs').writeFileSync(process.env.WEFT_VOLUME_DATA + '/' + process.env.WEFT_ALLOC, process.env.WEFT_VOLUME_DATA); import(${JSON.stringify(server)})`;
const CHECK = { http: '/health', interval: '1s', timeout: '500ms', failures: 1 };

interface Status {
  version: number;
  allocations: Array<{ id: string; node: string; status: string; healthy?: boolean; ports: number[]; version: number }>;
  groups: Array<{ failure?: { message: string } }>;
  events: Array<{ type: string; message: string }>;
}

t.test('scheduler with a Docker host and host volumes', async (t) => {
  const docker = await useDocker(t);
  const consul = await startTestConsul(t);
  const shared = await schedulerDataDir(t, consul);
  const sched = await startSchedulerChild(t, shared);
  const url = (): string => sched.url;
  const dir = async (name: string): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), `weft-vol-${name}-`));
    t.teardown(() => rm(d, { recursive: true, force: true }));
    return d;
  };
  const vols = { p1: await dir('p1'), p2: await dir('p2'), d1: await dir('d1') };
  // 127.0.3.x: other test files run at the same time on other addresses.
  const hosts = [
    await startSimAgent(t, consul, 'p1', '127.0.3.2', url, { hostVolumes: { data: vols.p1 } }),
    await startSimAgent(t, consul, 'p2', '127.0.3.3', url, { hostVolumes: { data: vols.p2 } }),
    await startSimAgent(t, consul, 'p3', '127.0.3.4', url),
    await startSimAgent(t, consul, 'd1', '127.0.3.5', url, { driver: 'docker', hostVolumes: { data: vols.d1 } }),
  ];
  const addressOf = (node: string): string => hosts.find((h) => h.host === node)!.address;
  const status = async (job: string): Promise<Status> => (await api(url(), 'GET', `/v1/jobs/${job}/status`)).body as unknown as Status;
  const healthy = async (job: string, n: number, version?: number): Promise<Status> =>
    eventually(
      async () => {
        const s = await status(job);
        const ok = s.allocations.filter((a) => a.status === 'running' && a.healthy === true && (version === undefined || a.version === version));
        return s.allocations.length === n && ok.length === n ? s : undefined;
      },
      30_000,
      `${n} healthy allocations of ${job}`,
      250,
    );
  const submit = async (spec: unknown): Promise<Record<string, unknown>> => {
    const r = await api(url(), 'POST', '/v1/jobs', { spec });
    if (r.status !== 200) throw new Error(`submit: ${r.status} ${r.text}`);
    return r.body;
  };

  await t.test('nodes advertise their driver and host volumes', async (t) => {
    const nodes = await eventually(
      async () => {
        const n = (await api(url(), 'GET', '/v1/nodes')).body['nodes'] as Array<{ name: string; readiness: string; drivers: string[]; hostVolumes: string[] }>;
        return n.length === 4 && n.every((x) => x.readiness === 'ready') ? n : undefined;
      },
      15_000,
      'four ready nodes',
    );
    t.strictSame(
      nodes.map((n) => [n.name, n.drivers, n.hostVolumes]),
      [
        ['d1', ['docker'], ['data']],
        ['p1', ['process'], ['data']],
        ['p2', ['process'], ['data']],
        ['p3', ['process'], []],
      ],
    );
  });

  await t.test('a docker job lands only on the Docker host, runs and passes; its bind mount works', async (t) => {
    const spec = {
      name: 'dock',
      update: { minHealthyTime: '1s', healthDeadline: '20s' },
      groups: [
        {
          name: 'app',
          count: 2,
          volumes: { data: { type: 'host', source: 'data' } },
          tasks: [
            {
              name: 'dockdemo',
              driver: 'docker',
              image: docker.image,
              command: '/bin/node',
              args: ['-e', MARK('/app/server.mjs')],
              port: 0,
              env: { DRAIN_MS: '200' },
              // The helper's teardown removes containers by this label, whatever happens here.
              labels: { ...docker.testLabels },
              volumeMounts: [{ volume: 'data', destination: '/data' }],
              resources: { cpu: 100, memory: 64 },
              check: CHECK,
            },
          ],
        },
      ],
    };
    const plan = await api(url(), 'POST', '/v1/jobs/plan', { spec });
    t.strictSame((plan.body['place'] as Array<{ node: string }>).map((p) => p.node), ['d1', 'd1'], 'the dry run uses d1 only');
    await submit(spec);
    const s = await healthy('dock', 2);
    t.strictSame(s.allocations.map((a) => a.node), ['d1', 'd1']);
    await eventually(async () => (((await consul.consul.health.service({ service: 'dockdemo', passing: true })) as unknown[]).length === 2 ? true : undefined), 15_000, '2 passing');
    const a = s.allocations[0]!;
    const answer = (await (await fetch(`http://${addressOf(a.node)}:${a.ports[0]}/`)).json()) as { host: string; port: number };
    t.strictSame([answer.host, answer.port], ['127.0.3.5', a.ports[0]], 'the container answers on the Docker host address');
    const markers = await readdir(vols.d1);
    t.strictSame(markers.sort(), s.allocations.map((x) => `${x.id}-dockdemo`).sort(), 'each container wrote into the bind-mounted host directory');
    const containers = await docker.docker.listContainers({ filters: { label: ['io.weft.host=d1'] } });
    t.equal(containers.length, 2, 'two containers in dockerd');
  });

  await t.test('a process job never lands on the Docker host (it advertises only docker)', async (t) => {
    const spec = {
      name: 'proc',
      groups: [
        {
          name: 'app',
          count: 4,
          tasks: [{ name: 'procdemo', driver: 'process', command: process.execPath, args: [DEMO], port: 0, env: { DRAIN_MS: '200' }, resources: { cpu: 1500, memory: 64 }, check: CHECK }],
        },
      ],
    };
    await submit(spec);
    const s = await healthy('proc', 4);
    t.notOk(s.allocations.some((a) => a.node === 'd1'), `nodes: ${s.allocations.map((a) => a.node).join(', ')}`);
    // 1500 millicores each on 4000-millicore hosts: the fifth does not fit on p1-p3, and d1 is no option.
    const more = await api(url(), 'POST', '/v1/jobs/plan', { spec: { ...spec, groups: [{ ...spec.groups[0], count: 7 }] } });
    const failure = (more.body['failures'] as Array<{ missing: number; message: string }>)[0];
    t.equal(failure?.missing, 1, 'one of seven does not fit');
    t.match(failure?.message, /1 node lacked driver process/, `the reason names d1's driver (${failure?.message})`);
    await api(url(), 'DELETE', '/v1/jobs/proc?purge=true');
  });

  await t.test('a host-volume group: only hosts with the volume; sticky across updates and reconciles', async (t) => {
    const spec = (env: Record<string, string>, count = 1) => ({
      name: 'vol',
      update: { minHealthyTime: '1s', healthDeadline: '20s' },
      groups: [
        {
          name: 'db',
          count,
          volumes: { data: { type: 'host', source: 'data' } },
          tasks: [
            {
              name: 'voldemo',
              driver: 'process',
              command: process.execPath,
              args: ['-e', MARK(DEMO)],
              port: 0,
              env: { DRAIN_MS: '200', ...env },
              volumeMounts: [{ volume: 'data', destination: '/data' }],
              resources: { cpu: 100, memory: 64 },
              check: CHECK,
            },
          ],
        },
      ],
    });
    await submit(spec({ V: '1' }));
    const first = await healthy('vol', 1);
    const home = first.allocations[0]!.node;
    t.ok(['p1', 'p2'].includes(home), `placed on ${home}, a process host with volume data`);
    const homeDir = vols[home as 'p1' | 'p2'];
    const marker = join(homeDir, `${first.allocations[0]!.id}-voldemo`);
    // "healthy" is the check passing; the process writes its marker on its own time.
    t.ok(
      await eventually(() => existsSync(marker), 10_000, 'the volume marker').catch(() => false),
      'the process found the volume in WEFT_VOLUME_DATA',
    );

    for (const v of ['2', '3']) {
      const r = await submit(spec({ V: v }));
      t.equal(r['change'], 'update');
      const s = await healthy('vol', 1, r['version'] as number);
      t.equal(s.allocations[0]!.node, home, `version ${r['version']} replaced it on ${home} again`);
      t.not(s.allocations[0]!.id, first.allocations[0]!.id);
    }
    const settled = await status('vol');
    await new Promise((r) => setTimeout(r, 3000)); // three reconcile intervals
    t.strictSame((await status('vol')).allocations.map((a) => [a.id, a.node]), settled.allocations.map((a) => [a.id, a.node]), 'reconciles leave it alone');

    const scaled = await api(url(), 'POST', '/v1/jobs/vol/scale', { count: 3 });
    t.equal(scaled.status, 200);
    const s = await healthy('vol', 3);
    t.notOk(s.allocations.some((a) => a.node === 'p3' || a.node === 'd1'), `new slots only where the volume is: ${s.allocations.map((a) => a.node).join(', ')}`);
    t.ok(s.allocations.some((a) => a.id === settled.allocations[0]!.id), 'the first slot kept its allocation');

    const nowhere = await api(url(), 'POST', '/v1/jobs/plan', {
      spec: { ...spec({}), name: 'novol', groups: [{ ...spec({}).groups[0], volumes: { data: { type: 'host', source: 'archive' } } }] },
    });
    const failure = (nowhere.body['failures'] as Array<{ message: string }>)[0];
    t.match(failure?.message, /lacked host volume archive/, `no host has it: ${failure?.message}`);
  });

  await t.test('stop: every container and process goes', async (t) => {
    for (const job of ['dock', 'vol']) t.equal((await api(url(), 'DELETE', `/v1/jobs/${job}?purge=true`)).status, 200);
    await eventually(
      async () => {
        for (const h of hosts) if ((await h.agent.driver.list({ label: `io.weft.host=${h.host}` })).length > 0) return undefined;
        return true;
      },
      20_000,
      'nothing left running on any host',
    );
    t.pass('all stopped');
  });
});
