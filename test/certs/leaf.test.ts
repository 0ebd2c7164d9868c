import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { OID } from '../../certs/asn1.js';
import { generateKeyPair } from '../../certs/keys.js';
import { pemToDer } from '../../certs/rotation.js';
import { spiffeId } from '../../certs/spiffe-id.js';
import { readCertificateFields, validityOf } from '../../certs/x509-reader.js';
import { TD, makeCa } from './fixtures.js';

const HOUR = 3600_000;

for (const intermediate of [false, true]) {
  t.test(`a leaf follows the SPIFFE X.509-SVID rules (${intermediate ? 'intermediate' : 'root'} signer)`, async (t) => {
    const now = Date.UTC(2030, 0, 1, 12, 0, 0);
    const ca = makeCa({ intermediate, clock: () => now });
    const { publicKey } = generateKeyPair();
    const leaf = ca.issue(publicKey, spiffeId(TD, 'default', 'web'));
    const cert = new X509Certificate(leaf.certPem);
    const f = readCertificateFields(cert.raw);

    t.equal(leaf.spiffeId, `spiffe://${TD}/ns/default/svc/web`);
    t.strictSame(f.sanUris, [`spiffe://${TD}/ns/default/svc/web`], 'exactly one URI SAN, the SPIFFE ID');
    t.strictSame(f.sanDns, ['web'], 'DNS SAN for the service name');
    t.equal(cert.ca, false, 'cA=false');
    t.strictSame(f.basicConstraints, { ca: false, critical: true }, 'basicConstraints present and critical');
    t.strictSame(f.keyUsage, { usages: ['digitalSignature'], critical: true }, 'keyUsage digitalSignature only, critical');
    t.strictSame(f.extKeyUsage, [OID.serverAuth, OID.clientAuth], 'EKU serverAuth + clientAuth');
    t.equal(f.signatureAlgorithm, OID.ecdsaWithSha256);
    t.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'P-256 leaf key');
    t.ok(cert.publicKey.equals(publicKey), 'certifies the requested key');
    const { notBefore, notAfter } = validityOf(cert);
    t.equal(notBefore.getTime(), now - 60_000, 'notBefore back-dated one minute');
    t.equal(notAfter.getTime(), now + 72 * HOUR, 'default TTL 72 h');
    t.equal(f.authorityKeyId, readCertificateFields(pemToDer(ca.state.intermediatePem ?? ca.state.roots[0]!.certPem)).subjectKeyId, 'AKI = issuer SKI');
    t.ok(f.subjectKeyId, 'has a SKI');
    t.equal(cert.subject, 'CN=web');
    t.match(cert.serialNumber, /^[0-9A-F]{2,40}$/);
    t.strictSame([leaf.serial, leaf.notBefore, leaf.notAfter], [cert.serialNumber, notBefore, notAfter], 'reported serial and validity match the certificate');

    // The chain verifies with Node's own X509Certificate, not forge.
    const rootCert = new X509Certificate(ca.state.roots[0]!.certPem);
    if (intermediate) {
      t.equal(leaf.chainPems.length, 1, 'chain holds the intermediate');
      const inter = new X509Certificate(leaf.chainPems[0]!);
      t.ok(cert.verify(inter.publicKey) && cert.checkIssued(inter), 'leaf signed by the intermediate');
      t.ok(inter.verify(rootCert.publicKey) && inter.checkIssued(rootCert), 'intermediate signed by the root');
      const fi = readCertificateFields(inter.raw);
      t.strictSame(fi.basicConstraints, { ca: true, critical: true, pathLen: 0 }, 'intermediate: CA, pathLen 0');
      t.strictSame(fi.keyUsage, { usages: ['keyCertSign', 'cRLSign'], critical: true });
    } else {
      t.strictSame(leaf.chainPems, [], 'no chain under a bare root');
      t.ok(cert.verify(rootCert.publicKey) && cert.checkIssued(rootCert), 'leaf signed by the root');
    }
  });
}

t.test('the root profile: self-signed CA with the trust-domain ID', async (t) => {
  const ca = makeCa();
  const root = new X509Certificate(ca.state.roots[0]!.certPem);
  const f = readCertificateFields(root.raw);
  t.equal(root.ca, true);
  t.ok(root.verify(root.publicKey), 'self-signed');
  t.strictSame(f.basicConstraints, { ca: true, critical: true });
  t.strictSame(f.keyUsage, { usages: ['keyCertSign', 'cRLSign'], critical: true });
  t.strictSame(f.sanUris, [`spiffe://${TD}`]);
  t.equal(f.subjectKeyId, f.authorityKeyId);
  const { notBefore, notAfter } = validityOf(root);
  t.ok(notAfter.getTime() - notBefore.getTime() > 9 * 365 * 24 * HOUR, 'roots live ~10 years');
});

t.test('leaf lifetime: custom TTL, capped by the CA TTL and by the issuer', async (t) => {
  const now = Date.UTC(2030, 0, 1);
  const ca = makeCa({ clock: () => now, leafTtlMs: 10 * HOUR, intermediate: true, intermediateTtlMs: 5 * HOUR });
  const { publicKey } = generateKeyPair();
  const id = spiffeId(TD, 'default', 'web');
  t.equal(validityOf(new X509Certificate(ca.issue(publicKey, id, HOUR).certPem)).notAfter.getTime(), now + HOUR, 'shorter TTL honoured');
  t.equal(validityOf(new X509Certificate(ca.issue(publicKey, id).certPem)).notAfter.getTime(), now + 5 * HOUR, 'never outlives its intermediate');
  t.throws(() => ca.issue(publicKey, id, 11 * HOUR), { code: 'WEFT_ERR_CONFIG_INVALID' }, 'longer than the CA leaf TTL is refused');
  t.throws(() => ca.issue(publicKey, spiffeId('other.test', 'default', 'web')), { code: 'WEFT_ERR_SPIFFE_ID_INVALID' }, 'another trust domain is refused');
});

t.test('service names that are not host names get no DNS SAN, only the URI', async (t) => {
  const ca = makeCa();
  const { publicKey } = generateKeyPair();
  const f = readCertificateFields(new X509Certificate(ca.issue(publicKey, spiffeId(TD, 'default', 'Web_API')).certPem).raw);
  t.strictSame(f.sanUris, [`spiffe://${TD}/ns/default/svc/Web_API`]);
  t.strictSame(f.sanDns, []);
  const g = readCertificateFields(new X509Certificate(ca.issue(publicKey, spiffeId(TD, 'default', 'Billing')).certPem).raw);
  t.strictSame(g.sanDns, ['billing'], 'DNS names are lowercased');
});
