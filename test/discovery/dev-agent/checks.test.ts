/** Checks the agent runs itself, against real local servers: HTTP, TCP, thresholds, the reaper. */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
// The `consul` client's typings demand fields Consul does not (a check `timeout`, lower-case txn
// ops), so option objects it would reject at compile time are passed `as never`.
import t from 'tap';
import { eventually } from '../../helpers/eventually.js';
import { startTestConsul, type TeardownHost, type TestConsul } from '../../helpers/dev-consul.js';

interface Check {
  Status: string;
  Output: string;
  Type: string;
  Interval: string;
  Timeout: string;
  Definition: Record<string, unknown>;
}

/** An HTTP server on 127.0.0.1 whose status code and body the test sets; closed at teardown. */
async function upstream(t: TeardownHost, initial = 200): Promise<{ url: string; set(status: number, body?: string): void; hits(): number }> {
  let status = initial;
  let body = 'ok';
  let hits = 0;
  const server: Server = createHttpServer((_req, res) => {
    hits++;
    res.writeHead(status, { 'Content-Type': 'text/plain' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/health`,
    set(s, b = 'ok') {
      status = s;
      body = b;
    },
    hits: () => hits,
  };
}

async function check(c: TestConsul, id: string): Promise<Check | undefined> {
  return ((await c.consul.agent.checks()) as Record<string, Check>)[id];
}

async function statusBecomes(c: TestConsul, id: string, status: string, timeoutMs = 2000): Promise<Check> {
  return eventually(async () => {
    const ch = await check(c, id);
    return ch?.Status === status ? ch : undefined;
  }, timeoutMs, `${id} to be ${status}`);
}

/** A port on 127.0.0.1 nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

t.test('HTTP: 2xx passing, 429 warning, 5xx critical, with Consul output', async (t) => {
  const c = await startTestConsul(t);
  const up = await upstream(t);
  await c.consul.agent.service.register({ name: 'web', id: 'w1', check: { http: up.url, interval: '100ms' } } as never);
  const passing = await statusBecomes(c, 'service:w1', 'passing');
  t.equal(passing.Output, `HTTP GET ${up.url}: 200 OK Output: ok`);
  t.match(passing, { Type: 'http', Interval: '100ms', Timeout: '100ms', Definition: { HTTP: up.url, Interval: '100ms' } });

  up.set(429, 'slow down');
  t.equal((await statusBecomes(c, 'service:w1', 'warning')).Output, `HTTP GET ${up.url}: 429 Too Many Requests Output: slow down`);
  up.set(503, 'broken');
  t.equal((await statusBecomes(c, 'service:w1', 'critical')).Output, `HTTP GET ${up.url}: 503 Service Unavailable Output: broken`);
  up.set(204, '');
  await statusBecomes(c, 'service:w1', 'passing');
});

t.test('HTTP: a refused connection is critical with a Go-style error', async (t) => {
  const c = await startTestConsul(t);
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}/health`;
  await c.consul.agent.check.register({ name: 'gone', http: url, interval: '100ms', status: 'passing' } as never);
  const ch = await statusBecomes(c, 'gone', 'critical');
  t.equal(ch.Output, `Get "${url}": dial tcp 127.0.0.1:${port}: connect: connection refused`);
});

t.test('HTTP: a slow answer past Timeout is critical', async (t) => {
  const c = await startTestConsul(t);
  const server = createHttpServer((_req, res) => {
    setTimeout(() => res.end('late'), 400);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  // Raw HTTP: the consul client would also take `timeout: '50ms'` as its own request timeout, which a busy machine misses.
  const res = await fetch(`http://${c.address}/v1/agent/check/register`, {
    method: 'PUT',
    body: JSON.stringify({ Name: 'slow', HTTP: url, Interval: '200ms', Timeout: '50ms', Status: 'passing' }),
  });
  t.equal(res.status, 200, 'registered');
  const ch = await statusBecomes(c, 'slow', 'critical');
  t.match(ch.Output, /context deadline exceeded/);
  t.equal(ch.Timeout, '50ms');
});

t.test('SuccessBeforePassing holds a new check critical until enough successes', async (t) => {
  const c = await startTestConsul(t);
  const up = await upstream(t);
  await c.consul.agent.check.register({ name: 'warmup', http: up.url, interval: '150ms', successbeforepassing: 3 } as never);
  await eventually(() => up.hits() >= 1, 2000, 'first probe');
  t.equal((await check(c, 'warmup'))?.Status, 'critical', 'one success is not enough');
  await statusBecomes(c, 'warmup', 'passing');
  t.ok(up.hits() >= 3, `passing after ${up.hits()} probes`);
});

t.test('FailuresBeforeWarning / FailuresBeforeCritical tolerate blips', async (t) => {
  const c = await startTestConsul(t);
  const up = await upstream(t);
  await c.consul.agent.check.register({
    name: 'flaky',
    http: up.url,
    interval: '100ms',
    failuresbeforewarning: 1,
    failuresbeforecritical: 3,
  } as never);
  await statusBecomes(c, 'flaky', 'passing');
  const before = up.hits();
  up.set(500);
  await eventually(() => up.hits() >= before + 1, 2000, 'a failing probe');
  await statusBecomes(c, 'flaky', 'warning');
  const warnedAt = up.hits();
  t.ok(warnedAt - before < 3, 'warning before the critical threshold');
  const crit = await statusBecomes(c, 'flaky', 'critical');
  t.ok(up.hits() - before >= 3, `critical after ${up.hits() - before} failures`);
  t.match(crit.Output, /500 Internal Server Error/);
});

t.test('TCP: a listener is passing, a closed port critical', async (t) => {
  const c = await startTestConsul(t);
  const server = createTcpServer((sock) => sock.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  await c.consul.agent.service.register({ name: 'db', id: 'db1', check: { tcp: addr, interval: '100ms' } } as never);
  const ok = await statusBecomes(c, 'service:db1', 'passing');
  t.equal(ok.Output, `TCP connect ${addr}: Success`);
  t.equal(ok.Type, 'tcp');

  const dead = `127.0.0.1:${await closedPort()}`;
  await c.consul.agent.check.register({ name: 'dead', tcp: dead, interval: '100ms', status: 'passing' } as never);
  t.equal((await statusBecomes(c, 'dead', 'critical')).Output, `dial tcp ${dead}: connect: connection refused`);
});

t.test('intervals under the floor are raised to it, as Consul raises them to 1s', async (t) => {
  const c = await startTestConsul(t, { checkIntervalMin: 1000 });
  await c.consul.agent.check.register({ name: 'fast', tcp: '127.0.0.1:1', interval: '100ms' } as never);
  t.equal((await check(c, 'fast'))?.Interval, '1s');
});

t.test('DeregisterCriticalServiceAfter removes a service that stays critical', async (t) => {
  const c = await startTestConsul(t);
  const port = await closedPort();
  await c.consul.agent.service.register({
    name: 'doomed',
    id: 'd1',
    check: { http: `http://127.0.0.1:${port}/`, interval: '50ms', deregistercriticalserviceafter: '300ms' },
  } as never);
  await c.consul.agent.service.register({ name: 'healthy', id: 'h1', check: { ttl: '10s', status: 'passing', deregistercriticalserviceafter: '50ms' } } as never);
  const started = performance.now();
  await eventually(async () => !('d1' in ((await c.consul.agent.services()) as object)), 3000, 'the reaper');
  const took = performance.now() - started;
  t.ok(took >= 250, `reaped after ${Math.round(took)} ms, not before the timeout`);
  t.strictSame(await c.consul.health.service('doomed'), []);
  t.ok('h1' in ((await c.consul.agent.services()) as object), 'a passing service is kept');
});

t.test('the reaper floor keeps a short timeout from reaping early', async (t) => {
  const c = await startTestConsul(t, { checkDeregisterIntervalMin: 60_000 });
  await c.consul.agent.service.register({ name: 'x', id: 'x1', check: { ttl: '10s', deregistercriticalserviceafter: '10ms' } } as never);
  await new Promise((r) => setTimeout(r, 300));
  t.ok('x1' in ((await c.consul.agent.services()) as object));
});
