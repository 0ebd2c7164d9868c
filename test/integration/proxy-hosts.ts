/**
 * Simulated hosts for the `weft proxy` integration tests: a data directory
 * per host with identities issued by one weft CA (the layout `weft cert issue
 * --out` and the agent write) and local.json, a REAL `weft proxy` process per
 * host (node bin/weft.js proxy) bound to the host's 127.0.0.x address, and
 * small local apps; the scheduler's public signing keys, as the agent hands
 * them to its proxy (`meshSigner` signs the splits and intentions tests write
 * into KV). Everything stops at teardown; every wait is bounded.
 * (Not a *.test.ts file: tap does not run it.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateAuthority } from '../../certs/ca.js';
import { writeIdentityFiles } from '../../certs/store.js';
import { identitiesDir } from '../../src/wiring/proxy-identities.js';
import { localConfigPath } from '../../src/wiring/proxy-local-config.js';
import { makeIdentity, TD } from '../certs/fixtures.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { type TestSigner, testSigner } from '../helpers/signing.js';

export { TD };

interface Teardown {
  teardown(fn: () => unknown): void;
}

const ROOT = join(import.meta.dirname, '../..');

/** One simulated host: its address, node name, data directory and ports. */
export interface SimHost {
  readonly node: string;
  readonly address: string;
  readonly dataDir: string;
  readonly inboundPort: number;
  readonly metricsPort: number;
}

let signer: Promise<TestSigner> | undefined;

/**
 * The signing keys of this test file's hosts, as if one scheduler had signed
 * (one per process: every host trusts it). Splits and intentions written by
 * hand go through it: `(await meshSigner(t)).put(consul.consul, key, doc)`.
 */
export function meshSigner(t: Teardown): Promise<TestSigner> {
  signer ??= testSigner(t);
  return signer;
}

/** Creates a host's data directory with identities for `services`, the signing keys and a config file. */
export async function makeHost(t: Teardown, ca: CertificateAuthority, node: string, address: string, services: readonly string[]): Promise<SimHost> {
  const dataDir = await mkdtemp(join(tmpdir(), `weft-${node}-`));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  for (const service of services) writeIdentityFiles(join(identitiesDir(dataDir), service), makeIdentity(ca, service));
  await (await meshSigner(t)).handToProxy(dataDir);
  // Short reload interval: tests change files and want the proxy to notice at once.
  await writeFile(join(dataDir, 'config.yaml'), `ca:\n  trustDomain: ${TD}\nproxy:\n  reloadIntervalMs: 100\n  shutdownGraceMs: 5000\n`);
  return { node, address, dataDir, inboundPort: await freePort(address), metricsPort: await freePort(address) };
}

/** Writes local.json (what the agent hands the proxy). */
export async function writeLocal(host: SimHost, services: Array<{ service: string; outboundPort: number }>, generation = 1): Promise<void> {
  const path = localConfigPath(host.dataDir);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(`${path}.tmp`, JSON.stringify({ host: host.node, generation, services }));
  await rename(`${path}.tmp`, path);
}

/** A running `weft proxy` child process. */
export interface ProxyChild {
  readonly proc: ChildProcess;
  /** Everything it logged so far (JSON lines). */
  logs(): string;
  /** Sends `signal` and resolves with the exit code (SIGKILL after `limitMs`). */
  stop(signal?: NodeJS.Signals, limitMs?: number): Promise<number | null>;
}

/** Starts `weft proxy` for `host` against Consul at `consul`; resolves once /healthz answers. */
export async function startProxy(t: Teardown, host: SimHost, consul: string, extra: string[] = []): Promise<ProxyChild> {
  const args = [
    'bin/weft.js',
    'proxy',
    '--config',
    join(host.dataDir, 'config.yaml'),
    '--data-dir',
    host.dataDir,
    '--node',
    host.node,
    '--consul',
    consul,
    '--inbound-bind',
    host.address,
    '--inbound-port',
    String(host.inboundPort),
    '--outbound-bind',
    host.address,
    '--metrics-bind',
    host.address,
    '--metrics-port',
    String(host.metricsPort),
    '--log-format',
    'json',
    '--log-level',
    'debug',
    ...extra,
  ];
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_CONFIG: '' } });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const child: ProxyChild = {
    proc,
    logs: () => out,
    async stop(signal = 'SIGTERM', limitMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), limitMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  await eventually(
    async () => {
      if (proc.exitCode !== null) throw new Error(`weft proxy exited ${proc.exitCode}: ${out}`);
      return (await get(`http://${host.address}:${host.metricsPort}/healthz`)).status === 200 ? true : undefined;
    },
    20_000,
    `weft proxy ${host.node} to listen`,
    50,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${out}`);
  });
  return child;
}

/** A GET with a 5 s limit; the body as text. */
export function get(url: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** A local app: answers `{ app, path, source }`; /slow waits `slowMs`; upgrades echo raw bytes after 101. */
export async function startApp(t: Teardown, name: string, address: string, opts: { slowMs?: number } = {}): Promise<{ port: number; hits: number }> {
  const state = { port: 0, hits: 0 };
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    state.hits++;
    const answer = (): void => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ app: name, path: req.url, source: req.headers['x-weft-source'] ?? null }));
    };
    req.resume();
    if (req.url === '/slow') setTimeout(answer, opts.slowMs ?? 1000);
    else answer();
  });
  server.on('upgrade', (_req, socket: Socket, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  state.port = (server.address() as AddressInfo).port;
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return state;
}

/** What Consul holds for one instance, per the architecture's Meta contract. */
export function instanceRegistration(host: SimHost, id: string, service: string, port: number, meta: { version?: string; weight?: number } = {}) {
  return {
    id,
    name: service,
    address: host.address,
    port,
    tags: ['weft'],
    meta: { weft_host: host.node, weft_instance: id, weft_version: meta.version ?? 'v1', weft_weight: String(meta.weight ?? 1), weft_mesh_port: String(host.inboundPort) },
  };
}
