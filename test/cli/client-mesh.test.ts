/**
 * `weft secret|split|scale|allow|node` and the connection rules (token, address)
 * through the real `weft` binary against a STAND-IN scheduler
 * (fake-scheduler.ts: canned, schema-checked answers). Rendering and CLI
 * behaviour only; up.test.ts runs them against the real `weft scheduler`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from '../helpers/ports.js';
import { clientEnv } from './client-env.js';
import { FAKE_TOKEN } from './fake-scheduler.js';
import { weft } from './run-weft.js';

const { env, dir, fake } = await clientEnv(t);

t.test('without a token the API answers 401 and the CLI says how to send one', async (t) => {
  const r = await weft(['secret', 'list'], { env: { WEFT_ADDR: fake.address, WEFT_DATA_DIR: join(dir, 'no-token') } });
  t.equal(r.code, 2);
  t.match(r.stderr, /^weft: WEFT_ERR_API_UNAUTHORIZED: missing or unknown bearer token; no token was sent: set WEFT_TOKEN/);
  t.equal(fake.requests.at(-1)!.auth, undefined);
  const wrong = await weft(['secret', 'list'], { env: { ...env, WEFT_TOKEN: 'nope' } });
  t.match(wrong.stderr, /WEFT_ERR_API_UNAUTHORIZED: .*the token from \$WEFT_TOKEN was refused/);
});

t.test("on the scheduler's machine the token file is used; node ls renders a table", async (t) => {
  const dataDir = join(dir, 'sched');
  mkdirSync(join(dataDir, 'scheduler'), { recursive: true });
  writeFileSync(join(dataDir, 'scheduler', 'token'), `${FAKE_TOKEN}\n`, { mode: 0o600 });
  const r = await weft(['node', 'ls'], { env: { WEFT_ADDR: fake.address, WEFT_DATA_DIR: dataDir } });
  t.equal(r.code, 0, r.stderr);
  t.equal(fake.requests.at(-1)!.auth, `Bearer ${FAKE_TOKEN}`);
  t.equal(
    r.stdout,
    [
      'NODE     ADDRESS    STATUS    DRIVERS         ALLOCS       CPU        MEMORY  ATTRIBUTES',
      'node-1   127.0.0.2  ready     process              3  300/2000  192/4096 MiB  zone=a',
      'node-22  127.0.0.3  draining  docker,process       0   0/16000   0/65536 MiB  -',
      '',
    ].join('\n'),
  );
});

t.test('connection refused names the address', async (t) => {
  const port = await freePort();
  const r = await weft(['node', 'ls', '--addr', `http://127.0.0.1:${port}/`], { env });
  t.equal(r.code, 2);
  t.match(r.stderr, new RegExp(`^weft: WEFT_ERR_SCHEDULER_UNREACHABLE: cannot reach the scheduler API at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
  t.match(r.stderr, /--addr or WEFT_ADDR/);
});

t.test('secret set reads the value from stdin or a file and never echoes it', async (t) => {
  const value = 'hunter2-Zq9!';
  const r = await weft(['secret', 'set', 'db-password'], { env, input: `${value}\n` });
  t.equal(r.code, 0, r.stderr);
  t.equal(fake.secrets.get('db-password'), value, 'one trailing newline dropped');
  t.equal(r.stdout, 'secret db-password stored\n');
  t.notMatch(r.stdout + r.stderr, value);
  const file = join(dir, 'key.pem');
  writeFileSync(file, 'line1\nline2\n');
  const f = await weft(['secret', 'set', 'tls-key', '--from-file', file], { env });
  t.equal(f.code, 0, f.stderr);
  t.equal(fake.secrets.get('tls-key'), 'line1\nline2\n', 'a file is taken byte for byte');
  const list = await weft(['secret', 'list'], { env });
  t.match(list.stdout, /^NAME\s+UPDATED\ndb-password\s+\d+m ago\ntls-key\s+\d+m ago\n$/);
  const empty = await weft(['secret', 'set', 'blank'], { env, input: '' });
  t.equal(empty.code, 2);
  t.match(empty.stderr, /^weft: WEFT_ERR_SECRET_INVALID: value: the value of secret blank is empty/);
  t.notOk(fake.secrets.has('blank'));
});

t.test('split: a bad weight is named and nothing is sent; a good split shows shares', async (t) => {
  const before = fake.requests.length;
  const bad = await weft(['split', 'web', 'v1=90', 'v2=abc'], { env });
  t.equal(bad.code, 2);
  t.equal(bad.stderr, 'weft: WEFT_ERR_SPLIT_INVALID: v2=abc: weight of v2 must be an integer from 0 to 1000000 (got "abc")\n');
  t.equal(fake.requests.length, before, 'no request reached the API');
  const ok = await weft(['split', 'web', 'v1=90', 'v2=10'], { env });
  t.equal(ok.code, 0, ok.stderr);
  t.strictSame(fake.requests.at(-1)!.body, { weights: { v1: 90, v2: 10 } });
  t.equal(ok.stdout, 'web:\nVERSION  WEIGHT  SHARE\nv1           90    90%\nv2           10    10%\n');
});

t.test('scale, allow and node drain', async (t) => {
  await weft(['deploy', join(dir, 'none.yaml'), '--detach'], { env }).then((r) => t.equal(r.code, 2, 'a missing job file is an error'));
  const bad = await weft(['scale', 'web', 'lots'], { env });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /WEFT_ERR_ARGUMENT_INVALID: count: must be a whole number from 0 to 10000 \(got "lots"\)/);
  t.equal((await weft(['allow', 'web', 'db', '--json'], { env })).stdout, '{\n  "source": "web",\n  "destination": "db",\n  "action": "allow"\n}\n');
  t.match((await weft(['node', 'drain', 'node-1'], { env })).stdout, /^node-1: draining/);
  t.strictSame(fake.requests.at(-1)!.body, { enable: true });
});
