/**
 * The part of certs/ a running data plane needs: mTLS options built from a
 * host's identity files and the peer-identity checks. A second public surface
 * beside index.ts so that `weft proxy` never loads the CA's code or
 * node-forge (proxy/README.md, "Runtime and hot path"): esbuild's code
 * splitting follows files, not the names used from them.
 */
export { readIdentityFiles } from './identity-files.js';
export { meshClientOptions, peerIdentity, requirePeerIdentity, secureContextOptions } from './mtls.js';
export type { MeshIdentity } from './mtls.js';
