/**
 * HTTP/1.1 message framing through both hops of the raw-socket data path:
 * client -> outbound (127.0.0.1) -> mTLS -> inbound (127.0.0.2) -> app.
 * What a client notices when a proxy gets framing wrong: pipelined answers
 * out of order, bodies cut or corrupted, a connection left out of step after
 * a HEAD, 204 or 304, a 100 Continue that never comes, an early answer that
 * never arrives, a proxy that stops answering after a client walked away.
 */
import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { ProxyMetrics } from '../../../proxy/metrics.js';
import type { IntentionDecision } from '../../../proxy/ports.js';
import { HOST, instance, makeMesh, startInbound, until } from '../inbound/fixtures.js';
import { bodies, connectPlain, metricsMatch } from '../wire.js';
import { certsTls, clientAgent, FakeRouteSource, startOutbound } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** What the app serves: random, so a misplaced or repeated slice cannot hash the same. */
const BLOB = randomBytes(4 * MiB);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const allow: IntentionDecision = { action: 'allow', reason: 'test: allow all' };

/** What the echo route answers. */
interface Echo {
  path: string;
  method: string;
  length: number;
  sha256: string;
  cl: string | null;
  te: string | null;
  expect: string | null;
}

/** Writes BLOB[0, size) in `piece`-byte writes (chunks, when chunked), honouring backpressure, then ends. */
function pump(out: { write(b: Buffer): boolean; once(e: 'drain', fn: () => void): unknown; end(): unknown }, size: number, pieceSize = 16 * KiB): void {
  let off = 0;
  const more = (): void => {
    while (off < size) {
      const piece = BLOB.subarray(off, Math.min(size, off + pieceSize));
      off += piece.length;
      if (!out.write(piece)) {
        out.once('drain', more);
        return;
      }
    }
    out.end();
  };
  more();
}

/**
 * The app behind the inbound (Node's http server on HOST):
 *   /echo/<name>[?delay=ms]   reads the body, answers JSON `Echo` (after `delay`)
 *   /blob?size=N&framing=chunked|length[&piece=P]   N bytes of BLOB, written P bytes at a time
 *   /status/204, /status/304  no body (304 declares the representation's length)
 *   /413                      refuses at once, without reading the body
 */
async function startFramingApp(t: Test): Promise<{ port: number; seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> }> {
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://app');
    const path = url.pathname;
    if (path === '/413') {
      res.writeHead(413, { 'content-type': 'text/plain' });
      res.end('upload refused');
      return;
    }
    if (path.startsWith('/status/')) {
      const status = Number(path.slice('/status/'.length));
      res.writeHead(status, status === 304 ? { etag: '"v1"', 'content-length': '1234' } : { 'x-status': String(status) });
      res.end();
      return;
    }
    if (path === '/blob') {
      const size = Number(url.searchParams.get('size'));
      res.setHeader('content-type', 'application/octet-stream');
      if (url.searchParams.get('framing') !== 'chunked') res.setHeader('content-length', size);
      if (req.method === 'HEAD') res.end();
      else pump(res, size, Number(url.searchParams.get('piece') ?? 16 * KiB));
      return;
    }
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      length += c.length;
    });
    req.on('end', () => {
      const echo: Echo = {
        path,
        method: req.method ?? '',
        length,
        sha256: hash.digest('hex'),
        cl: req.headers['content-length'] ?? null,
        te: req.headers['transfer-encoding'] ?? null,
        expect: req.headers.expect ?? null,
      };
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(echo));
      }, Number(url.searchParams.get('delay') ?? 0));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

