/**
 * The terminal views of GET /v1/stats: `weft stat` per service, per version
 * (share against the split) and per instance (host), `weft top`'s frame with
 * who calls whom, and `weft up`'s live view and plain lines, compared as exact
 * text from one answer of the contract's shape.
 */
import { Value } from '@sinclair/typebox/value';
import t from 'tap';
import { type StatsResponse, StatsResponseSchema } from '../../base/contracts/scheduler-api.js';
import { hostsOf, millis, percent, rate, renderEdges, renderServices, statsHeader } from '../../src/cli/client/stats-view.js';
import { onlyService, parseWindow, topFrame } from '../../src/cli/stat.js';
import type { SimHost } from '../../src/cli/up/hosts.js';
import { clip, type LoadStatus, loadLine, renderLive, scalingLine, trafficLines } from '../../src/cli/up/view.js';
import { isWeftError } from '../../base/errors.js';

const sig = (rps: number, successRate: number | null, p50Ms: number | null, p99Ms: number | null) => ({ rps, successRate, p50Ms, p99Ms });

const STATS: StatsResponse = {
  at: '2026-01-01T10:00:00.000Z',
  windowSeconds: 30,
  proxies: { scraped: 2, failed: 0 },
  services: [
    {
      service: 'frontend',
      instances: { total: 2, healthy: 2 },
      ...sig(40, 1, 8.5, 73),
      versions: [{ version: 'latest', instances: 2, share: 1, splitWeight: null, ...sig(40, 1, 8.5, 73) }],
      instanceStats: [
        { id: 'vm-2-b', version: 'latest', host: 'vm-2', healthy: true, ...sig(20, 1, 8, 70) },
        { id: 'vm-1-a', version: 'latest', host: 'vm-1', healthy: true, ...sig(20, 1, 9, 75) },
      ],
    },
    {
      service: 'backend',
      instances: { total: 4, healthy: 3 },
      ...sig(39.9, 0.9962, 2.8, 23),
      versions: [
        { version: 'v2', instances: 1, share: 0.1, splitWeight: 0.1, ...sig(4, 1, 8.1, 24) },
        { version: 'v1', instances: 3, share: 0.9, splitWeight: 0.9, ...sig(35.9, 0.995, 2.4, 22) },
      ],
      instanceStats: [
        { id: 'vm-1-x', version: 'v1', host: 'vm-1', healthy: true, ...sig(12, 1, 2.4, 20) },
        { id: 'vm-1-y', version: 'v1', host: 'vm-1', healthy: false, ...sig(0, null, null, null) },
        { id: 'vm-2-z', version: 'v1', host: 'vm-2', healthy: true, ...sig(23.9, 0.99, 2.5, 22) },
        { id: 'vm-2-w', version: 'v2', host: 'vm-2', healthy: true, ...sig(4, 1, 8.1, 24) },
      ],
    },
  ],
  edges: [
    { source: 'loadgen', destination: 'frontend', deniedPerSecond: 0, ...sig(40, 1, 9.4, 73) },
    { source: 'frontend', destination: 'backend', deniedPerSecond: 0.5, ...sig(39.9, 0.9962, 4.3, 34) },
  ],
};

t.test('the fixture is an answer of the contract', async (t) => {
  t.ok(Value.Check(StatsResponseSchema, STATS));
});

t.test('numbers read as people write them', async (t) => {
  t.strictSame([0, 0.25, 12.34, 1204.4].map(rate), ['0', '0.25', '12.3', '1,204']);
  t.strictSame([null, 1, 0.9962, 0.99999].map(percent), ['-', '100.00%', '99.62%', '99.99%'], 'never rounded up to 100%');
  t.strictSame([null, 0.84, 12.4, 1240].map(millis), ['-', '0.8 ms', '12 ms', '1.24 s']);
  t.equal(hostsOf([{ host: 'vm-2' }, { host: 'vm-1' }, { host: 'vm-2' }]), 'vm-1, vm-2 x2');
});

t.test('weft stat: one row per service, its hosts', async (t) => {
  t.equal(
    renderServices(STATS, { color: false }),
    [
      'SERVICE   VERSION  INSTANCES  HOSTS              RPS  SUCCESS     P50    P99',
      'backend            3/4        vm-1 x2, vm-2 x2  39.9   99.62%  2.8 ms  23 ms',
      'frontend  latest   2/2        vm-1, vm-2        40.0  100.00%  8.5 ms  73 ms',
    ].join('\n'),
  );
});

