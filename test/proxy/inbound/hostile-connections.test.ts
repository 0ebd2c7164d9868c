/**
 * The inbound mTLS port is the network-facing one and needs no certificate
 * to connect to. A connection that never finishes its TLS handshake (silent,
 * a few bytes of a record, or a byte at a time) is closed at the handshake
 * deadline and counted; once such a flood is over, V8 is asked to collect
 * what it left; beyond `maxConnections` a connection is closed at accept and
 * counted; the port keeps serving real callers throughout.
 */
import net from 'node:net';
import tls from 'node:tls';
import v8 from 'node:v8';
import t from 'tap';
import { type MeshIdentity, meshClientOptions } from '../../../certs/mtls.js';
import { IntentionTable } from '../../../proxy/inbound/intentions.js';
import { collectAllGarbage, firstRecordMissing } from '../../../proxy/inbound/server.js';
import { CALLER_HOST, call, HOST, instance, makeMesh, startApp, startInbound, TD, until } from './fixtures.js';

const allowAll = IntentionTable.fromEntries([], { defaultAction: 'allow' });
/** The start of a TLS handshake record (content type 22, version 3.1): three bytes of a header of five. */
const PARTIAL_RECORD = Buffer.from([0x16, 0x03, 0x01]);

interface Raw {
  readonly socket: net.Socket;
  /** Resolves when the proxy closed the connection ('end' or 'close'; never destroyed by the test before). */
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

/** A plain TCP connection from CALLER_HOST, sending `first` (if any) once connected. */
function raw(port: number, first?: Buffer): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port, localAddress: CALLER_HOST });
    let done = false;
    const closed = new Promise<void>((r) => {
      const mark = (): void => {
        done = true;
        r();
      };
      socket.once('end', mark);
      socket.once('close', mark);
    });
    socket.on('error', () => {});
    socket.resume(); // read (and drop) what the proxy sends, or its FIN is never seen
    socket.once('connect', () => {
      if (first !== undefined) socket.write(first);
      resolve({ socket, closed, isClosed: () => done });
    });
    socket.once('error', reject);
  });
}

/** The first flight of a real mesh client (its ClientHello for `api`), as bytes. */
function recordClientHello(identity: MeshIdentity): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = net.createServer((socket) => {
      socket.once('data', (d: Buffer) => {
        resolve(d);
        socket.destroy();
        server.close();
      });
    });
    server.listen(0, HOST, () => {
      const { port } = server.address() as net.AddressInfo;
      tls.connect({ ...meshClientOptions(identity, { trustDomain: TD }), host: HOST, port, servername: 'api' }).on('error', () => {});
    });
  });
}

async function metric(registry: { metrics(): Promise<string> }, re: RegExp): Promise<number> {
  const m = (await registry.metrics()).match(re);
  return m === null ? 0 : Number(m[1]);
}

const TIMEOUTS = /weft_proxy_tls_handshake_failures_total\{direction="inbound",reason="timeout"\} (\d+)/;
const REFUSED = /weft_proxy_connections_refused_total\{listener="inbound",reason="max_connections"\} (\d+)/;

t.test('connections that do not finish their handshake are closed at the deadline and counted', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  let collections = 0;
  const inbound = await startInbound(t, {
    ids: mesh.ids,
    intentions: allowAll,
    instances: [instance('api', 'h2-api-1', app.port)],
    limits: { handshakeTimeoutMs: 500 },
    collectGarbage: () => collections++,
  });
  const silent: Raw[] = [];
  const partial: Raw[] = [];
  // FLOOD_CONNECTIONS (1,000) and more: a flood, after which the proxy collects garbage once.
  for (let i = 0; i < 1000; i += 50) silent.push(...(await Promise.all(Array.from({ length: 50 }, () => raw(inbound.port)))));
  partial.push(...(await Promise.all(Array.from({ length: 50 }, () => raw(inbound.port, PARTIAL_RECORD)))));
  // A whole ClientHello, then nothing: TLS state is built, the handshake times out ('tlsClientError').
  const hello = await recordClientHello(mesh.web);
  const stalled = await Promise.all(Array.from({ length: 20 }, () => raw(inbound.port, hello)));
  // A byte every 100 ms of a 512-byte record: the deadline is absolute, not reset by each byte.
  const record = Buffer.concat([PARTIAL_RECORD, Buffer.from([0x02, 0x00]), Buffer.alloc(512)]);
  const trickle = await raw(inbound.port, record.subarray(0, 1));
  let sent = 1;
  const dripping = setInterval(() => {
    if (!trickle.isClosed() && sent < record.length) trickle.socket.write(record.subarray(sent, ++sent));
  }, 100);
  t.teardown(() => clearInterval(dripping));

  // Bounded wait only so that a failure ends the test; no assertion on how long closing took.
  const all = [...silent, ...partial, ...stalled, trickle];
  const settled = await Promise.race([Promise.all(all.map((r) => r.closed)).then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 30_000).unref())]);
  const open = all.filter((r) => !r.isClosed()).length;
  t.ok(settled, `every connection was closed by the proxy (${open} of ${all.length} still open)`);
  t.equal(silent.filter((r) => r.isClosed()).length, silent.length, 'silent connections closed');
  t.equal(partial.filter((r) => r.isClosed()).length, partial.length, 'connections with three bytes of a record closed');
  t.equal(stalled.filter((r) => r.isClosed()).length, stalled.length, 'connections that stopped after their ClientHello closed');
  t.ok(trickle.isClosed(), 'a connection trickling a byte at a time closed');
  for (const r of all) r.socket.destroy();

  const counted = await metric(inbound.registry, TIMEOUTS);
  t.ok(counted >= all.length, `handshake timeouts counted (${counted} >= ${all.length})`);
  t.ok(await until(() => inbound.proxy.openConnections === 0, 5000), 'no connection left open on the listener');

  const answer = await call(inbound.port, mesh.web, 'api');
  t.equal(answer.status, 200, 'a real mTLS request is still served');
  t.ok(await until(() => collections === 1, 5000), 'one full collection once the flood was over');
});

