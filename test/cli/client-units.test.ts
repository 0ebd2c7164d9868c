/**
 * The client's pure pieces by tables of cases: argument parsing, table
 * rendering with and without colour, and the deploy watch loop on a fake clock.
 */
import t from 'tap';
import { parseCount, parseDurationArg, parseScaleArgs, parseSplitArgs } from '../../src/cli/client/args.js';
import { type DeploymentProgress, watchDeployment } from '../../src/cli/client/progress.js';
import { colorFor, renderTable } from '../../src/cli/client/table.js';

t.test('split arguments: errors name the argument and the bad value', async (t) => {
  const cases: Array<[string[], RegExp | Record<string, number>]> = [
    [['v1=90', 'v2=10'], { v1: 90, v2: 10 }],
    [['canary=1'], { canary: 1 }],
    [['1.2.3+b=0', 'v2=5'], { '1.2.3+b': 0, v2: 5 }],
    [['v1=abc'], /^v1=abc: weight of v1 must be an integer from 0 to 1000000 \(got "abc"\)$/],
    [['v1=-5'], /^v1=-5: weight of v1 .* \(got "-5"\)$/],
    [['v1=1.5'], /\(got "1\.5"\)$/],
    [['v1=2000000'], /\(got "2000000"\)$/],
    [['v1=90', 'v2'], /^v2: must be version=weight, e\.g\. v1=90 \(got "v2"\)$/],
    [['=5'], /^=5: must be version=weight/],
    [['/x=1'], /^\/x=1: version must be 1-128 letters/],
    [['v1=10', 'v1=20'], /^v1=20: version v1 is named twice/],
    [['v1=0', 'v2=0'], /^split: at least one version needs a weight above 0 \(got "v1=0 v2=0"\)$/],
    [[], /^split: name at least one version=weight/],
  ];
  for (const [args, want] of cases) {
    if (want instanceof RegExp) t.throws(() => parseSplitArgs(args), { code: 'WEFT_ERR_SPLIT_INVALID', message: want }, args.join(' '));
    else t.strictSame(parseSplitArgs(args), want, args.join(' '));
  }
});

t.test('counts, scale arguments and durations', async (t) => {
  t.equal(parseCount('0'), 0);
  t.equal(parseCount('10000'), 10000);
  for (const bad of ['-1', '1.5', 'lots', '10001', '']) t.throws(() => parseCount(bad), { code: 'WEFT_ERR_ARGUMENT_INVALID', key: 'count', value: bad }, bad);
  t.strictSame(parseScaleArgs(['3']), { count: 3 });
  t.strictSame(parseScaleArgs(['api', '3']), { group: 'api', count: 3 });
  t.throws(() => parseScaleArgs(['Api', '3']), { code: 'WEFT_ERR_ARGUMENT_INVALID', key: 'group' });
  t.throws(() => parseScaleArgs(['a', 'b', '3']), { code: 'WEFT_ERR_ARGUMENT_INVALID', message: /JOB \[GROUP\] COUNT/ });
  t.equal(parseDurationArg('--timeout', '1m30s'), 90_000);
  for (const bad of ['0', 'soon', '-1s']) t.throws(() => parseDurationArg('--timeout', bad), { code: 'WEFT_ERR_ARGUMENT_INVALID', key: '--timeout' }, bad);
});

t.test('tables: aligned columns, right-aligned numbers, colour only when asked', async (t) => {
  const rows = [
    { name: 'web', n: 3, state: 'running' },
    { name: 'payments-api', n: 12, state: 'failed' },
    { name: 'x', n: 0, state: undefined },
  ];
  const cols = [
    { header: 'NAME', cell: (r: (typeof rows)[number]) => r.name },
    { header: 'N', cell: (r: (typeof rows)[number]) => r.n, align: 'right' as const },
    { header: 'STATE', cell: (r: (typeof rows)[number]) => r.state, tone: (r: (typeof rows)[number]) => (r.state === 'failed' ? ('red' as const) : undefined) },
  ];
  t.equal(renderTable(rows, cols), ['NAME           N  STATE', 'web            3  running', 'payments-api  12  failed', 'x              0  -'].join('\n'));
  const colored = renderTable(rows, cols, { color: true });
  t.match(colored, '\u001b[31mfailed\u001b[0m');
  t.ok(colored.startsWith('\u001b[1mNAME'), 'bold header');
  t.equal(renderTable([{ name: 'a\nb' }], [{ header: 'NAME', cell: (r: { name: string }) => r.name }]), 'NAME\na b', 'cells stay on one line');
  t.equal(colorFor({ isTTY: true }, {}), true);
  t.equal(colorFor({ isTTY: false }, {}), false);
  t.equal(colorFor({ isTTY: true }, { NO_COLOR: '1' }), false);
});

/** A scripted sequence of polls on a fake clock: each poll takes `stepMs`. */
function scripted(states: DeploymentProgress[], stepMs = 1000) {
  let clock = 0;
  let i = 0;
  const written: string[] = [];
  return {
    written,
    opts: {
      job: 'web',
      poll: async () => states[Math.min(i++, states.length - 1)]!,
      intervalMs: stepMs,
      write: (s: string) => written.push(s),
      now: () => clock,
      sleep: async (ms: number) => {
        clock += ms;
      },
    },
  };
}
const g = (running: number, healthy: number, extra: object = {}) => ({ name: 'web', desired: 3, running, healthy, ...extra });

t.test('watchDeployment: until healthy, failed, or the deadline', async (t) => {
  const ok = scripted([
    { status: 'running', groups: [g(1, 0, { pending: 2 })] },
    { status: 'running', groups: [g(1, 0, { pending: 2 })] },
    { status: 'running', groups: [g(3, 1)] },
    { status: 'successful', groups: [g(3, 3)] },
  ]);
  const done = await watchDeployment({ ...ok.opts, timeoutMs: 60_000, tty: false });
  t.equal(done.status, 'successful');
  t.strictSame(ok.written, ['web: 1/3 running, 0 healthy, 2 pending\n', 'web: 3/3 running, 1 healthy\n', 'web: 3/3 running, 3 healthy\n']);

  const tty = scripted([
    { status: 'running', groups: [g(1, 0)] },
    { status: 'successful', groups: [g(3, 3)] },
  ]);
  await watchDeployment({ ...tty.opts, timeoutMs: 60_000, tty: true });
  t.strictSame(tty.written, ['web: 1/3 running, 0 healthy\n', '\u001b[1F\u001b[Jweb: 3/3 running, 3 healthy\n'], 'a terminal gets the block redrawn in place');

  const failed = scripted([{ status: 'failed', version: 4, groups: [g(3, 1, { failed: 1 })], message: 'not healthy by 5m' }]);
  await t.rejects(watchDeployment({ ...failed.opts, timeoutMs: 60_000, tty: false }), {
    code: 'WEFT_ERR_DEPLOY_FAILED',
    message: 'deployment of web version 4 failed: not healthy by 5m',
  });
  t.strictSame(failed.written, ['web: 3/3 running, 1 healthy, 1 failed\n']);

  const slow = scripted([{ status: 'running', groups: [g(2, 0)], message: 'not placed: 1 node lacked memory' }], 1000);
  await t.rejects(watchDeployment({ ...slow.opts, timeoutMs: 5000, tty: false }), { code: 'WEFT_ERR_DEPLOY_TIMEOUT', message: /not healthy after 5s \(web: 2\/3 running, 0 healthy\)/ });
  t.strictSame(slow.written, ['web: 2/3 running, 0 healthy\n  not placed: 1 node lacked memory\n'], 'printed once; the deadline bounds the loop');
});
