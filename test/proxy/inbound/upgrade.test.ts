/**
 * WebSocket through inbound: a raw upgrade handshake over the mTLS socket,
 * one masked text frame out and the local app's echo back, with no WebSocket
 * library on either side.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import t, { type Test } from 'tap';
import { IntentionTable } from '../../../proxy/inbound/intentions.js';
import { HOST, collect, connectRaw, instance, makeMesh, rawExchange, startInbound, until } from './fixtures.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A local app that accepts WebSocket upgrades and echoes each (short, single-frame) message. */
async function startEchoApp(t: Test): Promise<{ port: number; upgrades: Array<Record<string, string | string[] | undefined>> }> {
  const upgrades: Array<Record<string, string | string[] | undefined>> = [];
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => res.end('not a websocket'));
  server.on('upgrade', (req, socket: Socket) => {
    upgrades.push(req.headers);
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}${GUID}`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (frame: Buffer) => {
      const payload = unmask(frame);
      socket.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
    });
    socket.on('error', () => socket.destroy());
    socket.on('end', () => socket.end()); // http servers' sockets are half-open: close our side too
    sockets.add(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, upgrades };
}

function unmask(frame: Buffer): Buffer {
  const len = frame[1]! & 0x7f; // test frames are < 126 bytes
  const mask = frame.subarray(2, 6);
  const payload = Buffer.from(frame.subarray(6, 6 + len));
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
  return payload;
}

function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const HANDSHAKE = `GET /chat HTTP/1.1\r\nHost: api\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nX-Weft-Instance: h2-api-1\r\n\r\n`;

t.test('a WebSocket upgrade passes through to the local app and frames flow both ways', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startEchoApp(t);
  const inbound = await startInbound(t, {
    ids: mesh.ids,
    intentions: IntentionTable.fromEntries([], { defaultAction: 'allow' }),
    instances: [instance('api', 'h2-api-1', app.port)],
  });
  const socket = await connectRaw(inbound.port, mesh.web, 'api');
  const done = collect(socket, 3000);
  let got = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    got = Buffer.concat([got, d]);
  });
  socket.write(HANDSHAKE);
  t.ok(await until(() => got.includes('\r\n\r\n')), 'handshake answered');
  const head = got.subarray(0, got.indexOf('\r\n\r\n') + 4).toString();
  t.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  t.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/, 'the accept for the RFC 6455 sample key');
  got = got.subarray(head.length);
  socket.write(maskedTextFrame('hello mesh'));
  t.ok(await until(() => got.length >= 12), 'echo arrived');
  t.equal(got[0], 0x81);
  t.equal(got.subarray(2, 2 + got[1]!).toString(), 'hello mesh');
  t.equal(app.upgrades.length, 1);
  t.equal(app.upgrades[0]!['x-weft-instance'], undefined, 'x-weft-instance stripped on upgrades too');
  t.equal(app.upgrades[0]!['x-weft-source'], 'spiffe://weft.test/ns/default/svc/web');
  t.equal(app.upgrades[0]!['upgrade'], 'websocket');
  socket.end();
  await done;
  t.match(await inbound.registry.metrics(), /weft_proxy_requests_total\{[^}]*instance="h2-api-1",code="101"\} 1/);
});

t.test('an upgrade is authorized like any request: denied is 403 and closed', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startEchoApp(t);
  const inbound = await startInbound(t, {
    ids: mesh.ids,
    intentions: IntentionTable.fromEntries([{ key: 'weft/intentions/web/api', value: '{"action":"deny"}' }], { defaultAction: 'allow' }),
    instances: [instance('api', 'h2-api-1', app.port)],
  });
  const r = await rawExchange(inbound.port, mesh.web, 'api', HANDSHAKE);
  t.match(r.data, /^HTTP\/1\.1 403 Forbidden\r\n/);
  t.match(r.data, /x-weft-reason: weft: WEFT_ERR_INTENTION_DENIED/);
  t.ok(r.closed);
  t.equal(app.upgrades.length, 0);
});
