/**
 * The observability issue end to end: a real Prometheus (Debian's 2.42) with
 * the shipped HTTP-SD configuration and rules scrapes a running mesh:
 *
 *   dev Consul (in-process)            weft/leader, registrations, HTTP SD
 *   weft scheduler (child process)     weft-scheduler, /metrics behind its token
 *   hosts h2 (127.0.0.2), h3 (127.0.0.3), each with
 *     weft agent (in-process, process driver)   weft-agent, /metrics on a free port
 *     weft proxy (child process)                weft-proxy, /metrics
 *   job `web`: group v1 (2 instances, version v1) and group v2 (2, version v2,
 *     10% 500s), spread over both hosts, called through h2's outbound port at
 *     about 40 requests/s for the length of the test
 *
 * Prometheus finds every weft process through the HTTP SD route with the
 * shipped relabelling (host, weft_version), every recording rule returns
 * data, and killing v1's processes (restarts 30 s away) makes
 * WeftFewerHealthyThanDesired fire.
 *
 * The test's copy of the configuration is what `weft up --prometheus` writes
 * (prometheusUpConfig: this Consul, absolute rule paths, a token file), with
 * 1 s scrape, evaluation and SD refresh intervals instead of 15 s; its copy of
 * the rules is the shipped one with WeftFewerHealthyThanDesired's `for`
 * lowered from 5m to 3s: the test proves the alert's expression and the
 * metrics behind it, not the production wait (the `for` itself is covered by
 * the promtool unit tests), and must stay well under 90 s.
 */
import http from 'node:http';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { AGENT_LABELS } from '../../agent/driver.js';
import { loadConfig } from '../../src/config/load.js';
import { prometheusUpConfig } from '../../src/cli/up/prometheus.js';
import { HostAgent } from '../../src/wiring/agent-process.js';
import { agentToken } from '../../src/wiring/scheduler-token.js';
import { captureLogger } from '../agent/helpers.js';
import { makeCa } from '../certs/fixtures.js';
import { startTestConsul, type TestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { startPrometheus } from '../helpers/prometheus.js';
import { makeHost, type SimHost, startProxy, writeLocal } from './proxy-hosts.js';
import { api, startSchedulerChild, TOKEN } from './scheduler-cluster.js';

const ROOT = join(import.meta.dirname, '../..');
const DEMO = join(ROOT, 'scripts', 'demo-app.mjs');
const started = Date.now();

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
}
interface RuleFile {
  groups: Array<{ name: string; interval?: string; rules: Rule[] }>;
}
interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}
interface Target {
  scrapePool: string;
  labels: Record<string, string>;
  health: string;
  lastError: string;
}

/** A host agent as `weft agent` runs it, on the simulated host's address and data directory. */
async function startAgent(t: { teardown(fn: () => unknown): void }, consul: TestConsul, host: SimHost, schedulerUrl: string): Promise<HostAgent> {
  const config = loadConfig({
    env: {},
    flags: {
      dataDir: host.dataDir,
      nodeName: host.node,
      'consul.address': consul.address,
      'agent.driver': 'process',
      'agent.address': host.address,
      'agent.cpu': 4000,
      'agent.memory': 4096,
      'agent.heartbeatTtlMs': 1000,
      'agent.drainDelayMs': 50,
      'agent.stopDeadlineMs': 2000,
      'agent.superviseProxy': false,
      // Several agents in one test process: each takes a free port, which its registration carries.
      'agent.metrics.port': 0,
      // Instances carry the host proxy's inbound port (Meta weft_mesh_port).
      'proxy.inbound.port': host.inboundPort,
    },
  });
  const { logger } = captureLogger();
  const own = `${AGENT_LABELS.host}=${host.node}`;
  // The scheduler's signing keys with the host's token: only allocations they verify run.
  const signingKeysFrom = { address: schedulerUrl, token: agentToken(TOKEN, host.node) };
  const agent = await HostAgent.start({ config, logger, signer: null, watchWaitMs: 2000, labelFilter: own, signingKeysFrom });
  t.teardown(async () => {
    // Stop the runner first: a task removed below would otherwise get a restart timer (30 s) that holds the process.
    await agent.allocations.stop();
    for (const task of await agent.driver.list({ all: true, label: own }).catch(() => [])) await agent.driver.remove(task.id, { force: true }).catch(() => {});
    await agent.close({ deregisterNode: true }).catch(() => {});
  });
  return agent;
}

/** One group of the `web` job: `version` in its label, restarts 30 s after a death (so a killed one stays down). */
function group(version: string, env: Record<string, string>) {
  return {
    name: version,
    count: 2,
    restart: { attempts: 3, interval: '10m', delay: '30s', mode: 'fail' },
    tasks: [
      {
        name: 'web',
        driver: 'process',
        command: process.execPath,
        args: [DEMO],
        port: 0,
        resources: { cpu: 100, memory: 64 },
        env: { SERVICE: 'web', DRAIN_MS: '200', ...env },
        labels: { 'weft.service': 'web', 'weft.version': version },
        check: { http: '/health', interval: '1s', timeout: '500ms' },
      },
    ],
  };
}

