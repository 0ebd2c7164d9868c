/**
 * Peer identity checks that Node's TLS stack does not make by itself. OpenSSL
 * has already verified the chain, validity and basicConstraints by the time
 * these run; what is left is the SPIFFE rule: a leaf (cA=false) with exactly
 * one URI SAN, a weft SPIFFE ID of our trust domain. Server and client sides
 * both call `spiffeIdOf`, so they cannot drift apart.
 */
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { WeftError } from '../base/errors.js';
import { type SpiffeId, parseSpiffeId } from './spiffe-id.js';

/** One subjectAltName entry as X509Certificate reports it. */
export interface AltName {
  readonly type: string;
  readonly value: string;
}

/**
 * The SPIFFE ID of a peer's leaf certificate. Throws WEFT_ERR_CERT_IDENTITY
 * unless the certificate is not a CA and has exactly one URI SAN that is a
 * weft SPIFFE ID (of `trustDomain`, when given).
 */
export function spiffeIdOf(cert: X509Certificate | PeerCertificate | undefined | null, opts: { trustDomain?: string } = {}): SpiffeId {
  if (cert === undefined || cert === null || (!(cert instanceof X509Certificate) && cert.raw === undefined)) {
    throw new WeftError('WEFT_ERR_CERT_IDENTITY', 'peer presented no certificate', { key: 'peerCertificate' });
  }
  const x509 = cert instanceof X509Certificate ? cert : new X509Certificate(cert.raw);
  if (x509.ca) {
    throw new WeftError('WEFT_ERR_CERT_IDENTITY', `peer certificate is a CA certificate, not a leaf (subject ${x509.subject.replaceAll('\n', ', ')})`, { key: 'peerCertificate', value: x509.fingerprint256 });
  }
  const uris = subjectAltNames(x509).filter((n) => n.type === 'URI');
  if (uris.length !== 1) {
    throw new WeftError('WEFT_ERR_CERT_IDENTITY', `peer certificate must carry exactly one URI SAN; it has ${uris.length}`, { key: 'peerCertificate.uris', value: uris.map((u) => u.value) });
  }
  let id: SpiffeId;
  try {
    id = parseSpiffeId(uris[0]!.value);
  } catch (cause) {
    throw new WeftError('WEFT_ERR_CERT_IDENTITY', `peer URI SAN is not a weft SPIFFE ID: ${(cause as Error).message}`, { key: 'peerCertificate.uris', value: uris[0]!.value, cause });
  }
  if (opts.trustDomain !== undefined && id.trustDomain !== opts.trustDomain) {
    throw new WeftError('WEFT_ERR_CERT_IDENTITY', `peer is in trust domain ${id.trustDomain}, not ${opts.trustDomain}`, { key: 'peerCertificate.uris', value: id.uri });
  }
  return id;
}

/**
 * Splits X509Certificate#subjectAltName ("DNS:a, URI:b"). Node quotes entries
 * holding separators as JSON strings (since the CVE-2021-44532 fix), so a
 * crafted SAN cannot pose as two entries.
 */
export function subjectAltNames(cert: X509Certificate): AltName[] {
  const text = cert.subjectAltName;
  if (text === undefined || text === '') return [];
  const out: AltName[] = [];
  let at = 0;
  while (at < text.length) {
    const colon = text.indexOf(':', at);
    if (colon < 0) throw new WeftError('WEFT_ERR_CERT_INVALID', `unreadable subjectAltName ${JSON.stringify(text)}`, { key: 'subjectAltName' });
    const type = text.slice(at, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = closingQuote(text, colon + 2);
      value = JSON.parse(text.slice(colon + 1, end + 1)) as string;
      end += 1;
    } else {
      const sep = text.indexOf(', ', colon + 1);
      end = sep < 0 ? text.length : sep;
      value = text.slice(colon + 1, end);
    }
    out.push({ type, value });
    at = end + 2; // skip ", "
  }
  return out;
}

function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  throw new WeftError('WEFT_ERR_CERT_INVALID', `unterminated quoted subjectAltName in ${JSON.stringify(text)}`, { key: 'subjectAltName' });
}