/** An app that delimits its answer by closing the connection: no Content-Length, no chunked (`/eof/1.0` answers as HTTP/1.0). */
const EOF_SIZE = 300 * KiB;
async function startEofApp(t: Test): Promise<{ port: number }> {
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let head = '';
    socket.on('data', (d: Buffer) => {
      if (head.includes('\r\n\r\n')) return;
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const version = head.startsWith('GET /eof/1.0 ') ? '1.0' : '1.1';
      socket.write(`HTTP/${version} 200 OK\r\ncontent-type: application/octet-stream\r\n\r\n`);
      pump(socket, EOF_SIZE);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port };
}

/** client -> outbound -> mTLS -> inbound -> apps: `backend` (framing app) and `legacy` (close-delimited). */
async function rig(t: Test) {
  const mesh = makeMesh(['backend', 'legacy', 'late']);
  const app = await startFramingApp(t);
  const eof = await startEofApp(t);
  const inbound = await startInbound(t, {
    ids: mesh.ids,
    intentions: { decide: () => allow },
    instances: [instance('backend', 'h2-backend', app.port), instance('legacy', 'h2-legacy', eof.port), instance('late', 'h2-late', app.port)],
  });
  const source = new FakeRouteSource();
  const route = (id: string) => ({ id, address: HOST, port: 1, meshPort: inbound.port, version: 'v1', weight: 1, healthy: true });
  source.setInstances('backend', [route('h2-backend')]);
  source.setInstances('legacy', [route('h2-legacy')]);
  const registry = new Registry();
  const proxy = await startOutbound(t, { source, tls: certsTls(mesh.ca, ['frontend']), metrics: new ProxyMetrics(registry) });
  return { app, inbound, proxy, port: proxy.portOf('frontend'), registry, source, route };
}

/** An answer read as bytes. */
interface Binary {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  reused: boolean;
}

/**
 * One request through `agent` with a binary body: `body` whole (sent with
 * Content-Length) or as pieces (chunked). A slow reader: `stallMs` before
 * reading anything, then a 20 ms pause after every `pauseEvery` bytes.
 */
function fetchBinary(
  agent: http.Agent,
  port: number,
  path: string,
  opts: { host?: string; method?: string; body?: Buffer; pieces?: Buffer[]; stallMs?: number; pauseEvery?: number } = {},
): Promise<Binary> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { host: opts.host ?? 'backend' };
    if (opts.body !== undefined) headers['content-length'] = opts.body.length;
    const req = http.request({ host: '127.0.0.1', port, agent, method: opts.method ?? 'GET', path, headers, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      let sincePause = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        sincePause += c.length;
        if (opts.pauseEvery !== undefined && sincePause >= opts.pauseEvery) {
          sincePause = 0;
          res.pause();
          setTimeout(() => res.resume(), 20);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), reused: req.reusedSocket }));
      res.on('error', reject);
      if (opts.stallMs !== undefined) {
        res.pause();
        setTimeout(() => res.resume(), opts.stallMs);
      }
    });
    req.on('timeout', () => req.destroy(new Error('test request timed out')));
    req.on('error', reject);
    if (opts.pieces !== undefined) {
      for (const p of opts.pieces) req.write(p);
      req.end();
    } else req.end(opts.body);
  });
}

function pieces(body: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += size) out.push(body.subarray(off, off + size));
  return out;
}

/** Process warnings emitted during the test (a MaxListenersExceededWarning is what a drain listener per chunk looks like). */
function processWarnings(t: Test): string[] {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  return warnings;
}

const echoOf = (b: Binary | string): Echo => JSON.parse(typeof b === 'string' ? b : b.body.toString()) as Echo;

