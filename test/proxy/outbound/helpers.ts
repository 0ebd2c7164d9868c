/**
 * Shared pieces of the outbound tests: adapters from certs/ to the proxy's
 * OutboundTls port, an in-memory RouteSource the test drives, a stand-in for
 * a host's inbound proxy (an mTLS HTTPS server on 127.0.0.x that dispatches
 * on `x-weft-instance` and counts handshakes), and a keep-alive HTTP client
 * for talking to the outbound listener. (Not a *.test.ts file: tap skips it.)
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { type ConnectionOptions, createSecureContext } from 'node:tls';
import { bundlePem } from '../../../certs/bundle.js';
import type { CertificateAuthority } from '../../../certs/ca.js';
import { meshClientOptions, meshServerOptions, peerIdentity, requirePeerIdentity, secureContextOptions } from '../../../certs/mtls.js';
import { OutboundProxy, type OutboundDeps } from '../../../proxy/outbound/server.js';
import type { OutboundOptionsInput } from '../../../proxy/outbound/options.js';
import type { OutboundTls, RouteInstance, RouteSource, Subscription } from '../../../proxy/ports.js';
import { makeCa, makeIdentity, TD } from '../../certs/fixtures.js';

export { makeCa, TD };

/** The part of a tap Test the helpers need. */
export interface Host {
  teardown(fn: () => unknown): void;
}

/**
 * OutboundTls over certs/: one identity per calling service, issued by `ca`,
 * client options built once per (caller, destination) and the server pinned
 * to the destination service (the inbound presents the destination's leaf).
 */
export function certsTls(ca: CertificateAuthority, callers: readonly string[]): OutboundTls & { handshakesBuilt: number } {
  const bundle = bundlePem(ca.bundle());
  const identities = new Map(callers.map((c) => [c, makeIdentity(ca, c, bundle)]));
  const cache = new Map<string, ConnectionOptions>();
  const tls = {
    trustDomain: ca.trustDomain,
    handshakesBuilt: 0,
    clientOptions(caller: string, destination: string): ConnectionOptions | undefined {
      const identity = identities.get(caller);
      if (identity === undefined) return undefined;
      const key = `${caller}\0${destination}`;
      let options = cache.get(key);
      if (options === undefined) {
        options = meshClientOptions(identity, { trustDomain: ca.trustDomain, expect: (id) => id.service === destination });
        cache.set(key, options);
        tls.handshakesBuilt++;
      }
      return options;
    },
  };
  return tls;
}

/** A RouteSource the test pushes values into (what Consul watches would deliver). */
export class FakeRouteSource implements RouteSource {
  readonly #instances = new Map<string, readonly RouteInstance[]>();
  readonly #splits = new Map<string, string | null>();
  readonly #instanceSubs = new Map<string, Set<(v: readonly RouteInstance[]) => void>>();
  readonly #splitSubs = new Map<string, Set<(v: string | null) => void>>();

