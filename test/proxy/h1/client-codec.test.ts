/**
 * The connecting side of proxy/h1 (ConnPool, llhttp parsing responses) over
 * raw sockets, against an upstream whose every byte the test writes: long
 * heads (kOnHeaders), heads cut at awkward places, a paused response, and
 * upstreams that break HTTP (two answers to one request, a malformed head,
 * bodies longer or shorter than their Content-Length). What must hold for
 * a user: every answer reaches the request it belongs to and no other, and
 * a broken answer is an error, never a success or the next request's answer.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ConnPool } from '../../../proxy/h1/client.js';
import { get, HOST, lines, manyHeaders, RawUpstream, Recorder, sha, type UpstreamConn, until, writeInPieces } from './fixtures.js';

/** A pool to `up`, destroyed at teardown. */
function poolTo(t: { teardown(fn: () => unknown): void }, up: RawUpstream, maxConnections = 1): ConnPool {
  const pool = new ConnPool({ host: HOST, port: up.port }, { maxConnections, idleMs: 60_000 });
  t.teardown(() => pool.destroy());
  return pool;
}

/** The path of the n-th request head received on `conn`. */
function pathOf(conn: UpstreamConn, n: number): string {
  const head = conn.received.split('\r\n\r\n')[n]!;
  return head.split(' ')[1]!;
}

/** A well-formed answer whose body is the request's path. */
function echoPath(conn: UpstreamConn, n: number): void {
  const path = pathOf(conn, n);
  conn.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
}

t.test('a response with 40 header lines reaches the exchange with every header intact and in order', async (t) => {
  const headers = [...manyHeaders(40, 'r'), 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '2'];
  const up = await RawUpstream.start(t, (conn, n) => {
    if (n === 0) conn.socket.write(`HTTP/1.1 203 Long Head\r\n${lines(headers)}\r\nok`);
    else conn.socket.write('HTTP/1.1 200 OK\r\nX-Short: 1\r\nContent-Length: 5\r\n\r\nshort');
  });
  const pool = poolTo(t, up);
  const long = get(pool, '/long');
  await long.done;
  t.strictSame(long.head, { status: 203, text: 'Long Head', headers, keepAlive: true }, 'names in their case, repeated names kept apart, order kept');
  t.equal(long.body, 'ok');
  // The same pooled connection next: the short head must not inherit the long head's pieces.
  const short = get(pool, '/short');
  await short.done;
  t.strictSame(short.head?.headers, ['X-Short', '1', 'Content-Length', '5']);
  t.equal(short.body, 'short');
  t.equal(up.conns.length, 1, 'both on one keep-alive connection');
});

t.test('a response head split across reads parses exactly as if it came in one piece', async (t) => {
  const headers = [...manyHeaders(40, 'r'), 'Content-Length', '4'];
  const big = Buffer.from(`HTTP/1.1 200 OK\r\n${lines(headers)}\r\nbody`);
  const small = Buffer.from('HTTP/1.1 201 Created Here\r\nX-Empty:\r\nContent-Length: 4\r\n\r\nbody');
  const at = (buf: Buffer, s: string, plus = 0): number => buf.indexOf(s) + plus;
  const cases: Array<[name: string, bytes: Buffer, cuts: number[], status: number, text: string, headers: string[]]> = [
    ['byte by byte (40 headers)', big, Array.from({ length: big.length }, (_, i) => i), 200, 'OK', headers],
    ['byte by byte', small, Array.from({ length: small.length }, (_, i) => i), 201, 'Created Here', ['X-Empty', '', 'Content-Length', '4']],
    [
      'inside every CRLF and between the two that end the head',
      small,
      [at(small, '\r\n', 1), at(small, ':\r\n', 2), at(small, '\r\n\r\n', 1), at(small, '\r\n\r\n', 2), at(small, '\r\n\r\n', 3)],
      201,
      'Created Here',
      ['X-Empty', '', 'Content-Length', '4'],
    ],
    [
      'inside the version, the status code, the reason, a name, after a colon, before the body',
      small,
      [6, 10, at(small, 'Here', 2), at(small, 'X-Em', 3), at(small, 'Length:', 7), at(small, 'body'), at(small, 'body', 2)],
      201,
      'Created Here',
      ['X-Empty', '', 'Content-Length', '4'],
    ],
  ];
  for (const [name, bytes, cuts, status, text, hs] of cases) {
    const up = await RawUpstream.start(t, (conn) => {
      void writeInPieces(conn.socket, bytes, cuts);
    });
    const rec = get(poolTo(t, up), '/');
    await rec.done;
    t.strictSame([rec.head?.status, rec.head?.text, rec.head?.headers, rec.body, rec.error], [status, text, hs, 'body', undefined], name);
  }
});

