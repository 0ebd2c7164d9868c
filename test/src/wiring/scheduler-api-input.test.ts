/**
 * What the scheduler API refuses, over HTTP against an in-process scheduler
 * (startScheduler) on the dev Consul agent: every route that takes a body or
 * a query refuses values of the wrong type (no coercion: `{"count":null}` is
 * not 0, `"1"` is not 1, `[true]` is not true) with 400
 * WEFT_ERR_API_REQUEST_INVALID naming the key, and changes nothing; hostile
 * control-plane input (a YAML alias bomb, a 100,000-deep document, a 1 MiB
 * name, a 1 KB path parameter) answers a small coded 400, never a 500.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadConfig } from '../../../src/config/load.js';
import { startScheduler } from '../../../src/wiring/scheduler-process.js';
import { AGENT_SERVICE, NODE_META } from '../../../base/contracts/meta.js';
import { captureLogger } from '../../agent/helpers.js';
import { weft } from '../../cli/run-weft.js';
import { startTestConsul } from '../../helpers/dev-consul.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/ports.js';

const TOKEN = 'input-test-operator-token-0123456789';

interface Answer {
  status: number;
  body: { code?: string; message?: string; key?: string; value?: unknown } & Record<string, unknown>;
  text: string;
  ms: number;
}

/** The job spec as a value; `count` instances of one process task. */
function jobSpec(name: string, count: number): Record<string, unknown> {
  return { name, groups: [{ name: 'app', count, tasks: [{ name: 'api', driver: 'process', command: '/bin/true' }] }] };
}

