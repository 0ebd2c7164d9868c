/**
 * Every llhttp parser proxy/h1 creates is closed once its connection is
 * gone. The native parser holds its JavaScript object strongly, so one never
 * closed keeps its callbacks, and through them the connection and its
 * socket, for the life of the process: a proxy serving short connections
 * grew by every connection it had ever carried.
 *
 * Counted by wrapping the real parser's `initialize` and `close` (every
 * parser of the data path is initialised once, by newParser).
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import t from 'tap';
import { ConnPool } from '../../../proxy/h1/client.js';
import { tunnel } from '../../../proxy/h1/tunnel.js';
import { connectPlain } from '../wire.js';
import { get, HOST, RawUpstream, startH1, until } from './fixtures.js';

const proto = (createRequire(import.meta.url)('node:_http_common') as { HTTPParser: { prototype: Record<string, (...a: unknown[]) => unknown> } }).HTTPParser.prototype;
const counts = { initialized: 0, closed: 0 };
const initialize = proto['initialize']!;
const close = proto['close']!;
proto['initialize'] = function (this: unknown, ...a: unknown[]) {
  counts.initialized++;
  return initialize.apply(this, a);
};
proto['close'] = function (this: unknown, ...a: unknown[]) {
  counts.closed++;
  return close.apply(this, a);
};
t.teardown(() => {
  proto['initialize'] = initialize;
  proto['close'] = close;
});

t.test('server, pool and tunnel parsers are all closed once their connections close', async (t) => {
  const before = { ...counts };
  const up = await RawUpstream.start(t, (conn) => {
    if (conn.received.includes('Upgrade: echo')) conn.socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    else conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  const tunnels: Socket[] = [];
  const server = await startH1(t, {
    onRequest(req) {
      req.reply(200, 'ok');
    },
    onUpgrade(req, socket, head) {
      tunnels.push(socket);
      tunnel({
        socket,
        head,
        target: { host: HOST, port: up.port },
        requestHead: `GET ${req.url} HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`,
        timeoutMs: 5000,
        describe: () => ({ status: 502, reason: 'test' }),
        done: () => {},
      });
    },
  });
  // 10 plain connections (one parser each on the server), 10 upgrades (server + tunnel parser each).
  for (let i = 0; i < 10; i++) {
    const wire = await connectPlain(t, server.address.port);
    wire.write('GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n');
    await until(() => wire.closed || wire.ended);
    wire.socket.destroy();
    const ws = await connectPlain(t, server.address.port);
    ws.write('GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    await until(() => ws.data.includes('\r\n\r\n'));
    ws.socket.destroy();
  }
  // 10 pooled connections, closed by the pool.
  const pool = new ConnPool({ host: HOST, port: up.port }, { maxConnections: 10, idleMs: 60_000 });
  const recs = Array.from({ length: 10 }, () => get(pool, '/'));
  await Promise.all(recs.map((r) => r.done));
  t.equal(pool.stats.idle, 10);
  pool.destroy();
  const created = counts.initialized - before.initialized;
  t.equal(created, 40, '10 + 10 server parsers, 10 tunnel parsers, 10 pool parsers');
  t.ok(await until(() => counts.closed - before.closed === created, 5000), `closed ${counts.closed - before.closed} of ${created}`);
  t.equal(tunnels.length, 10);
});