t.test('beyond maxConnections a connection is closed at accept, counted, and the port takes connections again once others close', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const N = 5;
  const inbound = await startInbound(t, {
    ids: mesh.ids,
    intentions: allowAll,
    instances: [instance('api', 'h2-api-1', app.port)],
    limits: { maxConnections: N, handshakeTimeoutMs: 60_000 },
  });
  const held: Raw[] = [];
  for (let i = 0; i < N; i++) held.push(await raw(inbound.port));
  t.ok(await until(() => inbound.proxy.openConnections === N, 5000), `${N} connections open`);

  const extra = await raw(inbound.port);
  const refusedInTime = await Promise.race([extra.closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 10_000).unref())]);
  t.ok(refusedInTime, `connection ${N + 1} closed by the proxy`);
  extra.socket.destroy();
  t.equal(await metric(inbound.registry, REFUSED), 1, 'refusal counted');
  t.notOk(held.some((r) => r.isClosed()), 'the connections within the limit stay open');

  // A real caller is refused too while the listener is full...
  await t.rejects(call(inbound.port, mesh.web, 'api'), 'a real caller is refused while the listener is full');
  t.equal(await metric(inbound.registry, REFUSED), 2);

  // ...and served once connections close.
  for (const r of held) r.socket.destroy();
  t.ok(await until(() => inbound.proxy.openConnections === 0, 5000), 'held connections gone');
  const answer = await call(inbound.port, mesh.web, 'api');
  t.equal(answer.status, 200, 'accepted again once connections closed');
  t.equal(await metric(inbound.registry, REFUSED), 2, 'nothing more refused');
});

t.test('collectAllGarbage (what the process passes as collectGarbage) collects, and the process carries on', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const inbound = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  let junk: unknown[] | undefined = Array.from({ length: 300_000 }, (_, i) => ({ i, s: `x${i}` }));
  const full = v8.getHeapStatistics().used_heap_size;
  t.ok(junk.length > 0);
  junk = undefined;
  await collectAllGarbage();
  const after = v8.getHeapStatistics().used_heap_size;
  t.ok(after < full, `garbage collected (${Math.round(full / 1e6)} -> ${Math.round(after / 1e6)} MB used)`);
  await collectAllGarbage(); // twice: the session of the first is gone, the process is not stuck
  await new Promise((r) => setTimeout(r, 10));
  t.equal((await call(inbound.port, mesh.web, 'api')).status, 200, 'still serving');
});

t.test('firstRecordMissing: TLS state waits for the whole first record, anything else goes to TLS at once', async (t) => {
  const hello = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x01, 0x00]), Buffer.alloc(256, 1)]); // a 256-byte handshake record
  const missing = (...parts: Buffer[]): number => firstRecordMissing(parts, parts.reduce((n, p) => n + p.length, 0));
  t.equal(missing(hello.subarray(0, 1)), 4, 'the header is not complete');
  t.equal(missing(hello.subarray(0, 3)), 2);
  t.equal(missing(hello.subarray(0, 5)), 256, 'the header says 256 bytes follow');
  t.equal(missing(hello.subarray(0, 2), hello.subarray(2, 4), hello.subarray(4, 100)), 161, 'a header split across reads');
  t.equal(missing(hello), 0, 'complete: to TLS');
  t.equal(missing(hello, Buffer.from('more')), 0, 'more than a record: to TLS');
  t.equal(missing(Buffer.from('GET / HTTP/1.1\r\n')), 0, 'plain HTTP: to TLS at once (refused there as plaintext)');
  t.equal(missing(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff])), 0, 'an impossible record length: to TLS at once');
  t.equal(missing(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00])), 0, 'an empty record: to TLS at once');
});
