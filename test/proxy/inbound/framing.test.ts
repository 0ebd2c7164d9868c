/**
 * HTTP/1.1 framing on the inbound listener, as raw bytes over a real mTLS
 * socket from a mesh caller: pipelined requests (bodies included) answered
 * in order on an open connection, and a caller that leaves before its
 * answer counted as 499 without leaving the proxy or its app pool busy.
 * (The same behaviours through both hops: test/proxy/outbound/framing.test.ts.)
 */
import t from 'tap';
import { IntentionTable } from '../../../proxy/inbound/intentions.js';
import { bodies, metricsMatch, Wire } from '../wire.js';
import { call, connectRaw, instance, makeMesh, startApp, startInbound, until } from './fixtures.js';

const allowAll = IntentionTable.fromEntries([], { defaultAction: 'allow' });

t.test('pipelining: three requests in one write get three answers in order, and the connection stays open', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const { port } = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  const socket = await connectRaw(port, mesh.web, 'api');
  t.teardown(() => socket.destroy());
  const wire = new Wire(socket);
  wire.write(
    'GET /one HTTP/1.1\r\nHost: api\r\n\r\n' +
      'POST /two HTTP/1.1\r\nHost: api\r\nContent-Length: 7\r\n\r\nsecond!' +
      'POST /three HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nthi\r\n2\r\nrd\r\n0\r\n\r\n',
  );
  const answers = await wire.read(3);
  const seen = bodies(answers).map((b) => JSON.parse(b) as { url: string; method: string; body: string });
  t.strictSame(
    seen.map((s) => [s.method, s.url, s.body]),
    [
      ['GET', '/one', ''],
      ['POST', '/two', 'second!'],
      ['POST', '/three', 'third'],
    ],
    'three answers in request order, each with its own body',
  );
  t.ok(
    answers.every((r) => r.status === 200 && r.headers['connection'] !== 'close'),
    'none closes the connection',
  );
  t.ok(wire.open, 'the connection is still open');
  wire.write('GET /four HTTP/1.1\r\nHost: api\r\n\r\n');
  const all = await wire.read(4);
  t.equal((JSON.parse(bodies(all)[3] ?? '{}') as { url?: string }).url, '/four', 'and serves the next request');
});

t.test('a caller that leaves before the answer: 499, nothing left busy, the next caller served', async (t) => {
  const mesh = makeMesh(['api']);
  // The app answers after 1.5 s: the checks below are done well before, so an app connection
  // that is merely idle again once the app answered cannot pass for one that was cut.
  const app = await startApp(t, 'api', { slowMs: 1500 });
  const { port, registry } = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  const socket = await connectRaw(port, mesh.web, 'api');
  t.teardown(() => socket.destroy());
  socket.write('GET /slow HTTP/1.1\r\nHost: api\r\n\r\n');
  t.ok(await until(() => app.seen.length === 1), 'the request reached the app');
  socket.destroy();
  t.ok(
    await metricsMatch(registry, /weft_proxy_requests_total\{direction="inbound",source="web",destination="api",version="v1",instance="h2-api-1",code="499"\} 1\n/, 1000),
    'counted as 499 (client closed request)',
  );
  t.ok(
    await metricsMatch(registry, /weft_proxy_pool_connections\{direction="inbound",destination="api",state="active"\} 0\n/, 1000),
    'the connection carrying the abandoned request is closed at once',
  );
  const next = await call(port, mesh.web, 'api', { path: '/next' });
  t.equal(next.status, 200, 'a new caller is served');
  t.equal((JSON.parse(next.body) as { url: string }).url, '/next');
});
