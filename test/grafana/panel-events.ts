/**
 * The events the dashboards' panels show, produced for real for
 * metrics-doc.test.ts: a client that sends half a request head (the proxy's
 * 408), a retry budget spent on a service that answers 503, a `weft agent`
 * child that gets its services' identities signed by the scheduler's CA, and
 * the scheduler's placements, health changes, stops, lost node and
 * autoscaler decisions, each waited for in the metrics of the process that
 * counts it. Every wait is bounded; everything started here stops at
 * teardown. (Not a *.test.ts file: tap does not run it.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { ProcessDriver } from '../../agent/index.js';
import { agentToken } from '../../src/wiring/scheduler-token.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { api, demoJob, type SimAgent, TOKEN } from '../integration/scheduler-cluster.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

interface Assert {
  ok(value: unknown, message: string): boolean;
  equal(found: unknown, wanted: unknown, message: string): boolean;
}

const ROOT = join(import.meta.dirname, '../..');

/**
 * The value of the sample of `name` whose labels include `labels`, in a
 * Prometheus text exposition; undefined when there is none.
 */
export function sampleValue(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/**
 * A slow client (slowloris): connects, sends half a request head and waits.
 * Resolves with what the listener answered before it closed the connection
 * (the head timeout is 10 s and not configurable: proxy/http/server-limits.ts),
 * or with what came within `boundMs`.
 */
export function slowHead(host: string, port: number, boundMs = 30_000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const socket = net.connect(port, host, () => socket.write('GET / HTTP/1.1\r\nHost: backend\r\nAccept: '));
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (got += d));
    const timer = setTimeout(() => socket.destroy(), boundMs);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

/**
 * Spends `service`'s retry budget at the caller's proxy: rounds of `perRound`
 * GETs, `concurrency` at a time, to a service that answers 503 to each (three
 * attempts per request), until the proxy at `metricsUrl` counts a retry
 * skipped for budget-exhausted. The budget (proxy/resilience/retry-budget.ts)
 * allows 20% of the requests plus 10/s over 10 s, so about 60 such requests
 * within the window spend it. Resolves with the requests sent.
 */
export async function spendRetryBudget(
  call: (service: string) => Promise<number>,
  service: string,
  metricsUrl: string,
  opts: { rounds?: number; perRound?: number; concurrency?: number } = {},
): Promise<number> {
  const { rounds = 5, perRound = 80, concurrency = 8 } = opts;
  let sent = 0;
  for (let round = 0; round < rounds; round++) {
    let left = perRound;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (left-- > 0) {
          await call(service).catch(() => 0);
          sent++;
        }
      }),
    );
    const text = await (await fetch(metricsUrl)).text();
    if (sampleValue(text, 'weft_proxy_retries_skipped_total', { destination: service, reason: 'budget-exhausted' }) !== undefined) return sent;
  }
  throw new Error(`${sent} failing requests to ${service} did not spend its retry budget`);
}

/** Environment without the caller's WEFT_* and CONSUL_HTTP_ADDR. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEFT_') && k !== 'CONSUL_HTTP_ADDR') env[k] = v;
  return env;
}

/**
 * A real `weft agent` for `host` (a child, as an operator runs it): the process driver, 1 core and 1 GiB to
 * offer, the host's data directory (where it writes its services' identities and local.json for the host's
 * `weft proxy`, which the test starts, hence --no-proxy), its instances registered with the proxy's inbound
 * port, /metrics on a free port at the host's address, and the host's agent token (WEFT_TOKEN) for the
 * scheduler at `schedulerUrl`: the scheduler's CA signs its services' identities. Resolves once it runs and
 * /metrics answers. At teardown the agent stops, then whatever it started (the process driver's workloads
 * outlive an agent on purpose).
 */
