/**
 * The pieces of the scheduler integration tests: REAL `weft scheduler`
 * processes (node bin/weft.js scheduler) sharing one data directory (token,
 * secrets key), in-process HostAgents on their own 127.0.0.0/8 addresses with
 * the process driver (or Docker), and a tiny API client. Test files running in
 * parallel use different addresses: the schedulers pick ports independently. Everything started here stops at teardown; every wait
 * is bounded. (Not a *.test.ts file: tap does not run it.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostAgent } from '../../src/wiring/agent-process.js';
import { AGENT_LABELS } from '../../agent/driver.js';
import { apiSecretSource } from '../../agent/scheduler-secrets.js';
import { loadConfig } from '../../src/config/load.js';
import { agentToken } from '../../src/wiring/scheduler-token.js';
import { captureLogger } from '../agent/helpers.js';
import { createDiscoveryClient, type DiscoveryClient } from '../../discovery/client.js';
import { startTestConsul, type TestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

const ROOT = join(import.meta.dirname, '../..');
export const TOKEN = 'test-operator-token-0123456789abcdef';

/** A `weft scheduler` child. */
export interface SchedulerChild {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** Everything it printed so far. */
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** The scheduler cluster's shared data directory and config file. */
export async function schedulerDataDir(t: Teardown, consul: TestConsul): Promise<{ dataDir: string; configFile: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-sched-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const configFile = join(dataDir, 'config.yaml');
  await writeFile(
    configFile,
    [
      `consul:\n  address: ${consul.address}`,
      'log:\n  format: json\n  level: info',
      `scheduler:\n  token: ${TOKEN}\n  leaderTtlMs: 2000\n  lostAfterMs: 3000\n  reconcileIntervalMs: 1000\n  register: false`,
      '',
    ].join('\n'),
  );
  return { dataDir, configFile };
}

/** Starts one `weft scheduler` and waits for its health route. */
export async function startSchedulerChild(t: Teardown, env: { dataDir: string; configFile: string }): Promise<SchedulerChild> {
  const port = await freePort();
  let out = '';
  const proc = spawn(process.execPath, [join(ROOT, 'bin/weft.js'), 'scheduler', '--port', String(port)], {
    env: { ...process.env, WEFT_DATA_DIR: env.dataDir, WEFT_CONFIG: env.configFile, WEFT_NODE_NAME: 'sched', CONSUL_HTTP_ADDR: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  t.teardown(() => kill());
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => ((await fetch(`${url}/v1/health`).catch(() => undefined))?.ok ? true : undefined), 20_000, `scheduler on ${port}\n${out}`);
  return { proc, port, url, output: () => out, kill };
}

/** A dev Consul, a discovery client on it (closed at teardown) and one scheduler child with a data directory of its own. */
export async function startSchedulerOnConsul(t: Teardown): Promise<{ consul: TestConsul; client: DiscoveryClient; sched: SchedulerChild; url: () => string }> {
  const consul = await startTestConsul(t);
  const client = createDiscoveryClient({ consul: { address: consul.address } });
  t.teardown(() => client.close());
  const sched = await startSchedulerChild(t, await schedulerDataDir(t, consul));
  return { consul, client, sched, url: () => sched.url };
}

/** A simulated host: an in-process agent with the process driver on its own 127.0.0.x address. */
export interface SimAgent {
  readonly host: string;
  readonly address: string;
  readonly dataDir: string;
  /** The agent's log lines, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  agent: HostAgent;
  start(): Promise<void>;
  /** Stops the agent's loops without deregistering: its heartbeat goes critical, its processes keep running. */
  crash(): Promise<void>;
}

/** How a simulated host differs from the default (process driver, no host volumes). */
export interface SimAgentOptions {
  /** Docker: the host's containers share the test's dockerd, so it registers only its own (io.weft.host). */
  driver?: 'process' | 'docker';
  /** agent.hostVolumes: name -> directory, advertised in Meta weft_volumes. */
  hostVolumes?: Record<string, string>;
  /**
   * Configure the agent as an operator would (client.address + client.token = its host token)
   * and let it choose its signer and secret source itself: CSRs go to the scheduler.
   */
  asConfigured?: boolean;
  /** The host proxy's inbound port the agent registers its instances with (Meta weft_mesh_port). */
  meshPort?: number;
  /** agent.drainDelayMs (50 by default here: most tests do not route through proxies). */
  drainDelayMs?: number;
}

/** Creates and starts a host agent `host` at `address`, fetching secrets from `schedulerUrl`. */
export async function startSimAgent(t: Teardown, consul: TestConsul, host: string, address: string, schedulerUrls: () => string, opts: SimAgentOptions = {}): Promise<SimAgent> {
  const dataDir = await mkdtemp(join(tmpdir(), `weft-${host}-`));
  const volumes: Record<string, string> = {};
  for (const [name, dir] of Object.entries(opts.hostVolumes ?? {})) volumes[`agent.hostVolumes.${name}`] = dir;
  const config = loadConfig({
    env: {},
    flags: {
      dataDir,
      nodeName: host,
      'consul.address': consul.address,
      'agent.driver': opts.driver ?? 'process',
      'agent.address': address,
      'agent.cpu': 4000,
      'agent.memory': 4096,
      'agent.heartbeatTtlMs': 1000,
      'agent.drainDelayMs': opts.drainDelayMs ?? 50,
      'agent.stopDeadlineMs': 2000,
      'agent.superviseProxy': false,
      ...(opts.meshPort === undefined ? {} : { 'proxy.inbound.port': opts.meshPort }),
      ...volumes,
      ...(opts.asConfigured === true ? { 'client.address': schedulerUrls(), 'client.token': agentToken(TOKEN, host) } : {}),
    },
  });
  const { logger, lines } = captureLogger();
  const token = agentToken(TOKEN, host);
  // Only this host's tasks: a Docker host shares the daemon with other hosts and test files.
  const ownTasks = `${AGENT_LABELS.host}=${host}`;
  const sim: SimAgent = {
    host,
    address,
    dataDir,
    logs: lines,
    agent: undefined as unknown as HostAgent,
    async start() {
      const own =
        opts.asConfigured === true
          ? {}
          : { signer: null, secrets: (h: string, a: string) => apiSecretSource(schedulerUrls(), token)(h, a), signingKeysFrom: { address: schedulerUrls(), token } };
      sim.agent = await HostAgent.start({ config, logger, watchWaitMs: 2000, labelFilter: ownTasks, ...own });
    },
    async crash() {
      await sim.agent.close();
    },
  };
  await sim.start();
  t.teardown(async () => {
    // Whatever still runs (a failed test) is killed: nothing may outlive the suite.
    const a = sim.agent;
    for (const task of await a.driver.list({ all: true, label: ownTasks }).catch(() => [])) await a.driver.remove(task.id, { force: true }).catch(() => {});
    await a.close({ deregisterNode: true }).catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  });
  return sim;
}

/** A JSON call to the scheduler API. */
export async function api(url: string, method: string, path: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const headers: Record<string, string> = {};
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = typeof body === 'string' ? 'application/yaml' : 'application/json';
  const res = await fetch(url + path, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // metrics and the like
  }
  return { status: res.status, body: parsed, text };
}

/** The demo app (scripts/demo-app.mjs) that the integration jobs run. */
export const DEMO_APP = new URL('../../scripts/demo-app.mjs', import.meta.url).pathname;

/**
 * A job of one group `app` with one process-driver task `demo` running the
 * demo app as `service`; `more.group` and `more.task` add to (or override)
 * the group's and the task's fields.
 */
export function demoJob(name: string, service: string = name, more: { group?: Record<string, unknown>; task?: Record<string, unknown> } = {}) {
  return {
    name,
    update: { minHealthyTime: '1s', healthDeadline: '20s' },
    groups: [
      {
        name: 'app',
        count: 1,
        ...more.group,
        tasks: [
          {
            name: 'demo',
            driver: 'process',
            command: process.execPath,
            args: [DEMO_APP],
            port: 0,
            resources: { cpu: 100, memory: 64 },
            env: { DRAIN_MS: '200' },
            labels: { 'weft.service': service },
            ...more.task,
          },
        ],
      },
    ],
  };
}
