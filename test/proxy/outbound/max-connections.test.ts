/**
 * An outbound listener takes at most `maxConnections` connections: the next
 * is closed at accept and counted per listener, and connections are accepted
 * again once others close.
 */
import net from 'node:net';
import { Registry } from 'prom-client';
import t from 'tap';
import { ProxyMetrics } from '../../../proxy/metrics.js';
import { eventually } from '../../helpers/eventually.js';
import { certsTls, clientAgent, FakeRouteSource, makeCa, request, startMeshHost, startOutbound } from './helpers.js';

const ca = makeCa();
const tls = certsTls(ca, ['frontend']);

function connect(port: number): Promise<{ socket: net.Socket; closed: Promise<void>; isClosed(): boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let done = false;
    const closed = new Promise<void>((r) => {
      const mark = (): void => {
        done = true;
        r();
      };
      socket.once('end', mark);
      socket.once('close', mark);
    });
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, closed, isClosed: () => done }));
    socket.once('error', reject);
  });
}

t.test('beyond maxConnections an outbound connection is closed at accept and counted; accepted again after', async (t) => {
  const source = new FakeRouteSource();
  const h2 = await startMeshHost(t, ca, 'backend', '127.0.0.2');
  h2.instance('h2-app');
  source.setInstances('backend', [h2.route('h2-app')]);
  const registry = new Registry();
  const metrics = new ProxyMetrics(registry);
  const N = 3;
  const proxy = await startOutbound(t, { source, tls, metrics, httpLimits: { maxConnections: N } });
  const port = proxy.portOf('frontend');
  const refused = async (): Promise<number> => {
    const m = (await registry.metrics()).match(/weft_proxy_connections_refused_total\{listener="outbound:frontend",reason="max_connections"\} (\d+)/);
    return m === null ? 0 : Number(m[1]);
  };

  const held = [];
  for (let i = 0; i < N; i++) held.push(await connect(port));
  const extra = await connect(port);
  const closedInTime = await Promise.race([extra.closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 10_000).unref())]);
  t.ok(closedInTime, `connection ${N + 1} closed by the proxy`);
  t.equal(await refused(), 1, 'counted for the listener');
  t.notOk(held.some((c) => c.isClosed()), 'the connections within the limit stay open');

  for (const c of held) c.socket.destroy();
  const agent = clientAgent(t, 1);
  const reply = await eventually(async () => {
    const r = await request(agent, port);
    return r.status === 200 ? r : undefined;
  }, 5000, 'a request served once the held connections closed');
  t.equal(reply.body, 'h2-app');
});
