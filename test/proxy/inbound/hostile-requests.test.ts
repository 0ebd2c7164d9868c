/**
 * Hostile requests against the inbound listener, as raw bytes over a real
 * mTLS socket from a mesh caller to a real local app (Node's http server,
 * which records every head the moment it arrives, before any body):
 *
 * - pipelined desync: a valid request followed on the same connection by a
 *   malformed one gets its answer, then the 400, then the connection closes
 *   (RFC 9112 9.3.2), and the malformed one never reaches the app;
 * - framing the proxy refuses (Transfer-Encoding other than a final chunked,
 *   Transfer-Encoding with Content-Length, bad Content-Length) is answered
 *   400 (501 for a coding the proxy does not implement) before a byte
 *   reaches the app, even with an idle pooled connection to it;
 * - request targets and Host (RFC 9112 3.2): origin-form only, exactly one
 *   valid Host for HTTP/1.1 (at most one for 1.0), HTTP/1.0 or 1.1 only, no
 *   CONNECT; and an upstream's unsolicited 101 is a 502, never relayed.
 */
import t, { type Test } from 'tap';
import { IntentionTable } from '../../../proxy/inbound/intentions.js';
import { RawUpstream } from '../h1/fixtures.js';
import { bodies, metricsMatch, parseResponses, Wire } from '../wire.js';
import { connectRaw, instance, makeMesh, rawExchange, startInbound, until } from './fixtures.js';
import { startRecordingApp } from './recording-app.js';

const allowAll = IntentionTable.fromEntries([], { defaultAction: 'allow' });

async function rig(t: Test) {
  const mesh = makeMesh(['api']);
  const app = await startRecordingApp(t);
  const inbound = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  return { mesh, app, inbound };
}

/** The `url` the app echoed in `body`, if it is the app's JSON answer. */
function urlOf(body: string | undefined): string | undefined {
  try {
    return (JSON.parse(body ?? '') as { url?: string }).url;
  } catch {
    return undefined;
  }
}

/** The final statuses on `wire` once it closed (or 5 s passed). */
async function statusesAtClose(wire: Wire): Promise<number[]> {
  await until(() => !wire.open, 5000);
  return wire.responses().filter((r) => r.status >= 200).map((r) => r.status);
}

t.test('pipelined: the valid requests are answered in order, then the 400, then the connection closes', async (t) => {
  const { mesh, app, inbound } = await rig(t);
  const cases: Array<{ name: string; bytes: string; statuses: number[]; heads: string[] }> = [
    {
      name: 'a malformed head behind a slow GET',
      bytes: 'GET /first?delay=100 HTTP/1.1\r\nHost: api\r\n\r\nGET /second HTTP/1.1\r\nHost: api\r\nBad Header\r\n\r\n',
      statuses: [200, 400],
      heads: ['GET /first?delay=100'],
    },
    {
      name: 'a refused head (two Host headers) behind a GET',
      bytes: 'GET /first HTTP/1.1\r\nHost: api\r\n\r\nGET /second HTTP/1.1\r\nHost: api\r\nHost: other\r\n\r\n',
      statuses: [200, 400],
      heads: ['GET /first'],
    },
    {
      name: 'two GETs, then a chunked POST whose chunk size is garbage',
      bytes: 'GET /a?delay=50 HTTP/1.1\r\nHost: api\r\n\r\nGET /b HTTP/1.1\r\nHost: api\r\n\r\nPOST /c HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nA\r\n0\r\n\r\n',
      statuses: [200, 200, 400],
      heads: ['GET /a?delay=50', 'GET /b'],
    },
    {
      name: 'a POST with a body, then a request with an unsupported transfer coding',
      bytes: 'POST /up HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\n\r\nhelloPOST /gz HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
      statuses: [200, 501],
      heads: ['POST /up'],
    },
  ];
  for (const c of cases) {
    app.heads.length = 0;
    const socket = await connectRaw(inbound.port, mesh.web, 'api');
    t.teardown(() => socket.destroy());
    const wire = new Wire(socket);
    wire.write(c.bytes);
    t.strictSame(await statusesAtClose(wire), c.statuses, `${c.name}: answers in order, the refusal last`);
    t.notOk(wire.open, `${c.name}: the connection is closed`);
    t.equal(urlOf(bodies(wire.responses())[0]), c.heads[0]!.split(' ')[1], `${c.name}: the first answer is the app's answer to the first request`);
    t.strictSame(app.heads, c.heads, `${c.name}: the app saw the valid requests only`);
  }
});