export async function startAgentChild(
  t: Teardown,
  consulAddress: string,
  host: { node: string; address: string; dataDir: string; inboundPort: number },
  schedulerUrl: string,
): Promise<{ metricsUrl: string }> {
  const metricsPort = await freePort(host.address);
  // Not config.yaml: that is the proxy's.
  const configFile = join(host.dataDir, 'agent.yaml');
  // biome-ignore format: one setting per line
  await writeFile(configFile, [
    'agent:',
    '  heartbeatTtlMs: 1000',
    '  drainDelayMs: 50',
    '  stopDeadlineMs: 2000',
    '  metrics:',
    `    port: ${metricsPort}`,
    'proxy:',
    '  inbound:',
    `    port: ${host.inboundPort}`,
    '',
  ].join('\n'));
  // biome-ignore format: one flag and its value per line
  const args = [
    join(ROOT, 'bin', 'weft.js'), 'agent',
    '--driver', 'process',
    '--config', configFile,
    '--data-dir', host.dataDir,
    '--node', host.node,
    '--address', host.address,
    '--consul', consulAddress,
    '--addr', schedulerUrl,
    '--cpu', '1000',
    '--memory', '1024',
    '--no-proxy',
    '--log-format', 'json',
  ];
  const env = { ...cleanEnv(), WEFT_TOKEN: agentToken(TOKEN, host.node) };
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    // A throw here would skip the teardowns after it: nothing may.
    try {
      const driver = new ProcessDriver(join(host.dataDir, 'agent', 'processes'));
      for (const task of await driver.list({ all: true })) await driver.remove(task.id, { force: true }).catch(() => {});
    } catch {
      // the data directory is gone: nothing was left to stop
    }
  });
  const metricsUrl = `http://${host.address}:${metricsPort}/metrics`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`weft agent exited ${child.exitCode}: ${out}`);
      return out.includes('"msg":"weft agent running"') && (await fetch(metricsUrl).catch(() => undefined))?.ok === true ? true : undefined;
    },
    30_000,
    `weft agent ${host.node} running with /metrics\n${out}`,
  );
  return { metricsUrl };
}

/**
 * Fills a listener: opens `count` connections to the proxy's outbound listener
 * at once (more than its proxy.maxConnections), waits until the proxy at
 * `metricsUrl` counts the ones closed at accept, then closes them all and
 * waits until the proxy has seen them close (the listener has room again).
 * Resolves with the count refused.
 */
export async function fillListener(host: string, port: number, count: number, metricsUrl: string): Promise<number> {
  const scrape = async (): Promise<string> => (await fetch(metricsUrl)).text();
  const open = async (): Promise<number> => sampleValue(await scrape(), 'weft_proxy_connections_open', { direction: 'outbound' }) ?? 0;
  const before = await open();
  const sockets = Array.from({ length: count }, () => net.connect(port, host).on('error', () => undefined));
  try {
    return await eventually(
      async () => {
        const n = sampleValue(await scrape(), 'weft_proxy_connections_refused_total', { reason: 'max_connections' });
        return n !== undefined && n > 0 ? n : undefined;
      },
      15_000,
      `connections refused at ${host}:${port}`,
      100,
    );
  } finally {
    for (const s of sockets) s.destroy();
    await eventually(async () => (await open()) <= before, 15_000, `the proxy to see the connections to ${host}:${port} close`, 100);
  }
}

interface Allocation {
  id: string;
  node: string;
  status: string;
  healthy?: boolean;
  ports: number[];
}
interface JobStatus {
  allocations?: Allocation[];
  deployment?: { status: string };
}

/** The scheduler, the agent child's node and the in-process host agent that is to be lost. */
export interface SchedulerScene {
  url: string;
  /** The agent child's node and address: every job that stays runs there. */
  node: string;
  address: string;
  agentMetricsUrl: string;
  /** A host agent whose heartbeat the scene stops. */
  doomed: SimAgent;
  /** Calls a service through a proxy (web's outbound port); resolves with the status. */
  call(service: string): Promise<number>;
}

const ON = (node: string) => [{ attribute: 'node.name', value: node }];
/** The demo app's check every second, critical at the second failure in a row (one slow answer on a busy machine is no flip). */
const CHECK = { check: { http: '/health', interval: '1s', timeout: '800ms', failures: 2 } };

/**
 * What the scheduler dashboard and the autoscaling panels show, made to happen:
 *
 * - `hello` (2 instances on `node`, checked): placements (new), the agent's
 *   CSRs to the scheduler's CA, the agent's leaf; then one instance's check
 *   flips (the demo app's /unhealthy), and the job is scaled to 1 (a stop,
 *   scale-down: the unhealthy instance goes first);
 * - `auto` (1 instance on `node`, autoscale 1..2 on rps and an error
 *   ceiling): the autoscaler's decisions, desired/current/max replicas, its
 *   metrics' targets, and the error ratio it reads from `node`'s proxy once
 *   `auto` is called through the mesh;
 * - `moved` (1 instance, which avoids `node` while another fits): placed on
 *   the doomed host, whose heartbeat then stops; lost after the scheduler's
 *   lostAfterMs, its allocation is stopped (node-lost) and replaced on `node`
 *   (replace-lost).
 *
 * Resolves once the scheduler's and the agent's /metrics count every one.
 */