t.test('pipelining: three requests in one write get three answers in order, and the connection stays open', async (t) => {
  const { app, port } = await rig(t);
  const wire = await connectPlain(t, port);
  const big = BLOB.subarray(0, 100 * KiB); // over the 64 KiB buffer: streamed
  wire.write(
    Buffer.concat([
      Buffer.from('GET /echo/one?delay=80 HTTP/1.1\r\nHost: backend\r\n\r\n'),
      Buffer.from(`POST /echo/two HTTP/1.1\r\nHost: backend\r\nContent-Length: ${big.length}\r\n\r\n`),
      big,
      Buffer.from('POST /echo/three HTTP/1.1\r\nHost: backend\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n'),
    ]),
  );
  const answers = await wire.read(3);
  t.strictSame(
    answers.map((r) => r.status),
    [200, 200, 200],
    'three answers',
  );
  const echoes = bodies(answers).map((b) => echoOf(b));
  t.strictSame(
    echoes.map((e) => [e.path, e.length]),
    [
      ['/echo/one', 0],
      ['/echo/two', big.length],
      ['/echo/three', 5],
    ],
    'in request order, each with its own body',
  );
  t.equal(echoes[1]?.sha256, sha(big), 'the pipelined large body arrived intact');
  t.ok(
    answers.every((r) => r.headers['connection'] !== 'close'),
    'no answer closes the connection',
  );
  t.ok(wire.open, 'the connection is still open');
  wire.write('GET /echo/four HTTP/1.1\r\nHost: backend\r\n\r\n');
  const all = await wire.read(4);
  t.equal(echoOf(bodies(all)[3] ?? '{}').path, '/echo/four', 'and serves the next request');
  t.strictSame(
    app.seen.map((s) => s.url),
    ['/echo/one?delay=80', '/echo/two', '/echo/three', '/echo/four'],
  );
});

t.test('large request bodies arrive byte-exact: 1 MiB with Content-Length and chunked', async (t) => {
  const { port } = await rig(t);
  const agent = clientAgent(t, 1);
  const warnings = processWarnings(t);
  const body = BLOB.subarray(0, MiB);
  const withLength = await fetchBinary(agent, port, '/echo/cl', { method: 'POST', body });
  t.equal(withLength.status, 200);
  t.match(echoOf(withLength), { length: MiB, sha256: sha(body), cl: String(MiB), te: null }, 'Content-Length body: same bytes, same declared length');
  // 1 KiB chunks: one read by the proxy holds dozens of them.
  const chunked = await fetchBinary(agent, port, '/echo/chunked', { method: 'PUT', pieces: pieces(body, KiB) });
  t.equal(chunked.status, 200);
  t.match(echoOf(chunked), { length: MiB, sha256: sha(body) }, 'chunked body: same bytes');
  t.ok(chunked.reused, 'on the same client connection');
  const small = BLOB.subarray(MiB, MiB + 40 * KiB); // under the retry buffer: read whole, then sent with a length
  const buffered = await fetchBinary(agent, port, '/echo/small', { method: 'PUT', pieces: pieces(small, 3 * KiB) });
  t.match(echoOf(buffered), { length: small.length, sha256: sha(small) }, 'a small chunked body (buffered for retries): same bytes');
  t.strictSame(warnings, [], 'no process warnings (e.g. a drain listener per chunk)');
});

t.test('a large body sent before the route is known still arrives whole', async (t) => {
  const { app, port, source, route } = await rig(t);
  const body = BLOB.subarray(0, 200 * KiB);
  // No routing answer for `late` yet: the proxy waits for one (firstRouteWaitMs) while the whole body arrives.
  const pending = fetchBinary(clientAgent(t, 1), port, '/echo/late', { host: 'late', method: 'POST', body });
  await new Promise((r) => setTimeout(r, 150));
  t.equal(app.seen.length, 0, 'held until the route is known');
  source.setInstances('late', [route('h2-late')]);
  const r = await pending;
  t.equal(r.status, 200);
  t.match(echoOf(r), { length: body.length, sha256: sha(body) }, 'the body arrived whole');
});

t.test('large response bodies come back byte-exact to a slow reader: 4 MiB chunked and with Content-Length', async (t) => {
  const { port } = await rig(t);
  const agent = clientAgent(t, 1);
  const warnings = processWarnings(t);
  // Chunked in 1 KiB chunks: one read from the app holds dozens of them.
  for (const query of ['framing=chunked&piece=1024', 'framing=length']) {
    const r = await fetchBinary(agent, port, `/blob?size=${4 * MiB}&${query}`, { stallMs: 300, pauseEvery: 512 * KiB });
    t.equal(r.status, 200, `${query}: 200`);
    t.equal(r.body.length, 4 * MiB, `${query}: every byte`);
    t.equal(sha(r.body), sha(BLOB), `${query}: byte-exact`);
    if (query === 'framing=length') t.equal(r.headers['content-length'], String(4 * MiB), 'the length is declared');
    else t.equal(r.headers['transfer-encoding'], 'chunked', 'still chunked');
  }
  t.strictSame(warnings, [], 'no process warnings (e.g. a drain listener per paused chunk)');
});

