/**
 * The mesh half of bench/agent/startup.ts: two real `weft proxy` processes on
 * simulated hosts, so the bench's first request travels the path a caller's
 * request does:
 *
 *   bench -> weft proxy h2 outbound (127.0.0.2, as `frontend`) -mTLS-> weft proxy h3 inbound (127.0.0.3) -> task (127.0.0.3)
 *
 * Identities come from one weft CA in the layout the agent writes
 * (base/contracts/host-proxy.ts); the services under test get theirs before
 * the runs, as a host that already runs one instance of them has (a brand-new
 * service would add one CSR signature and the proxy's identity reload).
 * Every process is a child of the bench and stops in `stop()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { freePort } from '../../test/helpers/ports.js';
import { join } from 'node:path';
import { CertificateAuthority } from '../../certs/ca.js';
import { writeIdentityFiles } from '../../certs/store.js';
import { makeIdentity } from '../../test/certs/fixtures.js';
import { HOST_PROXY_DIR, HOST_PROXY_IDENTITIES_DIR, HOST_PROXY_LOCAL_FILE } from '../../base/contracts/host-proxy.js';

const TD = 'weft.bench';
const ROOT = join(import.meta.dirname, '../..');

/** A simulated host running `weft proxy`. */
export interface ProxyHost {
  readonly node: string;
  readonly address: string;
  readonly inboundPort: number;
}

/** The two hosts, the caller's outbound port, and a way to stop both proxies. */
export interface Mesh {
  readonly caller: ProxyHost;
  readonly target: ProxyHost;
  /** h2's outbound port for `frontend`: requests name the service in Host. */
  readonly outboundPort: number;
  /** One GET through the caller's outbound proxy: status, body, weft's reason header. */
  call(service: string, path?: string): Promise<{ status: number; body: string; reason: string }>;
  stop(): Promise<void>;
}

/** Starts h2 (caller) and h3 (where `services` run) against Consul at `consul`; resolves once both answer /healthz. */
export async function startMesh(dir: string, consul: string, services: readonly string[]): Promise<Mesh> {
  const ca = CertificateAuthority.create({ trustDomain: TD });
  const issue = (hostDir: string, service: string): void => void writeIdentityFiles(join(hostDir, HOST_PROXY_DIR, HOST_PROXY_IDENTITIES_DIR, service), makeIdentity(ca, service));
  const h2Dir = join(dir, 'h2');
  const h3Dir = join(dir, 'h3');
  issue(h2Dir, 'frontend');
  for (const s of services) issue(h3Dir, s);
  const outboundPort = await freePort('127.0.0.2');
  mkdirSync(join(h2Dir, HOST_PROXY_DIR), { recursive: true });
  writeFileSync(join(h2Dir, HOST_PROXY_DIR, HOST_PROXY_LOCAL_FILE), JSON.stringify({ host: 'h2', generation: 1, services: [{ service: 'frontend', outboundPort }] }));

  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
  };
  const proxy = async (node: string, dataDir: string, address: string): Promise<ProxyHost> => {
    const inboundPort = await freePort(address);
    const metricsPort = await freePort(address);
    const configPath = join(dataDir, 'config.yaml');
    writeFileSync(configPath, `ca:\n  trustDomain: ${TD}\nproxy:\n  shutdownGraceMs: 1000\n`);
    // biome-ignore format: one flag and its value per line
    const args = [
      'bin/weft.js', 'proxy',
      '--config', configPath,
      '--data-dir', dataDir,
      '--node', node,
      '--consul', consul,
      '--inbound-bind', address,
      '--inbound-port', String(inboundPort),
      '--outbound-bind', address,
      '--metrics-bind', address,
      '--metrics-port', String(metricsPort),
      '--log-level', 'warn',
      '--log-format', 'json',
    ];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WEFT_CONFIG: '' } });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    children.push(child);
    const deadline = Date.now() + 30_000;
    while ((await get(`http://${address}:${metricsPort}/healthz`).catch(() => undefined))?.status !== 200) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`weft proxy ${node} did not come up: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { node, address, inboundPort };
  };
  try {
    const target = await proxy('h3', h3Dir, '127.0.0.3');
    const caller = await proxy('h2', h2Dir, '127.0.0.2');
    return { caller, target, outboundPort, call: (service, path = '/') => get(`http://127.0.0.2:${outboundPort}${path}`, service), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A GET without keep-alive (every poll is a fresh caller), 2 s limit. */
function get(url: string, host?: string): Promise<{ status: number; body: string; reason: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 2000, headers: host === undefined ? {} : { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reason: String(res.headers['x-weft-reason'] ?? '') }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}
