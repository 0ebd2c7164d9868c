/**
 * The listeners' slow-client deadlines come from the configuration
 * (proxy.timeouts.headMs, proxy.timeouts.handshakeMs): a real `weft proxy`
 * with both at 300 ms answers a request head that stops half way with 408,
 * and closes an mTLS connection that never starts its handshake, long
 * before the 10 s defaults.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeIdentityFiles } from '../../certs/store.js';
import { identitiesDir } from '../../src/wiring/proxy-identities.js';
import { makeCa, makeIdentity } from '../certs/fixtures.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { freePort } from '../helpers/ports.js';
import { type SimHost, startProxy, writeLocal } from './proxy-hosts.js';

// 127.0.17.x: other test files run at the same time on other addresses.
const ADDRESS = '127.0.17.2';
/** Far under the 10 s defaults, far over the 300 ms configured: a proxy on the defaults fails this test. */
const PATIENCE_MS = 5_000;

const consul = await startTestConsul(t);
const dataDir = await mkdtemp(join(tmpdir(), 'weft-timeouts-'));
t.teardown(() => rm(dataDir, { recursive: true, force: true }));
await writeFile(join(dataDir, 'config.yaml'), 'proxy:\n  reloadIntervalMs: 100\n  timeouts:\n    headMs: 300\n    handshakeMs: 300\n');
const host: SimHost = { node: 'tmo', address: ADDRESS, dataDir, inboundPort: await freePort(ADDRESS), metricsPort: await freePort(ADDRESS) };
const outboundPort = await freePort(ADDRESS);
await writeLocal(host, [{ service: 'web', outboundPort }]);
// The inbound mTLS listener serves once the host holds an identity.
writeIdentityFiles(join(identitiesDir(dataDir), 'web'), makeIdentity(makeCa(), 'web'));
const proxy = await startProxy(t, host, consul.address);
t.teardown(() => proxy.stop());

/** Connects, writes `bytes`, and resolves with what came back once the proxy closed the connection (or PATIENCE_MS passed). */
function silentAfter(port: number, bytes: string): Promise<{ answer: string; connected: boolean; closedByProxy: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: ADDRESS, port });
    let answer = '';
    let connected = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ answer, connected, closedByProxy: false });
    }, PATIENCE_MS);
    socket.on('connect', () => {
      connected = true;
      if (bytes !== '') socket.write(bytes);
    });
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, connected, closedByProxy: true });
    });
  });
}

t.test('proxy.timeouts.headMs: a request head that stops half way is answered 408 and closed', async (t) => {
  const r = await silentAfter(outboundPort, 'GET / HTTP/1.1\r\nHost: web\r\nX-Slow: ');
  t.ok(r.connected, 'the listener accepted the connection');
  t.ok(r.closedByProxy, 'the proxy closed the connection');
  t.match(r.answer, /^HTTP\/1\.1 408 /, `answered 408 (${JSON.stringify(r.answer.slice(0, 40))})`);
});

t.test('proxy.timeouts.handshakeMs: an mTLS connection that never starts its handshake is closed', async (t) => {
  const r = await silentAfter(host.inboundPort, '');
  t.ok(r.connected, 'the listener accepted the connection');
  t.ok(r.closedByProxy, 'the proxy closed the connection');
  t.equal(r.answer, '', 'nothing was sent back');
});
