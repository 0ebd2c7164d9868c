/**
 * The two topologies of bench/proxy/two-hops.ts, built from the same
 * certificates and the same app, on simulated hosts 127.0.0.2 and 127.0.0.3:
 *
 *   weft     wrk -> weft proxy h2 outbound (127.0.0.2) -mTLS-> weft proxy h3 inbound (127.0.0.3) -> app
 *   haproxy  wrk -> haproxy h2 (127.0.0.2)           -mTLS-> haproxy h3 (127.0.0.3, verify required) -> app
 *   direct   wrk -> app
 *   floor    wrk -> relay (127.0.0.2) -mTLS-> relay (127.0.0.3) -> app, no weft code:
 *            bare-relay.mjs (Node's HTTP server and a keep-alive client, node:http or
 *            undici: what a proxy built on http.Server costs) or raw-relay.mjs ('raw':
 *            llhttp on raw sockets, what weft's data path is built like); one pair per kind asked for
 *
 * The app is HAProxy answering `http-request return` (nbthread 1): the
 * cheapest HTTP server on the machine, so neither topology is capped by it.
 * Every process is a child of the bench and is killed by `stopAll()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { freePort } from '../../test/helpers/ports.js';
import { join } from 'node:path';
import { bundlePem } from '../../certs/bundle.js';
import { CertificateAuthority } from '../../certs/ca.js';
import { chainPem } from '../../certs/identity.js';
import { generateKeyPair, privateKeyPem } from '../../certs/keys.js';
import type { MeshIdentity } from '../../certs/mtls.js';
import { spiffeId } from '../../certs/spiffe-id.js';
import { writeIdentityFiles } from '../../certs/store.js';
import { type DevConsul, startDevConsul } from '../../discovery/dev-agent/index.js';
import { PROXY_NODE_FLAGS } from '../../base/contracts/host-proxy.js';

export const TD = 'weft.bench';
const ROOT = join(import.meta.dirname, '../..');

/** A listening address. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** Everything started, with what the measurements need. */
export interface Topology {
  readonly app: Endpoint;
  readonly weft: Endpoint;
  readonly haproxy: Endpoint;
  /** The bare Node relays, by client kind. */
  readonly floors: ReadonlyArray<{ readonly client: FloorClient; readonly endpoint: Endpoint }>;
  /** pids of the measured proxies (RSS). */
  readonly pids: Record<string, number>;
  stopAll(): Promise<void>;
}

/** Which bare relay: bare-relay.mjs with node:http or undici upstream, or raw-relay.mjs. */
export type FloorClient = 'node' | 'undici' | 'raw';

/**
 * Node flags of the weft proxies: what the agent and `weft up` pass
 * (PROXY_NODE_FLAGS), unless WEFT_BENCH_NODE_ARGS says otherwise ('' for none: the A/B).
 */
export function proxyNodeArgs(): string[] {
  return (process.env['WEFT_BENCH_NODE_ARGS'] ?? PROXY_NODE_FLAGS.join(' ')).split(' ').filter(Boolean);
}

function identity(ca: CertificateAuthority, service: string): MeshIdentity {
  const pair = generateKeyPair();
  return { keyPem: privateKeyPem(pair.privateKey), certChainPem: chainPem(ca.issue(pair.publicKey, spiffeId(TD, 'default', service))), bundlePem: bundlePem(ca.bundle()) };
}

const HAPROXY_COMMON = `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
`;

