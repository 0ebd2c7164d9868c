import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import type tls from 'node:tls';
import t, { type Test } from 'tap';
import { pemToDer } from '../../certs/rotation.js';
import { spiffeIdOf } from '../../certs/verify.js';
import { TD, attempt, caSigner, client, forgeLeaf, makeCa, makeIdentity, opensslVerdict, startMeshServer } from './fixtures.js';

const ca = makeCa({ intermediate: true });
const bundle = makeIdentity(ca, 'x').bundlePem;
const web = makeIdentity(ca, 'web');
const api = makeIdentity(ca, 'api');
const WEB = `spiffe://${TD}/ns/default/svc/web`;
const API = `spiffe://${TD}/ns/default/svc/api`;

t.test('two issued identities complete an mTLS handshake and each reads the other', async (t) => {
  const srv = await startMeshServer(t, web);
  const got = await attempt(srv.port, client(api));
  t.equal(got.serverId, WEB, 'client verified the server as web');
  t.equal(got.greeting, `hello ${API}\n`, 'server verified the client as api');
  t.strictSame(srv.log.accepted, [API]);
  t.strictSame(srv.log.rejected, []);
});

t.test('the same holds with a root-signed CA (no intermediate)', async (t) => {
  const plain = makeCa();
  const srv = await startMeshServer(t, makeIdentity(plain, 'web'));
  const got = await attempt(srv.port, client(makeIdentity(plain, 'api')));
  t.equal(got.greeting, `hello ${API}\n`);
  t.equal(got.serverId, WEB);
});

/** A client the server must refuse: no greeting, nothing accepted, a reason logged. */
async function refused(t: Test, name: string, options: tls.ConnectionOptions, reason: RegExp): Promise<void> {
  const srv = await startMeshServer(t, web);
  const got = await attempt(srv.port, options);
  t.equal(got.greeting, '', `${name}: no application data`);
  t.strictSame(srv.log.accepted, [], `${name}: server accepted nobody`);
  // The server logs asynchronously after the client's socket closes.
  for (let i = 0; i < 50 && srv.log.rejected.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.match(srv.log.rejected.join(' | '), reason, `${name}: server says why`);
}

t.test('a client certificate from another CA is rejected', async (t) => {
  const other = makeCa(); // same trust domain name, different keys
  const stranger = client({ ...makeIdentity(other, 'api'), bundlePem: bundle });
  await refused(t, 'other CA', stranger, /tls: /);
  t.match(await opensslVerdict(web, stranger), { authorized: false, error: /^UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)$/ }, 'OpenSSL: unknown issuer');
});

t.test('an expired client certificate is rejected', async (t) => {
  const now = Date.now();
  const expired = forgeLeaf(caSigner(ca), { uris: [API], notBefore: new Date(now - 3 * 86400_000), notAfter: new Date(now - 86400_000), bundle, chain: ca.state.intermediatePem! });
  t.equal(spiffeIdOf(new X509Certificate(expired.certChainPem)).uri, API, 'identity itself is fine: only the dates are wrong');
  await refused(t, 'expired', client(expired), /tls: /);
  t.strictSame(await opensslVerdict(web, client(expired)), { authorized: false, error: 'CERT_HAS_EXPIRED' }, 'OpenSSL: expired');
});

t.test('a client certificate without a URI SAN is rejected', async (t) => {
  const none = forgeLeaf(caSigner(ca), { uris: [], bundle, chain: ca.state.intermediatePem! });
  await refused(t, 'no URI SAN', client(none), /exactly one URI SAN; it has 0/);
});

t.test('a client certificate with two URI SANs is rejected', async (t) => {
  const two = forgeLeaf(caSigner(ca), { uris: [API, WEB], bundle, chain: ca.state.intermediatePem! });
  await refused(t, 'two URI SANs', client(two), /exactly one URI SAN; it has 2/);
});

t.test('a client leaf from another trust domain is rejected, even when our CA signed it', async (t) => {
  const foreign = forgeLeaf(caSigner(ca), { uris: ['spiffe://other.test/ns/default/svc/api'], bundle, chain: ca.state.intermediatePem! });
  await refused(t, 'other trust domain', client(foreign), /trust domain other\.test/);
});

t.test('a CA certificate presented as a client leaf is rejected', async (t) => {
  const caLeaf = forgeLeaf(caSigner(ca), { uris: [API], ca: true, bundle, chain: ca.state.intermediatePem! });
  await refused(t, 'CA as leaf', client(caLeaf), /CA certificate, not a leaf/);
});

t.test('a chain where a leaf signed another leaf is rejected by OpenSSL itself', async (t) => {
  const leafDer = pemToDer(api.certChainPem);
  const evil = forgeLeaf({ key: api.privateKey, certDer: leafDer }, { uris: [`spiffe://${TD}/ns/default/svc/admin`], bundle, chain: api.certChainPem });
  // The forged leaf passes the SPIFFE check on its own, so a refusal can only come from chain validation.
  t.equal(spiffeIdOf(new X509Certificate(evil.certChainPem)).service, 'admin');
  await refused(t, 'leaf-signed-leaf', client(evil), /tls: /);

  const v = await opensslVerdict(web, client(evil));
  t.equal(v.authorized, false, `OpenSSL refused the chain (${v.error}: the issuing leaf has cA=false and no keyCertSign)`);
});

t.test('a client without a certificate is rejected', async (t) => {
  await refused(t, 'no client cert', { ca: bundle, minVersion: 'TLSv1.3', checkServerIdentity: () => undefined }, /peer did not return a certificate/);
});

t.test('plaintext is rejected', async (t) => {
  const srv = await startMeshServer(t, web);
  const reply = await new Promise<string>((resolve) => {
    let data = '';
    const s = net.connect(srv.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: web\r\n\r\n'));
    s.on('data', (d: Buffer) => {
      data += d.toString('latin1');
    });
    s.on('error', () => {});
    s.on('close', () => resolve(data));
  });
  t.notMatch(reply, /hello|HTTP\/1\.1 200/, 'no application answer to plaintext');
  t.strictSame(srv.log.accepted, []);
});

t.test('the client side applies the same SPIFFE check to the server', async (t) => {
  const noUri = forgeLeaf(caSigner(ca), { uris: [], bundle, chain: ca.state.intermediatePem! });
  const srv = await startMeshServer(t, noUri);
  const got = await attempt(srv.port, client(api));
  t.match(got.error, /exactly one URI SAN/, 'client refuses a server without a SPIFFE ID');
  t.equal(got.greeting, '');

  const srv2 = await startMeshServer(t, web);
  const { meshClientOptions } = await import('../../certs/mtls.js');
  const pinned = await attempt(srv2.port, meshClientOptions(api, { trustDomain: TD, expect: (id) => id.service === 'billing' }));
  t.match(pinned.error, /not the one expected/, 'client can pin the service it meant to reach');

  const other = makeCa();
  const srv3 = await startMeshServer(t, makeIdentity(other, 'web'));
  const untrusted = await attempt(srv3.port, client(api));
  t.ok(untrusted.error, `client refuses a server from another CA (${untrusted.error})`);
  t.equal(untrusted.greeting, '');
});
