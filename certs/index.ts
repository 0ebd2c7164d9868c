/**
 * weft's CA and mesh identities: authority, CSR signing, leaves, renewal, trust bundles, mTLS options.
 *
 * The public surface of certs/: other modules and the application import only
 * this file (test/structure/layers.test.ts enforces it); everything else in
 * the folder is internal.
 */
export { publishBundle } from './bundle-kv.js';
export { bundlePem } from './bundle.js';
export { CertificateAuthority } from './ca.js';
export type { IssuedLeaf } from './ca.js';
export { createCsrSigner } from './csr-signer.js';
export type { CsrSigner } from './csr-signer.js';
export { obtainIdentity } from './identity.js';
export { describeKey } from './keys.js';
export { DEFAULT_LEAF_TTL_MS } from './leaf.js';
export { meshClientOptions, peerIdentity, requirePeerIdentity, secureContextOptions } from './mtls.js';
export type { MeshIdentity } from './mtls.js';
export { LeafRenewer, RENEW_FROM } from './renewal.js';
export { DEFAULT_CSR_MAX_PER_SECOND } from './sign-limiter.js';
export { DEFAULT_NAMESPACE, spiffeId, TRUST_DOMAIN_PATTERN } from './spiffe-id.js';
export { caDir, caExists, loadCa, readIdentityFiles, saveCa, writeIdentityFiles } from './store.js';
export { spiffeIdOf, subjectAltNames } from './verify.js';
export { certificatesFromPem, readCertificateFields, validityOf } from './x509-reader.js';
