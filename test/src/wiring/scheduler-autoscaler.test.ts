/**
 * The autoscaler in the running scheduler: two in-process schedulers (leader
 * and standby) against the dev Consul agent, one in-process host agent
 * running busybox httpd instances with the process driver, and the REAL scrape
 * source (src/wiring/autoscale-scrape.ts) reading a stand-in for the host's
 * weft-proxy: a registered `weft-proxy` whose /metrics serves
 * weft_proxy_requests_total per instance at rates the test sets, integrated
 * over the schedulers' injected wall clock (so moving the clock by minutes
 * keeps the rates right). Real proxies carrying 250 requests/s per instance
 * would measure the same thing at a cost two shared cores cannot pay; the
 * proxies' metrics themselves are tested in test/proxy/.
 *
 * Readings go through real scrapes, so a rate read is 250 give or take a
 * scrape's timing: the scale-up policy caps at max 5, and reasons are matched
 * loosely where the exact figure does not matter.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../../src/config/load.js';
import { decide, emptyHistory, type AutoscalePolicy, type MetricSnapshot, type ObservedTask } from '../../../scheduler/index.js';
import { decisionCategory, groupInstances, metricPlaceholders, metricViewsOf } from '../../../src/wiring/scheduler-autoscaler.js';
import { type SchedulerProcess, startScheduler } from '../../../src/wiring/scheduler-process.js';
import { captureLogger } from '../../agent/helpers.js';
import { weft } from '../../cli/run-weft.js';
import { startTestConsul } from '../../helpers/dev-consul.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/ports.js';
import { api, startSimAgent, TOKEN } from '../../integration/scheduler-cluster.js';

const MINUTE = 60_000;

function policy(over: Partial<AutoscalePolicy> = {}): AutoscalePolicy {
  const behavior = { stabilizationWindowMs: 0, cooldownMs: 0, maxStep: undefined, periodMs: 15_000 };
  return {
    min: 1,
    max: 10,
    metrics: [{ kind: 'rps', target: 100 }],
    service: 'web',
    tolerance: 0.1,
    scaleUp: behavior,
    scaleDown: { ...behavior, stabilizationWindowMs: 60_000 },
    intervalMs: 1000,
    onError: 'hold',
    dryRun: false,
    idleToZeroMs: undefined,
    ...over,
  };
}

t.test('decisionCategory: every path of decide() gets a bounded label', async (t) => {
  const now = 1_700_000_000_000;
  const ready = [
    { id: 'a', ready: true, startedAtMs: 0 },
    { id: 'b', ready: true, startedAtMs: 0 },
  ];
  const rps = (a: number, b: number): MetricSnapshot => ({ readings: [{ kind: 'instances', values: { a, b } }], traffic: { rps: a + b, inflight: 0 } });
  const history = { ...emptyHistory(), recommendations: [{ atMs: now - 1000, desired: 2 }] };
  const run = (p: AutoscalePolicy, current: number, metrics: MetricSnapshot = rps(250, 250), activation = false) =>
    decide({ policy: p, current, instances: current === 0 ? [] : ready, metrics, activationRequested: activation, history, nowMs: now, warmupMs: 0 });
  const cases: Array<[string, ReturnType<typeof run>, boolean, string]> = [
    ['a move on the metrics', run(policy(), 2), false, 'metrics'],
    ['capped by max', run(policy({ max: 4 }), 2), false, 'capped'],
    ['within tolerance', run(policy(), 2, rps(100, 100)), false, 'metrics'],
    ['held by the scale-down window', run(policy(), 2, rps(10, 10)), false, 'held'],
    ['activation from zero', run(policy({ min: 0 }), 0, rps(0, 0), true), false, 'activation'],
    ['at zero, nothing waiting', run(policy({ min: 0 }), 0, rps(0, 0)), false, 'zero'],
    ['raised to min from zero', run(policy({ min: 2 }), 0, rps(0, 0)), false, 'min'],
    [
      'idle to zero',
      decide({
        policy: policy({ min: 0, idleToZeroMs: 1000 }),
        current: 2,
        instances: ready,
        metrics: rps(0, 0),
        activationRequested: false,
        history: { ...history, lastTrafficAtMs: now - 2000 },
        nowMs: now,
      }),
      false,
      'idle',
    ],
    ['onError hold', run(policy(), 2, { readings: [{ kind: 'unavailable', reason: 'down' }], traffic: undefined }), false, 'on-error'],
    ['onError fail', run(policy({ onError: 'fail' }), 2, { readings: [{ kind: 'unavailable', reason: 'down' }], traffic: undefined }), false, 'failed'],
    ['a dry-run move', run(policy({ dryRun: true }), 2), true, 'dry-run'],
    ['a dry run that moves nothing', run(policy({ dryRun: true }), 2, rps(100, 100)), true, 'metrics'],
  ];
  for (const [what, d, dryRun, want] of cases) t.equal(decisionCategory(d, dryRun), want, `${what}: ${d.reason}`);
  t.equal(decisionCategory(run(policy(), 2), false, true), 'failed', 'a write that did not go through');
});

t.test('groupInstances: pending and running allocations, ready when healthy, keyed by the measured task', async (t) => {
  const doc = (id: string, instance: string, task: string, service: string | undefined) =>
    ({
      id,
      job: 'shop',
      group: 'web',
      task,
      labels: service === undefined ? {} : { 'weft.service': service },
      resources: { cpu: 100, memory: 64 },
      placement: { instance, index: 0, version: 1, fingerprint: 'f', ports: [], reschedules: [], createdAt: 1000 },
    }) as unknown as ObservedTask['doc'];
  const status = (state: string, at: string) => ({ id: 'x', state, restarts: 0, updatedAt: at }) as ObservedTask['status'];
  const tasks: ObservedTask[] = [
    { host: 'h1', doc: doc('i1-log', 'i1', 'log', undefined), status: status('running', '1970-01-01T00:00:05.000Z') },
    { host: 'h1', doc: doc('i1-web', 'i1', 'web', 'web'), status: status('running', '1970-01-01T00:00:03.000Z'), checksPassing: true },
    { host: 'h2', doc: doc('i2-log', 'i2', 'log', undefined), status: status('running', '1970-01-01T00:00:02.000Z') },
    { host: 'h2', doc: doc('i2-web', 'i2', 'web', 'web'), status: status('running', '1970-01-01T00:00:02.000Z'), checksPassing: false },
    { host: 'h2', doc: doc('i3-web', 'i3', 'web', 'web') },
    { host: 'h3', doc: doc('i4-web', 'i4', 'web', 'web'), status: status('failed', '1970-01-01T00:00:02.000Z') },
    { host: 'h3', doc: { ...doc('o-web', 'o', 'web', 'web'), group: 'other' } },
  ];
  t.strictSame(groupInstances(tasks, 'shop', 'web', 'web', 10_000), [
    { id: 'i1-web', ready: true, startedAtMs: 5000, host: 'h1' },
    { id: 'i2-web', ready: false, startedAtMs: 2000, host: 'h2' },
    { id: 'i3-web', ready: false, startedAtMs: 1000, host: 'h2' },
  ]);
});

t.test('metricViewsOf: per-instance averages over ready instances, ceilings as read, placeholders before any decision', async (t) => {
  const p = policy({ metrics: [{ kind: 'rps', target: 100 }, { kind: 'latency', quantile: 0.99, maxMs: 250 }, { kind: 'errors', maxRatio: 0.05 }] });
  const instances = [
    { id: 'a', ready: true, startedAtMs: 0 },
    { id: 'b', ready: true, startedAtMs: 0 },
    { id: 'c', ready: false, startedAtMs: 0 },
  ];
  const snapshot = {
    readings: [{ kind: 'instances' as const, values: { a: 200, b: 300, c: 5000 } }, { kind: 'service' as const, value: 400 }, { kind: 'unavailable' as const, reason: 'scrape failed' }],
    traffic: undefined,
  };
  const d = decide({ policy: p, current: 2, instances, metrics: snapshot, activationRequested: false, history: emptyHistory(), nowMs: 1000, warmupMs: 0 });
  const views = metricViewsOf(p, snapshot, d.metrics, instances);
  t.strictSame(
    views.map((v) => [v.name, v.value, v.target, v.unit, v.unavailable]),
    [
      ['rps', 250, 100, 'req/s', undefined],
      ['latency p99', 400, 250, 'ms', undefined],
      ['errors', null, 0.05, 'ratio', 'scrape failed'],
    ],
  );
  t.strictSame(
    metricPlaceholders(p).map((v) => [v.name, v.value, v.summary]),
    [
      ['rps', null, 'rps: not measured yet'],
      ['latency p99', null, 'latency p99: not measured yet'],
      ['errors', null, 'errors: not measured yet'],
    ],
  );
});

/** The stand-in for a host's weft-proxy: weft_proxy_requests_total per instance, at rates the test sets, on the test's clock. */
class FakeProxyMetrics {
  readonly #rates = new Map<string, number>();
  readonly #counts = new Map<string, { count: number; atMs: number }>();
  #instances = new Map<string, string[]>();
  constructor(private readonly now: () => number) {}

