import t from 'tap';
import { formatSpecError, joinPath } from '../../../scheduler/spec/errors.js';
import { type AutoscaleSpec, GroupSchema, type JobSpec, JobSpecSchema, TaskSchema } from '../../../scheduler/spec/schema.js';
import { assertJobSpec, parseJobSpec, validateJobSpec } from '../../../scheduler/spec/validate.js';

/** A valid spec using most features; every bad case below breaks one thing. */
function good(): JobSpec {
  return {
    name: 'shop',
    constraints: [{ attribute: 'zone', operator: '!=', value: 'c' }],
    update: { parallelism: 2, order: 'start-first', minHealthyTime: '5s', healthDeadline: '1m', autoRevert: true },
    groups: [
      {
        name: 'web',
        count: 3,
        volumes: { data: { type: 'host', source: 'shop-data' } },
        spread: [{ attribute: 'zone', targets: [{ value: 'a', percent: 50 }, { value: 'b', percent: 50 }] }],
        affinities: [{ attribute: 'rack', value: 'r1', weight: 30 }],
        tasks: [
          {
            name: 'app',
            driver: 'docker',
            image: 'shop:1.2',
            port: 8080,
            resources: { cpu: 500, memory: 256 },
            env: { MODE: 'prod' },
            labels: { 'weft.version': '1.2' },
            check: { http: '/healthz', interval: '5s', timeout: '1s' },
            upstreams: ['db', 'cache:16379'],
            volumeMounts: [{ volume: 'data', destination: '/data' }],
            secrets: [{ name: 'DB_PASSWORD' }, { name: 'tls.key', file: '/secrets/tls.key' }],
          },
          { name: 'sidecar', driver: 'process', command: '/usr/bin/sidecar', port: 0 },
        ],
      },
    ],
  };
}

/** A valid autoscale policy for group web (count 3), with `over` on top. */
const policy = (over: Partial<AutoscaleSpec> = {}): AutoscaleSpec => ({ min: 1, max: 10, metrics: [{ rps: 100 }], ...over });

type Mutate = (j: JobSpec) => unknown;
const g = (j: JobSpec) => j.groups[0]!;
const task = (j: JobSpec, i = 0) => g(j).tasks[i]!;

