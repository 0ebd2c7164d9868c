/**
 * The host side of issuance: make a key here, send only a CSR, get back a leaf
 * and chain. `sign` is whatever reaches the CA (the scheduler's API in a
 * cluster, the local CA for `weft cert issue`).
 */
import type { IssuedLeaf } from './ca.js';
import { createCsr } from './csr.js';
import { generateKeyPair, privateKeyPem } from './keys.js';
import type { MeshIdentity } from './mtls.js';
import type { SpiffeId } from './spiffe-id.js';

/** A workload's identity with the facts renewal needs. */
export interface WorkloadIdentity extends MeshIdentity {
  readonly leaf: IssuedLeaf;
}

/** Generates a P-256 key, has a CSR for `id` signed, and returns the identity to install. */
export async function obtainIdentity(
  id: SpiffeId,
  sign: (csrPem: string) => IssuedLeaf | Promise<IssuedLeaf>,
  bundlePem: string,
): Promise<WorkloadIdentity> {
  const { privateKey } = generateKeyPair('ec-p256');
  const leaf = await sign(createCsr(privateKey, id));
  return { keyPem: privateKeyPem(privateKey), certChainPem: chainPem(leaf), bundlePem, leaf };
}

/** Leaf followed by its chain, as TLS `cert` wants it. */
export function chainPem(leaf: IssuedLeaf): string {
  return [leaf.certPem, ...leaf.chainPems].map((p) => p.trimEnd() + '\n').join('');
}