  /** Sets a service's requests/s per instance (counters run at the old rate until now). */
  setRate(service: string, perInstance: number): void {
    this.#advance();
    this.#rates.set(service, perInstance);
  }

  /** The service's registered instances (Consul service IDs, the proxy's `instance` label). */
  setInstances(service: string, ids: string[]): void {
    this.#advance();
    this.#instances.set(service, ids);
  }

  services(): string[] {
    return [...this.#rates.keys()];
  }

  text(): string {
    this.#advance();
    const lines = ['# TYPE weft_proxy_requests_total counter'];
    for (const [service, ids] of this.#instances) {
      for (const id of ids) {
        const c = this.#counts.get(id)?.count ?? 0;
        lines.push(`weft_proxy_requests_total{direction="inbound",source="caller",destination="${service}",version="1",instance="${id}",code="200"} ${c}`);
      }
      lines.push(`weft_proxy_requests_in_flight{direction="inbound",destination="${service}"} 1`);
    }
    return `${lines.join('\n')}\n`;
  }

  #advance(): void {
    const at = this.now();
    for (const [service, ids] of this.#instances) {
      const rate = this.#rates.get(service) ?? 0;
      for (const id of ids) {
        const c = this.#counts.get(id);
        if (c === undefined) this.#counts.set(id, { count: 0, atMs: at });
        else {
          c.count += (rate * Math.max(0, at - c.atMs)) / 1000;
          c.atMs = at;
        }
      }
    }
  }
}