/** Calls web through h2's outbound port every 25 ms until stopped; counts answers by status. */
function load(host: SimHost, outboundPort: number): { stop(): Promise<void>; codes: Map<number, number> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const codes = new Map<number, number>();
  let running = true;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.request({ host: host.address, port: outboundPort, path: '/', headers: { host: 'web' }, agent, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => {
          codes.set(res.statusCode ?? 0, (codes.get(res.statusCode ?? 0) ?? 0) + 1);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve());
      req.end();
    });
  const loop = (async () => {
    while (running) {
      await Promise.all([one(), new Promise((r) => setTimeout(r, 25))]);
    }
  })();
  return {
    codes,
    async stop() {
      running = false;
      await loop;
      agent.destroy();
    },
  };
}

t.test('Prometheus scrapes a running mesh with the shipped configuration and rules', async (t) => {
  const consul = await startTestConsul(t);
  const ca = makeCa();
  const h2 = await makeHost(t, ca, 'h2', '127.0.0.2', ['client', 'web']);
  const h3 = await makeHost(t, ca, 'h3', '127.0.0.3', ['client', 'web']);
  const outboundPort = await freePort(h2.address);
  await writeLocal(h2, [{ service: 'client', outboundPort }]);

  // The scheduler registers itself (weft-scheduler) as it does by default; spread puts both versions on both hosts.
  const schedDir = mkdtempSync(join(tmpdir(), 'weft-obs-sched-'));
  t.teardown(() => rmSync(schedDir, { recursive: true, force: true }));
  const configFile = join(schedDir, 'config.yaml');
  writeFileSync(
    configFile,
    [
      `consul:\n  address: ${consul.address}`,
      'log:\n  format: json\n  level: info',
      `scheduler:\n  token: ${TOKEN}\n  leaderTtlMs: 2000\n  reconcileIntervalMs: 1000\n  algorithm: spread`,
      '',
    ].join('\n'),
  );
  const sched = await startSchedulerChild(t, { dataDir: schedDir, configFile });
  const [, , agent2, agent3] = await Promise.all([
    startProxy(t, h2, consul.address),
    startProxy(t, h3, consul.address),
    startAgent(t, consul, h2, sched.url),
    startAgent(t, consul, h3, sched.url),
  ]);

  const submitted = await api(sched.url, 'POST', '/v1/jobs', {
    spec: { name: 'web', update: { minHealthyTime: '1s', healthDeadline: '30s' }, groups: [group('v1', {}), group('v2', { ERROR_RATE: '0.1' })] },
  });
  t.equal(submitted.status, 200, `job web submitted ${submitted.status === 200 ? '' : submitted.text}`);
  await eventually(
    async () => {
      const s = (await api(sched.url, 'GET', '/v1/jobs/web/status')).body as { allocations?: Array<{ status: string; healthy?: boolean }> };
      return (s.allocations ?? []).filter((a) => a.status === 'running' && a.healthy === true).length === 4;
    },
    40_000,
    'four web instances running and healthy',
    250,
  );
  const traffic = load(h2, outboundPort);
  t.teardown(() => traffic.stop());

  // The test's copies: the config `weft up --prometheus` writes, at 1 s intervals; the shipped rules, one `for` lowered.
  const dir = mkdtempSync(join(tmpdir(), 'weft-obs-prom-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
  const rulesDir = join(dir, 'rules');
  const shippedRules = join(ROOT, 'grafana', 'rules');
  const records = new Set<string>();
  mkdirSync(rulesDir);
  for (const file of readdirSync(shippedRules).filter((f) => f.endsWith('.yml'))) {
    const doc = parse(readFileSync(join(shippedRules, file), 'utf8')) as RuleFile;
    for (const g of doc.groups) {
      for (const r of g.rules) {
        if (r.record !== undefined) records.add(r.record);
        if (r.alert === 'WeftFewerHealthyThanDesired') r.for = '3s';
      }
    }
    writeFileSync(join(rulesDir, file), stringify(doc));
  }
  const config = parse(prometheusUpConfig(readFileSync(join(ROOT, 'grafana', 'prometheus-http-sd.yml'), 'utf8'), { consulAddress: consul.address, rulesDir, tokenFile })) as {
    global: Record<string, string>;
    scrape_configs: Array<{ http_sd_configs?: Array<{ refresh_interval?: string }> }>;
  };
  config.global['scrape_interval'] = '1s';
  config.global['evaluation_interval'] = '1s';
  for (const job of config.scrape_configs) for (const sd of job.http_sd_configs ?? []) sd.refresh_interval = '1s';
  const prom = await startPrometheus(t, stringify(config));
  const query = (q: string): Promise<Sample[]> => prom.api<{ result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(q)}`).then((d) => d.result);

  await t.test('every weft process is discovered through HTTP SD and scraped, labelled host and weft_version', async (t) => {
    const targets = await eventually(
      async () => {
        const all = (await prom.api<{ activeTargets: Target[] }>('/api/v1/targets')).activeTargets;
        const up = (pool: string): Target[] => all.filter((x) => x.scrapePool === pool && x.health === 'up');
        return up('weft-proxy').length === 2 && up('weft-agent').length === 2 && up('weft-scheduler').length === 1 ? all : undefined;
      },
      30_000,
      'two proxies, two agents and the scheduler up',
      250,
    );
    for (const pool of ['weft-proxy', 'weft-agent']) {
      t.strictSame(
        targets
          .filter((x) => x.scrapePool === pool)
          .map((x) => x.labels['host'])
          .sort(),
        ['h2', 'h3'],
        `${pool}: host from Meta weft_host`,
      );
    }
    const scheduler = targets.find((x) => x.scrapePool === 'weft-scheduler')!;
    t.equal(scheduler.labels['host'], 'sched', 'the scheduler registers its host');
    for (const x of targets.filter((x) => x.scrapePool !== 'weft-services')) t.match(x.labels['weft_version'], /^\d+\.\d+\.\d+/, `${x.scrapePool} ${x.labels['instance']}: weft_version`);
    // What the agent and scheduler now export, through Prometheus.
    const ready = await eventually(async () => (await query('weft_scheduler_nodes{state="ready"} == 2')).length === 1, 20_000, 'the leader reports two ready nodes');
    t.ok(ready, 'weft_scheduler_nodes');
    const tasks = await eventually(async () => {
      const r = await query('sum(weft_agent_tasks_registered)');
      return r.length === 1 && Number(r[0]!.value[1]) === 4 ? r : undefined;
    }, 20_000, 'four instances registered by the agents');
    t.ok(tasks, 'weft_agent_tasks_registered');
    const allocated = await query('sum(weft_scheduler_node_cpu_allocated_cores)');
    t.equal(Number(allocated[0]?.value[1]), 0.4, 'four allocations of 100 millicores reserved');
    // The certificate alert joins the proxy's and the agent's expiry on (host, service): they must line up.
    const joined = await eventually(async () => {
      const r = await query('min by (host, service) (weft_proxy_certificate_expiry_timestamp_seconds) - on (host, service) max by (host, service) (weft_agent_certificate_expiry_timestamp_seconds)');
      return r.length === 4 ? r : undefined;
    }, 20_000, 'proxy and agent certificate expiry for client and web on h2 and h3');
    t.strictSame(
      joined.map((s) => `${s.metric['host']}/${s.metric['service']}=${s.value[1]}`).sort(),
      ['h2/client=0', 'h2/web=0', 'h3/client=0', 'h3/web=0'],
      'the proxy presents the leaves the agent holds',
    );
  });

  await t.test('every recording rule returns data', async (t) => {
    t.ok(records.size >= 10, `${records.size} recording rules`);
    for (const record of records) {
      const samples = await eventually(async () => {
        const r = await query(record);
        return r.length > 0 ? r : undefined;
      }, 30_000, `${record} to have data`);
      t.ok(samples.length > 0, `${record}: ${samples.length} series, e.g. ${JSON.stringify(samples[0]!.metric)} = ${samples[0]!.value[1]}`);
    }
    const versions = (await query('destination_version:weft_proxy_requests:rate1m{destination="web"}')).map((s) => s.metric['version']).sort();
    t.strictSame(versions, ['v1', 'v2'], 'both versions answer');
    const sent = [...traffic.codes.values()].reduce((a, b) => a + b, 0);
    t.ok(sent > 0, `load: ${sent} answers so far (${JSON.stringify(Object.fromEntries(traffic.codes))})`);
  });

  await t.test('killing instances below the desired count fires WeftFewerHealthyThanDesired', async (t) => {
    const alerts = async (): Promise<Array<{ labels: Record<string, string>; state: string }>> =>
      (await prom.api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>('/api/v1/alerts')).alerts.filter((a) => a.labels['alertname'] === 'WeftFewerHealthyThanDesired');
    t.strictSame(await alerts(), [], 'not firing while every group is healthy');
    let killed = 0;
    for (const [host, agent] of [
      [h2, agent2],
      [h3, agent3],
    ] as const) {
      const tasks = await agent.driver.list({ label: `${AGENT_LABELS.host}=${host.node}` });
      for (const task of tasks) {
        if (task.labels['weft.version'] !== 'v1' || task.pid === undefined) continue;
        process.kill(task.pid, 'SIGKILL');
        killed++;
      }
    }
    t.equal(killed, 2, "v1's two processes killed (their restarts are 30 s away)");
    const firing = await eventually(
      async () => {
        const a = (await alerts()).filter((x) => x.state === 'firing');
        return a.length > 0 ? a : undefined;
      },
      30_000,
      'WeftFewerHealthyThanDesired to fire',
      250,
    );
    t.strictSame(
      firing.map((a) => [a.labels['exported_job'], a.labels['group']]),
      [['web', 'v1']],
      'for job web, group v1 only',
    );
    t.comment(`whole test so far: ${Math.round((Date.now() - started) / 1000)} s`);
  });
});
