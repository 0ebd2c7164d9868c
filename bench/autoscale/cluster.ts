/**
 * The cluster of bench/autoscale, every part its own process, started in
 * this order and stopped in the reverse one by `stop()` (also on Ctrl-C and
 * on an error):
 *
 *   weft dev-consul (127.0.0.1)
 *   weft proxy h2 (ADDRESSES.caller)  the caller's host: an outbound port as `frontend`
 *   weft proxy h3 (ADDRESSES.target)  the instances' host: inbound mTLS in front of them
 *   weft scheduler (127.0.0.1)        the leader: reconciler + autoscaler (scrape source), defaults
 *   agent-host.ts (h3)                weft's HostAgent with the process or the Docker driver
 *
 * The proxies get their identities from one weft CA before they start (as a
 * host that already ran the services has them); the agent runs without a
 * signer, as the integration tests' simulated hosts do. The scheduler and
 * the agent run with weft's defaults (the autoscaler's 30 s warm-up, the
 * agent's 1 s drain delay), except the scheduler does not register itself.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { CertificateAuthority } from '../../certs/ca.js';
import { writeIdentityFiles } from '../../certs/store.js';
import { makeIdentity } from '../../test/certs/fixtures.js';
import { HOST_PROXY_DIR, HOST_PROXY_IDENTITIES_DIR, HOST_PROXY_LOCAL_FILE } from '../../base/contracts/host-proxy.js';
import { agentToken } from '../../src/wiring/scheduler-token.js';
import { freePort } from '../../test/helpers/ports.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/weft.js');
const TD = 'weft.bench';
/** The scheduler API's operator token (the bench's own cluster). */
export const TOKEN = 'bench-autoscale-token-0123456789abcdef';
/** Simulated hosts; other benches and the tests use other addresses of 127/8. */
export const ADDRESSES = { caller: '127.0.41.2', target: '127.0.41.3' } as const;
/** The node name of the instances' host (its agent, its proxy). */
export const TARGET_NODE = 'h3';
/** The caller's service: the bench's requests leave through its outbound port. */
const CALLER_SERVICE = 'frontend';

export type DriverKind = 'process' | 'docker';

/** A started child and the tail of what it printed. */
interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  tail(): string;
}

