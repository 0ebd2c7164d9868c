/**
 * weft's certificate authority: holds the CA state and the active keys, issues
 * SPIFFE leaves, rotates roots with cross-signing and prunes retired roots on
 * an injectable clock. Persistence is store.ts's job; publishing is
 * bundle-kv.ts's. Requests from hosts come through csr-signer.ts.
 */
import { type KeyObject, X509Certificate, createPublicKey } from 'node:crypto';
import { WeftError } from '../base/errors.js';
import { type TrustBundle, bundleFromState } from './bundle.js';
import { DEFAULT_LEAF_TTL_MS, issueLeafCertificate } from './leaf.js';
import { DEFAULT_INTERMEDIATE_TTL_MS, DEFAULT_ROOT_TTL_MS, type Signer } from './profiles.js';
import { type CaKeys, type CaState, type Lifetimes, activeRoot, chainPems, initialState, nextRetirement, pemToDer, pruneRoots, rotateRoot } from './rotation.js';
import { type SpiffeId, spiffeId } from './spiffe-id.js';

/** CA settings; lifetimes are configurable so tests can run rotations in milliseconds. */
export interface CaOptions {
  readonly trustDomain: string;
  /** Default and maximum leaf lifetime (72 h). */
  readonly leafTtlMs?: number;
  readonly rootTtlMs?: number;
  readonly intermediateTtlMs?: number;
  /** Sign leaves with an intermediate instead of the root (only for a new CA; rotation keeps the choice). */
  readonly intermediate?: boolean;
  /** Milliseconds since the epoch; Date.now by default. */
  readonly clock?: () => number;
}

/** A signed leaf and what its holder needs to present and trust. */
export interface IssuedLeaf {
  readonly spiffeId: string;
  readonly certPem: string;
  /** Intermediates to send after the leaf (intermediate, cross-signed roots). */
  readonly chainPems: readonly string[];
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** The CA. Create with `CertificateAuthority.create` or `.restore`. */
export class CertificateAuthority {
  private current: { state: CaState; keys: CaKeys };
  private signer: Signer;
  private readonly lifetimes: Lifetimes;
  private readonly clock: () => number;

  private constructor(state: CaState, keys: CaKeys, opts: CaOptions) {
    this.lifetimes = {
      leafTtlMs: opts.leafTtlMs ?? DEFAULT_LEAF_TTL_MS,
      rootTtlMs: opts.rootTtlMs ?? DEFAULT_ROOT_TTL_MS,
      intermediateTtlMs: opts.intermediateTtlMs ?? DEFAULT_INTERMEDIATE_TTL_MS,
    };
    this.clock = opts.clock ?? Date.now;
    this.current = { state, keys };
    this.signer = signerOf(state, keys);
  }

  /** A new CA with a fresh root (and intermediate if asked). */
  static create(opts: CaOptions): CertificateAuthority {
    spiffeId(opts.trustDomain, 'default', 'ca'); // validates the trust domain with a coded error
    const lifetimes = { leafTtlMs: opts.leafTtlMs ?? DEFAULT_LEAF_TTL_MS, rootTtlMs: opts.rootTtlMs ?? DEFAULT_ROOT_TTL_MS, intermediateTtlMs: opts.intermediateTtlMs ?? DEFAULT_INTERMEDIATE_TTL_MS };
    const { state, keys } = initialState({ ...lifetimes, trustDomain: opts.trustDomain, intermediate: opts.intermediate ?? false, now: (opts.clock ?? Date.now)() });
    return new CertificateAuthority(state, keys, opts);
  }

  /** A CA from stored state and keys. Refuses keys that do not match their certificates (WEFT_ERR_CA_STORE). */
  static restore(state: CaState, keys: CaKeys, opts: Omit<CaOptions, 'trustDomain' | 'intermediate'>): CertificateAuthority {
    return new CertificateAuthority(state, keys, { ...opts, trustDomain: state.trustDomain });
  }

  get trustDomain(): string {
    return this.current.state.trustDomain;
  }

  get leafTtlMs(): number {
    return this.lifetimes.leafTtlMs;
  }

  /** Public state, for the store and for display. */
  get state(): CaState {
    return this.current.state;
  }

  /** Private keys, for the store only (0600 files). */
  get keys(): CaKeys {
    return this.current.keys;
  }

  /** The trust bundle to publish. */
  bundle(): TrustBundle {
    return bundleFromState(this.current.state);
  }

  /** Issues a leaf for `id` and `publicKey`. Callers check who may claim `id` (csr-signer.ts does). */
  issue(publicKey: KeyObject, id: SpiffeId, ttlMs: number = this.lifetimes.leafTtlMs): IssuedLeaf {
    if (id.trustDomain !== this.trustDomain) {
      throw new WeftError('WEFT_ERR_SPIFFE_ID_INVALID', `trust domain ${id.trustDomain} is not this CA's (${this.trustDomain})`, { key: 'spiffeId', value: id.uri });
    }
    if (!(ttlMs > 0 && ttlMs <= this.lifetimes.leafTtlMs)) {
      throw new WeftError('WEFT_ERR_CONFIG_INVALID', `ttl: must be > 0 and at most the CA's leaf TTL of ${this.lifetimes.leafTtlMs} ms (got ${ttlMs})`, { key: 'ttl', value: ttlMs });
    }
    const built = issueLeafCertificate(this.signer, { publicKey, id, ttlMs, now: this.clock() });
    return { spiffeId: id.uri, certPem: built.pem, chainPems: chainPems(this.current.state), serial: built.serial, notBefore: built.notBefore, notAfter: built.notAfter };
  }

  /** Rotates to a new cross-signed root; the old root retires after 2 x leaf TTL. */
  rotate(): { rootId: string; retireAt: Date } {
    const next = rotateRoot(this.current, { ...this.lifetimes, now: this.clock() });
    this.current = { state: next.state, keys: next.keys };
    this.signer = signerOf(next.state, next.keys);
    return { rootId: next.state.activeRootId, retireAt: next.retireAt };
  }

  /** Drops roots past their retirement time; returns their ids (empty when nothing changed). */
  prune(): string[] {
    const { state, dropped } = pruneRoots(this.current.state, this.clock());
    if (dropped.length > 0) this.current = { ...this.current, state };
    return dropped;
  }

  /** When `prune` will next have work to do. */
  nextRetirement(): Date | undefined {
    return nextRetirement(this.current.state);
  }
}

function signerOf(state: CaState, keys: CaKeys): Signer {
  const certPem = state.intermediatePem ?? activeRoot(state).certPem;
  const key = state.intermediatePem === undefined ? keys.root : keys.intermediate;
  if (key === undefined) throw new WeftError('WEFT_ERR_CA_STORE', 'CA state has an intermediate certificate but no intermediate key', { key: 'intermediate' });
  const certDer = pemToDer(certPem);
  const cert = new X509Certificate(certDer);
  if (!cert.checkPrivateKey(key)) {
    throw new WeftError('WEFT_ERR_CA_STORE', 'the CA signing key does not match its certificate', { key: 'signingKey' });
  }
  // The root key must match the active root too, or rotation would cross-sign with the wrong key.
  const rootCert = new X509Certificate(activeRoot(state).certPem);
  if (!rootCert.publicKey.equals(createPublicKey(keys.root))) {
    throw new WeftError('WEFT_ERR_CA_STORE', 'the CA root key does not match the active root certificate', { key: 'rootKey' });
  }
  return { certPem, certDer, key };
}
