/**
 * A flood of TCP connections that never finish TLS, against a real `weft
 * proxy` process's inbound mTLS port (the network-facing one, reachable
 * without a certificate): what they cost at their peak, and whether the
 * memory and descriptors come back once the handshake deadline closed them.
 *
 *   per round   VmRSS and open fds of the proxy before; N connections from 127.0.0.2
 *               to its inbound on 127.0.0.3 that send nothing (in batches, loopback only);
 *               VmRSS, VmHWM and fds at the peak; the time until the proxy closed each
 *               (its handshake timeout, 10 s by default); VmRSS and fds a few seconds later
 *   after       one real mTLS handshake (the port still serves), and the proxy's own
 *               counters: handshake timeouts, connections refused at maxConnections
 *
 *   npm run bench:silent-flood [-- connections=5000 [rounds=2 [maxConnections]]]
 *
 * maxConnections (proxy.maxConnections, written to the proxy's config file)
 * defaults to the proxy's; below `connections`, the rest are refused at accept.
 * The bench process holds the client sockets, so it needs `connections` + a
 * few descriptors.
 *
 * WEFT_BENCH_SEND says what each connection sends before it goes silent:
 * nothing (default), `partial` (three bytes of a TLS record header) or
 * `hello` (a whole ClientHello, recorded from a real mesh client: the proxy
 * answers it and holds TLS state until the handshake deadline).
 *
 * WEFT_BENCH_GC=1 starts the proxy with its inspector on a loopback port and,
 * after each round, has V8 collect garbage through it (HeapProfiler.collectGarbage)
 * and samples once more: what of the "after" figure is garbage V8 has not
 * collected yet, and what is held.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
// @ts-expect-error plain JavaScript (bin/ runs before anything compiles TypeScript), no declarations
import { bundleIsFresh } from '../../bin/bundle-manifest.js';
import { bundlePem } from '../../certs/bundle.js';
import { CertificateAuthority } from '../../certs/ca.js';
import { chainPem } from '../../certs/identity.js';
import { writeIdentityFiles } from '../../certs/identity-files.js';
import { generateKeyPair, privateKeyPem } from '../../certs/keys.js';
import { type MeshIdentity, meshClientOptions } from '../../certs/mtls.js';
import { spiffeId } from '../../certs/spiffe-id.js';
import { WebSocket } from 'undici';
import { type DevConsul, startDevConsul } from '../../discovery/dev-agent/index.js';
import { freePort } from '../../test/helpers/ports.js';
import { proxyNodeArgs, TD } from './two-hops-topology.js';

const COUNT = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 2);
const MAX_CONNECTIONS = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
const ROOT = join(import.meta.dirname, '../..');
const PROXY_HOST = '127.0.0.3';
const CLIENT_HOST = '127.0.0.2';
const BATCH = 250;
const FORCE_GC = process.env['WEFT_BENCH_GC'] === '1';
const SEND = process.env['WEFT_BENCH_SEND'] ?? 'nothing';
/** What each connection sends (set in main for `hello`). */
let FIRST: Buffer | undefined = SEND === 'partial' ? Buffer.from([0x16, 0x03, 0x01]) : undefined;