t.test("HEAD: the app's Content-Length comes back, no body, and the connection serves the next GET", async (t) => {
  const { port } = await rig(t);
  const wire = await connectPlain(t, port);
  wire.write(`HEAD /blob?size=${MiB} HTTP/1.1\r\nHost: backend\r\n\r\n`);
  const [head] = await wire.read(1, [true]);
  t.equal(head?.status, 200);
  t.equal(head?.headers['content-length'], String(MiB), "the app's Content-Length, passed on");
  t.equal(head?.body.length, 0);
  await new Promise((r) => setTimeout(r, 50)); // time for any stray body byte to show up
  wire.write('GET /echo/after-head HTTP/1.1\r\nHost: backend\r\n\r\n');
  const answers = await wire.read(2, [true]);
  t.equal(answers.length, 2, 'exactly two answers: nothing between them');
  t.equal(echoOf(bodies(answers)[1] ?? '{}').path, '/echo/after-head');
  t.ok(wire.open, 'the connection is still open');
});

t.test('204 and 304 have no body and keep the connection in step', async (t) => {
  const { port } = await rig(t);
  const wire = await connectPlain(t, port);
  wire.write('GET /status/204 HTTP/1.1\r\nHost: backend\r\n\r\n');
  await wire.read(1);
  wire.write('GET /status/304 HTTP/1.1\r\nHost: backend\r\nIf-None-Match: "v1"\r\n\r\n');
  await wire.read(2);
  wire.write('GET /echo/after HTTP/1.1\r\nHost: backend\r\n\r\n');
  const answers = await wire.read(3);
  t.strictSame(
    answers.map((r) => r.status),
    [204, 304, 200],
    'three answers, nothing between them',
  );
  t.equal(answers[0]?.headers['x-status'], '204');
  t.equal(answers[1]?.headers['etag'], '"v1"');
  t.equal(answers[1]?.headers['content-length'], '1234', "a 304's Content-Length (of the representation) is passed on");
  t.equal(echoOf(answers[2]?.body.toString() ?? '{}').path, '/echo/after', 'the next answer is the right one');
  t.ok(wire.open, 'the connection is still open');
});

t.test('a response delimited by the app closing its connection arrives whole (HTTP/1.0 and 1.1)', async (t) => {
  const { port } = await rig(t);
  const agent = clientAgent(t, 1);
  for (const version of ['1.0', '1.1']) {
    const r = await fetchBinary(agent, port, `/eof/${version}`, { host: 'legacy' });
    t.equal(r.status, 200, `HTTP/${version}: 200`);
    t.equal(r.body.length, EOF_SIZE, `HTTP/${version}: every byte`);
    t.equal(sha(r.body), sha(BLOB.subarray(0, EOF_SIZE)), `HTTP/${version}: byte-exact`);
  }
  const after = await fetchBinary(agent, port, '/echo/after');
  t.equal(echoOf(after).path, '/echo/after', 'the client carries on');
});

t.test('Expect: 100-continue: the outbound says 100 before the body, once, and the body reaches the app', async (t) => {
  const { app, port } = await rig(t);
  for (const size of [5, MiB]) {
    const body = BLOB.subarray(0, size);
    const wire = await connectPlain(t, port);
    wire.write(`POST /echo/expect HTTP/1.1\r\nHost: backend\r\nContent-Length: ${size}\r\nExpect: 100-continue\r\n\r\n`);
    t.ok(await until(() => wire.responses().length > 0), `${size} bytes: an answer before the body`);
    t.strictSame(
      wire.responses().map((r) => r.status),
      [100],
      `${size} bytes: it is 100 Continue`,
    );
    wire.write(body);
    const answers = await wire.read(1);
    t.strictSame(
      answers.map((r) => r.status),
      [100, 200],
      `${size} bytes: one 100 (the app's own is not relayed twice), then the answer`,
    );
    t.match(echoOf(bodies(answers)[0] ?? '{}'), { length: size, sha256: sha(body), expect: null }, `${size} bytes: the body reached the app`);
    wire.socket.destroy();
  }
  t.equal(app.seen.length, 2);
});