const bad: Array<[string, Mutate, string]> = [
  ['memory below the minimum', (j) => { task(j, 0).resources = { memory: 2 }; }, 'groups[0].tasks[0].resources.memory: must be >= 4'],
  ['second task memory below the minimum', (j) => { task(j, 1).resources = { memory: 1 }; }, 'groups[0].tasks[1].resources.memory: must be >= 4'],
  ['missing name', (j) => void delete (j as Partial<JobSpec>).name, 'name: is required'],
  ['name with capitals', (j) => { j.name = 'Shop'; }, 'name: must match'],
  ['no groups', (j) => { j.groups = []; }, 'groups: must NOT have fewer than 1 items'],
  ['unknown driver', (j) => { (task(j) as { driver: string }).driver = 'rkt'; }, 'groups[0].tasks[0].driver: must be one of docker, process (got "rkt")'],
  ['typo in a key', (j) => { (task(j) as Record<string, unknown>).imgae = 'x'; }, 'groups[0].tasks[0].imgae: unknown key (did you mean image?)'],
  ['count as a string', (j) => { (g(j) as { count: unknown }).count = 'three'; }, 'groups[0].count: must be integer (got "three")'],
  ['negative count', (j) => { g(j).count = -1; }, 'groups[0].count: must be >= 0'],
  ['docker task without image', (j) => void delete task(j).image, 'groups[0].tasks[0].image: is required for driver docker'],
  ['process task without command', (j) => void delete task(j, 1).command, 'groups[0].tasks[1].command: is required for driver process'],
  ['duplicate task names', (j) => { task(j, 1).name = 'app'; }, 'groups[0].tasks[1].name: duplicate task name "app" (also tasks[0])'],
  ['duplicate group names', (j) => void j.groups.push({ ...structuredClone(g(j)) }), 'groups[1].name: duplicate group name "web" (also groups[0])'],
  ['same static port twice', (j) => { task(j, 1).port = 8080; }, "groups[0].tasks[1].port: 8080 is also task app's port"],
  ['port out of range', (j) => { task(j).port = 70000; }, 'groups[0].tasks[0].port: must be <= 65535'],
  ['mount of an undeclared volume', (j) => { task(j).volumeMounts = [{ volume: 'logs', destination: '/logs' }]; }, 'groups[0].tasks[0].volumeMounts[0].volume: no volume "logs"'],
  ['relative mount destination', (j) => { task(j).volumeMounts = [{ volume: 'data', destination: 'data' }]; }, 'groups[0].tasks[0].volumeMounts[0].destination: must match ^/'],
  ['constraint regexp that does not compile', (j) => { j.constraints = [{ attribute: 'zone', operator: 'regexp', value: '([a-' }]; }, 'constraints[0].value: not a valid regular expression'],
  ['constraint version range that does not parse', (j) => { j.constraints = [{ attribute: 'kernel.version', operator: 'version', value: '>=> 5' }]; }, 'constraints[0].value: not a valid version range'],
  ['constraint without a value', (j) => { j.constraints = [{ attribute: 'zone' }]; }, 'constraints[0].value: is required for operator ='],
  ['unknown operator', (j) => { j.constraints = [{ attribute: 'zone', operator: '~=' as '=', value: 'a' }]; }, 'constraints[0].operator: must be one of =, !=, regexp, version, is_set, is_not_set'],
  ['affinity weight 0', (j) => { g(j).affinities = [{ attribute: 'rack', value: 'r1', weight: 0 }]; }, 'groups[0].affinities[0].weight: must not be 0'],
  ['spread targets over 100%', (j) => { g(j).spread = [{ attribute: 'zone', targets: [{ value: 'a', percent: 70 }, { value: 'b', percent: 40 }] }]; }, 'groups[0].spread[0].targets: percents must add up to at most 100 (got 110)'],
  ['bad duration', (j) => { j.update!.delay = '5 seconds'; }, 'update.delay: must match'],
  ['min healthy time beyond the deadline', (j) => { j.update!.minHealthyTime = '2m'; }, 'update.minHealthyTime: must be less than update.healthDeadline'],
  ['bad order', (j) => { (j.update as { order: string }).order = 'blue-green'; }, 'update.order: must be one of stop-first, start-first'],
  ['parallelism 0', (j) => { j.update!.parallelism = 0; }, 'update.parallelism: must be >= 1'],
  ['env name with a dash', (j) => { task(j).env = { 'MY-VAR': 'x' }; }, 'groups[0].tasks[0].env["MY-VAR"]: key must match'],
  ['bad weft label value', (j) => { task(j).labels = { 'weft.weight': 'heavy' }; }, 'groups[0].tasks[0].labels["weft.weight"]:'],
  ['unknown weft label', (j) => { task(j).labels = { 'weft.servce': 'x' }; }, 'groups[0].tasks[0].labels["weft.servce"]:'],
  ['check block and check label together', (j) => { task(j).labels = { 'weft.check.http': '/x' }; }, 'groups[0].tasks[0].check.http: also set by label weft.check.http'],
  ['check timeout above interval', (j) => { task(j).check = { http: '/h', interval: '1s', timeout: '5s' }; }, 'groups[0].tasks[0].check.timeout: must be at most check.interval'],
  ['secret env clashes with env', (j) => { task(j).secrets = [{ name: 'MODE' }]; }, 'groups[0].tasks[0].secrets[0].env: MODE is also set by env.MODE'],
  ['secret name that is no variable name', (j) => { task(j).secrets = [{ name: 'db.password' }]; }, 'groups[0].tasks[0].secrets[0].env: is required'],
  ['autoscale min above max', (j) => { g(j).autoscale = policy({ min: 5, max: 2 }); }, 'groups[0].autoscale.min: must be <= autoscale.max (2) (got 5)'],
  ['count outside autoscale bounds', (j) => { g(j).autoscale = policy({ min: 5, max: 10 }); }, 'groups[0].count: must be within autoscale.min..max (5..10) (got 3)'],
  ['autoscale without metrics', (j) => { g(j).autoscale = policy({ metrics: [] }); }, 'groups[0].autoscale.metrics: must NOT have fewer than 1 items'],
  ['autoscale unknown metric', (j) => { g(j).autoscale = policy({ metrics: [{ cpu: 80 } as never] }); }, 'groups[0].autoscale.metrics[0]: must be one of rps, inflight, latency, errors, promql, target (got "cpu")'],
  ['autoscale zero target', (j) => { g(j).autoscale = policy({ metrics: [{ rps: 0 }] }); }, 'groups[0].autoscale.metrics[0].rps: must be > 0'],
  ['autoscale negative target', (j) => { g(j).autoscale = policy({ metrics: [{ inflight: -2 }] }); }, 'groups[0].autoscale.metrics[0].inflight: must be > 0'],
  ['autoscale two metrics in one entry', (j) => { g(j).autoscale = policy({ metrics: [{ rps: 100, inflight: 5 }] }); }, 'groups[0].autoscale.metrics[0]: names rps and inflight: one metric per entry'],
  ['autoscale entry naming no metric', (j) => { g(j).autoscale = policy({ metrics: [{ target: 5 }] }); }, 'groups[0].autoscale.metrics[0]: names no metric'],
  ['autoscale promql without target', (j) => { g(j).autoscale = policy({ metrics: [{ promql: 'sum(up)' }] }); }, 'groups[0].autoscale.metrics[0].target: is required with promql'],
  ['autoscale promql that does not parse', (j) => { g(j).autoscale = policy({ metrics: [{ promql: 'sum(rate(orders_total[1m])', target: 5 }] }); }, 'groups[0].autoscale.metrics[0].promql: not a PromQL expression: column 27: ends too early'],
  ['autoscale target on a non-promql metric', (j) => { g(j).autoscale = policy({ metrics: [{ rps: 100, target: 5 }] }); }, 'groups[0].autoscale.metrics[0].target: is only for promql'],
  ['autoscale latency quantile not offered', (j) => { g(j).autoscale = policy({ metrics: [{ latency: { quantile: 0.5 as 0.99, max: '250ms' } }] }); }, 'groups[0].autoscale.metrics[0].latency.quantile: must be one of 0.95, 0.99 (got 0.5)'],
  ['autoscale latency ceiling of zero', (j) => { g(j).autoscale = policy({ metrics: [{ latency: { max: '0s' } }] }); }, 'groups[0].autoscale.metrics[0].latency.max: must be at least 1ms'],
  ['autoscale error ratio above 1', (j) => { g(j).autoscale = policy({ metrics: [{ errors: { max: 1.5 } }] }); }, 'groups[0].autoscale.metrics[0].errors.max: must be <= 1'],
  ['autoscale metric on a group without a service', (j) => {
    g(j).autoscale = policy({ min: 0 });
    for (const t of g(j).tasks) for (const k of ['port', 'check', 'labels', 'upstreams'] as const) delete t[k];
  }, 'groups[0].autoscale.metrics[0].rps: needs a service to measure'],
  ['autoscale service the group lacks', (j) => { g(j).autoscale = policy({ service: 'api' }); }, 'groups[0].autoscale.service: the group registers no service "api" (its services: app, sidecar)'],
  ['autoscale tolerance of 1', (j) => { g(j).autoscale = policy({ tolerance: 1 }); }, 'groups[0].autoscale.tolerance: must be < 1'],
  ['autoscale negative tolerance', (j) => { g(j).autoscale = policy({ tolerance: -0.1 }); }, 'groups[0].autoscale.tolerance: must be >= 0'],
  ['autoscale zero interval', (j) => { g(j).autoscale = policy({ interval: '0s' }); }, 'groups[0].autoscale.interval: must be at least 100ms (got "0s")'],
  ['autoscale idleToZero with min above 0', (j) => { g(j).autoscale = policy({ min: 1, idleToZero: '5m' }); }, 'groups[0].autoscale.idleToZero: needs autoscale.min 0 (got min 1)'],
  ['autoscale maxStep malformed', (j) => { g(j).autoscale = policy({ scaleUp: { maxStep: 'three' } }); }, 'groups[0].autoscale.scaleUp.maxStep: not a step: write +3 (instances) or +50%'],
  ['autoscale scale-up maxStep that removes', (j) => { g(j).autoscale = policy({ scaleUp: { maxStep: '-3' } }); }, 'groups[0].autoscale.scaleUp.maxStep: scaleUp adds instances: write +3'],
  ['autoscale scale-down maxStep beyond 100%', (j) => { g(j).autoscale = policy({ scaleDown: { maxStep: '-150%' } }); }, 'groups[0].autoscale.scaleDown.maxStep: must be at most -100%'],
  ['autoscale period without maxStep', (j) => { g(j).autoscale = policy({ scaleDown: { period: '30s' } }); }, 'groups[0].autoscale.scaleDown.period: is the period of maxStep: set maxStep too'],
  ['autoscale stabilization window over an hour', (j) => { g(j).autoscale = policy({ scaleDown: { stabilizationWindow: '2h' } }); }, 'groups[0].autoscale.scaleDown.stabilizationWindow: must be at most 1h'],
  ['autoscale cooldown no duration', (j) => { g(j).autoscale = policy({ scaleUp: { cooldown: 'a while' } }); }, 'groups[0].autoscale.scaleUp.cooldown: must match'],
  ['autoscale unknown behavior key', (j) => { g(j).autoscale = policy({ scaleUp: { window: '1m' } as never }); }, 'groups[0].autoscale.scaleUp.window: unknown key'],
  ['autoscale onError unknown', (j) => { g(j).autoscale = policy({ onError: 'panic' as 'hold' }); }, 'groups[0].autoscale.onError: must be one of hold, min, fail (got "panic")'],
  ['autoscale dryRun not a boolean', (j) => { g(j).autoscale = policy({ dryRun: 'yes' as never }); }, 'groups[0].autoscale.dryRun: must be boolean'],
  ['autoscale placeholder metric/target form', (j) => { g(j).autoscale = { min: 1, max: 5, metric: 'rps', target: 100 } as never; }, 'groups[0].autoscale.metric: unknown key (did you mean metrics?)'],
  ['docker volume on a process task', (j) => {
    g(j).volumes = { cache: { type: 'docker', source: 'cache' } };
    task(j, 1).volumeMounts = [{ volume: 'cache', destination: '/cache' }];
  }, 'groups[0].tasks[1].volumeMounts[0].volume: docker volumes need driver docker'],
  ['image on a process task', (j) => { task(j, 1).image = 'x'; }, 'groups[0].tasks[1].image: is only for driver docker'],
  ['unknown top-level key', (j) => { (j as Record<string, unknown>).group = []; }, 'group: unknown key (did you mean groups?)'],
  ['priority above the maximum', (j) => { j.priority = 101; }, 'priority: must be <= 100'],
  ['meta value that is no string', (j) => { (j as { meta: unknown }).meta = { team: 7 }; }, 'meta.team: must be string (got 7)'],
  ['job affinity weight 0', (j) => { j.affinities = [{ attribute: 'rack', value: 'r1', weight: 0 }]; }, 'affinities[0].weight: must not be 0'],
  ['job spread over 100 percent', (j) => { j.spread = [{ attribute: 'zone', targets: [{ value: 'a', percent: 80 }, { value: 'b', percent: 30 }] }]; }, 'spread[0].targets: percents must add up to at most 100 (got 110)'],
  ['job restart mode unknown', (j) => { (j as { restart: unknown }).restart = { mode: 'forever' }; }, 'restart.mode: must be one of fail, delay'],
  ['job reschedule delay function unknown', (j) => { (j as { reschedule: unknown }).reschedule = { delayFunction: 'random' }; }, 'reschedule.delayFunction: must be one of constant, exponential'],
  ['volume of an unknown type', (j) => { (g(j) as { volumes: unknown }).volumes = { data: { type: 'nfs', source: 'x' } }; }, 'groups[0].volumes.data.type: must be one of host, docker (got "nfs")'],
  ['group constraint with a bad operator', (j) => { g(j).constraints = [{ attribute: 'zone', operator: '~' as never }]; }, 'groups[0].constraints[0].operator: must be one of'],
  ['group update parallelism 0', (j) => { g(j).update = { parallelism: 0 }; }, 'groups[0].update.parallelism: must be >= 1'],
  ['group restart attempts negative', (j) => { g(j).restart = { attempts: -1 }; }, 'groups[0].restart.attempts: must be >= 0'],
  ['group reschedule interval no duration', (j) => { (g(j) as { reschedule: unknown }).reschedule = { interval: 'often' }; }, 'groups[0].reschedule.interval: must match'],
  ['args that are no strings', (j) => { (task(j, 1) as { args: unknown }).args = ['--port', 8080]; }, 'groups[0].tasks[1].args[1]: must be string'],
  ['upstream with a bad local port', (j) => { task(j).upstreams = ['db:99999']; }, 'groups[0].tasks[0].upstreams: the local port must be an integer 1-65535'],
  ['file at a relative path', (j) => { task(j).files = [{ destination: 'etc/app.conf', content: 'x' }]; }, 'groups[0].tasks[0].files[0].destination: must match ^/'],
];

