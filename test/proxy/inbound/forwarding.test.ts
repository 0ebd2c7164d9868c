import t from 'tap';
import { IntentionTable } from '../../../proxy/inbound/intentions.js';
import { CALLER_HOST, call, collect, connectRaw, instance, makeMesh, rawExchange, startApp, startInbound, TD, until } from './fixtures.js';

const allowAll = IntentionTable.fromEntries([], { defaultAction: 'allow' });

t.test('forwards to the local instance of the SNI service, with hop-by-hop headers stripped and XFF appended', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const { port, registry } = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port, 'v7')] });
  const res = await call(port, mesh.web, 'api', {
    method: 'POST',
    path: '/orders?x=1',
    body: 'hello',
    headers: {
      connection: 'keep-alive, x-hop-named',
      'x-hop-named': 'drop me',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic c2VjcmV0',
      te: 'trailers',
      'x-forwarded-for': '127.0.0.9',
      'x-forwarded-proto': 'http',
      'x-weft-source': 'spiffe://weft.test/ns/default/svc/admin',
      'x-weft-instance': 'h2-api-1',
      'x-end-to-end': 'kept',
    },
  });
  t.equal(res.status, 200);
  t.equal(res.headers['x-app-hop'], undefined, 'a response header the app named in Connection is stripped');
  t.not(res.headers['keep-alive'], 'timeout=5', "the app's Keep-Alive is not relayed (Node states the proxy's own)");
  t.equal(app.seen.length, 1);
  const seen = app.seen[0]!;
  t.equal(seen.method, 'POST');
  t.equal(seen.url, '/orders?x=1');
  t.equal(seen.body, 'hello');
  t.equal(seen.headers['x-end-to-end'], 'kept');
  for (const h of ['x-hop-named', 'keep-alive', 'proxy-authorization', 'te', 'x-weft-instance']) t.equal(seen.headers[h], undefined, `${h} not forwarded`);
  t.equal(seen.headers['x-forwarded-for'], `127.0.0.9, ${CALLER_HOST}`, 'the mesh peer is trusted: its XFF is appended to');
  t.equal(seen.headers['x-forwarded-proto'], 'http', "the peer's proto is kept");
  t.equal(seen.headers['x-weft-source'], `spiffe://${TD}/ns/default/svc/web`, 'the verified caller identity overwrites any claim');
  const text = await registry.metrics();
  t.match(text, /weft_proxy_requests_total\{direction="inbound",source="web",destination="api",version="v7",instance="h2-api-1",code="200"\} 1/);
});

t.test('without x-weft-instance any local instance of the service serves; a foreign instance id is refused', async (t) => {
  const mesh = makeMesh(['api', 'db']);
  const api = await startApp(t, 'api');
  const db = await startApp(t, 'db');
  const { port } = await startInbound(t, {
    ids: mesh.ids,
    intentions: allowAll,
    instances: [instance('api', 'h2-api-1', api.port), instance('db', 'h2-db-1', db.port)],
  });
  const plain = await call(port, mesh.web, 'api');
  t.equal(plain.status, 200);
  t.equal(JSON.parse(plain.body).app, 'api');
  const foreign = await call(port, mesh.web, 'api', { headers: { 'x-weft-instance': 'h2-db-1' } });
  t.equal(foreign.status, 503, 'an instance of another service is not a target');
  t.match(foreign.headers['x-weft-reason'], /WEFT_ERR_LOCAL_INSTANCE_MISSING/);
  t.equal(db.seen.length, 0);
  const gone = await call(port, mesh.web, 'api', { headers: { 'x-weft-instance': 'h2-api-9' } });
  t.equal(gone.status, 503);
});

t.test('a local app that is down is a 502 with the reason', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const deadPort = app.port;
  await new Promise<void>((resolve) => app.server.close(() => resolve()));
  const { port } = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', deadPort)] });
  const res = await call(port, mesh.web, 'api');
  t.equal(res.status, 502);
  t.match(res.headers['x-weft-reason'], /WEFT_ERR_LOCAL_APP_UNAVAILABLE/);
});

t.test('HTTP/1.0 and Connection: close work and close the connection', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const { port } = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  const old = await rawExchange(port, mesh.web, 'api', 'GET /old HTTP/1.0\r\n\r\n');
  t.match(old.data, /^HTTP\/1\.1 200 OK\r\n/);
  t.match(old.data, /"url":"\/old"/);
  t.ok(old.closed, 'HTTP/1.0 without keep-alive closes');
  const close = await rawExchange(port, mesh.web, 'api', 'GET /bye HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n');
  t.match(close.data, /^HTTP\/1\.1 200 OK\r\n/);
  t.match(close.data, /\r\nconnection: close\r\n/i);
  t.ok(close.closed);
  t.equal(app.seen.length, 2);
  t.equal(app.seen[0]!.headers['connection'], 'keep-alive', 'the pool to the app stays keep-alive');
});

t.test('Expect: 100-continue: the app says 100, then the body flows', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const { port } = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  const socket = await connectRaw(port, mesh.web, 'api');
  const done = collect(socket, 3000);
  socket.write('POST /up HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
  let result = '';
  socket.on('data', (d: Buffer) => {
    result += d.toString();
  });
  await until(() => result.includes('\r\n\r\n'));
  t.match(result, /^HTTP\/1\.1 100 Continue\r\n\r\n/);
  t.equal(app.seen.length, 0, 'nothing reached the app before the body');
  socket.write('hello');
  const rest = await done;
  t.match(rest.data, /HTTP\/1\.1 200 OK/);
  t.equal(app.seen[0]?.body, 'hello');
});
