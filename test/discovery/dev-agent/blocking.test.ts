/** Pure parts of blocking queries and durations: wait clamping, jitter, parameter parsing, Go durations. */
import t from 'tap';
import {
  clampWait,
  DEFAULT_WAIT_MS,
  MAX_WAIT_MS,
  parseBlockingParams,
  withJitter,
} from '../../../discovery/dev-agent/blocking.js';
import { durationField } from '../../../discovery/dev-agent/duration.js';
import { formatGoDuration, parseDuration as parseGoDuration } from '../../../base/duration.js';
import { ConsulHttpError } from '../../../discovery/dev-agent/http-error.js';

t.test('clampWait: default 5 min, ceiling 10 min', async (t) => {
  const cases: Array<[number | undefined, number]> = [
    [undefined, DEFAULT_WAIT_MS],
    [0, DEFAULT_WAIT_MS],
    [1, 1],
    [30_000, 30_000],
    [MAX_WAIT_MS, MAX_WAIT_MS],
    [MAX_WAIT_MS + 1, MAX_WAIT_MS],
    [60 * 60_000, MAX_WAIT_MS],
  ];
  for (const [input, want] of cases) t.equal(clampWait(input), want, `clampWait(${input})`);
  t.equal(DEFAULT_WAIT_MS, 300_000);
  t.equal(MAX_WAIT_MS, 600_000);
});

t.test('withJitter adds up to wait/16', async (t) => {
  t.equal(withJitter(16_000, () => 0), 16_000);
  t.equal(withJitter(16_000, () => 0.5), 16_500);
  t.equal(withJitter(16_000, () => 0.999999), 16_999);
  for (let i = 0; i < 100; i++) {
    const w = withJitter(1600);
    t.ok(w >= 1600 && w < 1700);
  }
});

t.test('parseBlockingParams reads ?index and ?wait like Consul', async (t) => {
  const cases: Array<[Record<string, unknown>, { minIndex: number; waitMs: number }]> = [
    [{}, { minIndex: 0, waitMs: DEFAULT_WAIT_MS }],
    [{ index: '42' }, { minIndex: 42, waitMs: DEFAULT_WAIT_MS }],
    [{ index: '42', wait: '10s' }, { minIndex: 42, waitMs: 10_000 }],
    [{ index: '1', wait: '1m' }, { minIndex: 1, waitMs: 60_000 }],
    [{ index: '1', wait: '500ms' }, { minIndex: 1, waitMs: 500 }],
    [{ index: '1', wait: '11m' }, { minIndex: 1, waitMs: MAX_WAIT_MS }],
    [{ index: '1', wait: '24h' }, { minIndex: 1, waitMs: MAX_WAIT_MS }],
    [{ index: ['7', '8'] }, { minIndex: 7, waitMs: DEFAULT_WAIT_MS }],
  ];
  for (const [query, want] of cases) t.strictSame(parseBlockingParams(query), want, JSON.stringify(query));
  for (const [query, message] of [
    [{ index: 'x' }, 'Invalid index'],
    [{ index: '-1' }, 'Invalid index'],
    [{ wait: '10' }, 'Invalid wait time'],
    [{ wait: 'forever' }, 'Invalid wait time'],
  ] as const) {
    t.throws(() => parseBlockingParams(query), new ConsulHttpError(400, message), JSON.stringify(query));
  }
});

t.test('Go durations parse to milliseconds', async (t) => {
  const cases: Array<[string, number | undefined]> = [
    ['10s', 10_000],
    ['500ms', 500],
    ['1m', 60_000],
    ['1m30s', 90_000],
    ['1.5h', 5_400_000],
    ['250us', 0.25],
    ['0', 0],
    ['', undefined],
    ['10', undefined],
    ['s', undefined],
    ['1d', undefined],
  ];
  for (const [text, want] of cases) t.equal(parseGoDuration(text), want, JSON.stringify(text));
  t.equal(durationField(15_000_000_000, 'TTL'), 15_000, 'numbers are nanoseconds');
  t.equal(durationField(undefined, 'TTL'), undefined);
  t.throws(() => durationField('soon', 'TTL'), /TTL: invalid duration/);
});

t.test('durations print like Go time.Duration.String()', async (t) => {
  const cases: Array<[number, string]> = [
    [0, '0s'],
    [500, '500ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [60_000, '1m0s'],
    [90_000, '1m30s'],
    [3_600_000, '1h0m0s'],
    [86_400_000, '24h0m0s'],
    [0.25, '250µs'],
  ];
  for (const [ms, want] of cases) t.equal(formatGoDuration(ms), want, `${ms} ms`);
});
