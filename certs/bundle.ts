/**
 * The trust bundle: the roots a peer accepts, published to Consul KV at
 * `weft/ca/roots` as JSON. Public certificates only: serialisation refuses
 * anything that looks like a private key, whatever a caller passes in.
 */
import { WeftError } from '../base/errors.js';
import type { CaState } from './rotation.js';
import { certificatesFromPem, validityOf } from './x509-reader.js';

/** The KV key of the bundle (architecture contract). */
export const BUNDLE_KV_KEY = 'weft/ca/roots';

/** One trusted root. */
export interface BundleRoot {
  readonly id: string;
  readonly certPem: string;
  readonly notAfter: string;
  /** Set on a superseded root: when it leaves the bundle. */
  readonly retireAt?: string;
}

/** What `weft/ca/roots` holds. */
export interface TrustBundle {
  readonly version: 1;
  readonly trustDomain: string;
  readonly activeRootId: string;
  readonly roots: readonly BundleRoot[];
}

/** The bundle for a CA state. */
export function bundleFromState(state: CaState): TrustBundle {
  return {
    version: 1,
    trustDomain: state.trustDomain,
    activeRootId: state.activeRootId,
    roots: state.roots.map((r) => {
      const root: BundleRoot = { id: r.id, certPem: r.certPem, notAfter: validityOf(certificatesFromPem(r.certPem)[0]!).notAfter.toISOString() };
      return r.retireAt === undefined ? root : { ...root, retireAt: r.retireAt };
    }),
  };
}

/** All roots as one PEM string, for the `ca` option of Node's TLS. */
export function bundlePem(bundle: TrustBundle): string {
  return bundle.roots.map((r) => r.certPem.trimEnd() + '\n').join('');
}

/** JSON for KV. Throws WEFT_ERR_CERT_INVALID if any private key material slipped in. */
export function serializeBundle(bundle: TrustBundle): string {
  const json = JSON.stringify(
    { version: bundle.version, trustDomain: bundle.trustDomain, activeRootId: bundle.activeRootId, roots: bundle.roots.map((r) => ({ ...r })) },
    null,
    2,
  );
  if (/PRIVATE KEY/.test(json)) {
    throw new WeftError('WEFT_ERR_CERT_INVALID', 'trust bundle contains private key material; refusing to serialise it', { key: 'bundle' });
  }
  return json;
}

/** Parses and checks a bundle read from KV or disk: every root must be a CA certificate. WEFT_ERR_CERT_INVALID otherwise. */
export function parseBundle(json: string): TrustBundle {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (cause) {
    throw new WeftError('WEFT_ERR_CERT_INVALID', `trust bundle is not JSON: ${(cause as Error).message}`, { key: 'bundle', cause });
  }
  const b = raw as Partial<TrustBundle> | null;
  if (b === null || typeof b !== 'object' || b.version !== 1 || typeof b.trustDomain !== 'string' || typeof b.activeRootId !== 'string' || !Array.isArray(b.roots) || b.roots.length === 0) {
    throw new WeftError('WEFT_ERR_CERT_INVALID', 'trust bundle: want { version: 1, trustDomain, activeRootId, roots: [...] }', { key: 'bundle' });
  }
  for (const r of b.roots) {
    if (typeof r?.id !== 'string' || typeof r.certPem !== 'string') {
      throw new WeftError('WEFT_ERR_CERT_INVALID', 'trust bundle: every root needs id and certPem', { key: 'bundle.roots', value: r?.id });
    }
    const [cert] = certificatesFromPem(r.certPem, `bundle root ${r.id}`);
    if (!cert!.ca) throw new WeftError('WEFT_ERR_CERT_INVALID', `trust bundle: root ${r.id} is not a CA certificate`, { key: 'bundle.roots', value: r.id });
  }
  if (!b.roots.some((r) => r.id === b.activeRootId)) {
    throw new WeftError('WEFT_ERR_CERT_INVALID', `trust bundle: active root ${b.activeRootId} is not among its roots`, { key: 'bundle.activeRootId', value: b.activeRootId });
  }
  return b as TrustBundle;
}