interface Decision {
  at: string;
  from: number;
  to: number;
  direction: string;
  applied: boolean;
  dryRun: boolean;
  failed: boolean;
  activation: boolean;
  reason: string;
}
interface GroupView {
  group: string;
  current: number;
  desired: number;
  metrics: Array<{ name: string; value: number | null; target: number; unit: string }>;
  last?: Decision;
  decisions: Decision[];
}

t.test('the autoscaler in a running scheduler', async (t) => {
  const consul = await startTestConsul(t);
  const clock = { offsetMs: 0 };
  const now = (): number => Date.now() + clock.offsetMs;
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-autoscale-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));

  // The host's "proxy": registered as weft-proxy of h1, serving the fake figures.
  const proxy = new FakeProxyMetrics(now);
  const scrapes = { failing: false };
  const server: Server = createServer((req, res) => {
    if (req.url !== '/metrics' || scrapes.failing) {
      res.writeHead(req.url === '/metrics' ? 503 : 404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(proxy.text());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const proxyPort = (server.address() as { port: number }).port;
  await consul.consul.agent.service.register({ id: 'weft-proxy-h1', name: 'weft-proxy', address: '127.0.0.1', port: proxyPort, tags: ['weft'], meta: { weft_host: 'h1' } } as never);
  // It follows the registered instances of the services it carries, as a proxy's routing would.
  const follow = setInterval(() => {
    for (const service of proxy.services()) {
      void consul.consul.health.service({ service }).then(
        (entries) => proxy.setInstances(service, (entries as Array<{ Service: { ID: string } }>).map((e) => e.Service.ID)),
        () => {},
      );
    }
  }, 100);
  t.teardown(() => clearInterval(follow));

  const { logger, lines } = captureLogger();
  const schedulers: Array<{ name: string; url: string; proc: SchedulerProcess }> = [];
  for (const name of ['a', 'b']) {
    const port = await freePort();
    const config = loadConfig({
      env: {},
      flags: {
        dataDir,
        nodeName: `sched-${name}`,
        'consul.address': consul.address,
        'scheduler.port': port,
        'scheduler.token': TOKEN,
        'scheduler.leaderTtlMs': 2000,
        'scheduler.reconcileIntervalMs': 1000,
        'scheduler.register': false,
        'log.level': 'debug',
      },
    });
    const proc = await startScheduler({ config, logger: logger.child({ scheduler: name }), autoscale: { now, warmupMs: 0 } });
    schedulers.push({ name, url: `http://127.0.0.1:${port}`, proc });
    t.teardown(() => proc.close());
    if (name === 'a') await eventually(() => proc.isLeader(), 20_000, 'scheduler a leads');
  }
  const [a, b] = schedulers as [(typeof schedulers)[0], (typeof schedulers)[0]];
  let leader = a;
  const host = await startSimAgent(t, consul, 'h1', '127.0.0.61', () => leader.url);
  t.ok(host.agent, 'host h1 runs');

  const logTail = (): string =>
    lines
      .slice(-30)
      .map((l) => `${String(l['scheduler'] ?? '')} ${String(l['msg'])}`)
      .join('\n');
  const job = async (name: string) => (await api(leader.url, 'GET', `/v1/jobs/${name}`)).body as { spec: { groups: Array<{ count?: number }> } };
  const count = async (name: string) => (await job(name)).spec.groups[0]!.count ?? 1;
  const events = async (name: string) => ((await api(leader.url, 'GET', `/v1/jobs/${name}/status`)).body['events'] ?? []) as Array<{ type: string; message: string }>;
  const view = async (name: string, url = leader.url) => (await api(url, 'GET', `/v1/jobs/${name}/autoscale`)).body as { live: boolean; groups: GroupView[] };
  const healthy = async (name: string, n: number) => {
    let seen = '';
    await eventually(
      async () => {
        const s = (await api(leader.url, 'GET', `/v1/jobs/${name}/status`)).body as { allocations: Array<{ status: string; healthy?: boolean }> };
        seen = JSON.stringify(s.allocations);
        return s.allocations.filter((x) => x.status === 'running' && x.healthy === true).length === n;
      },
      30_000,
      `${n} healthy instances of ${name}`,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nallocations: ${seen}\nhost: ${host.logs.slice(-10).map((l) => String(l['msg'])).join(' | ')}`);
    });
  };
  const submit = async (spec: object) => {
    const r = await api(leader.url, 'POST', '/v1/jobs', { spec });
    if (r.status !== 200) throw new Error(`submit: ${r.text}`);
  };
  // The smallest server that passes the instance's default TCP check: busybox httpd on the host's address, serving an empty directory.
  const www = await mkdtemp(join(tmpdir(), 'weft-autoscale-www-'));
  t.teardown(() => rm(www, { recursive: true, force: true }));
  const task = (name: string) => ({
    name,
    driver: 'process',
    command: '/bin/sh',
    args: ['-c', 'exec busybox httpd -f -p "$WEFT_HOST_ADDRESS:$PORT" -h "$WWW"'],
    env: { WWW: www },
    port: 0,
    resources: { cpu: 50, memory: 16 },
  });

  await t.test('2 instances at 250 rps each against a target of 100: the group goes to 5', async (t) => {
    proxy.setRate('web', 100); // at the target while the instances come up
    await submit({
      name: 'shop',
      groups: [
        {
          name: 'web',
          count: 2,
          autoscale: { min: 1, max: 5, metrics: [{ rps: 100 }], interval: '500ms', scaleDown: { stabilizationWindow: '10m' } },
          tasks: [task('web')],
        },
      ],
    });
    await healthy('shop', 2);
    await eventually(async () => (await view('shop')).groups[0]?.metrics[0]?.value !== null, 20_000, 'a first reading');
    t.equal(await count('shop'), 2, 'at the target: the count holds');
    // A scrape window across the change would read a blend of 100 and 250 (and move to 3 or 4 first):
    // the proxy stops answering until every sample from before the change is out of every window.
    scrapes.failing = true;
    const failingFrom = now();
    proxy.setRate('web', 250);
    await eventually(async () => {
      const last = (await view('shop')).groups[0]?.last;
      return last?.failed === true && Date.parse(last.at) > failingFrom + 2000;
    }, 20_000, 'scrapes failing for 2 s');
    t.equal(await count('shop'), 2, 'without readings the count holds (onError hold)');
    scrapes.failing = false;
    await eventually(async () => (await count('shop')) === 5, 20_000, `the count at 5\n${logTail()}`);
    // The event follows the count and the history.
    const scaled = await eventually(async () => {
      const ev = (await events('shop')).filter((e) => e.type === 'autoscaled');
      return ev.length > 0 ? ev : undefined;
    }, 10_000, 'the autoscaled event');
    t.equal(scaled.length, 1, 'one autoscaled event');
    t.match(scaled[0]?.message, /^web: rps 2\d\d(\.\d+)?\/instance over target 100 \(\+10% tolerance\) wants [56]: 2 -> 5/, 'the event names the values, the target and the move');
    const v = (await view('shop')).groups[0]!;
    t.equal(v.current, 5);
    t.equal(v.desired, 5);
    t.ok(v.decisions.some((d) => d.applied && d.from === 2 && d.to === 5), 'the API lists the decision');
    const metrics = (await api(leader.url, 'GET', '/metrics')).text;
    t.match(metrics, /weft_autoscaler_desired_replicas\{job="shop",group="web"\} 5\n/, 'desired 5');
    t.match(metrics, /weft_autoscaler_max_replicas\{job="shop",group="web"\} 5\n/);
    t.match(metrics, /weft_autoscaler_metric_target\{job="shop",group="web",metric="rps"\} 100\n/);
    t.match(metrics, /weft_autoscaler_metric_value\{job="shop",group="web",metric="rps"\} \d/);
    t.match(metrics, /weft_autoscaler_decisions_total\{job="shop",group="web",direction="up",reason="(metrics|capped)"\} 1\n/);
    const cli = await weft(['autoscale', 'shop'], { env: { WEFT_ADDR: leader.url, WEFT_TOKEN: TOKEN } });
    t.equal(cli.code, 0, cli.stderr);
    t.match(cli.stdout, /^shop: live from the leader\n\nweb: 5 \(min 1, max 5, every 500ms; \d\/5 instances ready\)\nMETRIC +VALUE +TARGET +WANTS\nrps +\d+(\.\d+)? req\/s +100 req\/s +\d+\n/, '`weft autoscale shop`');
    t.match(cli.stdout, /\nrecent decisions\n(.*\n)* {2}\d+s ago +2 -> 5 +applied +rps /);
    await healthy('shop', 5);
  });

  await t.test('a new leader keeps the stabilization window: a scale-down recommended before the failover waits its window', async (t) => {
    proxy.setRate('web', 30); // 5 x 30/100 -> 2 wanted
    const switchedAt = now();
    const held = (d: Decision | undefined, after: number) => d !== undefined && Date.parse(d.at) > after && /held by scaleDown\.stabilizationWindow 10m \(highest recommendation in it: 5\)/.test(d.reason);
    await eventually(async () => held((await view('shop')).groups[0]?.last, switchedAt), 20_000, `a held scale-down on a\n${logTail()}`);
    clock.offsetMs += 5 * MINUTE;
    const later = now();
    await eventually(async () => held((await view('shop')).groups[0]?.last, later), 20_000, 'still held 5 minutes on');
    const stored = (await consul.consul.kv.get('weft/autoscale/shop/web')) as { Value: string } | undefined;
    const record = JSON.parse(stored!.Value) as { version: number; recommendations: Array<{ desired: number }> };
    t.equal(record.version, 1, 'the history is in KV');
    t.ok(record.recommendations.some((r) => r.desired === 5), 'with the 5 recommended before');
    const standby = await view('shop', b.url);
    t.equal(standby.live, false, 'the standby answers from the stored record');
    t.equal(standby.groups[0]?.current, 5);
    t.ok(standby.groups[0]?.last !== undefined, 'with the last decision stored (at most a few seconds old)');

    await a.proc.close();
    leader = b;
    await eventually(() => b.proc.isLeader(), 20_000, 'b takes over');
    const tookOver = now();
    await eventually(async () => {
      const v = await view('shop', b.url);
      return v.live && held(v.groups[0]?.last, tookOver);
    }, 20_000, `b holds the scale-down too\n${logTail()}`);
    t.equal(await count('shop'), 5, 'not applied early by the new leader');

    // Past the window of the 5 recommended before the failover, and well before a window counted from the takeover:
    // only a history read from KV lets b scale down now.
    clock.offsetMs += switchedAt + 10 * MINUTE + 5_000 - now();
    t.ok(now() < tookOver + 10 * MINUTE, 'an empty history would still hold');
    await eventually(async () => (await count('shop')) === 2, 20_000, `b scales down to 2\n${logTail()}`);
    const down = await eventually(async () => {
      const ev = (await events('shop')).filter((e) => e.type === 'autoscaled' && / 5 -> 2/.test(e.message));
      return ev.length > 0 ? ev : undefined;
    }, 10_000, 'the scale-down event');
    t.equal(down.length, 1, 'the scale-down is an event');
    t.match(down[0]?.message, /^web: rps \d+(\.\d+)?\/instance under target 100 \(-10% tolerance\) wants 2: 5 -> 2$/);
  });

  await t.test('a request held at zero: writing weft/activate/<service> raises the group to 1 at once', async (t) => {
    await submit({
      name: 'tool',
      groups: [{ name: 'api', count: 0, autoscale: { min: 0, max: 2, metrics: [{ inflight: 10 }], interval: '1m' }, tasks: [task('tool')] }],
    });
    const first = await eventually(async () => (await view('tool')).groups[0]?.last, 20_000, 'the first decision');
    t.match(first.reason, /^at zero, no request waiting$/);
    t.equal(await count('tool'), 0);
    await consul.consul.kv.set('weft/activate/tool', String(now()));
    // The interval is a minute: only the activation decides this soon.
    await eventually(async () => (await count('tool')) === 1, 20_000, `tool at 1\n${logTail()}`);
    await eventually(async () => (await consul.consul.kv.get('weft/activate/tool')) == null, 10_000, 'the key deleted');
    const ev = await eventually(async () => {
      const list = (await events('tool')).filter((e) => e.type === 'autoscaled');
      return list.length > 0 ? list : undefined;
    }, 10_000, 'the activation event');
    t.strictSame(
      ev.map((e) => e.message),
      ['api: activation: a request is waiting for the service at zero: 0 -> 1'],
    );
    const last = (await view('tool')).groups[0]!.last!;
    t.ok(last.activation && last.applied, 'the decision says it was an activation');
    await healthy('tool', 1);
  });

  await t.test('dryRun: the decision is recorded, nothing changes', async (t) => {
    proxy.setRate('dry', 300);
    await submit({
      name: 'dry',
      groups: [{ name: 'w', count: 1, autoscale: { min: 1, max: 3, metrics: [{ rps: 100 }], interval: '500ms', dryRun: true }, tasks: [task('dry')] }],
    });
    await healthy('dry', 1);
    const moved = await eventually(
      async () => {
        const v = (await view('dry')).groups[0];
        return v?.last?.dryRun === true && v.last.to === 3 ? v : undefined;
      },
      20_000,
      `a dry-run decision\n${logTail()}`,
    );
    t.match(moved.last!.reason, /^dry run: rps \d+(\.\d+)?\/instance over target 100 \(\+10% tolerance\) wants [34]: 1 -> 3/);
    t.equal(moved.last!.applied, false);
    t.equal(moved.desired, 3, 'the API shows what it would set');
    // Some more decisions: the same would-be move is one event, and the count never moves.
    const seen = moved.last!.at;
    await eventually(async () => {
      const v = (await view('dry')).groups[0];
      return v?.last !== undefined && Date.parse(v.last.at) > Date.parse(seen) + 1000;
    }, 20_000, 'two more decisions');
    t.equal(await count('dry'), 1, 'the count is untouched');
    const ev = await events('dry');
    t.equal(ev.filter((e) => e.type === 'autoscale-dry-run' && / 1 -> 3/.test(e.message)).length, 1, 'one dry-run event for the move');
    t.equal(ev.filter((e) => e.type === 'autoscaled').length, 0, 'no scale event');
    t.match((await api(leader.url, 'GET', '/metrics')).text, /weft_autoscaler_decisions_total\{job="dry",group="w",direction="up",reason="dry-run"\} \d+/);
  });

  await t.test('failures are events, one a minute; the API and the metrics show every one', async (t) => {
    await submit({
      name: 'broken',
      groups: [
        {
          name: 'q',
          count: 1,
          autoscale: { min: 1, max: 3, metrics: [{ promql: 'sum by (instance_id) (queue_depth)', target: 5 }], interval: '500ms', onError: 'fail' },
          tasks: [task('broken')],
        },
      ],
    });
    const failed = await eventually(
      async () => {
        const v = (await view('broken')).groups[0];
        return v?.last?.failed === true ? v : undefined;
      },
      20_000,
      'a failed decision',
    );
    t.match(failed.last!.reason, /^promql\[0\] unavailable \(promql needs source prometheus\): autoscaling failed \(onError fail\), holding 1/);
    const seen = failed.last!.at;
    await eventually(async () => {
      const v = (await view('broken')).groups[0];
      return v?.last !== undefined && Date.parse(v.last.at) > Date.parse(seen) + 1000;
    }, 20_000, 'more failed decisions');
    t.equal((await events('broken')).filter((e) => e.type === 'autoscale-failed').length, 1, 'one event');
    t.equal(await count('broken'), 1);
    t.match((await api(leader.url, 'GET', '/metrics')).text, /weft_autoscaler_decisions_total\{job="broken",group="q",direction="none",reason="failed"\} ([2-9]|\d\d+)\n/);
  });

  await t.test('the API: unknown jobs are 404, agent tokens are refused', async (t) => {
    t.equal((await api(leader.url, 'GET', '/v1/jobs/nope/autoscale')).status, 404);
    const { agentToken } = await import('../../../src/wiring/scheduler-token.js');
    t.equal((await api(leader.url, 'GET', '/v1/jobs/shop/autoscale', undefined, agentToken(TOKEN, 'h1'))).status, 403);
    t.equal((await api(leader.url, 'GET', '/v1/jobs/shop/autoscale', undefined, null)).status, 401);
  });
});
