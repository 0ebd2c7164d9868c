import net from 'node:net';
import t from 'tap';
import { IntentionTable } from '../../../proxy/inbound/intentions.js';
import { CALLER_HOST, call, HOST, instance, makeMesh, startApp, startInbound } from './fixtures.js';

const allowAll = IntentionTable.fromEntries([], { defaultAction: 'allow' });

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port, localAddress: CALLER_HOST });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

t.test('close() stops accepting and lets an in-flight request finish', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api', { slowMs: 300 });
  const { proxy, port } = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  const pending = call(port, mesh.web, 'api', { path: '/slow' });
  await new Promise((r) => setTimeout(r, 100)); // the request is at the app now
  const closing = proxy.close(3000);
  t.ok(proxy.draining);
  t.ok(await refused(port), 'new connections are refused while draining');
  const res = await pending;
  t.equal(res.status, 200, 'the in-flight request completed');
  t.equal(JSON.parse(res.body).url, '/slow');
  t.equal(res.headers['connection'], 'close', 'and told the caller to go elsewhere');
  t.strictSame(await closing, { forced: 0 });
});

t.test('at the deadline the rest is cut', async (t) => {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api', { slowMs: 800 });
  const { proxy, port } = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  const pending = call(port, mesh.web, 'api').then(
    () => 'answered',
    (err: Error) => err.message,
  );
  await new Promise((r) => setTimeout(r, 100));
  t.strictSame(await proxy.close(200), { forced: 1 }, 'close returned without waiting for the slow app');
  t.match(await pending, /socket hang up|ECONNRESET/);
});
