import { type KeyObject, X509Certificate, generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { buildCsr, createCsr, parseCsr } from '../../certs/csr.js';
import { createCsrSigner } from '../../certs/csr-signer.js';
import { generateKeyPair, toPem } from '../../certs/keys.js';
import { pemToDer } from '../../certs/rotation.js';
import { SignLimiter } from '../../certs/sign-limiter.js';
import { spiffeId } from '../../certs/spiffe-id.js';
import { readCertificateFields } from '../../certs/x509-reader.js';
import { registry } from '../../base/metrics.js';
import { TD, makeCa } from './fixtures.js';

const ca = makeCa();
const web = spiffeId(TD, 'default', 'web');
const mayWeb = { allowedServices: ['web'] };
const unlimited = () => createCsrSigner({ ca, perSecond: 0 });

t.test('a good CSR is signed: the leaf certifies the CSR key and the claimed ID', async (t) => {
  const { privateKey, publicKey } = generateKeyPair();
  const leaf = unlimited().sign(createCsr(privateKey, web), mayWeb);
  const cert = new X509Certificate(leaf.certPem);
  t.ok(cert.publicKey.equals(publicKey));
  t.strictSame(readCertificateFields(cert.raw).sanUris, [web.uri]);
  t.equal(leaf.spiffeId, web.uri);
});

t.test('CSRs made by OpenSSL-style tools parse too (NEW CERTIFICATE REQUEST armour)', async (t) => {
  const { privateKey } = generateKeyPair();
  const pem = createCsr(privateKey, web).replaceAll('CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST');
  t.equal(parseCsr(pem).signatureValid, true);
});

t.test('the caller may only claim its own identities', async (t) => {
  const { privateKey } = generateKeyPair();
  const signer = unlimited();
  const csr = createCsr(privateKey, spiffeId(TD, 'default', 'admin'));
  t.throws(() => signer.sign(csr, mayWeb), { code: 'WEFT_ERR_CSR_IDENTITY', value: `spiffe://${TD}/ns/default/svc/admin` }, 'other service');
  t.throws(() => signer.sign(createCsr(privateKey, spiffeId(TD, 'prod', 'web')), mayWeb), { code: 'WEFT_ERR_CSR_IDENTITY' }, 'other namespace');
  t.throws(() => signer.sign(createCsr(privateKey, spiffeId('evil.test', 'default', 'web')), () => true), { code: 'WEFT_ERR_CSR_IDENTITY' }, 'other trust domain, even for a permissive caller');
  t.ok(signer.sign(csr, (id) => id.service === 'admin'), 'a predicate can allow it');
  t.ok(signer.sign(createCsr(privateKey, spiffeId(TD, 'prod', 'web')), { allowedServices: ['web'], namespace: 'prod' }), 'namespace-scoped list');
});

t.test('a CSR must ask for exactly one weft SPIFFE ID', async (t) => {
  const { privateKey } = generateKeyPair();
  const signer = unlimited();
  const cases: Array<[string, string[]]> = [
    ['no URI SAN', []],
    ['two URI SANs', [web.uri, `spiffe://${TD}/ns/default/svc/other`]],
    ['not spiffe', ['https://web.example']],
    ['trust domain only', [`spiffe://${TD}`]],
  ];
  for (const [name, uris] of cases) {
    t.throws(() => signer.sign(buildCsr(privateKey, { commonName: 'web', uris }), () => true), { code: 'WEFT_ERR_CSR_IDENTITY' }, name);
  }
});

t.test('wrong key types and sizes are refused with WEFT_ERR_CSR_KEY', async (t) => {
  const signer = unlimited();
  const keys: Array<[string, () => KeyObject]> = [
    ['rsa-1024', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey],
    ['rsa-2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
    ['ec-secp384r1', () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey],
  ];
  for (const [kind, make] of keys) {
    t.throws(() => signer.sign(createCsr(make(), web), mayWeb), { code: 'WEFT_ERR_CSR_KEY', value: kind }, kind);
  }
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const lenient = createCsrSigner({ ca, perSecond: 0, allowedKeys: ['ec-p256', 'rsa-2048'] });
  t.ok(lenient.sign(createCsr(rsa.privateKey, web), mayWeb), 'RSA-2048 when the policy allows it');
});

t.test('a bad signature is refused with WEFT_ERR_CSR_SIGNATURE', async (t) => {
  const { privateKey } = generateKeyPair();
  const signer = unlimited();
  const der = pemToDer(createCsr(privateKey, web));

  const flippedSig = Buffer.from(der);
  flippedSig[flippedSig.length - 1]! ^= 0x01;
  t.throws(() => signer.sign(toPem('CERTIFICATE REQUEST', flippedSig), mayWeb), { code: 'WEFT_ERR_CSR_SIGNATURE' }, 'corrupted signature');

  const tampered = Buffer.from(der.toString('latin1').replace('svc/web', 'svc/wex'), 'latin1');
  t.throws(() => signer.sign(toPem('CERTIFICATE REQUEST', tampered), { allowedServices: ['wex'] }), { code: 'WEFT_ERR_CSR_SIGNATURE' }, 'content changed after signing');

  const other = generateKeyPair();
  const swapped = pemToDer(createCsr(other.privateKey, web));
  // Signature of one key spliced onto a request carrying another key: no proof of possession.
  const spliced = Buffer.concat([der.subarray(0, der.length - 72), swapped.subarray(swapped.length - 72)]);
  t.throws(() => signer.sign(toPem('CERTIFICATE REQUEST', spliced), mayWeb), { code: /WEFT_ERR_CSR_(SIGNATURE|INVALID)/ }, 'spliced signature');
});

t.test('garbage is refused with WEFT_ERR_CSR_INVALID', async (t) => {
  const signer = unlimited();
  const { privateKey } = generateKeyPair();
  const good = pemToDer(createCsr(privateKey, web));
  const cases: Array<[string, string]> = [
    ['empty', ''],
    ['not PEM', 'hello'],
    ['garbage base64', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'],
    ['random bytes', toPem('CERTIFICATE REQUEST', Buffer.from('3082ffff00112233', 'hex'))],
    ['truncated', toPem('CERTIFICATE REQUEST', good.subarray(0, good.length - 10))],
    ['trailing bytes', toPem('CERTIFICATE REQUEST', Buffer.concat([good, Buffer.from([0, 0])]))],
    ['a certificate, not a CSR', makeCa().state.roots[0]!.certPem],
    ['certificate DER in CSR armour', toPem('CERTIFICATE REQUEST', pemToDer(makeCa().state.roots[0]!.certPem))],
    ['oversized', `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(20000)}\n-----END CERTIFICATE REQUEST-----\n`],
  ];
  for (const [name, pem] of cases) t.throws(() => signer.sign(pem, () => true), { code: 'WEFT_ERR_CSR_INVALID' }, name);
  t.throws(() => signer.sign(undefined as unknown as string, () => true), { code: 'WEFT_ERR_CSR_INVALID' }, 'not a string');
});

t.test('signing is rate limited (default 50/s, like Consul csr_max_per_second)', async (t) => {
  let now = 1_000_000;
  const signer = createCsrSigner({ ca, clock: () => now });
  const { privateKey } = generateKeyPair();
  const csr = createCsr(privateKey, web);
  for (let i = 0; i < 50; i++) signer.sign(csr, mayWeb);
  t.throws(() => signer.sign(csr, mayWeb), { code: 'WEFT_ERR_CSR_RATE_LIMITED', statusCode: 429, value: { retryAfterMs: 20 } }, 'the 51st in the same instant');
  t.throws(() => signer.sign('garbage', mayWeb), { code: 'WEFT_ERR_CSR_RATE_LIMITED' }, 'limited before any parsing');
  now += 20;
  t.ok(signer.sign(csr, mayWeb), 'one token back after 1/50 s');
  const fast = createCsrSigner({ ca, clock: () => now, perSecond: 5 });
  for (let i = 0; i < 5; i++) fast.sign(csr, mayWeb);
  t.throws(() => fast.sign(csr, mayWeb), { code: 'WEFT_ERR_CSR_RATE_LIMITED', value: { retryAfterMs: 200 } }, 'configurable');
});

t.test('SignLimiter token bucket', async (t) => {
  let now = 0;
  const limiter = new SignLimiter({ perSecond: 10, burst: 2, clock: () => now });
  const seen: boolean[] = [];
  for (const advance of [0, 0, 0, 50, 50, 100, 0, 1000, 0, 0, 0]) {
    now += advance;
    seen.push(limiter.take().ok);
  }
  t.strictSame(seen, [true, true, false, false, true, true, false, true, true, false, false]);
  const off = new SignLimiter({ perSecond: 0, clock: () => 0 });
  t.ok([...Array(1000)].every(() => off.take().ok), '0 = unlimited');
  now = -5000; // a clock stepping backwards refills nothing and breaks nothing
  t.equal(limiter.take().ok, false);
  t.throws(() => new SignLimiter({ perSecond: -1 }), RangeError);
});

t.test('outcomes are counted in weft_ca_csr_total', async (t) => {
  const text = await registry.getSingleMetricAsString('weft_ca_csr_total');
  t.match(text, /weft_ca_csr_total\{result="signed"\} \d+/);
  t.match(text, /weft_ca_csr_total\{result="WEFT_ERR_CSR_KEY"\} 3/);
  t.match(text, /weft_ca_csr_total\{result="WEFT_ERR_CSR_RATE_LIMITED"\} 3/);
});
