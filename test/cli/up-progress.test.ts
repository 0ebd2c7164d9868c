/**
 * `weft up`'s progress lines, replayed on a manual clock: on a terminal a
 * spinner with the elapsed time redrawn in place, then a check mark with the
 * summary and the time taken; elsewhere plain lines and nothing redrawn; a
 * failed step says why; notes land above the spinner.
 */
import t from 'tap';
import { Progress, seconds } from '../../src/cli/up/progress.js';
import { manualClock, settle } from '../helpers/manual-clock.js';

/** What a terminal shows after `out`: carriage returns and line clears applied. */
function screen(out: string): string[] {
  const lines: string[] = [''];
  const CLEAR = '\r\u001b[2K';
  for (const [i, piece] of out.split('\n').entries()) {
    if (i > 0) lines.push('');
    for (const [j, part] of piece.split(CLEAR).entries()) {
      if (j > 0) lines[lines.length - 1] = '';
      lines[lines.length - 1] += part;
    }
  }
  return lines;
}

t.test('on a terminal: a spinner with the elapsed time while the step runs, a check mark and the time at the end', async (t) => {
  const clock = manualClock(1000);
  let out = '';
  const logged: string[] = [];
  const p = new Progress({ tty: true, color: false, write: (s) => (out += s), log: (l) => logged.push(l), now: clock.now, timers: clock });
  let finish!: (v: { value: number; summary: string }) => void;
  const running = p.step('scheduler', 'starting weft scheduler', () => new Promise<{ value: number; summary: string }>((r) => (finish = r)));
  t.strictSame(screen(out), ['  ⠋ scheduler   starting weft scheduler  0.0s']);
  await clock.advanceAndSettle(1500);
  t.strictSame(screen(out), ['  ⠴ scheduler   starting weft scheduler  1.5s'], 'redrawn in place every 100 ms');
  p.note('driver: process (as configured)');
  t.strictSame(screen(out), ['  driver: process (as configured)', '  ⠴ scheduler   starting weft scheduler  1.5s'], 'a note goes above the spinner');
  clock.advance(400);
  finish({ value: 42, summary: 'API on http://127.0.0.1:7400 (pid 7)' });
  t.equal(await running, 42);
  t.strictSame(screen(out), ['  driver: process (as configured)', '  ✔ scheduler   API on http://127.0.0.1:7400 (pid 7)  1.9s', '']);
  t.equal(clock.pending().length, 0, 'the spinner stopped');
  t.strictSame(logged, ['driver: process (as configured)', 'scheduler: API on http://127.0.0.1:7400 (pid 7) (1.9s)'], 'the log file gets plain lines');
});

t.test('elsewhere: plain lines, an update only when it changes, nothing redrawn', async (t) => {
  const clock = manualClock();
  let out = '';
  const p = new Progress({ tty: false, color: false, write: (s) => (out += s), now: clock.now, timers: clock });
  await p.step('demo', 'deploying backend', async (c) => {
    c.update('backend 0/2 healthy');
    c.update('backend 0/2 healthy');
    clock.advance(2500);
    c.update('backend 2/2 healthy');
    c.plain('demo: submitted backend');
    return { value: undefined, summary: 'backend is healthy' };
  });
  p.skip('ca', 'a CA exists in .weft/ca');
  t.equal(
    out,
    [
      'up        | demo: deploying backend',
      'up        | demo: backend 0/2 healthy',
      'up        | demo: backend 2/2 healthy',
      'up        | demo: submitted backend',
      'up        | demo: backend is healthy (2.5s)',
      'up        | ca: skipped, a CA exists in .weft/ca',
      '',
    ].join('\n'),
  );
  t.equal(clock.pending().length, 0, 'no spinner timer without a terminal');
});

t.test('a failed step says why (its first line) and rethrows', async (t) => {
  const clock = manualClock();
  let out = '';
  const p = new Progress({ tty: true, color: false, write: (s) => (out += s), now: clock.now, timers: clock });
  const step = p.step('agent-1', 'starting', async () => {
    clock.advance(300);
    await settle();
    throw new Error('agent-1 exited with code 1 before it was healthy; its last output:\n  boom');
  });
  await t.rejects(step, /exited with code 1/);
  t.strictSame(screen(out), ['  ✖ agent-1     agent-1 exited with code 1 before it was healthy; its last output: ...  0.3s', '']);
});

t.test('durations read as a person says them', async (t) => {
  t.strictSame([0, 420, 12_340, 65_000, 600_000].map(seconds), ['0.0s', '0.4s', '12.3s', '1m05s', '10m00s']);
});