t.test('a good spec passes, untouched', async (t) => {
  const job = good();
  const before = structuredClone(job);
  const result = validateJobSpec(job);
  t.ok(result.ok, JSON.stringify(result));
  t.strictSame(job, before, 'validation does not write defaults into the spec');
});

t.test('the bad specs break every field of a job, a group and a task', async (t) => {
  const paths = bad.map(([, , expected]) => expected.slice(0, expected.indexOf(':')));
  const levels: Array<[string, { properties: Record<string, unknown> }, RegExp]> = [
    ['job', JobSpecSchema, /^([A-Za-z]+)/],
    ['group', GroupSchema, /^groups\[\d+\]\.([A-Za-z]+)/],
    ['task', TaskSchema, /^groups\[\d+\]\.tasks\[\d+\]\.([A-Za-z]+)/],
  ];
  for (const [level, schema, re] of levels) {
    const broken = new Set(paths.map((p) => re.exec(p)?.[1]).filter((k) => k !== undefined));
    const untested = Object.keys(schema.properties).filter((k) => !broken.has(k));
    t.strictSame(untested, [], `every ${level} field has a bad case`);
  }
});

t.test(`${bad.length} bad specs name their paths`, async (t) => {
  for (const [name, mutate, expected] of bad) {
    const job = good();
    mutate(job);
    const result = validateJobSpec(job);
    if (result.ok) {
      t.fail(`${name}: accepted`);
      continue;
    }
    const lines = result.errors.map(formatSpecError);
    t.ok(
      lines.some((l) => l.startsWith(expected)),
      `${name}: ${expected}`,
      { found: lines },
    );
  }
});

