/**
 * Slow request bodies cost the slow client, not everyone: a request whose
 * body is still arriving holds no slot of its service's pending limit, and a
 * body that stops arriving is answered 408 and closed after the body-idle
 * timeout (counted). Raw sockets against a real outbound proxy and a real
 * instance behind a mesh host.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { ProxyMetrics } from '../../../proxy/metrics.js';
import { PendingLimit } from '../../../proxy/resilience/pending-limit.js';
import { eventually } from '../../helpers/eventually.js';
import { certsTls, clientAgent, FakeRouteSource, makeCa, request, startMeshHost, startOutbound } from './helpers.js';

const ca = makeCa();
const tls = certsTls(ca, ['frontend']);
const LIMIT = 4;
const BODY_IDLE_MS = 500;

interface Slow {
  readonly socket: net.Socket;
  /** Everything the proxy sent until it closed the connection (or `limitMs` passed). */
  readonly answer: Promise<{ data: string; closed: boolean }>;
  /** What arrived so far. */
  received(): string;
}

/** A raw connection that sends a request head and the first part of its body, then nothing. */
function slowUpload(port: number, contentLength: number, first: Buffer, limitMs = 20_000): Promise<Slow> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('error', reject);
    let data = '';
    socket.once('connect', () => {
      socket.write(`POST /upload HTTP/1.1\r\nHost: backend\r\nContent-Length: ${contentLength}\r\n\r\n`);
      socket.write(first);
      const answer = new Promise<{ data: string; closed: boolean }>((done) => {
        const timer = setTimeout(() => {
          socket.destroy();
          done({ data, closed: false });
        }, limitMs);
        socket.on('data', (d: Buffer) => {
          data += d.toString('latin1');
        });
        socket.on('error', () => {});
        socket.once('close', () => {
          clearTimeout(timer);
          done({ data, closed: true });
        });
      });
      resolve({ socket, answer, received: () => data });
    });
  });
}

async function rig(t: Test) {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  const seen: number[] = [];
  h2.instance('h2-app', (_req, res, body) => {
    seen.push(body.length);
    res.end(`got ${body.length}`);
  });
  source.setInstances('backend', [h2.route('h2-app')]);
  const registry = new Registry();
  const metrics = new ProxyMetrics(registry);
  const proxy = await startOutbound(t, { source, tls, metrics, httpLimits: { bodyIdleTimeoutMs: BODY_IDLE_MS } }, { pendingLimit: LIMIT });
  return { proxy, port: proxy.portOf('frontend'), registry, seen };
}

async function bodyTimeouts(registry: Registry): Promise<number> {
  const m = (await registry.metrics()).match(/weft_proxy_client_timeouts_total\{direction="outbound",phase="body"\} (\d+)/);
  return m === null ? 0 : Number(m[1]);
}

for (const kind of ['buffered', 'streamed'] as const) {
  t.test(`${LIMIT} stalled ${kind} uploads (the pending limit) do not make other callers get 503; they get 408`, async (t) => {
    const r = await rig(t);
    // buffered: a small body read whole before an instance is chosen; streamed: past 64 KiB, already on its way upstream.
    const [length, first] = kind === 'buffered' ? [100, Buffer.from('abc')] : [1024 * 1024, Buffer.alloc(80 * 1024, 1)];
    const slow: Slow[] = [];
    for (let i = 0; i < LIMIT; i++) slow.push(await slowUpload(r.port, length, first));
    await sleep(50); // the heads are parsed and admitted

    const agent = clientAgent(t);
    for (let i = 0; i < LIMIT + 2; i++) {
      const reply = await request(agent, r.port);
      t.equal(reply.status, 200, `normal request ${i + 1} served while the uploads stall (${reply.headers['x-weft-reason'] ?? ''})`);
    }
    const small = await request(agent, r.port, { method: 'POST', body: 'hello' });
    t.equal(small.status, 200, 'a complete upload is served too');
    t.equal(small.body, 'got 5');

    const answers = await Promise.all(slow.map((s) => s.answer));
    for (const [i, a] of answers.entries()) {
      t.ok(a.closed, `stalled upload ${i + 1}: connection closed by the proxy`);
      t.match(a.data, /^HTTP\/1\.1 408 /, `stalled upload ${i + 1}: 408`);
      t.match(a.data, /x-weft-reason: weft: request body timeout/);
    }
    t.equal(await bodyTimeouts(r.registry), LIMIT, 'counted as body timeouts');
    t.notOk(r.seen.includes(length), 'no stalled upload reached the app whole');
  });
}

t.test('a slow upload that keeps sending is not cut: the timeout is the gap between reads, not the total', async (t) => {
  const r = await rig(t);
  const pieces = 8;
  const s = await slowUpload(r.port, pieces, Buffer.from('x'));
  for (let i = 1; i < pieces; i++) {
    await sleep(BODY_IDLE_MS / 3);
    s.socket.write('x');
  }
  // About 2.3 x the timeout in all, never a gap of one.
  await eventually(() => s.received().includes('got 8'), 5000, 'the answer').catch(() => undefined);
  t.match(s.received(), /^HTTP\/1\.1 200 /);
  t.match(s.received(), /got 8/);
  s.socket.destroy();
  t.equal(await bodyTimeouts(r.registry), 0);
});

t.test('PendingLimit: an uncounted admission is refused when full, holds nothing until count(), and releases what it holds', async (t) => {
  const limit = new PendingLimit('backend', 1);
  const uploading = limit.tryAcquire(false);
  t.ok(uploading.ok);
  t.equal(limit.pending, 0, 'a body still arriving holds no slot');
  const other = limit.tryAcquire();
  t.ok(other.ok, 'another request is admitted meanwhile');
  t.equal(limit.tryAcquire(false).ok, false, 'refused when the service is full, counted or not');
  if (!uploading.ok || !other.ok) return;
  uploading.count();
  uploading.count();
  t.equal(limit.pending, 2, 'counted once its body is complete, even past the limit (it is already on its way)');
  uploading.release();
  uploading.release();
  other.release();
  t.equal(limit.pending, 0);
  const never = limit.tryAcquire(false);
  if (never.ok) {
    never.release();
    never.count();
  }
  t.equal(limit.pending, 0, 'released before its body completed: nothing to give back, and count() after release does nothing');
});
