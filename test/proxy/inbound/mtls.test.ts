/**
 * The inbound listener refuses every caller that is not a mesh workload of
 * our trust domain, before HTTP: the app never sees the request and the
 * refusal is counted by reason.
 */
import net from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { meshClientOptions } from '../../../certs/mtls.js';
import { IntentionTable } from '../../../proxy/inbound/intentions.js';
import { caSigner, forgeLeaf, makeCa, makeIdentity } from '../../certs/fixtures.js';
import { CALLER_HOST, call, collect, HOST, instance, makeMesh, type RawResult, startApp, startInbound, TD } from './fixtures.js';
import { eventually } from '../../helpers/eventually.js';

const allowAll = IntentionTable.fromEntries([], { defaultAction: 'allow' });
const REQUEST = 'GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n';

/** Connects with `options`, sends a request once the client side of the handshake is done, collects the answer. */
function attempt(port: number, options: tls.ConnectionOptions): Promise<RawResult> {
  const all = { ...options, host: HOST, port, localAddress: CALLER_HOST };
  const socket = tls.connect(all);
  socket.once('secureConnect', () => socket.write(REQUEST));
  return collect(socket, 3000);
}

async function rig(t: Test) {
  const mesh = makeMesh(['api']);
  const app = await startApp(t, 'api');
  const inbound = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', 'h2-api-1', app.port)] });
  const bundle = mesh.ids['api']!.bundlePem;
  return { mesh, app, inbound, bundle };
}

async function failures(registry: { metrics(): Promise<string> }): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of (await registry.metrics()).matchAll(/weft_proxy_tls_handshake_failures_total\{direction="inbound",reason="([a-z_]+)"\} (\d+)/g)) {
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

t.test('a valid mesh caller gets through (control)', async (t) => {
  const r = await rig(t);
  t.equal((await call(r.inbound.port, r.mesh.web, 'api')).status, 200);
  t.match(await r.inbound.registry.metrics(), /weft_proxy_connections_open\{direction="inbound"\}/);
});

t.test('refused callers never reach the app', async (t) => {
  const r = await rig(t);
  const foreign = makeIdentity(makeCa(), 'web', r.bundle); // another CA's leaf, though it trusts ours
  const now = Date.now();
  const expired = forgeLeaf(caSigner(r.mesh.ca), {
    uris: [`spiffe://${TD}/ns/default/svc/web`],
    notBefore: new Date(now - 2 * 3600_000),
    notAfter: new Date(now - 3600_000),
    bundle: r.bundle,
  });
  const otherDomain = forgeLeaf(caSigner(r.mesh.ca), { uris: ['spiffe://other.test/ns/default/svc/web'], bundle: r.bundle });
  const noCert: tls.ConnectionOptions = { ca: r.bundle, servername: 'api', minVersion: 'TLSv1.3', checkServerIdentity: () => undefined };
  const cases: Array<{ name: string; options: tls.ConnectionOptions; reason: string }> = [
    { name: 'foreign CA', options: { ...meshClientOptions(foreign, { trustDomain: TD }), servername: 'api' }, reason: 'untrusted' },
    { name: 'expired certificate', options: { ...meshClientOptions(expired, { trustDomain: TD }), servername: 'api' }, reason: 'expired' },
    { name: 'no client certificate', options: noCert, reason: 'no_client_certificate' },
    { name: 'SPIFFE ID of another trust domain', options: { ...meshClientOptions(otherDomain, { trustDomain: TD }), servername: 'api' }, reason: 'identity' },
    { name: 'SNI of a service not on this host', options: { ...meshClientOptions(r.mesh.web, { trustDomain: TD }), servername: 'nosuch' }, reason: 'unknown_server_name' },
  ];
  for (const c of cases) {
    const before = (await failures(r.inbound.registry))[c.reason] ?? 0;
    const result = await attempt(r.inbound.port, c.options);
    t.notMatch(result.data, /HTTP\/1\.1/, `${c.name}: no HTTP answer`);
    t.ok(result.closed, `${c.name}: connection closed (${result.error ?? 'no error'})`);
    t.ok(await holds(async () => ((await failures(r.inbound.registry))[c.reason] ?? 0) > before), `${c.name}: counted as ${c.reason}`);
  }
  t.equal(r.app.seen.length, 0);
});

t.test('no SNI: the handshake fails (no certificate is presented to a caller that names no service)', async (t) => {
  const r = await rig(t);
  const options = { ...meshClientOptions(r.mesh.web, { trustDomain: TD }), host: HOST, port: r.inbound.port, localAddress: CALLER_HOST };
  const socket = tls.connect(options); // HOST is an IP address: Node sends no SNI for it
  socket.once('secureConnect', () => socket.write(REQUEST));
  const result = await collect(socket, 3000);
  t.notMatch(result.data, /HTTP\/1\.1/);
  t.ok(result.error !== undefined, `client saw: ${result.error}`);
  t.equal(r.app.seen.length, 0);
});

t.test('plaintext HTTP on the mTLS port gets no HTTP answer', async (t) => {
  const r = await rig(t);
  const socket = net.connect({ host: HOST, port: r.inbound.port, localAddress: CALLER_HOST });
  socket.once('connect', () => socket.write(REQUEST));
  const result = await collect(socket, 3000);
  t.notMatch(result.data, /HTTP\/1\.1 200/);
  t.ok(result.closed);
  t.ok(await holds(async () => ((await failures(r.inbound.registry))["plaintext"] ?? 0) > 0), JSON.stringify(await failures(r.inbound.registry)));
  t.equal(r.app.seen.length, 0);
});

/** Whether `cond()` comes to hold within `limitMs`, as a boolean for `t.ok`. */
async function holds(cond: () => Promise<boolean>, limitMs = 3000): Promise<boolean> {
  return eventually(cond, limitMs, 'condition', 20).then(
    () => true,
    () => false,
  );
}