/** The running cluster. */
export interface Cluster {
  readonly consulAddress: string;
  /** The scheduler API, http://127.0.0.1:port. */
  readonly schedulerUrl: string;
  /** h2's outbound port for `frontend`, on ADDRESSES.caller: name the service in Host. */
  readonly outboundPort: number;
  readonly targetInboundPort: number;
  /** The agent's data directory (its process driver's state lives under it). */
  readonly agentDataDir: string;
  /** The agent's /metrics (weft_agent_allocations: what it still tracks). */
  readonly agentMetricsUrl: string | undefined;
  /** Each proxy's /metrics URL, by node (what the autoscaler scrapes). */
  readonly metricsUrls: ReadonlyMap<string, string>;
  /** Output tails of every child, for an error report. */
  tails(): string;
  /** Every child's name and pid (for CPU accounting). */
  pids(): Array<{ name: string; pid: number }>;
  /** Stops every child (SIGTERM, SIGKILL after 15 s), the agent first. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the cluster in `dir` for `services` (the h3 proxy gets their identities); `logDir` keeps every child's output. */
export async function startCluster(opts: { dir: string; driver: DriverKind; services: readonly string[]; logDir?: string | undefined }): Promise<Cluster> {
  const { dir, driver } = opts;
  const children: Child[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      // The agent first (it removes its tasks), then the scheduler, the proxies, Consul last.
      for (const c of [...children].reverse()) await stopChild(c);
    })();
    return stopped;
  };
  const start = (name: string, args: string[], env: NodeJS.ProcessEnv = {}): Child => {
    const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, WEFT_CONFIG: '', CONSUL_HTTP_ADDR: '', ...env } });
    let tail = '';
    let log: WriteStream | undefined;
    if (opts.logDir !== undefined) {
      mkdirSync(opts.logDir, { recursive: true });
      log = createWriteStream(join(opts.logDir, `${driver}-${name}.log`), { flags: 'a' });
      proc.once('exit', () => log?.end());
    }
    const keep = (d: Buffer): void => {
      tail = (tail + d.toString()).slice(-6000);
      log?.write(d);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const child = { name, proc, tail: () => tail };
    children.push(child);
    return child;
  };
  const tails = (): string => children.map((c) => `--- ${c.name} (exit ${c.proc.exitCode ?? c.proc.signalCode ?? 'running'})\n${c.tail().split('\n').slice(-25).join('\n')}`).join('\n');

  try {
    const consulPort = await freePort();
    const consulAddress = `127.0.0.1:${consulPort}`;
    const consul = start('dev-consul', [BIN, 'dev-consul', '--port', String(consulPort), '--data-dir', join(dir, 'consul'), '--log-level', 'warn']);
    await waitHttp(consul, `http://${consulAddress}/v1/status/leader`, 30_000);

    // Identities, then the two proxies.
    const ca = CertificateAuthority.create({ trustDomain: TD });
    const issue = (hostDir: string, service: string): void => void writeIdentityFiles(join(hostDir, HOST_PROXY_DIR, HOST_PROXY_IDENTITIES_DIR, service), makeIdentity(ca, service));
    const h2Dir = join(dir, 'h2');
    const h3Dir = join(dir, 'h3');
    issue(h2Dir, CALLER_SERVICE);
    for (const s of opts.services) issue(h3Dir, s);
    const outboundPort = await freePort(ADDRESSES.caller);
    const metricsUrls = new Map<string, string>();
    writeFileSync(join(h2Dir, HOST_PROXY_DIR, HOST_PROXY_LOCAL_FILE), JSON.stringify({ host: 'h2', generation: 1, services: [{ service: CALLER_SERVICE, outboundPort }] }));
    const proxy = async (node: string, dataDir: string, address: string): Promise<number> => {
      const inboundPort = await freePort(address);
      const metricsPort = await freePort(address);
      const configPath = join(dataDir, 'config.yaml');
      writeFileSync(configPath, `ca:\n  trustDomain: ${TD}\nproxy:\n  shutdownGraceMs: 2000\n`);
      // biome-ignore format: one flag and its value per line
      const args = [
        BIN, 'proxy',
        '--config', configPath,
        '--data-dir', dataDir,
        '--node', node,
        '--consul', consulAddress,
        '--inbound-bind', address,
        '--inbound-port', String(inboundPort),
        '--outbound-bind', address,
        '--metrics-bind', address,
        '--metrics-port', String(metricsPort),
        '--log-level', 'warn',
        '--log-format', 'json',
      ];
      const child = start(`proxy-${node}`, args);
      await waitHttp(child, `http://${address}:${metricsPort}/healthz`, 30_000);
      metricsUrls.set(node, `http://${address}:${metricsPort}/metrics`);
      return inboundPort;
    };
    const targetInboundPort = await proxy(TARGET_NODE, h3Dir, ADDRESSES.target);
    await proxy('h2', h2Dir, ADDRESSES.caller);

    // The scheduler: weft's defaults but for its registration in Consul.
    const schedDir = join(dir, 'scheduler');
    mkdirSync(schedDir, { recursive: true });
    const schedConfig = join(schedDir, 'config.yaml');
    writeFileSync(schedConfig, `consul:\n  address: ${consulAddress}\nlog:\n  format: json\n  level: info\nscheduler:\n  token: ${TOKEN}\n  register: false\n`);
    const schedPort = await freePort();
    const scheduler = start('scheduler', [BIN, 'scheduler', '--port', String(schedPort)], { WEFT_DATA_DIR: schedDir, WEFT_CONFIG: schedConfig, WEFT_NODE_NAME: 'bench-sched' });
    const schedulerUrl = `http://127.0.0.1:${schedPort}`;
    await waitHttp(scheduler, `${schedulerUrl}/v1/health`, 60_000);

    // The agent of h3.
    const agentDataDir = join(dir, 'agent');
    const agent = start('agent', ['--import', 'tsx', join(import.meta.dirname, 'agent-host.ts')], {
      BENCH_CONSUL: consulAddress,
      BENCH_DATA_DIR: agentDataDir,
      BENCH_DRIVER: driver,
      BENCH_NODE: TARGET_NODE,
      BENCH_ADDRESS: ADDRESSES.target,
      BENCH_MESH_PORT: String(targetInboundPort),
      BENCH_SCHEDULER_URL: schedulerUrl,
      BENCH_AGENT_TOKEN: agentToken(TOKEN, TARGET_NODE),
    });
    const agentMetricsUrl = await new Promise<string | undefined>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the agent did not start within 60 s\n${agent.tail()}`)), 60_000);
      agent.proc.once('message', (m: { metricsUrl?: string }) => {
        clearTimeout(timer);
        resolve(m.metricsUrl);
      });
      agent.proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the agent exited ${code}\n${agent.tail()}`));
      });
    });
    const pids = (): Array<{ name: string; pid: number }> => children.filter((c) => c.proc.pid !== undefined).map((c) => ({ name: c.name, pid: c.proc.pid! }));
    return { consulAddress, schedulerUrl, outboundPort, targetInboundPort, agentDataDir, agentMetricsUrl, metricsUrls, tails, pids, stop };
  } catch (err) {
    const message = `${err instanceof Error ? err.message : String(err)}\n${tails()}`;
    await stop();
    throw new Error(message, { cause: err });
  }
}

async function stopChild(c: Child): Promise<void> {
  const p = c.proc;
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Polls `url` until it answers 200 (every 50 ms, at most `limitMs`); fails early when the child exits. */
async function waitHttp(child: Child, url: string, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (child.proc.exitCode !== null) throw new Error(`${child.name} exited ${child.proc.exitCode}`);
    if ((await status(url).catch(() => 0)) === 200) return;
    if (Date.now() > deadline) throw new Error(`${child.name} did not answer ${url} within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function status(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