/** The first flight of a real mesh client: its ClientHello, as bytes. */
function recordClientHello(frontend: MeshIdentity): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      socket.once('data', (d: Buffer) => {
        resolve(d);
        socket.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const client = tls.connect({ ...meshClientOptions(frontend, { trustDomain: TD }), host: '127.0.0.1', port, servername: 'backend' } as tls.ConnectionOptions);
      client.on('error', () => {});
      setTimeout(() => reject(new Error('no ClientHello recorded')), 5000).unref();
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function identity(ca: CertificateAuthority, service: string): MeshIdentity {
  const pair = generateKeyPair();
  return { keyPem: privateKeyPem(pair.privateKey), certChainPem: chainPem(ca.issue(pair.publicKey, spiffeId(TD, 'default', service))), bundlePem: bundlePem(ca.bundle()) };
}

/** VmRSS and VmHWM (MB) and open descriptors of `pid`. */
function sample(pid: number): { rss: number; hwm: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

const mb = (x: number): string => x.toFixed(1);

/** Polls `cond` every 50 ms for at most `limitMs`; true if it came to hold. */
async function until(cond: () => boolean, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
  return true;
}

async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://${PROXY_HOST}:${port}/metrics`)).text();
}

/** The proxy's V8 heap (used / total) and external memory in MB, from its own /metrics. */
async function heap(port: number): Promise<string> {
  const text = await metricsText(port);
  const g = (name: string): number => Number(new RegExp(`^weft_${name} ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? Number.NaN) / 1048576;
  return `heap ${mb(g('nodejs_heap_size_used_bytes'))}/${mb(g('nodejs_heap_size_total_bytes'))} MB, external ${mb(g('nodejs_external_memory_bytes'))} MB`;
}

/** Has V8 in the process behind `wsUrl` (its inspector) run a full garbage collection. */
function collectGarbage(wsUrl: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl);
    ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    ws.onmessage = (ev: { data: unknown }) => {
      if (String(ev.data).includes('"id":1')) {
        ws.close();
        resolve();
      }
    };
    ws.onerror = () => reject(new Error('inspector connection failed'));
  });
}

/** The proxy's counters of inbound handshake timeouts and connections refused at maxConnections. */
async function counts(port: number): Promise<{ timeouts: number; refused: number }> {
  const text = await metricsText(port);
  return {
    timeouts: counter(text, /weft_proxy_tls_handshake_failures_total\{direction="inbound",reason="timeout"\} (\d+)/g),
    refused: counter(text, /weft_proxy_connections_refused_total\{listener="inbound",reason="max_connections"\} (\d+)/g),
  };
}

function counter(text: string, re: RegExp): number {
  let n = 0;
  for (const m of text.matchAll(re)) n += Number(m[1]);
  return n;
}

/** One silent connection: when (performance.now()) it connected, and when the proxy closed it. */
interface Silent {
  readonly socket: net.Socket;
  connectedAt: number;
  closedAt: number;
}

function connectSilent(port: number): Promise<Silent> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: PROXY_HOST, port, localAddress: CLIENT_HOST });
    const s: Silent = { socket, connectedAt: 0, closedAt: 0 };
    const mark = (): void => {
      if (s.closedAt === 0) s.closedAt = performance.now();
    };
    socket.once('end', mark);
    socket.once('close', mark);
    socket.on('error', mark);
    socket.resume(); // read (and drop) what the proxy sends, or its FIN is never seen
    socket.once('connect', () => {
      s.connectedAt = performance.now();
      if (FIRST !== undefined) socket.write(FIRST);
      resolve(s);
    });
    socket.once('close', () => resolve(s));
  });
}

function checkFdLimit(): void {
  // Node raises its soft RLIMIT_NOFILE to the hard limit at start; a limit still too low stops here.
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const m = /Max open files\s+(\d+)\s+(\d+)/.exec(limits);
  const soft = Number(m?.[1] ?? 0);
  if (soft < COUNT + 200) {
    console.error(`descriptor limit ${soft} is below ${COUNT} connections + 200: raise it (ulimit -n) first`);
    process.exit(2);
  }
}

async function main(): Promise<void> {
  checkFdLimit();
  // weft as deployed: the bundle when it matches the sources (as bench:proxy-hops builds it).
  spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--if-stale'], { stdio: 'inherit' });
  const runtime = process.env['WEFT_NO_BUNDLE'] === '1' || !bundleIsFresh(ROOT) ? 'tsx (sources)' : 'bundle (dist/)';
  const dir = mkdtempSync(join(tmpdir(), 'weft-silent-flood-'));
  let consul: DevConsul | undefined;
  let child: ChildProcess | undefined;
  try {
    const ca = CertificateAuthority.create({ trustDomain: TD });
    const backend = identity(ca, 'backend');
    const frontend = identity(ca, 'frontend');
    if (SEND === 'hello') FIRST = await recordClientHello(frontend);
    const dataDir = join(dir, 'h3');
    writeIdentityFiles(join(dataDir, 'proxy', 'identities', 'backend'), backend);
    mkdirSync(join(dataDir, 'proxy'), { recursive: true });
    writeFileSync(join(dataDir, 'proxy', 'local.json'), JSON.stringify({ host: 'h3', generation: 1, services: [{ service: 'backend', outboundPort: await freePort(PROXY_HOST) }] }));
    consul = await startDevConsul({ bind: '127.0.0.1', port: 0, dataDir: join(dir, 'consul'), nodeName: 'bench', datacenter: 'dc1' });
    const inboundPort = await freePort(PROXY_HOST);
    const metricsPort = await freePort(PROXY_HOST);
    const configPath = join(dataDir, 'config.yaml');
    const max = MAX_CONNECTIONS === undefined ? '' : `  maxConnections: ${MAX_CONNECTIONS}\n`;
    writeFileSync(configPath, `ca:\n  trustDomain: ${TD}\nproxy:\n  shutdownGraceMs: 1000\n${max}`);
    let stderr = '';
    let inspector = '';
    child = spawn(
      process.execPath,
      [
        ...proxyNodeArgs(),
        ...(FORCE_GC ? ['--inspect=127.0.0.1:0'] : []),
        process.env['WEFT_BENCH_ENTRY'] ?? 'bin/weft.js',
        'proxy',
        '--config', configPath,
        '--data-dir', dataDir,
        '--node', 'h3',
        '--consul', consul.address,
        '--inbound-bind', PROXY_HOST,
        '--inbound-port', String(inboundPort),
        '--outbound-bind', PROXY_HOST,
        '--metrics-bind', PROXY_HOST,
        '--metrics-port', String(metricsPort),
        '--log-level', 'warn',
        '--log-format', 'json',
      ],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WEFT_CONFIG: '' } },
    );
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      inspector ||= /ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+/.exec(stderr)?.[0] ?? '';
    });
    const pid = child.pid!;
    let up = false;
    for (let i = 0; i < 300 && !up; i++) {
      up = await fetch(`http://${PROXY_HOST}:${metricsPort}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (!up) await sleep(100);
    }
    if (!up) throw new Error(`weft proxy did not become healthy: ${stderr}`);
    await sleep(2000);
    const limits = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1];
    console.log(`weft proxy (${runtime}, node ${proxyNodeArgs().join(' ') || 'no flags'}), pid ${pid}, fd limit ${limits}; ${COUNT} silent connections (sending ${SEND === 'hello' ? `a ${FIRST?.length}-byte ClientHello` : SEND === 'partial' ? '3 bytes of a record header' : 'nothing'}) x ${ROUNDS} rounds${MAX_CONNECTIONS === undefined ? '' : `, maxConnections ${MAX_CONNECTIONS}`}`);

    for (let round = 1; round <= ROUNDS; round++) {
      const countsBefore = await counts(metricsPort);
      const before = sample(pid);
      const heapBefore = await heap(metricsPort);
      const started = performance.now();
      const conns: Silent[] = [];
      for (let i = 0; i < COUNT; i += BATCH) {
        const n = Math.min(BATCH, COUNT - i);
        conns.push(...(await Promise.all(Array.from({ length: n }, () => connectSilent(inboundPort)))));
      }
      const connectedAt = performance.now();
      // The proxy accepts on its own time: the peak is the most seen before its descriptors stop growing.
      let peak = sample(pid);
      for (let still = 0, i = 0; still < 5 && i < 40; i++) {
        await sleep(100);
        const s = sample(pid);
        still = s.fds > peak.fds ? 0 : still + 1;
        peak = { rss: Math.max(peak.rss, s.rss), hwm: s.hwm, fds: Math.max(peak.fds, s.fds) };
      }
      const heapPeak = await heap(metricsPort);
      const allClosed = await until(() => conns.every((c) => c.closedAt !== 0), 60_000);
      const lifetimes = conns.filter((c) => c.closedAt !== 0 && c.connectedAt !== 0).map((c) => (c.closedAt - c.connectedAt) / 1000).sort((a, b) => a - b);
      const open = conns.filter((c) => c.closedAt === 0).length;
      for (const c of conns) c.socket.destroy();
      await sleep(5000);
      const after = sample(pid);
      const heapAfter = await heap(metricsPort);
      // Held (not refused at accept): closed at the handshake deadline, seconds later.
      const held = lifetimes.filter((x) => x >= 1);
      const countsAfter = await counts(metricsPort);
      const refusedNow = countsAfter.refused - countsBefore.refused;
      const timedOut = countsAfter.timeouts - countsBefore.timeouts;
      console.log(
        `round ${round}: silent connections: ${COUNT} (connected in ${((connectedAt - started) / 1000).toFixed(1)} s; proxy counted ${timedOut} handshake timeouts, ${refusedNow} refused at accept); ` +
          `closed by the proxy: ${allClosed ? 'all' : `all but ${open}`}, those held after ${(held[0] ?? Number.NaN).toFixed(1)}-${(held.at(-1) ?? Number.NaN).toFixed(1)} s; ` +
          `RSS ${mb(before.rss)} -> ${mb(peak.rss)} -> ${mb(after.rss)} MB (HWM ${mb(peak.hwm)}); fds ${before.fds} -> ${peak.fds} -> ${after.fds}`,
      );
      console.log(`  ${heapBefore} -> ${heapPeak} -> ${heapAfter}`);
      if (FORCE_GC && inspector !== '') {
        await collectGarbage(inspector);
        await sleep(1000);
        const gc = sample(pid);
        console.log(`  after a full GC: RSS ${mb(gc.rss)} MB; ${await heap(metricsPort)}`);
      }
    }

    // Still serving: one real mTLS handshake to the inbound.
    const served = await new Promise<string>((resolve) => {
      const s = tls.connect({ ...meshClientOptions(frontend, { trustDomain: TD }), host: PROXY_HOST, port: inboundPort, localAddress: CLIENT_HOST, servername: 'backend' } as tls.ConnectionOptions);
      s.once('secureConnect', () => {
        resolve(`mTLS handshake ok (${s.getProtocol()})`);
        s.destroy();
      });
      s.once('error', (err) => resolve(`mTLS handshake FAILED: ${err.message}`));
    });
    const total = await counts(metricsPort);
    console.log(`after: ${served}; handshake timeouts counted ${total.timeouts}; refused at maxConnections ${total.refused}`);
  } finally {
    if (child !== undefined && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    await consul?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