t.test('an app that answers before reading the upload: the answer is relayed and the connection closed', async (t) => {
  const { app, port } = await rig(t);
  const wire = await connectPlain(t, port, { allowHalfOpen: true });
  wire.write(`PUT /413 HTTP/1.1\r\nHost: backend\r\nContent-Length: ${MiB}\r\n\r\n`);
  wire.write(BLOB.subarray(0, 64 * KiB));
  const [answer] = await wire.read(1);
  t.equal(answer?.status, 413, "the app's early answer");
  t.equal(answer?.body.toString(), 'upload refused');
  t.equal(answer?.headers['connection'], 'close', 'says the connection closes (the rest of the body is still coming)');
  // The rest of the body, and a request pipelined behind it before the client saw the answer.
  wire.write(Buffer.concat([BLOB.subarray(64 * KiB, MiB), Buffer.from('POST /echo/behind HTTP/1.1\r\nHost: backend\r\nContent-Length: 2\r\n\r\nhi')]));
  t.ok(await until(() => wire.ended), 'and closes it');
  await new Promise((r) => setTimeout(r, 100)); // time for the request behind to be (wrongly) forwarded
  t.equal(wire.responses().length, 1, 'nothing else came back');
  t.notOk(
    app.seen.some((s) => s.url === '/echo/behind'),
    'the request behind the refused upload, which can get no answer there, never reaches the app',
  );
  const fresh = await fetchBinary(clientAgent(t, 1), port, '/echo/next');
  t.equal(echoOf(fresh).path, '/echo/next', 'a new connection is served');
  t.equal(app.seen.length, 2);
});

t.test('a client that leaves: 499 when no answer was sent, and the proxy stays healthy', async (t) => {
  const { app, inbound, proxy, port, registry } = await rig(t);
  // Before any answer: the app is slow, the client gives up.
  const wire = await connectPlain(t, port);
  wire.write('GET /echo/slow?delay=300 HTTP/1.1\r\nHost: backend\r\n\r\n');
  t.ok(await until(() => app.seen.length === 1), 'the request reached the app');
  wire.socket.destroy();
  t.ok(
    await metricsMatch(registry, /weft_proxy_requests_total\{direction="outbound",source="frontend",destination="backend",version="v1",instance="h2-backend",code="499"\} 1\n/),
    'the outbound counts 499',
  );
  t.ok(
    await metricsMatch(inbound.registry, /weft_proxy_requests_total\{direction="inbound",[^}]*code="499"\} 1\n/),
    'and so does the inbound (the outbound cut its hop)',
  );
  // Mid-response, five times: the upstream connections carrying the unread answers are closed, not leaked.
  for (let i = 0; i < 5; i++) {
    const partial = await connectPlain(t, port);
    partial.write(`GET /blob?size=${4 * MiB} HTTP/1.1\r\nHost: backend\r\n\r\n`);
    t.ok(await until(() => partial.data.length > 64 * KiB), `#${i}: the answer is flowing`);
    partial.socket.destroy();
  }
  t.ok(await until(() => proxy.inFlight === 0 && proxy.pools.stats().every((s) => s.active === 0)), 'no request or upstream connection left busy');
  t.ok(
    await metricsMatch(inbound.registry, /weft_proxy_pool_connections\{direction="inbound",destination="backend",state="active"\} 0\n/),
    "nor the inbound's connections to the app",
  );
  const after = await fetchBinary(clientAgent(t, 1), port, `/blob?size=${MiB}`);
  t.equal(sha(after.body), sha(BLOB.subarray(0, MiB)), 'a new connection gets a whole answer');
  t.match(await registry.metrics(), /weft_proxy_requests_in_flight\{direction="outbound",destination="backend"\} 0\n/);
});
