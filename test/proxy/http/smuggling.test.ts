/**
 * Request smuggling, oversized heads and slowloris against the inbound
 * listener, as raw bytes over a real mTLS socket. The vectors are those of
 * Node's own test/parallel/test-http-transfer-encoding-smuggling.js and its
 * neighbours; each must get 400 (431, 408) and a closed connection, and the
 * local app must see nothing, not even a request smuggled behind the first.
 */
import t from 'tap';
import { IntentionTable } from '../../../proxy/inbound/intentions.js';
import { collect, connectRaw, instance, makeMesh, rawExchange, startApp, startInbound } from '../inbound/fixtures.js';

const allowAll = IntentionTable.fromEntries([], { defaultAction: 'allow' });
const SMUGGLED = 'GET /admin HTTP/1.1\r\nHost: api\r\n\r\n';

const vectors: Array<[string, string]> = [
  ['Transfer-Encoding and Content-Length', `POST / HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Content-Length and Transfer-Encoding (reversed)', `POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding: chunked, identity', `POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked, identity\r\n\r\n1\r\nA\r\n0\r\n\r\n${SMUGGLED}`],
  [
    'duplicated Transfer-Encoding (chunked, then chunked-false)',
    `POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked-false\r\nConnection: upgrade\r\n\r\n1\r\nA\r\n0\r\n\r\n${SMUGGLED}`,
  ],
  ['duplicated Transfer-Encoding (chunked, then identity)', `POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['obfuscated "Transfer-Encoding : chunked"', `POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding with a vertical tab', `POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding not ending in chunked', `POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['two different Content-Length values', `POST / HTTP/1.1\r\nHost: api\r\nContent-Length: 1\r\nContent-Length: 40\r\n\r\nA${SMUGGLED}`],
  ['bare LF between headers', `GET / HTTP/1.1\r\nHost: api\nX-Foo: bar\r\n\r\n`],
  ['bare LF line ends throughout', `GET / HTTP/1.1\nHost: api\nTransfer-Encoding: chunked\n\n0\n\n${SMUGGLED}`],
  ['bare LF after a chunk', `POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n1\nA\r\n0\r\n\r\n${SMUGGLED}`],
  ['a space inside the chunk size', `POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n1 0\r\nAAAAAAAAAAAAAAAA\r\n0\r\n\r\n${SMUGGLED}`],
];

t.test('smuggling vectors: 400, connection closed, app saw nothing', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const inbound = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  for (const [name, bytes] of vectors) {
    const r = await rawExchange(inbound.port, mesh.web, 'api', bytes);
    t.match(r.data, /^HTTP\/1\.1 400 Bad Request\r\n/, `${name}: 400`);
    t.match(r.data, /\r\nx-weft-reason: weft: malformed request \(HPE_[A-Z_]+\)\r\n/, `${name}: reason names the parser error`);
    t.notMatch(r.data.slice(12), /HTTP\/1\.1 /, `${name}: one answer only`);
    t.ok(r.closed, `${name}: connection closed`);
  }
  t.equal(app.seen.length, 0, 'the local app never saw a request');
  t.match(await inbound.registry.metrics(), new RegExp(`weft_proxy_http_protocol_errors_total\\{direction="inbound",code="400"\\} ${vectors.length}`));
});

t.test('a clean request still goes through on the same listener (control)', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const inbound = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  const r = await rawExchange(inbound.port, mesh.web, 'api', 'POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\nA\r\n0\r\n\r\n');
  t.match(r.data, /^HTTP\/1\.1 200 OK\r\n/);
  t.equal(app.seen[0]?.body, 'A');
});

t.test('headers over maxHeaderSize: 431 and close', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const inbound = await startInbound(t, {
    ids: mesh.ids,
    intentions: allowAll,
    instances: [instance('api', 'h2-api-1', app.port)],
    limits: { maxHeaderSizeBytes: 2048 },
  });
  const r = await rawExchange(inbound.port, mesh.web, 'api', `GET / HTTP/1.1\r\nHost: api\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
  t.match(r.data, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  t.ok(r.closed);
  const ok = await rawExchange(inbound.port, mesh.web, 'api', `GET / HTTP/1.1\r\nHost: api\r\nX-Small: ${'a'.repeat(1000)}\r\nConnection: close\r\n\r\n`);
  t.match(ok.data, /^HTTP\/1\.1 200 OK/, 'under the limit passes');
  t.equal(app.seen.length, 1);
});

t.test('slowloris: a head trickled slower than headersTimeout gets 408 and close', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const inbound = await startInbound(t, {
    ids: mesh.ids,
    intentions: allowAll,
    instances: [instance('api', 'h2-api-1', app.port)],
    limits: { headersTimeoutMs: 300, requestTimeoutMs: 1000 },
  });
  const socket = await connectRaw(inbound.port, mesh.web, 'api');
  const done = collect(socket, 4000);
  socket.write('GET / HTTP/1.1\r\nHost: api\r\n');
  let sent = 0;
  const trickle = setInterval(() => {
    // At most 30 lines (3 s): far past the 300 ms limit.
    if (socket.destroyed || sent++ >= 30) return clearInterval(trickle);
    socket.write(`X-Slow-${sent}: x\r\n`);
  }, 100);
  const r = await done;
  clearInterval(trickle);
  t.match(r.data, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  t.ok(r.closed);
  t.ok(sent < 30, `cut after ${sent} lines`);
  t.equal(app.seen.length, 0);
});