t.test('weft stat --versions: each version with its share against the split', async (t) => {
  t.equal(
    renderServices(STATS, { color: false, versions: true }),
    [
      'SERVICE   VERSION  INSTANCES  HOSTS           RPS  SUCCESS     P50    P99  SHARE',
      'backend            3/4                       39.9   99.62%  2.8 ms  23 ms',
      '          v1       3          vm-1 x2, vm-2  35.9   99.50%  2.4 ms  22 ms  90% (split 90%)',
      '          v2       1          vm-2            4.0  100.00%  8.1 ms  24 ms  10% (split 10%)',
      'frontend  latest   2/2        vm-1, vm-2     40.0  100.00%  8.5 ms  73 ms',
    ].join('\n'),
  );
});

t.test('weft stat --instances: each instance with its host and health', async (t) => {
  const text = renderServices(onlyService(STATS, 'backend'), { color: false, instances: true });
  t.equal(
    text,
    [
      'SERVICE  VERSION/INSTANCE  INSTANCES  HOSTS              RPS  SUCCESS     P50    P99',
      'backend                    3/4        vm-1 x2, vm-2 x2  39.9   99.62%  2.8 ms  23 ms',
      '           vm-1-x          healthy    vm-1              12.0  100.00%  2.4 ms  20 ms',
      '           vm-1-y          unhealthy  vm-1                 0        -       -      -',
      '           vm-2-w          healthy    vm-2               4.0  100.00%  8.1 ms  24 ms',
      '           vm-2-z          healthy    vm-2              23.9   99.00%  2.5 ms  22 ms',
    ].join('\n'),
  );
});

t.test('who calls whom, denials shown only where there are some; the header says what the figures cover', async (t) => {
  t.equal(
    renderEdges(STATS.edges, { color: false }),
    [
      'CALLER    CALLS      RPS  SUCCESS     P50    P99  DENIED/S',
      'frontend  backend   39.9   99.62%  4.3 ms  34 ms      0.50',
      'loadgen   frontend  40.0  100.00%  9.4 ms  73 ms',
    ].join('\n'),
  );
  t.equal(statsHeader(STATS, Date.parse(STATS.at) + 2000), 'over the last 30s from 2 proxies; scraped 2s ago');
  t.equal(statsHeader({ ...STATS, proxies: { scraped: 1, failed: 1 } }, Date.parse(STATS.at)), 'over the last 30s from 1 proxy, 1 did not answer; scraped 0s ago');
  const frame = topFrame(STATS, { color: false, now: Date.parse(STATS.at) });
  t.match(frame, /^weft top · 10:00:00 UTC · over the last 30s from 2 proxies; scraped 0s ago · Ctrl-C quits\n\nSERVICE/);
  t.match(frame, /\n\nCALLER {4}CALLS/);
  const one = onlyService(STATS, 'frontend');
  t.strictSame([one.services.map((s) => s.service), one.edges.map((e) => `${e.source}>${e.destination}`)], [['frontend'], ['loadgen>frontend', 'frontend>backend']]);
});

t.test('--window takes whole seconds within the API bounds and names a bad value', async (t) => {
  t.equal(parseWindow('30s'), 30);
  t.equal(parseWindow('2m'), 120);
  for (const bad of ['1s', '11m', '1500ms', 'soon']) {
    try {
      parseWindow(bad);
      t.fail(bad);
    } catch (err) {
      t.ok(isWeftError(err, 'WEFT_ERR_ARGUMENT_INVALID'), bad);
      t.match((err as Error).message, `--window: must be whole seconds from 2s to 10m, e.g. 30s or 1m (got ${JSON.stringify(bad)})`);
    }
  }
});

const HOSTS: SimHost[] = [
  { index: 1, node: 'vm-1', address: '127.0.0.2', dataDir: '/d/hosts/vm-1', configFile: '/d/hosts/vm-1/config.json', outboundPortBase: 15101 },
  { index: 2, node: 'vm-2', address: '127.0.0.3', dataDir: '/d/hosts/vm-2', configFile: '/d/hosts/vm-2/config.json', outboundPortBase: 15201 },
];
const LOAD: LoadStatus = { target: 'frontend', phase: 'running', stage: 0, stages: 4, trend: 'up', rps: 23.7, elapsedMs: 22_800, totalMs: 130_000, sent: 1294, ok: 1293, failed: 1, skipped: 0, lastFailure: null };