/** The alias bomb: each level a list of ten aliases of the level before. */
function aliasBomb(levels = 9): string {
  const lines = ['name: bomb', 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < levels; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(',')}]`);
  lines.push(`groups: *a${levels - 1}`, '');
  return lines.join('\n');
}

t.test('scheduler API input', async (t) => {
  const consul = await startTestConsul(t);
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-api-input-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const config = loadConfig({
    env: {},
    flags: {
      dataDir,
      nodeName: 'sched',
      'consul.address': consul.address,
      'scheduler.bind': '127.0.0.1',
      'scheduler.port': port,
      'scheduler.token': TOKEN,
      'scheduler.register': false,
    },
  });
  const { logger, lines } = captureLogger();
  const sched = await startScheduler({ config, logger });
  t.teardown(() => sched.close());
  const url = `http://127.0.0.1:${port}`;

  const call = async (method: string, path: string, body?: unknown, contentType?: string): Promise<Answer> => {
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
    if (body !== undefined) headers['content-type'] = contentType ?? (typeof body === 'string' ? 'application/yaml' : 'application/json');
    const started = performance.now();
    const res = await fetch(url + path, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
    const text = await res.text();
    const ms = performance.now() - started;
    let parsed: Answer['body'] = {};
    try {
      parsed = JSON.parse(text) as Answer['body'];
    } catch {
      // not JSON: the assertions on code say so
    }
    return { status: res.status, body: parsed, text, ms };
  };
  const kv = async (key: string): Promise<{ Value: string; ModifyIndex: number } | undefined> =>
    ((await consul.consul.kv.get(key)) as { Value: string; ModifyIndex: number } | null | undefined) ?? undefined;
  /** One refused request: 400, the API's code, the key, nothing of the weft 500 shape. */
  const refused = (t: Test, r: Answer, key: string, what: string, code = 'WEFT_ERR_API_REQUEST_INVALID'): void => {
    t.strictSame([r.status, r.body.code, r.body.key], [400, code, key], `${what}: 400 ${code} key ${key} (${r.text.slice(0, 200)})`);
  };

  // A host for drain: a weft-agent registration as agents write it.
  await consul.consul.agent.service.register({
    name: AGENT_SERVICE,
    id: 'weft-agent-h1',
    address: '127.0.0.1',
    meta: { [NODE_META.host]: 'h1', [NODE_META.cpu]: '1000', [NODE_META.memory]: '1024', [NODE_META.driver]: 'process' },
  } as never);
  await eventually(async () => ((await call('GET', '/v1/nodes')).body.nodes as unknown[] | undefined)?.length === 1 || undefined, 10_000, 'node h1 seen');
  t.equal((await call('POST', '/v1/jobs', { spec: jobSpec('web', 2) })).status, 200, 'job web submitted');
  t.equal((await call('POST', '/v1/jobs', { spec: jobSpec('other', 1) })).status, 200, 'job other submitted');

  const webCount = async (): Promise<unknown> => ((await call('GET', '/v1/jobs/web')).body.spec as { groups: Array<{ count: unknown }> }).groups[0]!.count;

  await t.test('scale: no coercion; a refused scale leaves the count as it was', async (t) => {
    const before = await kv('weft/jobs/web');
    const cases: Array<[unknown, string]> = [
      [{ count: null }, 'body.count'],
      [{ count: false }, 'body.count'],
      [{ count: true }, 'body.count'],
      [{ count: '1' }, 'body.count'],
      [{ count: '' }, 'body.count'],
      [{ count: [1] }, 'body.count'],
      [{ count: {} }, 'body.count'],
      [{ count: { n: 1 } }, 'body.count'],
      [{ count: 1.5 }, 'body.count'],
      [{ group: 5, count: 1 }, 'body.group'],
      [{ group: null, count: 1 }, 'body.group'],
      [{ group: ['app'], count: 1 }, 'body.group'],
      [{ group: true, count: 1 }, 'body.group'],
      [{ group: 'app' }, 'body.count'],
      [{ count: 1, extra: 1 }, 'body.extra'],
      [[1], 'body'],
      [null, 'body'],
      ['1', 'body'],
    ];
    for (const [body, key] of cases) {
      const r = await call('POST', '/v1/jobs/web/scale', body, 'application/json');
      refused(t, r, key, `scale ${JSON.stringify(body)}`);
      t.match(r.body.message, new RegExp(`^${key.replace('.', '\\.')}: `), 'the message starts with the key');
    }
    t.equal(await webCount(), 2, 'the count is still 2');
    t.equal((await kv('weft/jobs/web'))?.ModifyIndex, before?.ModifyIndex, 'the job document was not written');
    const events = (await call('GET', '/v1/jobs/web/status')).body.events as Array<{ type: string }>;
    t.notOk(events.some((e) => e.type === 'scaled'), 'no scaled event');
    const ok = await call('POST', '/v1/jobs/web/scale', { count: 3 });
    t.strictSame([ok.status, ok.body.count, ok.body.previous], [200, 3, 2], 'a well-typed scale still works');
    t.equal(await webCount(), 3);
  });

  await t.test('submit and plan: spec is text or a mapping, nothing else', async (t) => {
    for (const route of ['/v1/jobs', '/v1/jobs/plan']) {
      for (const spec of [null, 5, 0, true, false, ['name: x'], [jobSpec('listed', 1)], '']) {
        refused(t, await call('POST', route, { spec }), 'body.spec', `${route} spec ${JSON.stringify(spec)}`);
      }
      refused(t, await call('POST', route, { spec: jobSpec('typo', 1), specs: 1 }), 'body.specs', `${route} extra field`);
      refused(t, await call('POST', route, {}, 'application/json'), 'body.spec', `${route} without spec`);
    }
    const jobs = ((await call('GET', '/v1/jobs')).body.jobs as Array<{ name: string }>).map((j) => j.name).sort();
    t.strictSame(jobs, ['other', 'web'], 'no job was created');
  });

  await t.test('revert: version is an integer', async (t) => {
    const before = await kv('weft/jobs/web');
    for (const version of ['1', null, true, [1], { v: 1 }, 1.5, 0]) {
      refused(t, await call('POST', '/v1/jobs/web/revert', { version }), 'body.version', `revert to ${JSON.stringify(version)}`);
    }
    t.equal((await kv('weft/jobs/web'))?.ModifyIndex, before?.ModifyIndex, 'no new version');
    t.equal((await call('GET', '/v1/jobs/web')).body.version, 1);
  });

  await t.test('stop: the purge query is true or false, exactly', async (t) => {
    for (const q of ['purge=1', 'purge=0', 'purge=yes', 'purge=', 'purge', 'purge=TRUE', 'purge=true&purge=true', 'purge=null', 'nope=true']) {
      const r = await call('DELETE', `/v1/jobs/other?${q}`);
      refused(t, r, q.startsWith('nope') ? 'querystring.nope' : 'querystring.purge', `stop ?${q}`);
    }
    t.equal((await call('GET', '/v1/jobs/other')).body.stopped, false, 'job other still runs');
    const stop = await call('DELETE', '/v1/jobs/other?purge=false');
    t.strictSame([stop.status, stop.body.stopped, stop.body.purged], [200, true, false], 'purge=false is a stop');
    const purge = await call('DELETE', '/v1/jobs/other?purge=true');
    t.strictSame([purge.status, purge.body.purged], [200, true], 'purge=true purges');
  });

  await t.test('drain: enable is a boolean', async (t) => {
    for (const enable of ['true', 'false', 1, 0, null, [true], { on: true }]) {
      refused(t, await call('POST', '/v1/nodes/h1/drain', { enable }), 'body.enable', `drain ${JSON.stringify(enable)}`);
    }
    t.equal(await kv('weft/drain/h1'), undefined, 'h1 is not drained');
    t.equal(((await call('GET', '/v1/nodes')).body.nodes as Array<{ drain: boolean }>)[0]!.drain, false);
  });

  await t.test('splits: weights are integers by version', async (t) => {
    const cases: Array<[unknown, string]> = [
      [{ weights: { v1: '5' } }, 'body.weights.v1'],
      [{ weights: { v1: true } }, 'body.weights.v1'],
      [{ weights: { v1: null } }, 'body.weights.v1'],
      [{ weights: { v1: [5] } }, 'body.weights.v1'],
      [{ weights: { v1: 5, v2: '5' } }, 'body.weights.v2'],
      [{ weights: [5] }, 'body.weights'],
      [{ weights: 'v1=5' }, 'body.weights'],
      [{ weights: null }, 'body.weights'],
    ];
    for (const [body, key] of cases) refused(t, await call('PUT', '/v1/splits/web', body), key, `split ${JSON.stringify(body)}`);
    t.equal(await kv('weft/splits/web'), undefined, 'no split stored');
  });

  await t.test('intentions: action and description are strings', async (t) => {
    const cases: Array<[unknown, string]> = [
      [{ action: ['allow'] }, 'body.action'],
      [{ action: null }, 'body.action'],
      [{ action: true }, 'body.action'],
      [{ action: 1 }, 'body.action'],
      [{ action: 'allow', description: 5 }, 'body.description'],
      [{ action: 'allow', description: false }, 'body.description'],
      [{ action: 'allow', description: ['x'] }, 'body.description'],
      [{ action: 'allow', description: null }, 'body.description'],
    ];
    for (const [body, key] of cases) refused(t, await call('PUT', '/v1/intentions/web/db', body), key, `intention ${JSON.stringify(body)}`);
    t.equal(await kv('weft/intentions/web/db'), undefined, 'no intention stored');
  });

  await t.test('secrets: the value is a string; a refused value is never echoed', async (t) => {
    for (const value of [5, 0, true, null, ['s3cr3t-in-a-list'], { v: 's3cr3t-in-a-map' }]) {
      const r = await call('PUT', '/v1/secrets/db-password', { value });
      refused(t, r, 'body.value', `secret ${JSON.stringify(value)}`);
      t.notMatch(r.text, /s3cr3t/, 'the value is not echoed');
    }
    t.strictSame((await call('GET', '/v1/secrets')).body.secrets, [], 'no secret stored');
  });

  await t.test('CSR signing: csr is a string', async (t) => {
    for (const csr of [5, true, null, ['-----BEGIN CERTIFICATE REQUEST-----'], { pem: 'x' }]) {
      refused(t, await call('POST', '/v1/ca/sign', { csr }), 'body.csr', `csr ${JSON.stringify(csr)}`);
    }
  });

  await t.test('a YAML alias bomb is a small coded 400, at once', async (t) => {
    const bomb = aliasBomb();
    for (const [what, route, body] of [
      ['raw YAML submit', '/v1/jobs', bomb],
      ['raw YAML plan', '/v1/jobs/plan', bomb],
      ['YAML text in JSON', '/v1/jobs', { spec: bomb }],
    ] as const) {
      const r = await call('POST', route, body);
      refused(t, r, '', what, 'WEFT_ERR_JOB_INVALID');
      t.match(r.body.message, /alias/i, 'the message says aliases');
      t.ok(r.ms < 1000, `answered in ${r.ms.toFixed(0)} ms`);
      t.ok(r.text.length < 2048, `body is ${r.text.length} bytes`);
      t.comment(`alias bomb (${what}): ${r.status} ${r.body.code} in ${r.ms.toFixed(0)} ms, body ${r.text.length} bytes`);
    }
    const unresolved = await call('POST', '/v1/jobs', 'name: x\ngroups: *nowhere\n');
    refused(t, unresolved, '', 'an alias without its anchor', 'WEFT_ERR_JOB_INVALID');
  });

  await t.test('a 100,000-deep document is a small coded 400', async (t) => {
    const depth = 100_000;
    const deepJson = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const deepMap = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const blockDeep = `name: deep\ngroups:\n${Array.from({ length: 2000 }, (_, i) => `${' '.repeat(i + 2)}k:`).join('\n')} 1\n`;
    const yaml100 = `name: deep\ngroups: ${'['.repeat(100)}${']'.repeat(100)}\n`;
    const cases: Array<[string, string, string, string, string, string]> = [
      // JSON bodies: refused before validation, whatever the route.
      ['a deep list under a known key', '/v1/jobs', 'application/json', `{"spec":{"name":"deep","groups":${deepJson}}}`, 'WEFT_ERR_API_REQUEST_INVALID', 'body.spec.groups.0.0'],
      ['a deep mapping under an unknown key', '/v1/jobs', 'application/json', `{"spec":{"name":"deep","groups":[],"x":${deepMap}}}`, 'WEFT_ERR_API_REQUEST_INVALID', 'body.spec.x.a.a'],
      ['a deep spec', '/v1/jobs/plan', 'application/json', `{"spec":${deepMap}}`, 'WEFT_ERR_API_REQUEST_INVALID', 'body.spec.a.a'],
      ['a deep scale body', '/v1/jobs/web/scale', 'application/json', `{"count":1,"x":${deepMap}}`, 'WEFT_ERR_API_REQUEST_INVALID', 'body.x.a.a'],
      ['a deep split body', '/v1/splits/web', 'application/json', `{"weights":${deepMap}}`, 'WEFT_ERR_API_REQUEST_INVALID', 'body.weights.a.a'],
      // Spec text: refused before the YAML parser recurses, or on the parsed value.
      ['deep YAML flow text', '/v1/jobs', 'application/yaml', `name: deep\ngroups: ${deepJson}\n`, 'WEFT_ERR_JOB_INVALID', ''],
      ['deep YAML compact sequences', '/v1/jobs', 'application/yaml', `name: deep\ngroups:\n${'- '.repeat(depth)}x\n`, 'WEFT_ERR_JOB_INVALID', ''],
      ['deep YAML indentation', '/v1/jobs', 'application/yaml', blockDeep, 'WEFT_ERR_JOB_INVALID', ''],
      ['deep JSON text in JSON', '/v1/jobs/plan', 'application/json', JSON.stringify({ spec: `{"name":"deep","groups":${deepJson}}` }), 'WEFT_ERR_JOB_INVALID', ''],
      ['YAML 100 levels deep', '/v1/jobs', 'application/yaml', yaml100, 'WEFT_ERR_JOB_INVALID', 'groups[0][0]'],
    ];
    for (const [what, route, type, body, code, key] of cases) {
      const r = await call(route.includes('splits') ? 'PUT' : 'POST', route, body, type);
      t.strictSame([r.status, r.body.code], [400, code], `${what}: 400 ${code} (${r.text.slice(0, 200)})`);
      t.ok(typeof r.body.key === 'string' && r.body.key.startsWith(key), `${what}: key ${r.body.key?.slice(0, 40)}`);
      t.match(r.body.message, /nested more than 64 levels deep/, 'the message says it is nested too deeply');
      t.ok(r.text.length < 2048, `body is ${r.text.length} bytes`);
      t.ok(r.ms < 2000, `answered in ${r.ms.toFixed(0)} ms`);
      t.comment(`${what}: ${r.status} ${r.body.code} in ${r.ms.toFixed(0)} ms, body ${r.text.length} bytes`);
    }
    t.equal(await webCount(), 3, 'web unchanged');
    t.equal(await kv('weft/splits/web'), undefined, 'no split stored');
    t.equal(await kv('weft/jobs/deep'), undefined, 'no job deep');
  });

  await t.test('echoed input is cut at 200 characters, with its length', async (t) => {
    const huge = 'a'.repeat(1 << 20);
    const cut = new RegExp(`a{200}… \\(${1 << 20} characters\\)`);
    const cases: Array<[string, string, string, unknown]> = [
      ['a 1 MiB job name', 'POST', '/v1/jobs', { spec: jobSpec(huge, 1) }],
      ['a 1 MiB job name in YAML', 'POST', '/v1/jobs', `name: ${huge}\ngroups: []\n`],
      ['a 1 MiB unknown key in a spec', 'POST', '/v1/jobs/plan', { spec: { ...jobSpec('web', 1), [huge]: 1 } }],
      ['a 1 MiB driver', 'POST', '/v1/jobs/plan', { spec: { name: 'web', groups: [{ name: 'app', tasks: [{ name: 'api', driver: huge }] }] } }],
      ['a 1 MiB unknown body field', 'POST', '/v1/jobs/web/scale', { count: 1, [huge]: 1 }],
      ['a 1 MiB split version', 'PUT', '/v1/splits/web', { weights: { [huge]: 1 } }],
    ];
    for (const [what, method, route, body] of cases) {
      const r = await call(method, route, body);
      t.equal(r.status, 400, `${what}: 400 ${r.body.code}`);
      t.ok(r.text.length < 4096, `${what}: body is ${r.text.length} bytes`);
      t.match(r.text, cut, `${what}: the echo is cut, with the original length`);
      t.comment(`${what}: ${r.status} ${r.body.code}, body ${r.text.length} bytes`);
    }
    const notFound = await call('GET', `/v1/${huge.slice(0, 8000)}`);
    t.strictSame([notFound.status, notFound.body.code], [404, 'WEFT_ERR_API_NOT_FOUND'], 'an unknown 8 KB route');
    t.ok(notFound.text.length < 1024, `unknown route: body is ${notFound.text.length} bytes`);
  });

  await t.test('a 1 KB path parameter: a coded 400 naming the parameter', async (t) => {
    const long = 'n'.repeat(1024);
    for (const [method, path, key] of [
      ['POST', `/v1/nodes/${long}/drain`, 'params.node'],
      ['POST', `/v1/nodes/${long}/token`, 'params.node'],
      ['GET', `/v1/jobs/${long}/status`, 'params.job'],
      ['DELETE', `/v1/intentions/web/${long}`, 'params.destination'],
      ['GET', `/v1/allocations/h1/${long}/secrets`, 'params.alloc'],
    ] as const) {
      const r = await call(method, path, method === 'POST' && path.endsWith('drain') ? { enable: true } : undefined);
      refused(t, r, key, `${method} ${path.replace(long, '<1 KB>')}`);
      t.match(r.body.message, /at most 128 characters.*1024 characters/, 'the message says how long it may be');
      t.ok(r.text.length < 1024, `body is ${r.text.length} bytes`);
    }
    const name = `h${'1'.repeat(119)}`;
    const r = await call('POST', `/v1/nodes/${name}/token`);
    t.equal(r.status, 200, 'a 120-character node name is a node name');
    t.equal(await kv('weft/drain/h1'), undefined, 'h1 is not drained');
  });

  await t.test('weft deploy of an alias bomb: the coded error, exit 2', async (t) => {
    const file = join(dataDir, 'bomb.yaml');
    await writeFile(file, aliasBomb());
    const run = await weft(['deploy', file, '--detach'], { env: { WEFT_ADDR: url, WEFT_TOKEN: TOKEN } });
    t.equal(run.code, 2, run.stderr);
    t.match(run.stderr, /^weft: WEFT_ERR_JOB_INVALID: job spec is invalid:\n {2}YAML aliases expand to more than 100 nodes/);
    t.ok(run.stderr.length < 2048, `stderr is ${run.stderr.length} bytes`);
  });

  t.notOk(
    lines.some((l) => l.msg === 'API request failed'),
    'no request ended as an internal error',
  );
});