/** Starts the app, both weft proxies (dev Consul in this process) and both HAProxies. */
export async function startTopology(dir: string, opts: { log: (s: string) => void; floors?: readonly FloorClient[] }): Promise<Topology> {
  const children: ChildProcess[] = [];
  let consul: DevConsul | undefined;
  const stopAll = async (): Promise<void> => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    await consul?.close();
  };
  const run = (name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code, signal) => {
      if (signal === null && code !== 0) opts.log(`${name} exited ${code}: ${err.slice(-2000)}`);
    });
    children.push(child);
    return child;
  };
  try {
    const ca = CertificateAuthority.create({ trustDomain: TD });
    const frontend = identity(ca, 'frontend');
    const backend = identity(ca, 'backend');
    mkdirSync(join(dir, 'haproxy'), { recursive: true });
    // HAProxy wants key and chain in one PEM, and the roots as a ca-file: the same certificates weft uses.
    writeFileSync(join(dir, 'haproxy', 'frontend.pem'), frontend.certChainPem + frontend.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'haproxy', 'backend.pem'), backend.certChainPem + backend.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'haproxy', 'bundle.pem'), frontend.bundlePem);

    const app: Endpoint = { host: '127.0.0.3', port: await freePort('127.0.0.3') };
    const hap: Endpoint = { host: '127.0.0.2', port: await freePort('127.0.0.2') };
    const hapIn: Endpoint = { host: '127.0.0.3', port: await freePort('127.0.0.3') };
    const h = join(dir, 'haproxy');
    const cfg = (name: string, body: string): string => {
      const path = join(h, `${name}.cfg`);
      writeFileSync(path, HAPROXY_COMMON + body);
      return path;
    };
    run('app', 'haproxy', ['-db', '-f', cfg('app', `frontend app\n  bind ${app.host}:${app.port}\n  http-request return status 200 content-type text/plain string ok\n`)]);
    const hapInbound = run('haproxy h3', 'haproxy', [
      '-db',
      '-f',
      cfg(
        'h3',
        `frontend mesh_in\n  bind ${hapIn.host}:${hapIn.port} ssl crt ${h}/backend.pem ca-file ${h}/bundle.pem verify required ssl-min-ver TLSv1.3\n  default_backend app\nbackend app\n  http-reuse always\n  server app1 ${app.host}:${app.port}\n`,
      ),
    ]);
    const hapOutbound = run('haproxy h2', 'haproxy', [
      '-db',
      '-f',
      cfg(
        'h2',
        `frontend out\n  bind ${hap.host}:${hap.port}\n  default_backend mesh\nbackend mesh\n  http-reuse always\n  server h3 ${hapIn.host}:${hapIn.port} ssl crt ${h}/frontend.pem ca-file ${h}/bundle.pem verify required sni str(backend) ssl-min-ver TLSv1.3\n`,
      ),
    ]);

    // weft: dev Consul in this process (idle during the runs: its blocking queries are parked).
    consul = await startDevConsul({ bind: '127.0.0.1', port: 0, dataDir: join(dir, 'consul'), nodeName: 'bench', datacenter: 'dc1' });
    const h2 = join(dir, 'h2');
    const h3 = join(dir, 'h3');
    writeIdentityFiles(join(h2, 'proxy', 'identities', 'frontend'), frontend);
    writeIdentityFiles(join(h3, 'proxy', 'identities', 'backend'), backend);
    const weft: Endpoint = { host: '127.0.0.2', port: await freePort('127.0.0.2') };
    writeFileSync(join(h2, 'proxy', 'local.json'), JSON.stringify({ host: 'h2', generation: 1, services: [{ service: 'frontend', outboundPort: weft.port }] }));
    const inboundPort = await freePort('127.0.0.3');
    await fetch(`http://${consul.address}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({
        ID: 'h3-backend-1',
        Name: 'backend',
        Address: app.host,
        Port: app.port,
        Tags: ['weft'],
        Meta: { weft_host: 'h3', weft_instance: 'backend-1', weft_version: 'v1', weft_weight: '1', weft_mesh_port: String(inboundPort) },
      }),
    });
    const weftProxy = async (node: string, dataDir: string, address: string, inPort: number): Promise<ChildProcess> => {
      const metricsPort = await freePort(address);
      const configPath = join(dataDir, 'config.yaml');
      writeFileSync(configPath, `ca:\n  trustDomain: ${TD}\nproxy:\n  shutdownGraceMs: 1000\n`);
      const child = run(`weft ${node}`, process.execPath, [
        ...proxyNodeArgs(),
        process.env['WEFT_BENCH_ENTRY'] ?? 'bin/weft.js',
        'proxy',
        '--config', configPath,
        '--data-dir', dataDir,
        '--node', node,
        '--consul', consul!.address,
        '--inbound-bind', address,
        '--inbound-port', String(inPort),
        '--outbound-bind', address,
        '--metrics-bind', address,
        '--metrics-port', String(metricsPort),
        '--log-level', 'warn',
        '--log-format', 'json',
      ], { WEFT_CONFIG: '' });
      await waitFor(`http://${address}:${metricsPort}/healthz`, 30_000);
      return child;
    };
    const weftInbound = await weftProxy('h3', h3, '127.0.0.3', inboundPort);
    const weftOutbound = await weftProxy('h2', h2, '127.0.0.2', await freePort('127.0.0.2'));
    const floors: Array<{ client: FloorClient; endpoint: Endpoint }> = [];
    const floorPids: Record<string, number> = {};
    for (const client of opts.floors ?? []) {
      const inPort = await freePort('127.0.0.3');
      const outPort = await freePort('127.0.0.2');
      const relay = (mode: string, args: string[]): ChildProcess =>
        client === 'raw'
          ? run(`floor ${mode} raw`, process.execPath, [join(ROOT, 'bench/proxy/raw-relay.mjs'), mode, ...args])
          : run(`floor ${mode} ${client}`, process.execPath, [join(ROOT, 'bench/proxy/bare-relay.mjs'), mode, ...args, client]);
      floorPids[`floorIn-${client}`] = relay('inbound', ['127.0.0.3', String(inPort), app.host, String(app.port), join(h3, 'proxy', 'identities', 'backend')]).pid!;
      floorPids[`floorOut-${client}`] = relay('outbound', ['127.0.0.2', String(outPort), '127.0.0.3', String(inPort), join(h2, 'proxy', 'identities', 'frontend'), 'backend']).pid!;
      floors.push({ client, endpoint: { host: '127.0.0.2', port: outPort } });
      await waitFor(`http://127.0.0.2:${outPort}/`, 10_000);
    }
    await waitFor(`http://${app.host}:${app.port}/`, 10_000);
    await waitFor(`http://${hap.host}:${hap.port}/`, 10_000);
    await waitFor(`http://${weft.host}:${weft.port}/`, 10_000, 'backend');
    return {
      app,
      weft,
      haproxy: hap,
      floors,
      pids: { weftOutbound: weftOutbound.pid!, weftInbound: weftInbound.pid!, haproxyOutbound: hapOutbound.pid!, haproxyInbound: hapInbound.pid!, ...floorPids },
      stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Polls `url` until it answers 200 (bounded). */
async function waitFor(url: string, limitMs: number, host?: string): Promise<void> {
  const deadline = Date.now() + limitMs;
  let last = '';
  while (Date.now() < deadline) {
    const status = await new Promise<number>((resolve) => {
      const req = http.get(url, { agent: false, timeout: 1000, headers: host === undefined ? {} : { host } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', (e) => {
        last = e.message;
        resolve(0);
      });
    });
    if (status === 200) return;
    last = `status ${status}`;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready after ${limitMs} ms (${last})`);
}
