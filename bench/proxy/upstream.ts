/**
 * The outbound proxy's upstream leg: requests per second over mTLS to a host
 * proxy stand-in on 127.0.0.2, and TLS handshakes on the server side, for
 *
 *   h1-pool         proxy/h1/client.ts ConnPool: raw TLS sockets, responses parsed by
 *                   llhttp (what proxy/outbound/pool.ts uses)
 *   node-keepalive  node:https with a keep-alive Agent
 *   node-no-pool    node:https, a new connection (full mTLS handshake) per request
 *   undici-pool     undici 7 Pool with the same TLS options (the alternative considered)
 *   via-outbound    a keep-alive HTTP client -> the outbound proxy -> the same server:
 *                   the whole outbound stack (routing, P2C, retries, metrics-free)
 *
 * Each case runs `ms` milliseconds at `concurrency` requests in flight, in one
 * process, one after another; ratios are against h1-pool of the same run.
 *
 *   npx tsx bench/proxy/upstream.ts [ms=3000] [concurrency=16]
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { Pool } from 'undici';
import { bundlePem } from '../../certs/bundle.js';
import { CertificateAuthority } from '../../certs/ca.js';
import { chainPem } from '../../certs/identity.js';
import { generateKeyPair, privateKeyPem } from '../../certs/keys.js';
import { type MeshIdentity, meshClientOptions, meshServerOptions, requirePeerIdentity } from '../../certs/mtls.js';
import { spiffeId } from '../../certs/spiffe-id.js';
import { ConnPool, type Exchange } from '../../proxy/h1/client.js';
import { OutboundProxy } from '../../proxy/outbound/server.js';
import type { RouteSource } from '../../proxy/ports.js';

const ms = Number(process.argv[2] ?? 3000);
const concurrency = Number(process.argv[3] ?? 16);
const TD = 'weft.bench';

const ca = CertificateAuthority.create({ trustDomain: TD });
const bundle = bundlePem(ca.bundle());
function identity(service: string): MeshIdentity {
  const pair = generateKeyPair();
  return { keyPem: privateKeyPem(pair.privateKey), certChainPem: chainPem(ca.issue(pair.publicKey, spiffeId(TD, 'default', service))), bundlePem: bundle };
}

const server = https.createServer({ ...meshServerOptions(identity('backend')), keepAliveTimeout: 60_000 }, (_req, res) => res.end('ok'));
requirePeerIdentity(server, { trustDomain: TD });
let handshakes = 0;
server.on('secureConnection', () => handshakes++);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
const port = (server.address() as AddressInfo).port;
const tlsOptions = { ...meshClientOptions(identity('frontend'), { trustDomain: TD, expect: (id) => id.service === 'backend' }), servername: 'backend' };

/** Runs `one` with `concurrency` in flight for `ms`; returns requests/s and handshakes. */
async function run(name: string, one: () => Promise<void>): Promise<{ name: string; rps: number; handshakes: number; errors: number }> {
  const before = handshakes;
  const end = performance.now() + ms;
  let done = 0;
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      try {
        await one();
        done++;
      } catch {
        errors++;
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { name, rps: done / ((performance.now() - start) / 1000), handshakes: handshakes - before, errors };
}

function nodeGet(agent: https.Agent | false): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = https.request({ ...tlsOptions, host: '127.0.0.2', port, path: '/', agent, headers: { 'x-weft-instance': 'h2-a' } }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
}

function httpGet(agent: http.Agent, proxyPort: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, path: '/', agent, headers: { host: 'backend' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(String(res.statusCode)))));
    });
    req.on('error', reject);
    req.end();
  });
}

const H1_HEAD = 'GET / HTTP/1.1\r\nhost: backend\r\nx-weft-instance: h2-a\r\n\r\n';

/** One GET through a weft ConnPool: done when the response has ended. */
function h1Get(pool: ConnPool): Promise<void> {
  return new Promise((resolve, reject) => {
    let status = 0;
    const exchange: Exchange = {
      onHead: (s) => {
        status = s;
      },
      onData: () => true,
      onEnd: () => (status === 200 ? resolve() : reject(new Error(String(status)))),
      onError: (_kind, err) => reject(err),
    };
    pool.request(exchange, H1_HEAD, undefined, true, false);
  });
}

const results = [];
const h1 = new ConnPool({ host: '127.0.0.2', port, tls: tlsOptions }, { maxConnections: 128, idleMs: 50_000 });
results.push(await run('h1-pool', () => h1Get(h1)));
h1.destroy();

const keepAlive = new https.Agent({ keepAlive: true, maxSockets: concurrency, scheduling: 'lifo' });
results.push(await run('node-keepalive', () => nodeGet(keepAlive)));
keepAlive.destroy();
results.push(await run('node-no-pool', () => nodeGet(false)));

const pool = new Pool(`https://127.0.0.2:${port}`, { connections: concurrency, connect: tlsOptions });
results.push(
  await run('undici-pool', async () => {
    const r = await pool.request({ path: '/', method: 'GET', headers: { 'x-weft-instance': 'h2-a' } });
    await r.body.dump();
  }),
);
await pool.close();

const source: RouteSource = {
  watchInstances: (_s, onValue) => {
    onValue([{ id: 'h2-a', address: '127.0.0.2', port: 1, meshPort: port, version: undefined, weight: 1, healthy: true }]);
    return { close: () => undefined };
  },
  watchSplit: (_s, onValue) => {
    onValue(null);
    return { close: () => undefined };
  },
};
const proxy = await OutboundProxy.start(
  { listeners: [{ service: 'frontend', port: 0 }] },
  { source, tls: { trustDomain: TD, clientOptions: () => tlsOptions } },
);
const client = new http.Agent({ keepAlive: true, maxSockets: concurrency });
results.push(await run('via-outbound', () => httpGet(client, proxy.portOf('frontend'))));
client.destroy();
await proxy.close(1000);
server.closeAllConnections();
server.close();

const base = results.find((r) => r.name === 'h1-pool')!.rps;
console.log(`upstream leg, ${ms} ms per case, ${concurrency} in flight, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, node ${process.version}`);
console.log('case            req/s   ratio   handshakes  errors');
for (const r of results) {
  console.log(`${r.name.padEnd(14)} ${r.rps.toFixed(0).padStart(6)}   ${(r.rps / base).toFixed(2).padStart(5)}x  ${String(r.handshakes).padStart(10)}  ${String(r.errors).padStart(6)}`);
}
