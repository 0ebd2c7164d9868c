/**
 * Hostile requests against the outbound listener, as raw bytes over plain
 * TCP, through both hops of the data path (client -> outbound -> mTLS ->
 * inbound -> a real app that records every head as it arrives):
 *
 * - pipelined desync: the valid request is answered, then the 400, then the
 *   connection closes, and the malformed one reaches no app;
 * - framing the proxy refuses is answered 400 (501 for a transfer coding it
 *   does not implement) before a byte leaves the proxy;
 * - targets, Host and versions: the outbound is also an HTTP_PROXY-style
 *   forward proxy, so absolute-form `http://service/...` stays valid here
 *   (routing.test.ts); `https://`, userinfo, IP literals, CONNECT, a missing
 *   or repeated Host, a missing version and HTTP/2.0 are refused with a
 *   closed connection;
 * - an instance's unsolicited 101 is a 502, never relayed.
 */
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { ProxyMetrics } from '../../../proxy/metrics.js';
import type { IntentionDecision } from '../../../proxy/ports.js';
import { RawUpstream } from '../h1/fixtures.js';
import { HOST, instance, makeMesh, startInbound, until } from '../inbound/fixtures.js';
import { startRecordingApp } from '../inbound/recording-app.js';
import { bodies, connectPlain, metricsMatch, type Wire } from '../wire.js';
import { certsTls, FakeRouteSource, startOutbound } from './helpers.js';

const allow: IntentionDecision = { action: 'allow', reason: 'test: allow all' };

/** client -> outbound -> inbound -> recording app (`backend`); `legacy` is a raw app outside the mesh that answers 101 to anything. */
async function rig(t: Test) {
  const mesh = makeMesh(['backend']);
  const app = await startRecordingApp(t);
  const inbound = await startInbound(t, { ids: mesh.ids, intentions: { decide: () => allow }, instances: [instance('backend', 'h2-backend', app.port)] });
  const legacy = await RawUpstream.start(t, (conn) => {
    conn.socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nraw bytes of another protocol');
  });
  const source = new FakeRouteSource();
  source.setInstances('backend', [{ id: 'h2-backend', address: HOST, port: 1, meshPort: inbound.port, version: 'v1', weight: 1, healthy: true }]);
  source.setInstances('legacy', [{ id: 'legacy-1', address: '127.0.0.1', port: legacy.port, meshPort: undefined, version: undefined, weight: 1, healthy: true }]);
  const registry = new Registry();
  const proxy = await startOutbound(t, { source, tls: certsTls(mesh.ca, ['frontend']), metrics: new ProxyMetrics(registry) }, { maxRetries: 0 });
  return { app, legacy, registry, port: proxy.portOf('frontend') };
}

/** Sends `bytes` on a fresh connection; the final statuses once the proxy closed it (or 5 s passed), and the wire. */
async function exchange(t: Test, port: number, bytes: string): Promise<{ statuses: number[]; wire: Wire }> {
  const wire = await connectPlain(t, port);
  wire.write(bytes);
  await until(() => !wire.open, 5000);
  return { statuses: wire.responses().filter((r) => r.status >= 200).map((r) => r.status), wire };
}

function urlOf(body: string | undefined): string | undefined {
  try {
    return (JSON.parse(body ?? '') as { url?: string }).url;
  } catch {
    return undefined;
  }
}

t.test('pipelined: the valid requests are answered in order, then the 400, then the connection closes', async (t) => {
  const { app, port } = await rig(t);
  const cases: Array<{ name: string; bytes: string; statuses: number[]; heads: string[] }> = [
    {
      name: 'a malformed head behind a slow GET',
      bytes: 'GET /first?delay=100 HTTP/1.1\r\nHost: backend\r\n\r\nGET /second HTTP/1.1\r\nHost: backend\r\nBad Header\r\n\r\n',
      statuses: [200, 400],
      heads: ['GET /first?delay=100'],
    },
    {
      name: 'a refused head (a request line without a version) behind a GET',
      bytes: 'GET /first HTTP/1.1\r\nHost: backend\r\n\r\nGET /second\r\nHost: backend\r\n\r\n',
      statuses: [200, 400],
      heads: ['GET /first'],
    },
    {
      name: 'two GETs, then a chunked POST whose chunk size is garbage',
      bytes: 'GET /a?delay=50 HTTP/1.1\r\nHost: backend\r\n\r\nGET /b HTTP/1.1\r\nHost: backend\r\n\r\nPOST /c HTTP/1.1\r\nHost: backend\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nA\r\n0\r\n\r\n',
      statuses: [200, 200, 400],
      heads: ['GET /a?delay=50', 'GET /b'],
    },
  ];
  for (const c of cases) {
    app.heads.length = 0;
    const { statuses, wire } = await exchange(t, port, c.bytes);
    t.strictSame(statuses, c.statuses, `${c.name}: answers in order, the refusal last`);
    t.notOk(wire.open, `${c.name}: the connection is closed`);
    t.equal(urlOf(bodies(wire.responses())[0]), c.heads[0]!.split(' ')[1], `${c.name}: the first answer is the app's answer to the first request`);
    t.strictSame(app.heads, c.heads, `${c.name}: the app saw the valid requests only`);
  }
});

