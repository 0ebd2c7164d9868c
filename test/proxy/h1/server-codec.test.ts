/**
 * The listening side of proxy/h1 (H1Server, llhttp reading the socket
 * handle) over raw sockets: what an app behind the proxy would notice if
 * the codec dropped, reordered or invented bytes. Long heads (more than 32
 * header lines, which llhttp hands over in pieces through kOnHeaders),
 * heads cut at awkward places, bytes that follow an Upgrade head, and a
 * connection paused for backpressure.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import t from 'tap';
import { Framing } from '../../../proxy/h1/head.js';
import type { H1Handler, H1Request } from '../../../proxy/h1/server.js';
import { connectPlain } from '../wire.js';
import { lines, manyHeaders, sha, startH1, until, writeInPieces } from './fixtures.js';

/** What the handler saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: string[];
  body: string;
}

/** A handler that records each request and its body, and answers 200 with `<n headers> <body length>`. */
function recording(): { handler: H1Handler; seen: Seen[] } {
  const seen: Seen[] = [];
  const handler: H1Handler = {
    onRequest(req: H1Request) {
      const s: Seen = { method: req.method, url: req.url, headers: req.headers, body: '' };
      seen.push(s);
      req.setSink({
        onData(chunk) {
          s.body += chunk.toString('latin1');
        },
        onEnd() {
          const text = `${req.headers.length / 2} ${s.body.length}`;
          req.writeHead(200, undefined, 'content-type: text/plain\r\n', Framing.Length, text.length);
          req.write(Buffer.from(text));
          req.end();
        },
      });
    },
    onUpgrade(_req, socket) {
      socket.destroy();
    },
  };
  return { handler, seen };
}

t.test('a request with 40 header lines reaches the handler with every header intact and in order', async (t) => {
  const { handler, seen } = recording();
  const server = await startH1(t, handler);
  const headers = ['Host', 'app', ...manyHeaders(40), 'Content-Length', '5'];
  const url = `/long/${'p'.repeat(2000)}?q=${'v'.repeat(500)}`;
  const wire = await connectPlain(t, server.address.port);
  // The long request and a short one behind it in the same packet: the second must not inherit the first's pieces.
  wire.write(`POST ${url} HTTP/1.1\r\n${lines(headers)}\r\nhelloGET /short HTTP/1.1\r\nHost: app\r\n\r\n`);
  const responses = await wire.read(2);
  t.strictSame(
    responses.map((r) => [r.status, r.body.toString()]),
    [
      [200, `${headers.length / 2} 5`],
      [200, '1 0'],
    ],
  );
  t.strictSame(seen[0], { method: 'POST', url, headers, body: 'hello' }, 'names in their case, repeated names kept apart, order kept');
  t.strictSame(seen[1], { method: 'GET', url: '/short', headers: ['Host', 'app'], body: '' });
});

t.test('a head split across reads parses exactly as if it came in one piece', async (t) => {
  const { handler, seen } = recording();
  const server = await startH1(t, handler);
  const small = Buffer.from('POST /a/b?c=d HTTP/1.1\r\nHost: app\r\nX-Empty:\r\nContent-Length: 4\r\n\r\nbody');
  const headers = ['Host', 'app', ...manyHeaders(40), 'Content-Length', '4'];
  const big = Buffer.from(`POST /many HTTP/1.1\r\n${lines(headers)}\r\nbody`);
  const at = (buf: Buffer, s: string, plus = 0): number => buf.indexOf(s) + plus;
  const cases: Array<[name: string, bytes: Buffer, cuts: number[], url: string, headers: string[]]> = [
    ['byte by byte (40 headers)', big, Array.from({ length: big.length }, (_, i) => i), '/many', headers],
    ['byte by byte', small, Array.from({ length: small.length }, (_, i) => i), '/a/b?c=d', ['Host', 'app', 'X-Empty', '', 'Content-Length', '4']],
    [
      'inside every CRLF and between the two that end the head',
      small,
      [at(small, '\r\n', 1), at(small, 'app\r\n', 4), at(small, '\r\n\r\n', 1), at(small, '\r\n\r\n', 2), at(small, '\r\n\r\n', 3)],
      '/a/b?c=d',
      ['Host', 'app', 'X-Empty', '', 'Content-Length', '4'],
    ],
    [
      'inside the method, the url, the version, a name, after a colon, in a value, before the body',
      small,
      [2, at(small, '?', 1), at(small, 'HTTP/1', 5), at(small, 'Host', 2), at(small, 'Host:', 5), at(small, 'app', 1), at(small, 'body')],
      '/a/b?c=d',
      ['Host', 'app', 'X-Empty', '', 'Content-Length', '4'],
    ],
    [
      'inside kOnHeaders pieces (around the 32nd header line)',
      big,
      [at(big, 'X-H31', 3), at(big, 'h-value-32', 4), at(big, 'X-H33', 0), at(big, 'X-H33', 1), at(big, 'h-value-39\r', 11)],
      '/many',
      headers,
    ],
  ];
  for (const [name, bytes, cuts, url, hs] of cases) {
    const wire = await connectPlain(t, server.address.port);
    const before = seen.length;
    await writeInPieces(wire.socket as Socket, bytes, cuts);
    const responses = await wire.read(1);
    t.equal(responses[0]?.status, 200, `${name}: answered`);
    t.strictSame(seen.slice(before), [{ method: 'POST', url, headers: hs, body: 'body' }], `${name}: the handler saw the request whole`);
    wire.socket.destroy();
  }
});