t.test("weft up's live view: the hosts, the load, the services by version, the calls, the decisions and weft up's own events", async (t) => {
  const now = Date.parse(STATS.at) + 5000;
  const lines = renderLive(
    {
      startedAt: now - 72_000,
      now,
      driver: 'process',
      hosts: HOSTS,
      demo: true,
      stats: STATS,
      load: LOAD,
      scaling: [{ job: 'backend', group: 'v1', at: new Date(now - 12_000).toISOString(), from: 1, to: 3, applied: true, failed: false, reason: 'rps 24.5/instance over target 10 (+10% tolerance) wants 3: 1 -> 3' }],
      events: [{ at: now - 3000, text: 'proxy-2 (pid 4242) was killed by SIGKILL: restarting it now' }],
    },
    { color: false },
  );
  t.strictSame(lines.slice(0, 3), [
    'weft up · running 1m12s · process driver · hosts vm-1 127.0.0.2, vm-2 127.0.0.3 · Ctrl-C stops weft and the demo',
    'load     loadgen -> frontend: 23.7 req/s, ramping up (stage 1/4, 22.8s of 2m10s; 1,294 sent, 1 failed)',
    '',
  ]);
  t.equal(lines[3], 'SERVICE   VERSION  INSTANCES  HOSTS           RPS  SUCCESS     P50    P99  SHARE', 'the services, a row per version');
  t.ok(lines.includes('          v2       1          vm-2            4.0  100.00%  8.1 ms  24 ms  10% (split 10%)'));
  t.ok(lines.includes('frontend  backend   39.9   99.62%  4.3 ms  34 ms      0.50'), 'the calls');
  t.strictSame(lines.slice(-5), [
    'scaling decisions',
    '  12s ago  backend.v1     1 -> 3  rps 24.5/instance over target 10 (+10% tolerance) wants 3: 1 -> 3',
    '',
    'weft up',
    '  3.0s    ago  proxy-2 (pid 4242) was killed by SIGKILL: restarting it now',
  ]);
  const waiting = renderLive({ startedAt: now, now, driver: 'docker', hosts: HOSTS, demo: false, statsError: 'WEFT_ERR_SCHEDULER_UNREACHABLE', scaling: [], events: [] }, { color: false });
  t.ok(waiting.includes('traffic figures unavailable: WEFT_ERR_SCHEDULER_UNREACHABLE'));
  t.ok(waiting.includes('  none yet'));
  t.match(waiting[0], / · Ctrl-C stops weft$/, 'without the demo, Ctrl-C leaves workloads alone');
});

t.test('the load generator in one line, in each phase', async (t) => {
  t.equal(loadLine({ ...LOAD, phase: 'waiting', lastFailure: '503 weft: no instances of service frontend' }), 'loadgen -> frontend: waiting for a first answer through the mesh (last: 503 weft: no instances of service frontend)');
  t.equal(loadLine({ ...LOAD, trend: 'down', stage: 2 }), 'loadgen -> frontend: 23.7 req/s, ramping down (stage 3/4, 22.8s of 2m10s; 1,294 sent, 1 failed)');
  t.equal(loadLine({ ...LOAD, phase: 'done', skipped: 3 }), 'loadgen -> frontend: done after 2m10s (1,294 sent, 1 failed, 3 skipped); it sends nothing more');
  t.equal(scalingLine({ job: 'backend', group: 'v1', at: STATS.at, from: 3, to: 1, applied: true, failed: false, reason: 'r' }, Date.parse(STATS.at) + 150_000), '3m ago   backend.v1     3 -> 1  r');
});

t.test('plain mode: one traffic line per service and version', async (t) => {
  t.strictSame(trafficLines(STATS), [
    'traffic: backend: 3/4 instances (vm-1 x2, vm-2 x2), 39.9 req/s, 99.62% ok, p50 2.8 ms, p99 23 ms',
    'traffic: backend v1: 3 instances (vm-1 x2, vm-2), 35.9 req/s, 99.50% ok, p50 2.4 ms, p99 22 ms, share 90% (split 90%)',
    'traffic: backend v2: 1 instances (vm-2), 4.0 req/s, 100.00% ok, p50 8.1 ms, p99 24 ms, share 10% (split 10%)',
    'traffic: frontend: 2/2 instances (vm-1, vm-2), 40.0 req/s, 100.00% ok, p50 8.5 ms, p99 73 ms',
  ]);
});

t.test('a frame line is clipped to the terminal, colour codes kept and closed', async (t) => {
  t.equal(clip('abcdef', 4), 'abcd');
  t.equal(clip('ab', 4), 'ab');
  t.equal(clip('\u001b[2mabcdef\u001b[0m', 3), '\u001b[2mabc\u001b[0m');
});