export async function schedulerEvents(t: Assert, s: SchedulerScene): Promise<void> {
  const status = async (job: string): Promise<JobStatus> => (await api(s.url, 'GET', `/v1/jobs/${job}/status`)).body as JobStatus;
  const running = (job: string, count: number, test: (a: Allocation) => boolean = () => true): Promise<Allocation[]> =>
    eventually(
      async () => {
        const live = ((await status(job)).allocations ?? []).filter((a) => a.status === 'running' && test(a));
        return live.length === count ? live : undefined;
      },
      40_000,
      `${count} allocations of ${job} running`,
      250,
    );
  const metrics = async (url: string): Promise<string> => (url === s.url ? (await api(s.url, 'GET', '/metrics')).text : await (await fetch(url)).text());
  const counted = (url: string, name: string, labels: Record<string, string>): Promise<number> =>
    eventually(async () => sampleValue(await metrics(url), name, labels), 30_000, `${name}${JSON.stringify(labels)} at ${url}`, 250);

  // The doomed host must be a node before `moved` is placed, or `moved` would land on `node`.
  await eventually(
    async () => {
      const nodes = ((await api(s.url, 'GET', '/v1/nodes')).body['nodes'] ?? []) as Array<{ name: string; readiness: string }>;
      return [s.node, s.doomed.host].every((n) => nodes.some((x) => x.name === n && x.readiness === 'ready'));
    },
    20_000,
    `nodes ${s.node} and ${s.doomed.host} ready`,
    250,
  );
  const jobs = [
    demoJob('hello', 'hello', { group: { count: 2, constraints: ON(s.node) }, task: CHECK }),
    demoJob('auto', 'auto', { group: { count: 1, constraints: ON(s.node), autoscale: { min: 1, max: 2, metrics: [{ rps: 100 }, { errors: { max: 0.5 } }] } } }),
    demoJob('moved', 'moved', { group: { affinities: [{ attribute: 'node.name', value: s.node, weight: -100 }] } }),
  ];
  for (const spec of jobs) {
    const r = await api(s.url, 'POST', '/v1/jobs', { spec });
    t.equal(r.status, 200, `job ${spec.name} submitted ${r.status === 200 ? '' : r.text}`);
  }

  const lost = (async () => {
    const [placed] = await running('moved', 1);
    t.equal(placed!.node, s.doomed.host, `moved runs on ${s.doomed.host}`);
    await s.doomed.crash();
    await counted(s.url, 'weft_scheduler_stops_total', { reason: 'node-lost' });
    await running('moved', 1, (a) => a.node === s.node);
    t.ok(await counted(s.url, 'weft_scheduler_placements_total', { reason: 'replace-lost' }), `${s.doomed.host} lost: moved stopped there and replaced on ${s.node}`);
  })();

  const flipped = (async () => {
    await eventually(async () => (await status('hello')).deployment?.status === 'successful', 40_000, "hello's deployment to succeed", 250);
    const [victim] = await running('hello', 2, (a) => a.healthy === true);
    await fetch(`http://${s.address}:${victim!.ports[0]}/unhealthy`);
    // Seen by the scheduler before the scale-down, which then stops it first.
    await running('hello', 1, (a) => a.id === victim!.id && a.healthy === false);
    t.ok(await counted(s.url, 'weft_scheduler_allocation_health_changes_total', { job: 'hello', to: 'unhealthy' }), "one of hello's instances turned unhealthy");
    t.equal((await api(s.url, 'POST', '/v1/jobs/hello/scale', { count: 1 })).status, 200, 'hello scaled to 1');
    await counted(s.url, 'weft_scheduler_stops_total', { reason: 'scale-down' });
    const [kept] = await running('hello', 1);
    t.ok(kept!.id !== victim!.id, 'the scale-down stopped the unhealthy instance');
  })();

  const identities = (async () => {
    t.ok(await counted(s.url, 'weft_ca_csr_total', { result: 'signed' }), "the scheduler's CA signed the agent's CSRs");
    t.ok(await counted(s.agentMetricsUrl, 'weft_agent_certificate_expiry_timestamp_seconds', { service: 'hello' }), 'the agent holds the leaf of hello');
  })();

  const autoscaled = (async () => {
    t.ok((await counted(s.url, 'weft_autoscaler_max_replicas', { job: 'auto' })) === 2, "the autoscaler reports auto's group");
    t.ok(await counted(s.url, 'weft_autoscaler_decisions_total', { job: 'auto' }), 'and its decisions');
    // Through the mesh (h10's proxy presents the leaf the agent got signed), until the autoscaler has read the
    // error ratio from that proxy: an instance's own rate counts only once it is ready (30 s), the ceiling at once.
    await eventually(async () => (await s.call('auto')) === 200, 30_000, 'auto to answer through the mesh', 250);
    const ratio = await eventually(
      async () => {
        await s.call('auto');
        return sampleValue(await metrics(s.url), 'weft_autoscaler_metric_value', { job: 'auto', metric: 'errors' });
      },
      30_000,
      "the autoscaler to read auto's error ratio",
      250,
    );
    t.equal(ratio, 0, "the autoscaler read auto's error ratio from h10's proxy: 0");
  })();

  await Promise.all([lost, flipped, identities, autoscaled]);
}
