/**
 * Inbound test rig: a weft CA and identities (test/certs/fixtures.ts), an
 * InboundTls adapter over certs/mtls.ts (what the src/ wiring will build),
 * recording local apps on 127.0.0.2, the inbound proxy on 127.0.0.2, and
 * callers connecting from 127.0.0.3 with a mesh identity, either through
 * https.request or as raw bytes over the TLS socket.
 * (Not a *.test.ts file, so tap does not run it.)
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { Registry } from 'prom-client';
import type { CertificateAuthority } from '../../../certs/ca.js';
import { type MeshIdentity, meshClientOptions, peerIdentity, requirePeerIdentity, secureContextOptions } from '../../../certs/mtls.js';
import { InboundProxy } from '../../../proxy/inbound/server.js';
import { LocalInstanceTable } from '../../../proxy/inbound/local-services.js';
import type { InboundOptions } from '../../../proxy/inbound/options.js';
import { ProxyMetrics } from '../../../proxy/metrics.js';
import type { InboundTls, IntentionSource, LocalInstance } from '../../../proxy/ports.js';
import { makeCa, makeIdentity, TD } from '../../certs/fixtures.js';
import { eventually } from '../../helpers/eventually.js';

export { TD };

export const HOST = '127.0.0.2';
export const CALLER_HOST = '127.0.0.3';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** InboundTls over certs/: one SecureContext per local service, the certs/ guard and peer identity. */
export function certsInboundTls(trustDomain: string, identities: Record<string, MeshIdentity>): InboundTls {
  const contexts = new Map(Object.entries(identities).map(([service, id]) => [service, tls.createSecureContext(secureContextOptions(id))]));
  const bundle = Object.values(identities)[0]?.bundlePem ?? '';
  return {
    trustDomain,
    serverOptions: () => ({ ca: bundle, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }),
    contextFor: (service) => contexts.get(service),
    guard: (server, onReject) => requirePeerIdentity(server, { trustDomain, onReject }),
    peerOf: (socket) => {
      const id = peerIdentity(socket);
      return id === undefined ? undefined : { uri: id.uri, namespace: id.namespace, service: id.service };
    },
  };
}

/** What a local app received. */
export interface Seen {
  method: string;
  url: string;
  httpVersion: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local app that records each request and answers JSON `{ app, ...seen }`; `slowMs` delays the answer. */
export async function startApp(t: Teardown, name: string, opts: { slowMs?: number } = {}): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, headers: req.headers, body };
      seen.push(s);
      const answer = (): void => {
        res.setHeader('content-type', 'application/json');
        res.setHeader('connection', 'keep-alive, x-app-hop');
        res.setHeader('x-app-hop', 'must not reach the caller');
        res.setHeader('keep-alive', 'timeout=5');
        res.end(JSON.stringify({ app: name, ...s }));
      };
      if (opts.slowMs === undefined) answer();
      else setTimeout(answer, opts.slowMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { server, port: (server.address() as AddressInfo).port, seen };
}

/** A CA plus identities for `services`, and one for a caller named `web`. */
export function makeMesh(services: string[], ca: CertificateAuthority = makeCa()): { ca: CertificateAuthority; ids: Record<string, MeshIdentity>; web: MeshIdentity } {
  const ids: Record<string, MeshIdentity> = {};
  for (const s of services) ids[s] = makeIdentity(ca, s);
  return { ca, ids, web: makeIdentity(ca, 'web') };
}

/** Starts an inbound proxy on HOST:0 with a fresh metrics registry; stopped at teardown. */
export async function startInbound(
  t: Teardown,
  opts: { ids: Record<string, MeshIdentity>; intentions: IntentionSource; instances: LocalInstance[] } & Partial<InboundOptions>,
): Promise<{ proxy: InboundProxy; port: number; registry: Registry; metrics: ProxyMetrics; local: LocalInstanceTable }> {
  const registry = new Registry();
  const metrics = new ProxyMetrics(registry);
  const local = new LocalInstanceTable(opts.instances);
  const proxy = await InboundProxy.start({
    host: HOST,
    port: 0,
    tls: certsInboundTls(TD, opts.ids),
    local,
    metrics,
    ...opts,
    intentions: opts.intentions,
  });
  t.teardown(() => proxy.close(100));
  return { proxy, port: proxy.address.port, registry, metrics, local };
}

/** A local instance record. */
export function instance(service: string, id: string, port: number, version = 'v1'): LocalInstance {
  return { id, service, version, address: HOST, port };
}

/** An answer as the caller saw it. */
export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTPS request through the inbound proxy as `caller`, to service `destination` (SNI). */
export function call(
  port: number,
  caller: MeshIdentity,
  destination: string,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        ...meshClientOptions(caller, { trustDomain: TD }),
        host: HOST,
        port,
        localAddress: CALLER_HOST,
        servername: destination,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('test timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** What a raw exchange returned: every byte until close (or the time limit), and whether the proxy closed. */
export interface RawResult {
  data: string;
  closed: boolean;
  error?: string;
}

/** A mesh TLS socket to the proxy as `caller` for `destination`, connected. */
export function connectRaw(port: number, caller: MeshIdentity | tls.ConnectionOptions, destination: string): Promise<tls.TLSSocket> {
  const options: tls.ConnectionOptions = isIdentity(caller) ? meshClientOptions(caller, { trustDomain: TD }) : caller;
  return new Promise((resolve, reject) => {
    // tls.connect hands localAddress to net.connect; its type omits it.
    const all = { ...options, host: HOST, port, localAddress: CALLER_HOST, servername: destination };
    const socket = tls.connect(all);
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

function isIdentity(x: MeshIdentity | tls.ConnectionOptions): x is MeshIdentity {
  return typeof (x as MeshIdentity).keyPem === 'string';
}

/** Collects what arrives on `socket` until it closes or `limitMs` passes. */
export function collect(socket: tls.TLSSocket | import('node:net').Socket, limitMs = 3000): Promise<RawResult> {
  return new Promise((resolve) => {
    const result: RawResult = { data: '', closed: false };
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(result);
    }, limitMs);
    socket.on('data', (d: Buffer) => {
      result.data += d.toString('latin1');
    });
    socket.on('error', (err) => {
      result.error = err.message;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      result.closed = true;
      resolve(result);
    });
  });
}

/** Sends `bytes` on a fresh mesh connection and collects the answer. */
export async function rawExchange(port: number, caller: MeshIdentity, destination: string, bytes: string | Buffer, limitMs = 3000): Promise<RawResult> {
  const socket = await connectRaw(port, caller, destination);
  const done = collect(socket, limitMs);
  socket.write(bytes);
  return done;
}

/** Whether `cond()` comes to hold within `limitMs` (the shared `eventually`, polled every 10 ms, as a boolean for `t.ok`). */
export async function until(cond: () => boolean, limitMs = 3000): Promise<boolean> {
  return eventually(() => cond(), limitMs, 'condition', 10).then(
    () => true,
    () => false,
  );
}