  /** Pushes a service's instances to every subscriber. */
  setInstances(service: string, instances: readonly RouteInstance[]): void {
    this.#instances.set(service, instances);
    for (const fn of this.#instanceSubs.get(service) ?? []) fn(instances);
  }

  /** Pushes a split document (object -> JSON) or null. */
  setSplit(service: string, split: Record<string, number> | string | null): void {
    const text = split === null ? null : typeof split === 'string' ? split : JSON.stringify(split);
    this.#splits.set(service, text);
    for (const fn of this.#splitSubs.get(service) ?? []) fn(text);
  }

  watchInstances(service: string, onValue: (v: readonly RouteInstance[]) => void): Subscription {
    const known = this.#instances.get(service);
    if (known !== undefined) onValue(known);
    return subscribe(this.#instanceSubs, service, onValue);
  }

  watchSplit(service: string, onValue: (v: string | null) => void): Subscription {
    // Like a KV watch: the first answer says "no split" when there is none.
    onValue(this.#splits.get(service) ?? null);
    return subscribe(this.#splitSubs, service, onValue);
  }

  #activatable: ReadonlySet<string> = new Set();
  readonly #activatableSubs = new Set<(v: ReadonlySet<string>) => void>();

  /** Pushes the services that may be at zero (what the `weft/zero/` watch delivers). */
  setActivatable(...services: string[]): void {
    this.#activatable = new Set(services);
    for (const fn of this.#activatableSubs) fn(this.#activatable);
  }

  watchActivatable(onValue: (v: ReadonlySet<string>) => void): Subscription {
    onValue(this.#activatable);
    this.#activatableSubs.add(onValue);
    return { close: () => void this.#activatableSubs.delete(onValue) };
  }
}

function subscribe<V>(map: Map<string, Set<(v: V) => void>>, service: string, fn: (v: V) => void): Subscription {
  let set = map.get(service);
  if (set === undefined) {
    set = new Set();
    map.set(service, set);
  }
  set.add(fn);
  return { close: () => void set.delete(fn) };
}

/** How a simulated instance answers. */
export type InstanceHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** A stand-in for one host's inbound proxy: mTLS, dispatch on x-weft-instance. */
export interface MeshHost {
  readonly address: string;
  readonly port: number;
  /** TLS handshakes completed (accepted peers). */
  handshakes: number;
  /** Requests per instance id. */
  readonly hits: Map<string, number>;
  /** Client SPIFFE IDs seen. */
  readonly peers: Set<string>;
  /** Adds (or replaces) an instance on this host. */
  instance(id: string, handler?: InstanceHandler): void;
  /** A RouteInstance for `id` on this host. */
  route(id: string, extra?: Partial<RouteInstance>): RouteInstance;
  close(): Promise<void>;
}

/** The default instance: 200 with its id in the body and `x-served-by`. */
export const okHandler =
  (id: string): InstanceHandler =>
  (_req, res, body) => {
    res.setHeader('x-served-by', id);
    res.end(body.length > 0 ? body : id);
  };

/**
 * Starts a mesh host stand-in on `address`. It presents the leaf of the
 * service named by SNI (as a host proxy serving several services does), the
 * first of `services` when SNI names none of them.
 */
export async function startMeshHost(t: Host, ca: CertificateAuthority, services: string | readonly string[], address: string): Promise<MeshHost> {
  const names = typeof services === 'string' ? [services] : services;
  const contexts = new Map(names.map((name) => [name, createSecureContext(secureContextOptions(makeIdentity(ca, name)))]));
  const identity = makeIdentity(ca, names[0]!);
  const handlers = new Map<string, InstanceHandler>();
  const host: MeshHost = {
    address,
    port: 0,
    handshakes: 0,
    hits: new Map(),
    peers: new Set(),
    instance(id, handler) {
      handlers.set(id, handler ?? okHandler(id));
    },
    route(id, extra = {}) {
      return { id, address, port: 1, meshPort: host.port, version: undefined, weight: 1, healthy: true, ...extra };
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server = https.createServer(
    {
      ...meshServerOptions(identity),
      keepAliveTimeout: 60_000,
      SNICallback: (servername, cb) => cb(null, contexts.get(servername) ?? contexts.get(names[0]!)!),
    },
    (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = String(req.headers['x-weft-instance'] ?? '');
      const handler = handlers.get(id);
      host.hits.set(id, (host.hits.get(id) ?? 0) + 1);
      if (handler === undefined) {
        res.writeHead(404, { 'x-weft-reason': `no instance ${id}` }).end();
        return;
      }
      handler(req, res, Buffer.concat(chunks));
    });
    },
  );
  requirePeerIdentity(server, { trustDomain: ca.trustDomain });
  server.on('secureConnection', (socket) => {
    host.handshakes++;
    const id = peerIdentity(socket);
    if (id !== undefined) host.peers.add(id.uri);
  });
  // A raw echo after 101: enough to prove the upgrade went through both ways.
  server.on('upgrade', (req, socket, head) => {
    host.hits.set(`upgrade:${String(req.headers['x-weft-instance'])}`, 1);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  (host as { port: number }).port = (server.address() as AddressInfo).port;
  t.teardown(() => host.close());
  return host;
}

/** A plain HTTP instance outside the mesh on `address`. */
export async function startPlainInstance(t: Host, address: string, handler: InstanceHandler): Promise<{ port: number; hits: number }> {
  const state = { port: 0, hits: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.hits++;
      handler(req, res, Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  state.port = (server.address() as AddressInfo).port;
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return state;
}

/** Starts an outbound proxy on a free port for caller `frontend` (unless listeners are given). */
export async function startOutbound(t: Host, deps: OutboundDeps, opts: Partial<OutboundOptionsInput> = {}): Promise<OutboundProxy> {
  const proxy = await OutboundProxy.start({ listeners: [{ service: 'frontend', port: 0 }], ...opts }, deps);
  t.teardown(() => proxy.close(0));
  return proxy;
}

/** A response as the test sees it. */
export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request through a keep-alive agent; never hangs longer than 10 s. */
export function request(
  agent: http.Agent,
  port: number,
  opts: { path?: string; host?: string; method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, agent, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: { host: opts.host ?? 'backend', ...opts.headers }, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('test request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Runs `total` requests with `concurrency` workers; returns every reply. */
export async function load(total: number, concurrency: number, one: (i: number) => Promise<Reply>): Promise<Reply[]> {
  const out: Reply[] = new Array(total);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      out[i] = await one(i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

/** Counts replies by a key. */
export function countBy(replies: readonly Reply[], key: (r: Reply) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of replies) {
    const k = key(r);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** A keep-alive agent for test clients, destroyed at teardown. */
export function clientAgent(t: Host, maxSockets = 16): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  t.teardown(() => agent.destroy());
  return agent;
}
