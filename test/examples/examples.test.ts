/**
 * Every job file under examples/ deployed as a user would (`weft deploy FILE`,
 * the real binary, from the repository root) against a REAL `weft scheduler`
 * and two host agents: one with the process driver (127.0.23.2) and one with
 * Docker (127.0.23.3, the real dockerd test/helpers/docker.ts starts, weft's
 * demo image). Each must roll out healthy; then what each example is for:
 * hello answers, the Docker web containers answer on their host, backend's
 * two versions take a split and its v1 has the autoscaler's policy, and the
 * demo's frontend and loadgen run. A new file under examples/ must be added
 * here: the first test fails otherwise.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import t, { type Test } from 'tap';
import { startTestConsul } from '../helpers/dev-consul.js';
import { useDocker } from '../helpers/docker.js';
import { eventually } from '../helpers/eventually.js';
import { api, schedulerDataDir, startSchedulerChild, startSimAgent, TOKEN } from '../integration/scheduler-cluster.js';
import { weft } from '../cli/run-weft.js';

t.setTimeout(420_000);
const ROOT = join(import.meta.dirname, '../..');
const EXAMPLES = ['examples/hello.yaml', 'examples/web-docker.yaml', 'examples/demo/backend.yaml', 'examples/demo/frontend.yaml', 'examples/demo/loadgen.yaml'];

/** Every .yaml under examples/, relative to the root. */
function exampleFiles(dir = join(ROOT, 'examples')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? exampleFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [relative(ROOT, join(dir, e.name))] : [],
  );
}

t.test('every example is deployed by this test', async (t) => {
  t.strictSame(exampleFiles().sort(), [...EXAMPLES].sort());
});

const docker = await useDocker(t);
const consul = await startTestConsul(t);
const shared = await schedulerDataDir(t, consul);
const sched = await startSchedulerChild(t, shared);
const url = (): string => sched.url;
// The demo's apps read their outbound port from the host proxy's directory (host volume weft-proxy); no proxy runs here.
const proxyDir = mkdtempSync(join(tmpdir(), 'weft-examples-proxy-'));
t.teardown(() => rmSync(proxyDir, { recursive: true, force: true }));
const processHost = await startSimAgent(t, consul, 'ex-process', '127.0.23.2', url, { hostVolumes: { 'weft-proxy': proxyDir } });
const dockerHost = await startSimAgent(t, consul, 'ex-docker', '127.0.23.3', url, { driver: 'docker' });
const env = { WEFT_ADDR: sched.url, WEFT_TOKEN: TOKEN };

interface Status {
  allocations: Array<{ node: string; group: string; status: string; healthy?: boolean; ports: number[] }>;
}
const status = async (job: string): Promise<Status> => (await api(url(), 'GET', `/v1/jobs/${job}/status`)).body as unknown as Status;

/** `weft deploy FILE`: waits for the rollout; the job's name. */
async function deploy(t: Test, file: string, job: string): Promise<Status> {
  const r = await weft(['deploy', file, '--timeout', '150s', '--interval', '500ms'], { env, cwd: ROOT, timeoutMs: 200_000 });
  t.equal(r.code, 0, `${file}: ${r.stdout}${r.stderr}`);
  t.match(r.stdout, new RegExp(`\\n${job}: version 1 is healthy\\n$`), file);
  return status(job);
}

t.test('hello.yaml: two demo apps under the process driver', async (t) => {
  const s = await deploy(t, 'examples/hello.yaml', 'hello');
  t.strictSame(
    s.allocations.map((a) => [a.node, a.status, a.healthy]),
    [
      ['ex-process', 'running', true],
      ['ex-process', 'running', true],
    ],
  );
  const answer = (await (await fetch(`http://${processHost.address}:${s.allocations[0]!.ports[0]}/`)).json()) as { service: string };
  t.equal(answer.service, 'hello');
});

t.test('web-docker.yaml: containers of the demo image on the Docker host, answering on its address', async (t) => {
  t.ok(docker.image.startsWith('weft-demo:'), 'the demo image is built');
  const s = await deploy(t, 'examples/web-docker.yaml', 'web');
  t.strictSame(
    s.allocations.map((a) => [a.node, a.status, a.healthy]),
    [
      ['ex-docker', 'running', true],
      ['ex-docker', 'running', true],
    ],
    'the only host with docker',
  );
  const answer = await eventually(async () => (await (await fetch(`http://${dockerHost.address}:${s.allocations[0]!.ports[0]}/`)).json()) as { service: string }, 20_000, 'the container');
  t.equal(answer.service, 'web');
});

t.test('demo/backend.yaml: two versions of one service, a split between them, v1 autoscaled', async (t) => {
  const s = await deploy(t, 'examples/demo/backend.yaml', 'backend');
  t.strictSame(s.allocations.map((a) => a.group).sort(), ['v1', 'v2']);
  const split = await weft(['split', 'backend', 'v1=90', 'v2=10'], { env });
  t.equal(split.code, 0, split.stderr);
  t.match(split.stdout, /^backend:\nVERSION\s+WEIGHT\s+SHARE\nv1\s+90\s+90%\nv2\s+10\s+10%\n$/);
  const registered = (await consul.consul.health.service({ service: 'backend', passing: true })) as Array<{ Service: { Meta: Record<string, string> } }>;
  t.strictSame(registered.map((r) => r.Service.Meta['weft_version']).sort(), ['v1', 'v2'], 'each instance registered with its version');
  const auto = await weft(['autoscale', 'backend'], { env });
  t.equal(auto.code, 0, auto.stderr);
  t.match(auto.stdout, /\nv1: 1 \(min 1, max 4, every 2s[;)]/, "v1's policy as the example writes it");
});

t.test('demo/frontend.yaml and demo/loadgen.yaml: the demo apps start and pass their checks', async (t) => {
  const f = await deploy(t, 'examples/demo/frontend.yaml', 'frontend');
  t.equal(f.allocations.length, 2);
  const l = await deploy(t, 'examples/demo/loadgen.yaml', 'loadgen');
  const load = (await (await fetch(`http://${processHost.address}:${l.allocations[0]!.ports[0]}/status`)).json()) as { phase: string; stages: number; target: string };
  t.strictSame([load.target, load.stages], ['frontend', 4], 'its profile, as the job file sets it');
  t.equal(load.phase, 'waiting', 'without a proxy here it waits for a first answer through the mesh');
});

t.test('the examples stop cleanly', async (t) => {
  t.equal((await processHost.agent.driver.list()).length, 7, 'hello x2, backend x2, frontend x2, loadgen run as processes');
  t.equal((await dockerHost.agent.driver.list({ label: 'io.weft.host=ex-docker' })).length, 2, 'web x2 run as containers');
  for (const job of ['hello', 'web', 'backend', 'frontend', 'loadgen']) {
    const r = await api(url(), 'DELETE', `/v1/jobs/${job}?purge=true`);
    t.equal(r.status, 200, job);
  }
  await eventually(
    async () => (await processHost.agent.driver.list({ all: false })).length === 0 && (await dockerHost.agent.driver.list({ all: false, label: 'io.weft.host=ex-docker' })).length === 0,
    60_000,
    'every instance stopped',
    500,
  );
  t.pass('nothing of the examples runs');
});