t.test('framing the proxy refuses never reaches the app, even over an idle pooled connection', async (t) => {
  // Each case: a warm-up leaves an idle connection in the pool to the app (a head would go out at
  // once), the hostile request, then another warm-up, a full round trip after which anything the
  // proxy had sent the app has been read by it.
  const { mesh, app, inbound } = await rig(t);
  const post = (lines: string, body = ''): string => `POST /hostile HTTP/1.1\r\nHost: api\r\n${lines}\r\n${body}`;
  const vectors: Array<[string, string, number]> = [
    ['Transfer-Encoding: gzip', post('Transfer-Encoding: gzip\r\n', 'abc'), 400],
    ['Transfer-Encoding: xchunked', post('Transfer-Encoding: xchunked\r\n', '0\r\n\r\n'), 400],
    ['Transfer-Encoding: identity', post('Transfer-Encoding: identity\r\n', 'abc'), 400],
    ['Transfer-Encoding: chunked, gzip', post('Transfer-Encoding: chunked, gzip\r\n', '0\r\n\r\n'), 400],
    ['an empty Transfer-Encoding', post('Transfer-Encoding: \r\n', '0\r\n\r\n'), 400],
    ['Transfer-Encoding: gzip, chunked (a coding the proxy does not implement)', post('Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n'), 501],
    ['Transfer-Encoding: gzip then chunked on two lines', post('Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'), 501],
    ['Transfer-Encoding with Content-Length', post('Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n'), 400],
    ['Transfer-Encoding: chunked in an HTTP/1.0 request', 'POST /hostile HTTP/1.0\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['Content-Length: 3x', post('Content-Length: 3x\r\n', 'abc'), 400],
    ['Content-Length: -3', post('Content-Length: -3\r\n', 'abc'), 400],
    ['two Content-Length lines', post('Content-Length: 3\r\nContent-Length: 3\r\n', 'abc'), 400],
    // A valid head whose body is malformed in the same packet: refused before the head is sent on.
    ['a chunk size line ending in a bare LF', post('Transfer-Encoding: chunked\r\n', '1\nA\r\n0\r\n\r\n'), 400],
    ['a chunk size that is not hex', post('Transfer-Encoding: chunked\r\n', 'zz\r\nA\r\n0\r\n\r\n'), 400],
  ];
  const warm = async (): Promise<void> => {
    const r = await rawExchange(inbound.port, mesh.web, 'api', 'GET /warm HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n');
    t.match(r.data, /^HTTP\/1\.1 200 /, 'warm-up answered');
  };
  for (const [name, bytes, status] of vectors) {
    await warm();
    t.ok(
      await metricsMatch(inbound.registry, /weft_proxy_pool_connections\{direction="inbound",destination="api",state="idle"\} [1-9]/),
      `${name}: the proxy holds an idle connection to the app`,
    );
    app.heads.length = 0;
    const r = await rawExchange(inbound.port, mesh.web, 'api', bytes);
    t.match(r.data, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${status}`);
    t.equal(parseResponses(Buffer.from(r.data, 'latin1'), [], true).length, 1, `${name}: one answer only`);
    t.ok(r.closed, `${name}: connection closed`);
    await warm();
    t.strictSame(app.heads, ['GET /warm'], `${name}: the app saw nothing of it`);
  }
});

t.test('request targets, Host and versions the inbound refuses: the status, a closed connection, nothing at the app', async (t) => {
  const { mesh, app, inbound } = await rig(t);
  const get = (target: string, lines = 'Host: api\r\n', version = ' HTTP/1.1'): string => `GET ${target}${version}\r\n${lines}\r\n`;
  const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
  const table: Array<[string, string, number]> = [
    ['absolute-form https://', get('https://api/hostile'), 400],
    ['absolute-form http://', get('http://api/hostile'), 400],
    ['absolute-form with an IPv4 literal', get('http://10.0.0.1/hostile'), 400],
    ['absolute-form with an IPv6 literal', get('http://[::1]:8080/hostile'), 400],
    ['absolute-form with userinfo', get('http://user:secret@api/hostile'), 400],
    ['asterisk-form on a GET', get('*'), 400],
    ['no Host', get('/hostile', ''), 400],
    ['two Host headers', get('/hostile', 'Host: rawlog\r\nHost: hello\r\n'), 400],
    ['two Host headers in an HTTP/1.0 request', get('/hostile', 'Host: rawlog\r\nHost: hello\r\n', ' HTTP/1.0'), 400],
    ['a Host with userinfo', get('/hostile', 'Host: user@api\r\n'), 400],
    ['a Host with a space', get('/hostile', 'Host: api evil\r\n'), 400],
    ['a Host with a path', get('/hostile', 'Host: api/x\r\n'), 400],
    ['a request line without a version', get('/hostile', 'Host: api\r\n', ''), 400],
    ['HTTP/2.0 on an HTTP/1.1 connection', get('/hostile', 'Host: api\r\n', ' HTTP/2.0'), 505],
    ['CONNECT', 'CONNECT api:443 HTTP/1.1\r\nHost: api:443\r\n\r\n', 400],
    ['an upgrade in absolute-form', get('http://api/hostile', `Host: api\r\n${upgrade}`), 400],
    ['an upgrade without Host', get('/hostile', upgrade), 400],
    ['an upgrade over HTTP/2.0', get('/hostile', `Host: api\r\n${upgrade}`, ' HTTP/2.0'), 505],
  ];
  for (const [name, bytes, status] of table) {
    const r = await rawExchange(inbound.port, mesh.web, 'api', bytes);
    t.match(r.data, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${status}`);
    t.match(r.data, /\r\nx-weft-reason: weft: /, `${name}: the reason says why`);
    t.equal(parseResponses(Buffer.from(r.data, 'latin1'), [], true).length, 1, `${name}: one answer only`);
    t.ok(r.closed, `${name}: connection closed`);
  }
  t.strictSame(app.heads, [], 'the app saw none of them');
  // Controls: what stays valid on the same listener.
  const ok = await rawExchange(inbound.port, mesh.web, 'api', 'GET /fine?x=1 HTTP/1.1\r\nHost: api.weft:8080\r\nConnection: close\r\n\r\n');
  t.match(ok.data, /^HTTP\/1\.1 200 /, 'origin-form with one Host passes');
  const old = await rawExchange(inbound.port, mesh.web, 'api', 'GET /old HTTP/1.0\r\n\r\n');
  t.match(old.data, /^HTTP\/1\.1 200 /, 'HTTP/1.0 without Host passes (Host is required of 1.1 only)');
  const options = await rawExchange(inbound.port, mesh.web, 'api', 'OPTIONS * HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n');
  t.match(options.data, /^HTTP\/1\.1 200 /, 'OPTIONS * (asterisk-form, what the outbound relays for it) passes');
  t.strictSame(app.heads, ['GET /fine?x=1', 'GET /old', 'OPTIONS *']);
});

t.test("an upstream's unsolicited 101 is a 502 for the caller, and the app connection is closed", async (t) => {
  const mesh = makeMesh(['api']);
  // A raw app that switches protocols on a request that asked for no upgrade.
  const up = await RawUpstream.start(t, (conn) => {
    conn.socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nraw bytes of another protocol');
  });
  const inbound = await startInbound(t, {
    ids: mesh.ids,
    intentions: allowAll,
    instances: [{ id: 'h1-api-1', service: 'api', version: 'v1', address: '127.0.0.1', port: up.port }],
  });
  const socket = await connectRaw(inbound.port, mesh.web, 'api');
  t.teardown(() => socket.destroy());
  const wire = new Wire(socket);
  wire.write('GET /plain HTTP/1.1\r\nHost: api\r\n\r\n');
  const answers = await wire.read(1);
  t.strictSame(
    answers.map((r) => r.status),
    [502],
    'one answer: 502, no 101',
  );
  t.match(answers[0]?.headers['x-weft-reason'], /WEFT_ERR_LOCAL_APP_UNAVAILABLE/);
  t.notMatch(wire.data.toString('latin1'), /raw bytes of another protocol/, 'nothing of the other protocol reaches the caller');
  t.ok(await until(() => up.conns.length === 1 && up.conns[0]!.closed), 'the connection to the app is closed');
});
