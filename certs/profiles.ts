/**
 * What weft's CA certificates say: roots, intermediates, and the cross-signed
 * copy of a new root that lets peers still trusting only the old root accept
 * leaves from the new one (Consul's rotation scheme).
 */
import { type KeyObject, X509Certificate } from 'node:crypto';
import { keyIdentifier } from './keys.js';
import { trustDomainUri } from './spiffe-id.js';
import { type BuiltCertificate, type Extension, buildCertificate, extension, subjectNameOf } from './x509-builder.js';
import { validityOf } from './x509-reader.js';

/** Lifetimes, as in Consul: roots 10 years, intermediates 1 year. */
export const DEFAULT_ROOT_TTL_MS = 10 * 365 * 24 * 3600_000;
export const DEFAULT_INTERMEDIATE_TTL_MS = 365 * 24 * 3600_000;
/** Back-dating for clock skew between hosts. */
export const CLOCK_SKEW_MS = 60_000;

/** A certificate with the key that signs under it. */
export interface Signer {
  readonly certPem: string;
  readonly certDer: Buffer;
  readonly key: KeyObject;
}

/** Short stable id of a CA key: the first 16 hex digits of its key identifier. */
export function caKeyId(key: KeyObject): string {
  return keyIdentifier(key).subarray(0, 8).toString('hex');
}

/** A self-signed root for a trust domain. Its CN carries the key id so successive roots never share a subject. */
export function rootCertificate(opts: { trustDomain: string; publicKey: KeyObject; privateKey: KeyObject; now: number; ttlMs: number }): BuiltCertificate {
  return buildCertificate({
    subject: rootSubject(opts.trustDomain, opts.publicKey),
    publicKey: opts.publicKey,
    signer: opts.privateKey,
    notBefore: new Date(opts.now - CLOCK_SKEW_MS),
    notAfter: new Date(opts.now + opts.ttlMs),
    extensions: caExtensions(opts.trustDomain, opts.publicKey, opts.privateKey, undefined),
  });
}

/** An intermediate signed by `issuer`; pathLen 0, so it can sign leaves only. */
export function intermediateCertificate(opts: { trustDomain: string; publicKey: KeyObject; issuer: Signer; now: number; ttlMs: number }): BuiltCertificate {
  return buildCertificate({
    subject: { organization: 'weft', organizationalUnit: opts.trustDomain, commonName: `weft intermediate ${caKeyId(opts.publicKey)}` },
    issuerName: subjectNameOf(opts.issuer.certDer),
    publicKey: opts.publicKey,
    signer: opts.issuer.key,
    notBefore: new Date(opts.now - CLOCK_SKEW_MS),
    notAfter: clampTo(opts.issuer.certDer, opts.now + opts.ttlMs),
    extensions: caExtensions(opts.trustDomain, opts.publicKey, opts.issuer.key, 0),
  });
}

/**
 * The new root's subject and key, signed by the old root. Served in leaf chains
 * during the overlap: a peer that has not fetched the new bundle yet builds
 * leaf -> [intermediate] -> new root (cross-signed) -> old root.
 */
export function crossSignedRoot(opts: { trustDomain: string; newRoot: { publicKey: KeyObject }; oldRoot: Signer; now: number }): BuiltCertificate {
  return buildCertificate({
    subject: rootSubject(opts.trustDomain, opts.newRoot.publicKey),
    issuerName: subjectNameOf(opts.oldRoot.certDer),
    publicKey: opts.newRoot.publicKey,
    signer: opts.oldRoot.key,
    notBefore: new Date(opts.now - CLOCK_SKEW_MS),
    // Never outlives the old root: past that the cross-sign cannot chain anywhere.
    notAfter: clampTo(opts.oldRoot.certDer, Number.POSITIVE_INFINITY),
    extensions: caExtensions(opts.trustDomain, opts.newRoot.publicKey, opts.oldRoot.key, undefined),
  });
}

function rootSubject(trustDomain: string, publicKey: KeyObject): { organization: string; organizationalUnit: string; commonName: string } {
  return { organization: 'weft', organizationalUnit: trustDomain, commonName: `weft root ${caKeyId(publicKey)}` };
}

function caExtensions(trustDomain: string, subjectKey: KeyObject, issuerKey: KeyObject, pathLen: number | undefined): Extension[] {
  return [
    extension.basicConstraints(true, pathLen),
    extension.keyUsage(['keyCertSign', 'cRLSign']),
    extension.subjectKeyIdentifier(keyIdentifier(subjectKey)),
    extension.authorityKeyIdentifier(keyIdentifier(issuerKey)),
    // SPIFFE lets signing certificates carry the trust domain's own ID; Consul does.
    extension.subjectAltName({ uris: [trustDomainUri(trustDomain)] }),
  ];
}

/** A notAfter no later than the issuer's own. */
export function clampTo(issuerDer: Buffer, wantMs: number): Date {
  let issuerEnd = notAfterCache.get(issuerDer);
  if (issuerEnd === undefined) {
    issuerEnd = validityOf(new X509Certificate(issuerDer)).notAfter.getTime();
    notAfterCache.set(issuerDer, issuerEnd);
  }
  return new Date(Math.min(wantMs, issuerEnd));
}

// Parsing the issuer for every leaf it signs was a tenth of the signing cost.
const notAfterCache = new WeakMap<Buffer, number>();