t.test('all errors come back at once', async (t) => {
  const job = good();
  task(job, 0).resources = { memory: 2 };
  (task(job, 1) as { driver: string }).driver = 'rkt';
  const result = validateJobSpec(job);
  t.equal(result.ok, false);
  if (!result.ok) t.equal(result.errors.length, 2);
});

t.test('YAML and JSON go through one schema', async (t) => {
  const yaml = `
name: api
groups:
  - name: api
    count: 2
    tasks:
      - name: api
        driver: process
        command: /usr/bin/node
        args: [server.js]
        port: 0
        resources: { cpu: 250, memory: 128 }
`;
  const fromYaml = parseJobSpec(yaml);
  t.ok(fromYaml.ok);
  const fromJson = parseJobSpec(JSON.stringify(fromYaml.ok ? fromYaml.job : {}));
  t.strictSame(fromJson, fromYaml);
  const badYaml = parseJobSpec(yaml.replace('memory: 128', 'memory: 2'));
  t.strictSame(badYaml.ok ? [] : badYaml.errors.map(formatSpecError), ['groups[0].tasks[0].resources.memory: must be >= 4']);
});

t.test('syntax errors and non-mappings', async (t) => {
  const cases: Array<[string, string]> = [
    ['name: a\n  bad: [', 'line '],
    ['name: a\nname: b\n', 'line 2'],
    ['- a\n- b\n', 'a job spec must be a mapping (got a list)'],
    ['', 'a job spec must be a mapping (got null)'],
  ];
  for (const [text, expected] of cases) {
    const r = parseJobSpec(text);
    t.ok(!r.ok && r.errors.some((e) => formatSpecError(e).startsWith(expected)), JSON.stringify(text), { r });
  }
});

t.test('assertJobSpec throws one WEFT_ERR_JOB_INVALID listing every error', async (t) => {
  const job = good();
  task(job).resources = { memory: 2 };
  t.throws(() => assertJobSpec(job), { code: 'WEFT_ERR_JOB_INVALID', statusCode: 400, key: 'groups[0].tasks[0].resources.memory' });
});

t.test('paths quote keys that are not identifiers', async (t) => {
  t.equal(joinPath(['groups', 0, 'tasks', 1, 'labels', 'weft.port']), 'groups[0].tasks[1].labels["weft.port"]');
  t.equal(joinPath([]), '');
});
