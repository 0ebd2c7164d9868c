/**
 * `weft logs`, the real binary over log files laid out as `weft up` writes
 * them: pino's JSON lines printed pretty (never raw JSON), other lines as
 * they are, every file merged by time with its name, `-n`, a clear error for
 * an unknown process, and `-f` printing lines appended later until SIGINT.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { mergeByTime, tailLines } from '../../src/cli/logs.js';
import { eventually } from '../helpers/eventually.js';
import { weft } from './run-weft.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-logs-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const logs = join(dir, 'logs');
mkdirSync(logs);
const line = (time: number, name: string, msg: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ level: 30, time, pid: 1, hostname: 'vm', name, msg, ...extra });
const T = Date.parse('2026-01-01T10:00:00.000Z');
writeFileSync(join(logs, 'scheduler.log'), `${line(T + 1000, 'scheduler', 'scheduler API listening', { port: 7400 })}\n${line(T + 3000, 'scheduler', 'became leader')}\n`);
writeFileSync(join(logs, 'proxy-1.log'), `${line(T + 2000, 'proxy', 'inbound listening')}\nError: boom\n    at main (proxy.js:1:1)\n`);
const env = { WEFT_DATA_DIR: dir, TZ: 'UTC' };

t.test('one process: pretty lines, with their fields, and never raw JSON', async (t) => {
  const r = await weft(['logs', 'scheduler'], { env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '[10:00:01.000] INFO (scheduler): scheduler API listening {"port":7400}\n[10:00:03.000] INFO (scheduler): became leader\n');
});

t.test('every process merged by time, each line with its file, lines that are not JSON as they are', async (t) => {
  const r = await weft(['logs', '-n', '4'], { env });
  t.equal(r.code, 0, r.stderr);
  t.equal(
    r.stdout,
    [
      'proxy-1   | [10:00:02.000] INFO (proxy): inbound listening',
      'proxy-1   | Error: boom',
      'proxy-1   |     at main (proxy.js:1:1)',
      'scheduler | [10:00:03.000] INFO (scheduler): became leader',
      '',
    ].join('\n'),
  );
  const raw = await weft(['logs', 'scheduler', '--raw', '-n', '1'], { env });
  t.equal(raw.stdout, `${line(T + 3000, 'scheduler', 'became leader')}\n`, '--raw prints the stored line');
});

t.test('an unknown process or a bad count is a coded error naming it and what there is', async (t) => {
  const r = await weft(['logs', 'shceduler'], { env });
  t.equal(r.code, 2);
  t.match(r.stderr, /^weft: WEFT_ERR_ARGUMENT_INVALID: process: no such log in .*; there are: proxy-1, scheduler \(got "shceduler"\)\n$/);
  const n = await weft(['logs', '-n', 'many'], { env });
  t.match(n.stderr, 'WEFT_ERR_ARGUMENT_INVALID: --lines: must be a whole number');
  const none = await weft(['logs'], { env: { WEFT_DATA_DIR: join(dir, 'nothing-here') } });
  t.match(none.stderr, 'has `weft up` run with this data directory');
});

t.test('-f prints what is appended until SIGINT', async (t) => {
  const bin = join(import.meta.dirname, '../../bin/weft.js');
  const child = spawn(process.execPath, [bin, 'logs', 'proxy-1', '-f', '-n', '0'], { env: { ...process.env, ...env, WEFT_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  // The first lines are printed before following starts: append until one shows up.
  await eventually(
    () => {
      appendFileSync(join(logs, 'proxy-1.log'), `${line(T + 9000, 'proxy', 'a new line')}\n`);
      return out.includes('a new line');
    },
    30_000,
    'the appended line',
    500,
  );
  t.match(out, /^\[10:00:09\.000\] INFO \(proxy\): a new line\n/);
  child.kill('SIGINT');
  t.equal(await exited, 0, 'Ctrl-C ends it cleanly');
});

t.test('tails and merges, as pure parts', async (t) => {
  const { lines, size } = tailLines(join(logs, 'scheduler.log'), 1);
  t.equal(lines.length, 1);
  t.ok(size > 0);
  t.strictSame(
    mergeByTime([
      { name: 'a', lines: [line(3, 'a', 'x'), 'stack'] },
      { name: 'b', lines: [line(2, 'b', 'y'), line(4, 'b', 'z')] },
    ]).map((l) => `${l.name}:${l.line.length > 20 ? JSON.parse(l.line).msg : l.line}`),
    ['b:y', 'a:x', 'a:stack', 'b:z'],
  );
});