t.test('bytes sent after an Upgrade head in the same packet reach the tunnel, in order, with what follows', async (t) => {
  const tunnels: Array<{ head: string; headers: string[]; data: string }> = [];
  const server = await startH1(t, {
    onRequest(req) {
      req.reply(404, 'not an upgrade');
    },
    onUpgrade(req, socket, head) {
      const tunnel = { head: head.toString('latin1'), headers: req.headers, data: head.toString('latin1') };
      tunnels.push(tunnel);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
      // An echo: what came with the head first, then every later byte.
      if (head.length > 0) socket.write(head);
      socket.on('data', (d: Buffer) => {
        tunnel.data += d.toString('latin1');
        socket.write(d);
      });
    },
  });
  const upgradeHead = (headers: string[]): string => `GET /ws HTTP/1.1\r\n${lines(['Host', 'app', ...headers, 'Connection', 'Upgrade', 'Upgrade', 'echo'])}\r\n`;
  const cases: Array<[name: string, headers: string[], split: boolean]> = [
    ['a short head', [], false],
    ['a head of 40 header lines', manyHeaders(40), false],
    ['a head split across reads, the leftover in its last read', manyHeaders(40), true],
  ];
  for (const [i, [name, extra, split]] of cases.entries()) {
    const wire = await connectPlain(t, server.address.port);
    const head = upgradeHead(extra);
    const bytes = Buffer.from(`${head}FIRST\x00\xff\r\n\r\nframe`, 'latin1');
    if (split) await writeInPieces(wire.socket as Socket, bytes, [10, head.length - 3, head.length - 1]);
    else wire.write(bytes);
    await until(() => tunnels.length === i + 1);
    const tunnel = tunnels.at(-1)!;
    t.equal(tunnel.head, 'FIRST\x00\xff\r\n\r\nframe', `${name}: onUpgrade got exactly the bytes after the head`);
    t.strictSame(tunnel.headers, ['Host', 'app', ...extra, 'Connection', 'Upgrade', 'Upgrade', 'echo'], `${name}: every header`);
    wire.write('SECOND');
    const expected = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nFIRST\x00\xff\r\n\r\nframeSECOND';
    await until(() => wire.data.toString('latin1') === expected);
    t.equal(wire.data.toString('latin1'), expected, `${name}: the client got the 101 and every byte echoed, nothing parsed as HTTP`);
    t.equal(tunnel.data, 'FIRST\x00\xff\r\n\r\nframeSECOND');
    wire.socket.destroy();
  }
});

t.test('a paused connection stops reading; resumed, it finishes the request byte-exact', async (t) => {
  const upload = randomBytes(32 * 1024 * 1024);
  let req: H1Request | undefined;
  const received: Buffer[] = [];
  let receivedBytes = 0;
  let ended = false;
  const server = await startH1(t, {
    onRequest(r) {
      if (r.url === '/ping') {
        r.reply(200, 'pong');
        return;
      }
      req = r;
      r.setSink({
        onData(chunk) {
          received.push(Buffer.from(chunk));
          receivedBytes += chunk.length;
          // Backpressure from the upstream, as the relay applies it: stop at the first chunk.
          if (received.length === 1) r.pause();
        },
        onEnd() {
          ended = true;
          r.reply(200, 'stored');
        },
      });
    },
    onUpgrade(_r, socket) {
      socket.destroy();
    },
  });
  const port = server.address.port;
  const client = await connectPlain(t, port);
  client.write(`PUT /upload HTTP/1.1\r\nHost: app\r\nContent-Length: ${upload.length}\r\n\r\n`);
  client.write(upload);
  await until(() => receivedBytes > 0);
  // Whatever was left of the read being parsed when pause() ran is delivered; then nothing more is read.
  await new Promise((r) => setImmediate(r));
  const socket = req!.conn.socket;
  const readAtPause = socket.bytesRead;
  const gotAtPause = receivedBytes;
  t.ok(readAtPause < upload.length, `paused after ${readAtPause} of ${upload.length} bytes`);
  // A barrier made of events, not time: three whole exchanges on another connection of the same
  // server. Had reading gone on, the paused socket (its peer still has megabytes queued) would have been read meanwhile.
  for (let i = 0; i < 3; i++) {
    const other = await connectPlain(t, port);
    other.write('GET /ping HTTP/1.1\r\nHost: app\r\n\r\n');
    const [pong] = await other.read(1);
    t.equal(pong?.status, 200);
    other.socket.destroy();
  }
  t.equal(socket.bytesRead, readAtPause, 'no byte read from the socket while paused');
  t.equal(receivedBytes, gotAtPause, 'no body delivered while paused');
  t.ok((client.socket.writableLength ?? 0) > 0, 'the client is held back (its bytes wait in its own buffer)');
  req!.resume();
  const [answer] = await client.read(1, [], 30_000);
  t.equal(answer?.status, 200, 'answered once the whole body arrived');
  t.ok(ended);
  t.equal(receivedBytes, upload.length);
  t.equal(sha(Buffer.concat(received)), sha(upload), 'every byte, in order');
});