t.test('framing the proxy refuses never leaves it, even with idle pooled connections on both hops', async (t) => {
  const { app, registry, port } = await rig(t);
  const post = (lines: string, body = '', version = 'HTTP/1.1'): string => `POST /hostile ${version}\r\nHost: backend\r\n${lines}\r\n${body}`;
  const vectors: Array<[string, string, number]> = [
    ['Transfer-Encoding: gzip', post('Transfer-Encoding: gzip\r\n', 'abc'), 400],
    ['Transfer-Encoding: xchunked', post('Transfer-Encoding: xchunked\r\n', '0\r\n\r\n'), 400],
    ['Transfer-Encoding: chunked, gzip', post('Transfer-Encoding: chunked, gzip\r\n', '0\r\n\r\n'), 400],
    ['Transfer-Encoding: gzip, chunked', post('Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n'), 501],
    ['Transfer-Encoding with Content-Length', post('Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n'), 400],
    ['Transfer-Encoding: chunked in an HTTP/1.0 request', post('Transfer-Encoding: chunked\r\n', '0\r\n\r\n', 'HTTP/1.0'), 400],
    ['Content-Length: 3x', post('Content-Length: 3x\r\n', 'abc'), 400],
    ['a chunk size that is not hex', post('Transfer-Encoding: chunked\r\n', 'zz\r\nA\r\n0\r\n\r\n'), 400],
  ];
  const warm = async (): Promise<void> => {
    const { statuses } = await exchange(t, port, 'GET /warm HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n');
    t.strictSame(statuses, [200], 'warm-up answered');
  };
  for (const [name, bytes, status] of vectors) {
    await warm();
    t.ok(
      await metricsMatch(registry, /weft_proxy_pool_connections\{direction="outbound",destination="backend",state="idle"\} [1-9]/),
      `${name}: the outbound holds an idle connection to the inbound`,
    );
    app.heads.length = 0;
    const { statuses, wire } = await exchange(t, port, bytes);
    t.strictSame(statuses, [status], `${name}: ${status}, one answer`);
    t.notOk(wire.open, `${name}: connection closed`);
    await warm();
    t.strictSame(app.heads, ['GET /warm'], `${name}: the app saw nothing of it`);
  }
});

t.test('targets, Host and versions the outbound refuses: the status, a closed connection, nothing at the app', async (t) => {
  const { app, port } = await rig(t);
  const get = (target: string, lines = 'Host: backend\r\n', version = ' HTTP/1.1'): string => `GET ${target}${version}\r\n${lines}\r\n`;
  const table: Array<[string, string, number]> = [
    ['absolute-form https://', get('https://backend/hostile'), 400],
    ['absolute-form with an IPv4 literal', get('http://10.0.0.1/hostile'), 400],
    ['absolute-form with an IPv6 literal', get('http://[::1]:8080/hostile'), 400],
    ['absolute-form with userinfo', get('http://user:secret@backend/hostile'), 400],
    ['no Host (origin-form)', get('/hostile', ''), 400],
    ['no Host (absolute-form, HTTP/1.1)', get('http://backend/hostile', ''), 400],
    ['two Host headers', get('/hostile', 'Host: backend\r\nHost: hello\r\n'), 400],
    ['a Host with userinfo', get('/hostile', 'Host: user@backend\r\n'), 400],
    ['a request line without a version', get('/hostile', 'Host: backend\r\n', ''), 400],
    ['HTTP/2.0 on an HTTP/1.1 connection', get('/hostile', 'Host: backend\r\n', ' HTTP/2.0'), 505],
    ['CONNECT', 'CONNECT backend:443 HTTP/1.1\r\nHost: backend:443\r\n\r\n', 400],
    ['an upgrade with two Host headers', get('/hostile', 'Host: backend\r\nHost: hello\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'), 400],
  ];
  for (const [name, bytes, status] of table) {
    const { statuses, wire } = await exchange(t, port, bytes);
    t.strictSame(statuses, [status], `${name}: ${status}, one answer`);
    t.match(wire.responses()[0]?.headers['x-weft-reason'], /^weft: /, `${name}: the reason says why`);
    t.notOk(wire.open, `${name}: connection closed`);
  }
  t.strictSame(app.heads, [], 'the app saw none of them');
  // Controls: the forward-proxy form and an HTTP/1.0 absolute-form request without Host stay valid here.
  const proxied = await exchange(t, port, 'GET http://backend/fine?x=1 HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n');
  t.strictSame(proxied.statuses, [200], 'absolute-form http:// with Host passes');
  const old = await exchange(t, port, 'GET http://backend.weft/old HTTP/1.0\r\n\r\n');
  t.strictSame(old.statuses, [200], 'HTTP/1.0 absolute-form without Host passes');
  t.strictSame(app.heads, ['GET /fine?x=1', 'GET /old']);
});

t.test("an instance's unsolicited 101 is a 502 for the caller, and its connection is closed", async (t) => {
  const { legacy, port } = await rig(t);
  const wire = await connectPlain(t, port);
  wire.write('GET /plain HTTP/1.1\r\nHost: legacy\r\n\r\n');
  const answers = await wire.read(1);
  t.strictSame(
    answers.map((r) => r.status),
    [502],
    'one answer: 502, no 101',
  );
  t.notMatch(wire.data.toString('latin1'), /raw bytes of another protocol/, 'nothing of the other protocol reaches the caller');
  t.ok(await until(() => legacy.conns.length === 1 && legacy.conns[0]!.closed), 'the connection to the instance is closed');
});
