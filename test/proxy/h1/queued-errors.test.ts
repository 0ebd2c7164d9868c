/**
 * H1Server's answer to a bad request on a connection with requests ahead of
 * it (RFC 9112 9.3.2): the requests read whole before it are answered, in
 * order, then the error, then the connection closes; the bad request never
 * reaches the handler, nor does anything sent after it. Over raw sockets,
 * with a handler that answers only when the test says so, so the order of
 * events is fixed by the test, not by timing.
 */
import net from 'node:net';
import t from 'tap';
import { Framing } from '../../../proxy/h1/head.js';
import type { H1Handler, H1Request } from '../../../proxy/h1/server.js';
import { H1Server } from '../../../proxy/h1/server.js';
import { httpLimits } from '../../../proxy/http/server-limits.js';
import { connectPlain } from '../wire.js';
import { HOST, until } from './fixtures.js';

/** A handler that holds each request until `answer(url)`; `errors` are the client errors the server reported. */
function held(): { handler: H1Handler; seen: string[]; errors: number[]; answer(url: string): void } {
  const seen: string[] = [];
  const errors: number[] = [];
  const waiting = new Map<string, H1Request>();
  const handler: H1Handler = {
    onRequest(req) {
      seen.push(req.url);
      waiting.set(req.url, req);
    },
    onUpgrade(_req, socket) {
      socket.destroy();
    },
    onClientError(status) {
      errors.push(status);
    },
  };
  const answer = (url: string): void => {
    const req = waiting.get(url);
    if (req === undefined) throw new Error(`no request ${url} is waiting`);
    waiting.delete(url);
    req.writeHead(200, undefined, '', Framing.Length, url.length);
    req.write(Buffer.from(url));
    req.end();
  };
  return { handler, seen, errors, answer };
}

async function start(t: { teardown(fn: () => unknown): void }, handler: H1Handler, limits = httpLimits()): Promise<number> {
  const server = new H1Server(net.createServer(), handler, limits);
  server.server.on('connection', (socket: net.Socket) => server.accept(socket));
  await server.listen(0, HOST);
  t.teardown(() => server.close(0));
  return server.address.port;
}

t.test('a malformed head, a refused head or a broken body behind requests in flight: they are answered first', async (t) => {
  const cases: Array<{ name: string; bytes: string; seen: string[]; last: number }> = [
    { name: 'malformed head', bytes: 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nNo Colon\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n', seen: ['/a', '/b'], last: 400 },
    { name: 'HTTP/2.0 head', bytes: 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/2.0\r\nHost: x\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n', seen: ['/a', '/b'], last: 505 },
    {
      name: 'broken chunked body',
      bytes: 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n',
      seen: ['/a', '/b'],
      last: 400,
    },
  ];
  for (const c of cases) {
    const h = held();
    const port = await start(t, h.handler);
    const wire = await connectPlain(t, port);
    wire.write(c.bytes);
    t.ok(await until(() => h.errors.length === 1), `${c.name}: the error is seen at once`);
    t.strictSame(h.seen, ['/a'], `${c.name}: the first request is with the handler`);
    t.equal(wire.data.length, 0, `${c.name}: nothing answered yet (the error waits its turn)`);
    h.answer('/a');
    t.ok(await until(() => h.seen.length === 2), `${c.name}: the second request follows`);
    h.answer('/b');
    const answers = await wire.read(3);
    t.strictSame(
      answers.map((r) => [r.status, r.status === 200 ? r.body.toString() : '']),
      [
        [200, '/a'],
        [200, '/b'],
        [c.last, ''],
      ],
      `${c.name}: /a, /b, then ${c.last}`,
    );
    t.equal(answers[2]?.headers['connection'], 'close', `${c.name}: the error closes`);
    t.ok(await until(() => !wire.open), `${c.name}: the connection is closed`);
    t.strictSame(h.seen, c.seen, `${c.name}: neither the bad request nor what followed it reached the handler`);
    t.strictSame(h.errors, [c.last], `${c.name}: reported once`);
  }
});

t.test('a head that times out behind a slow answer: the answer first, then the 408', async (t) => {
  const h = held();
  const port = await start(t, h.handler, httpLimits({ headersTimeoutMs: 100, requestTimeoutMs: 1000 }));
  const wire = await connectPlain(t, port);
  wire.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n');
  t.ok(await until(() => h.errors.length === 1), 'the second head timed out');
  t.equal(wire.data.length, 0, 'nothing answered yet');
  h.answer('/slow');
  const answers = await wire.read(2);
  t.strictSame(
    answers.map((r) => r.status),
    [200, 408],
  );
  t.ok(await until(() => !wire.open), 'then the connection closes');
  t.strictSame(h.seen, ['/slow']);
});

t.test('a request whose body breaks while it is being answered: 400 at once, the handler told it was aborted', async (t) => {
  let aborted = false;
  const h = held();
  const onRequest = h.handler.onRequest;
  h.handler.onRequest = (req) => {
    onRequest(req);
    req.onAbort = () => {
      aborted = true;
    };
    req.setSink({ onData() {}, onEnd() {} });
  };
  const port = await start(t, h.handler);
  const wire = await connectPlain(t, port);
  wire.write('POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
  t.ok(await until(() => h.seen.length === 1), 'the request is with the handler, its body streaming');
  wire.write('zz\r\n');
  const answers = await wire.read(1);
  t.strictSame(
    answers.map((r) => r.status),
    [400],
  );
  t.ok(aborted, 'the handler was told');
  t.ok(await until(() => !wire.open), 'the connection is closed');
});
