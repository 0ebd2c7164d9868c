/**
 * The leaf profile, per the SPIFFE X.509-SVID spec: exactly one URI SAN (the
 * SPIFFE ID), DNS SANs for the service name, cA=false, keyUsage
 * digitalSignature (critical), EKU serverAuth + clientAuth, 72 h by default,
 * notBefore back-dated one minute for clock skew.
 */
import type { KeyObject } from 'node:crypto';
import { OID } from './asn1.js';
import { keyIdentifier } from './keys.js';
import { CLOCK_SKEW_MS, type Signer, clampTo } from './profiles.js';
import { type SpiffeId, serviceDnsName } from './spiffe-id.js';
import { type BuiltCertificate, buildCertificate, extension, subjectNameOf } from './x509-builder.js';

/** Consul's default leaf TTL. */
export const DEFAULT_LEAF_TTL_MS = 72 * 3600_000;

/** What a leaf is issued for. */
export interface LeafRequest {
  readonly publicKey: KeyObject;
  readonly id: SpiffeId;
  /** Lifetime from now; the certificate is valid from now - 1 min. */
  readonly ttlMs: number;
  readonly now: number;
}

/**
 * Builds and signs a leaf. DNS SANs are decided here from the service name,
 * never copied from a CSR, so a caller cannot smuggle in other host names.
 */
export function issueLeafCertificate(signer: Signer, req: LeafRequest): BuiltCertificate {
  const dns = serviceDnsName(req.id.service);
  return buildCertificate({
    subject: { commonName: req.id.service },
    issuerName: subjectNameOf(signer.certDer),
    publicKey: req.publicKey,
    signer: signer.key,
    notBefore: new Date(req.now - CLOCK_SKEW_MS),
    // A leaf never outlives the certificate that signed it.
    notAfter: clampTo(signer.certDer, req.now + req.ttlMs),
    extensions: [
      extension.basicConstraints(false),
      extension.keyUsage(['digitalSignature']),
      extension.extKeyUsage([OID.serverAuth, OID.clientAuth]),
      extension.subjectKeyIdentifier(keyIdentifier(req.publicKey)),
      extension.authorityKeyIdentifier(keyIdentifier(signer.key)),
      extension.subjectAltName({ uris: [req.id.uri], dns: dns === undefined ? [] : [dns] }),
    ],
  });
}
