/**
 * `weft deploy|status|plan` through the real `weft` binary against a STAND-IN
 * scheduler (fake-scheduler.ts: fastify serving the contract's routes with
 * canned, schema-checked answers). Rendering, progress and error paths only;
 * real scheduling is tested against `weft scheduler` in up.test.ts (`weft up`, then the client commands).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ESC, clientEnv } from './client-env.js';
import { weft } from './run-weft.js';

const { env, dir, fake, jobFile } = await clientEnv(t);

t.test('deploy follows the rollout until healthy, printing a line per change', async (t) => {
  const r = await weft(['deploy', jobFile('web', 3), '--interval', '20ms'], { env });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^web: created, version 1\n/);
  t.match(r.stdout, /web: 1\/3 running, 0 healthy\n/);
  t.match(r.stdout, /web: 3\/3 running, 2 healthy\n/);
  t.match(r.stdout, /web: 3\/3 running, 3 healthy\nweb: version 1 is healthy\n$/);
  t.notMatch(r.stdout, ESC, 'no colour or cursor movement when stdout is not a terminal');
  const lines = r.stdout.split('\n');
  t.equal(new Set(lines).size, lines.length, 'an unchanged line is not printed twice');
});

t.test('status renders aligned tables without colour in a pipe', async (t) => {
  await weft(['deploy', jobFile('api-gateway', 2), '--detach'], { env });
  const r = await weft(['status'], { env });
  t.equal(r.code, 0, r.stderr);
  const [header, ...rows] = r.stdout.trimEnd().split('\n');
  t.match(header, /^NAME\s+VERSION\s+STATUS\s+DESIRED\s+RUNNING\s+HEALTHY\s+SUBMITTED$/);
  t.equal(rows.length, 2);
  t.match(rows[0], /^web\s+1\s+healthy\s+3\s+3\s+3\s+\d+s ago$/);
  t.match(rows[1], /^api-gateway\s+1\s+healthy\s+2\s+2\s+2\s+\d+s ago$/);
  for (const row of rows) {
    t.equal(row.indexOf('healthy'), header!.indexOf('STATUS'), 'STATUS column lines up');
    t.equal(row[header!.indexOf('VERSION') + 'VERSION'.length - 1], '1', 'numbers are right-aligned');
  }
  t.notMatch(r.stdout, ESC);

  const one = await weft(['status', 'web'], { env });
  t.equal(one.code, 0, one.stderr);
  t.match(one.stdout, /^job:\s+web\nversion:\s+1\nstatus:\s+running\ndeployment:\s+version 1 successful\n/);
  t.match(one.stdout, /\nGROUP\s+DESIRED\s+PLACED\s+RUNNING\s+HEALTHY\s+NOT PLACED\nweb\s+3\s+3\s+3\s+3\s+-\n/);
  t.match(one.stdout, /\nALLOCATION\s+GROUP\s+NODE\s+VERSION\s+STATUS\s+HEALTHY\s+RESTARTS\s+PORTS\s+CREATED\n/);
  t.match(one.stdout, /web-2-abcd\s+web\[2\]\s+node-1\s+1\s+running\s+yes\s+2\s+21002\s+\d+s ago/);
  t.match(one.stdout, /recent events\n\s+\d+s ago\s+submitted: version 1 submitted/);
});

t.test('--json prints the API answer, and only that, on stdout', async (t) => {
  const r = await weft(['status', 'web', '--json'], { env });
  t.equal(r.code, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { job: string; groups: Array<{ desired: number }>; allocations: unknown[] };
  t.equal(body.job, 'web');
  t.equal(body.groups[0]!.desired, 3);
  t.equal(body.allocations.length, 3);
  const deploy = await weft(['deploy', jobFile('web', 3), '--json', '--interval', '20ms'], { env });
  t.equal(deploy.code, 0, deploy.stderr);
  t.match(JSON.parse(deploy.stdout), { job: 'web', version: 2, change: 'update', previousVersion: 1 });
  t.match(deploy.stderr, /web: 3\/3 running, 3 healthy\nweb: version 2 is healthy\n/, 'progress goes to stderr');
});

t.test('an API error exits 2 with its code and message', async (t) => {
  const r = await weft(['status', 'nope'], { env });
  t.equal(r.code, 2);
  t.equal(r.stderr, 'weft: WEFT_ERR_JOB_NOT_FOUND: no job named nope\n');
  t.equal(r.stdout, '');
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'groups: []\n');
  const invalid = await weft(['deploy', bad], { env });
  t.equal(invalid.code, 2);
  t.match(invalid.stderr, /^weft: WEFT_ERR_JOB_INVALID: job spec is invalid: name: required\n/);
});

t.test('deploy gives up after --timeout, and reports a failed rollout', async (t) => {
  const stuck = await weft(['deploy', jobFile('stuck', 2), '--timeout', '400ms', '--interval', '50ms'], { env });
  t.equal(stuck.code, 2);
  t.match(stuck.stdout, /stuck: 2\/2 running, 0 healthy\n/);
  t.match(stuck.stderr, /^weft: WEFT_ERR_DEPLOY_TIMEOUT: deployment of stuck not healthy after 0s \(stuck: 2\/2 running, 0 healthy\); it keeps rolling out: see `weft status stuck`\n$/);
  const doomed = await weft(['deploy', jobFile('doomed', 2), '--interval', '20ms'], { env });
  t.equal(doomed.code, 2);
  t.match(doomed.stderr, /WEFT_ERR_DEPLOY_FAILED: deployment of doomed version 1 failed: allocation doomed-0-abcd not healthy by its deadline \(5m\)/);
});

t.test('plan shows what would start and what would not fit, and stores nothing', async (t) => {
  const plan = await weft(['plan', jobFile('big', 4)], { env });
  t.equal(plan.code, 0, plan.stderr);
  t.match(plan.stdout, /^big: create to version 1\n\nstart 2:\nGROUP\s+NODE\s+REASON\s+REPLACES\s+PORTS\nbig\[0\]\s+node-1\s+new\s+-\s+20000\n/);
  t.match(plan.stdout, /big: 2 not placed \(3 nodes evaluated\): 3 nodes lacked memory/);
  t.notOk(fake.jobs.has('big'));
});
