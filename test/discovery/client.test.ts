/**
 * The client's error mapping and aborts, against real sockets: a closed port
 * (unreachable), a stub HTTP server answering errors, one that never answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import t from 'tap';
import { ConsulError, createDiscoveryClient, DiscoveryClient } from '../../discovery/client.js';
import { freePort } from '../helpers/ports.js';
import type { TeardownHost } from '../helpers/dev-consul.js';

async function stub(t: TeardownHost, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

t.test('nothing listening -> WEFT_ERR_CONSUL_UNAVAILABLE naming the address', async (t) => {
  const address = `127.0.0.1:${await freePort()}`;
  const client = createDiscoveryClient({ consul: { address } });
  t.teardown(() => client.close());
  const err = await client.call('kv.get', (c) => c.kv.get('weft/x')).catch((e: unknown) => e);
  t.ok(err instanceof ConsulError);
  t.match(err, { code: 'WEFT_ERR_CONSUL_UNAVAILABLE', key: 'consul.address', value: address, statusCode: 503 });
  t.match((err as Error).message, `consul at ${address} unreachable (kv.get): ECONNREFUSED`);
});

t.test('HTTP errors -> WEFT_ERR_CONSUL_REQUEST with status, method, path and body; token sent', async (t) => {
  let token: string | undefined;
  const address = await stub(t, (req, res) => {
    token = req.headers['x-consul-token'] as string | undefined;
    res.writeHead(403, { 'content-type': 'text/plain' });
    res.end('Permission denied: token lacks key:write on weft/x');
  });
  const client = new DiscoveryClient({ address: `http://${address}`, token: 'secret-token' });
  t.teardown(() => client.close());
  const err = await client.call('kv.set', (c) => c.kv.set('weft/x', 'v')).catch((e: unknown) => e);
  t.match(err, { code: 'WEFT_ERR_CONSUL_REQUEST', status: 403, method: 'PUT', path: '/v1/kv/weft/x', key: '/v1/kv/weft/x', value: 403 });
  t.equal((err as Error).message, 'consul PUT /v1/kv/weft/x (kv.set): 403 Permission denied: token lacks key:write on weft/x');
  t.equal(token, 'secret-token');
});

t.test('a server that answers too slowly counts as unavailable', async (t) => {
  const address = await stub(t, () => {
    /* never answers */
  });
  const client = new DiscoveryClient({ address }, { requestTimeoutMs: 100 });
  t.teardown(() => client.close());
  const started = Date.now();
  await t.rejects(
    client.call('status.leader', (c) => c.status.leader()),
    { code: 'WEFT_ERR_CONSUL_UNAVAILABLE', message: /no answer in time/ },
  );
  t.ok(Date.now() - started < 2000);
});

t.test('query(): index header, 404 as empty, abort ends the request at once', async (t) => {
  const seen: string[] = [];
  const address = await stub(t, (req, res) => {
    const url = decodeURIComponent(req.url ?? '');
    seen.push(url);
    if (url.includes('index=42')) return; // block "forever"
    if (url.startsWith('/v1/kv/weft/missing')) {
      res.writeHead(404, { 'x-consul-index': '17' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '42' });
    res.end(JSON.stringify([{ Key: 'weft/a', Value: Buffer.from('1').toString('base64'), CreateIndex: 1, ModifyIndex: 42, LockIndex: 0, Flags: 0 }]));
  });
  const client = new DiscoveryClient({ address });
  t.teardown(() => client.close());

  const first = await client.query<unknown[]>('kv.get', (c, x) => c.kv.get({ key: 'weft/', recurse: true, ...x }), { waitMs: 5000 });
  t.equal(first.index, 42n);
  t.equal(first.status, 200);
  t.match(first.body, [{ Key: 'weft/a', Value: '1' }]);

  const missing = await client.query('kv.get', (c, x) => c.kv.get({ key: 'weft/missing', ...x }));
  t.strictSame([missing.body, missing.index, missing.status], [undefined, 17n, 404]);

  const ac = new AbortController();
  const blocked = client.query('kv.get', (c, x) => c.kv.get({ key: 'weft/', recurse: true, ...x }), { index: 42n, waitMs: 60_000, signal: ac.signal });
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  ac.abort(new Error('closing'));
  await t.rejects(blocked, { message: 'closing' });
  t.ok(Date.now() - started < 2000, 'aborted promptly: far sooner than the 60 s wait');
  t.match(seen[0], /recurse=true/);
  t.match(seen[0], /wait=5s/);
  t.match(seen[2], /index=42/);
});
