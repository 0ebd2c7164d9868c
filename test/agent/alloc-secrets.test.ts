/**
 * alloc-secrets.ts: what each driver's task gets (docker: read-only mounts at
 * the spec's path; process: WEFT_SECRET_<NAME> = the host file), file modes,
 * removal, and coded errors that never carry a value.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AllocSecrets, secretFileEnv } from '../../agent/alloc-secrets.js';
import type { Allocation } from '../../base/contracts/alloc.js';

const VALUE = 'v-9f8e7d';
const alloc = (driver: 'docker' | 'process', id = 'a1-web'): Allocation => ({
  id,
  job: 'j',
  group: 'g',
  task: 'web',
  driver,
  ...(driver === 'docker' ? { image: 'x' } : { command: '/bin/true' }),
  env: {},
  labels: {},
  resources: { cpu: 100, memory: 64 },
  restart: { attempts: 0, interval: 1000, delay: 0, mode: 'fail' },
  secrets: [
    { name: 'db.pass', file: '/run/secrets/db' },
    { name: 'api-key', env: 'API_KEY' },
  ],
});

t.test('file and env secrets per driver', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'weft-secrets-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const s = new AllocSecrets({ root, host: 'h1', source: async () => new Map([['db.pass', VALUE], ['api-key', 'k']]) });
  t.equal(secretFileEnv('db.pass'), 'WEFT_SECRET_DB_PASS');

  const proc = await s.prepare(alloc('process'));
  const file = join(root, 'a1-web', 'db.pass');
  t.strictSame(proc, { secretEnv: { API_KEY: 'k' }, env: { WEFT_SECRET_DB_PASS: file }, mounts: [] }, 'process: the host path in env');
  t.equal(readFileSync(file, 'utf8'), VALUE);
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.equal(statSync(join(root, 'a1-web')).mode & 0o777, 0o700);

  const docker = await s.prepare(alloc('docker', 'a2-web'));
  t.strictSame(docker.mounts, [{ type: 'bind', source: join(root, 'a2-web', 'db.pass'), destination: '/run/secrets/db', readOnly: true }], 'docker: a read-only mount');
  t.strictSame(docker.env, { WEFT_SECRET_DB_PASS: '/run/secrets/db' }, 'docker: the mount path in env');

  s.sweep(new Set(['a2-web']));
  t.notOk(existsSync(join(root, 'a1-web')), 'sweep removes what is not kept');
  s.remove('a2-web');
  t.notOk(existsSync(join(root, 'a2-web')), 'remove');
});

t.test('failures are coded and name no value', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'weft-secrets-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  await t.rejects(new AllocSecrets({ root, host: 'h1', source: undefined }).prepare(alloc('process')), { code: 'WEFT_ERR_ALLOC_SECRETS', message: /no scheduler token/ });
  const partial = new AllocSecrets({ root, host: 'h1', source: async () => new Map([['api-key', VALUE]]) });
  const err = await partial.prepare(alloc('process')).catch((e: Error) => e);
  t.match(err, { code: 'WEFT_ERR_ALLOC_SECRETS', message: /db\.pass not returned/ });
  t.notOk(JSON.stringify({ ...err, message: (err as Error).message }).includes(VALUE), 'no value in the error');
  const down = new AllocSecrets({ root, host: 'h1', source: async () => Promise.reject(new Error('connect ECONNREFUSED')) });
  await t.rejects(down.prepare(alloc('process')), { code: 'WEFT_ERR_ALLOC_SECRETS', message: /could not fetch/ });
  await t.rejects(new AllocSecrets({ root: undefined, host: 'h1', source: async () => new Map([['db.pass', VALUE], ['api-key', 'k']]) }).prepare(alloc('process')), {
    code: 'WEFT_ERR_ALLOC_SECRETS',
    message: /no secrets directory/,
  });
});
