/**
 * The demo's job specs as `weft up` submits them: valid for the scheduler's
 * own validator under both drivers, scripts by absolute path for the process
 * driver (weft up may run from any directory), and under docker the same
 * scripts in weft's demo image with the repository mounted read-only; each
 * run gets a fresh loadgen spec so its profile runs again.
 */
import { join } from 'node:path';
import t from 'tap';
import { parseJobSpec } from '../../scheduler/index.js';
import { adaptJob, DEMO_IMAGE, DEMO_JOBS, demoSpecs, repoRoot, SOURCE_VOLUME } from '../../src/cli/up/demo.js';

const ROOT = join(import.meta.dirname, '../..');

interface Task {
  driver: string;
  image?: string;
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  volumeMounts?: Array<{ volume: string; destination: string; readOnly?: boolean }>;
  resources?: { memory?: number };
}
interface Job {
  name: string;
  groups: Array<{ name: string; volumes?: Record<string, unknown>; tasks: Task[] }>;
}

t.test('weft up finds the repository it runs from', async (t) => {
  t.equal(repoRoot(), ROOT);
});

for (const driver of ['process', 'docker'] as const) {
  t.test(`every demo job is valid for the scheduler under the ${driver} driver`, async (t) => {
    const specs = demoSpecs(ROOT, driver, 'run-1');
    t.strictSame(
      specs.map((s) => s.job),
      [...DEMO_JOBS],
    );
    for (const { job, spec } of specs) {
      const r = parseJobSpec(spec);
      t.ok(r.ok, `${job}: ${JSON.stringify((r as { errors?: unknown }).errors)}`);
    }
  });
}

t.test('process driver: the scripts by absolute path; nothing else changes', async (t) => {
  const jobs = demoSpecs(ROOT, 'process', 'run-7').map((s) => JSON.parse(s.spec) as Job);
  const frontend = jobs.find((j) => j.name === 'frontend')!.groups[0]!.tasks[0]!;
  t.strictSame([frontend.driver, frontend.command, frontend.args], ['process', 'node', [join(ROOT, 'examples/demo/frontend.mjs')]]);
  const backend = jobs.find((j) => j.name === 'backend')!;
  t.strictSame(
    backend.groups.map((g) => g.tasks[0]!.args),
    [[join(ROOT, 'scripts/demo-app.mjs')], [join(ROOT, 'scripts/demo-app.mjs')]],
  );
  t.equal(jobs.find((j) => j.name === 'loadgen')!.groups[0]!.tasks[0]!.env!['RUN'], 'run-7', 'a new loadgen spec each run: its profile starts again');
});

t.test("docker driver: weft's demo image runs the same scripts from the repository, mounted read-only", async (t) => {
  const job: Job = {
    name: 'frontend',
    groups: [
      {
        name: 'frontend',
        volumes: { proxy: { type: 'host', source: 'weft-proxy', readOnly: true } },
        tasks: [
          {
            driver: 'process',
            command: 'node',
            args: ['examples/demo/frontend.mjs', '--flag'],
            volumeMounts: [{ volume: 'proxy', destination: '/weft/proxy', readOnly: true }],
            resources: { memory: 64 },
          },
        ],
      },
    ],
  };
  const out = adaptJob(job, ROOT, 'docker', 'r');
  const task = out.groups[0]!.tasks[0]!;
  t.strictSame([task.driver, task.image, task.command, task.args], ['docker', DEMO_IMAGE, 'node', ['/weft/examples/demo/frontend.mjs', '--flag']]);
  t.strictSame(task.volumeMounts, [
    { volume: 'proxy', destination: '/weft/proxy', readOnly: true },
    { volume: 'source', destination: '/weft', readOnly: true },
  ]);
  t.strictSame(out.groups[0]!.volumes, { proxy: { type: 'host', source: 'weft-proxy', readOnly: true }, source: { type: 'host', source: SOURCE_VOLUME, readOnly: true } });
  t.equal(task.resources!.memory, 128, 'docker enforces memory: room for node');
  t.equal(job.groups[0]!.tasks[0]!.driver, 'process', 'the input is left as it was');
});