t.test('a paused response stops reading; resumed, it finishes byte-exact', async (t) => {
  const blob = randomBytes(32 * 1024 * 1024);
  const up = await RawUpstream.start(t, (conn) => {
    if (pathOf(conn, 0) === '/ping') conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npong');
    else conn.socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\n`), blob]));
  });
  const pool = poolTo(t, up);
  const rec = new Recorder();
  let pauses = 0;
  // Backpressure from the client side, as the relay applies it: stop at the first chunk.
  rec.pauseWhen = () => pauses++ === 0;
  rec.call = pool.request(rec, 'GET /blob HTTP/1.1\r\nhost: upstream\r\n\r\n', undefined, true, false);
  await until(() => rec.received > 0);
  // Whatever was left of the read being parsed is delivered; then nothing more is read.
  await new Promise((r) => setImmediate(r));
  const gotAtPause = rec.received;
  t.ok(gotAtPause < blob.length, `paused after ${gotAtPause} of ${blob.length} bytes`);
  // A barrier made of events, not time: three whole exchanges through another pool to the same upstream.
  const other = poolTo(t, up);
  for (let i = 0; i < 3; i++) {
    const ping = get(other, '/ping');
    await ping.done;
    t.equal(ping.body, 'pong');
  }
  t.equal(rec.received, gotAtPause, 'no body delivered while paused');
  t.ok(up.conns[0]!.socket.writableLength > 0, 'the upstream is held back (its bytes wait in its own buffer)');
  rec.call.resume();
  await rec.done;
  t.ok(rec.ended);
  t.equal(rec.received, blob.length);
  t.equal(sha(Buffer.concat(rec.chunks)), sha(blob), 'every byte, in order');
});

t.test('an upstream that answers one request twice in one packet: the extra answer never reaches the next request', async (t) => {
  const up = await RawUpstream.start(t, (conn, n) => {
    if (up.conns.indexOf(conn) === 0 && n === 0) {
      conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirstHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra');
    } else echoPath(conn, n);
  });
  const pool = poolTo(t, up, 1);
  // With one connection allowed, /b waits for /a's connection: the pool must not hand it over.
  const a = get(pool, '/a');
  const b = get(pool, '/b');
  await Promise.all([a.done, b.done]);
  t.strictSame([a.body, a.ended, a.error], ['first', true, undefined], '/a got its answer');
  t.strictSame([b.body, b.ended, b.error], ['/b', true, undefined], "/b got its own answer, not the upstream's extra one");
  t.ok(await until(() => up.conns[0]!.closed), 'the out-of-step connection was closed');
  t.equal(up.conns.length, 2, '/b went on a new connection');
});

t.test('an upstream that sends an answer while the connection is idle: the connection is dropped, the next request is unaffected', async (t) => {
  const up = await RawUpstream.start(t, echoPath);
  const pool = poolTo(t, up, 1);
  const a = get(pool, '/a');
  await a.done;
  t.equal(a.body, '/a');
  up.conns[0]!.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale');
  t.ok(await until(() => up.conns[0]!.closed), 'the pool closed the connection the stray answer came on');
  t.strictSame(pool.stats, { active: 0, idle: 0 }, 'and forgot it');
  const b = get(pool, '/b');
  await b.done;
  t.strictSame([b.body, b.error], ['/b', undefined], '/b got its own answer');
  t.equal(up.conns.length, 2);
});

t.test('a malformed response head: the exchange gets a reset naming the parse error, and the connection is not reused', async (t) => {
  const up = await RawUpstream.start(t, (conn, n) => {
    if (up.conns.indexOf(conn) === 0) conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nNot A Header\r\n\r\nhello');
    else echoPath(conn, n);
  });
  const pool = poolTo(t, up, 1);
  const a = get(pool, '/a');
  await a.done;
  t.equal(a.error?.kind, 'reset');
  t.match(a.error?.code, /^HPE_/, `the parse error: ${a.error?.code}`);
  t.notOk(a.ended, 'no end: a broken answer is never a success');
  t.equal(a.head, undefined, 'no head was delivered');
  const b = get(pool, '/b');
  await b.done;
  t.strictSame([b.body, b.error], ['/b', undefined]);
  t.equal(up.conns.length, 2, '/b on a new connection');
});

t.test('a body longer than its Content-Length: the answer ends at the length, the surplus only closes that connection', async (t) => {
  const cases: Array<[name: string, method: string, answer: string, body: string]> = [
    ['GET', 'GET', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA BYTES\r\n\r\n', 'hello'],
    ['HEAD answered with a body', 'HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', ''],
    ['204 with a body', 'GET', 'HTTP/1.1 204 No Content\r\n\r\nhello', ''],
  ];
  for (const [name, method, answer, body] of cases) {
    const up = await RawUpstream.start(t, (conn, n) => {
      if (up.conns.indexOf(conn) === 0 && n === 0) conn.socket.write(answer);
      else echoPath(conn, n);
    });
    const pool = poolTo(t, up, 1);
    const a = new Recorder();
    a.call = pool.request(a, `${method} /a HTTP/1.1\r\nhost: upstream\r\n\r\n`, undefined, true, method === 'HEAD');
    const b = get(pool, '/b');
    await Promise.all([a.done, b.done]);
    t.strictSame([a.body, a.ended, a.error], [body, true, undefined], `${name}: /a got its answer, cut at its framing`);
    t.strictSame([b.body, b.ended, b.error], ['/b', true, undefined], `${name}: /b got its own answer, none of the surplus`);
    t.ok(await until(() => up.conns[0]!.closed), `${name}: the connection with the surplus was closed`);
    t.equal(up.conns.length, 2, `${name}: /b went on a new connection`);
  }
});

t.test('a body shorter than its Content-Length, then the upstream closes: a reset, not an end', async (t) => {
  const up = await RawUpstream.start(t, (conn) => {
    conn.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello');
  });
  const pool = poolTo(t, up, 1);
  const a = get(pool, '/a');
  await a.done;
  t.equal(a.head?.status, 200, 'the head came');
  t.equal(a.body, 'hello');
  t.notOk(a.ended, 'the cut body is not reported as complete');
  t.equal(a.error?.kind, 'reset');
});
