/**
 * The CA's signing function for CSRs from hosts. The scheduler's HTTP route
 * calls it; everything the route must not get wrong is here:
 *
 *   rate limit -> PEM/ASN.1 -> key type -> signature (proof of possession)
 *   -> exactly one SPIFFE ID, in our trust domain, that the caller may claim -> issue
 *
 * The rate limit comes first so garbage costs no parsing. Each refusal is a
 * coded error naming what was wrong, and is counted in weft_ca_csr_total.
 */
import { Counter } from 'prom-client';
import { type ErrorCode, WeftError, isWeftError } from '../base/errors.js';
import { registry } from '../base/metrics.js';
import type { CertificateAuthority, IssuedLeaf } from './ca.js';
import { parseCsr } from './csr.js';
import { describeKey } from './keys.js';
import { DEFAULT_CSR_MAX_PER_SECOND, SignLimiter } from './sign-limiter.js';
import { DEFAULT_NAMESPACE, type SpiffeId, parseSpiffeId } from './spiffe-id.js';

/**
 * Who the caller may be. Either the services (in one namespace) it runs, or a
 * predicate for richer rules (e.g. "services allocated to this host").
 */
export type CallerAuthorization = { readonly allowedServices: readonly string[]; readonly namespace?: string } | ((id: SpiffeId) => boolean);

export interface CsrSignerOptions {
  readonly ca: Pick<CertificateAuthority, 'issue' | 'trustDomain'>;
  /** Signatures per second (default 50, Consul's csr_max_per_second); 0 = unlimited. */
  readonly perSecond?: number;
  readonly burst?: number;
  readonly clock?: () => number;
  /** Key kinds accepted, as `describeKey` names them (default only `ec-p256`). */
  readonly allowedKeys?: readonly string[];
}

/** Signs CSRs under a rate limit. */
export interface CsrSigner {
  /** Checks and signs; throws WEFT_ERR_CSR_* (or _RATE_LIMITED with `value.retryAfterMs`). */
  sign(csrPem: string, caller: CallerAuthorization): IssuedLeaf;
}

const csrTotal = new Counter({
  name: 'weft_ca_csr_total',
  help: 'CSRs the CA handled, by result (signed or the refusal code).',
  labelNames: ['result'] as const,
  registers: [registry],
});

/** Creates the signer. */
export function createCsrSigner(opts: CsrSignerOptions): CsrSigner {
  const limiterOpts = { perSecond: opts.perSecond ?? DEFAULT_CSR_MAX_PER_SECOND, ...(opts.burst === undefined ? {} : { burst: opts.burst }), ...(opts.clock === undefined ? {} : { clock: opts.clock }) };
  const limiter = new SignLimiter(limiterOpts);
  const allowedKeys = opts.allowedKeys ?? ['ec-p256'];
  const { ca } = opts;

  function check(csrPem: string, caller: CallerAuthorization): IssuedLeaf {
    const slot = limiter.take();
    if (!slot.ok) {
      throw new WeftError('WEFT_ERR_CSR_RATE_LIMITED', `CSR signing is limited to ${limiterOpts.perSecond}/s; retry in ${slot.retryAfterMs} ms`, {
        key: 'ca.csrMaxPerSecond',
        value: { retryAfterMs: slot.retryAfterMs },
      });
    }
    const csr = parseCsr(csrPem);
    const kind = describeKey(csr.publicKey);
    if (!allowedKeys.includes(kind)) {
      throw new WeftError('WEFT_ERR_CSR_KEY', `CSR key is ${kind}; allowed: ${allowedKeys.join(', ')}`, { key: 'csr.publicKey', value: kind });
    }
    if (!csr.signatureValid) {
      throw new WeftError('WEFT_ERR_CSR_SIGNATURE', `CSR signature (${csr.signatureAlgorithm}) does not verify with its public key`, { key: 'csr.signature', value: csr.signatureAlgorithm });
    }
    if (csr.uris.length !== 1) {
      throw new WeftError('WEFT_ERR_CSR_IDENTITY', `CSR must ask for exactly one URI SAN (a SPIFFE ID); it asks for ${csr.uris.length}`, { key: 'csr.uris', value: csr.uris });
    }
    let id: SpiffeId;
    try {
      id = parseSpiffeId(csr.uris[0]!);
    } catch (cause) {
      throw new WeftError('WEFT_ERR_CSR_IDENTITY', `CSR URI SAN is not a weft SPIFFE ID: ${(cause as Error).message}`, { key: 'csr.uris', value: csr.uris[0], cause });
    }
    if (id.trustDomain !== ca.trustDomain) {
      throw new WeftError('WEFT_ERR_CSR_IDENTITY', `CSR asks for trust domain ${id.trustDomain}; this CA signs ${ca.trustDomain}`, { key: 'csr.uris', value: id.uri });
    }
    if (!mayClaim(caller, id)) {
      throw new WeftError('WEFT_ERR_CSR_IDENTITY', `caller may not claim ${id.uri}`, { key: 'csr.uris', value: id.uri });
    }
    return ca.issue(csr.publicKey, id);
  }

  return {
    sign(csrPem, caller) {
      try {
        const leaf = check(csrPem, caller);
        csrTotal.inc({ result: 'signed' });
        return leaf;
      } catch (err) {
        csrTotal.inc({ result: isWeftError(err) ? (err.code as ErrorCode) : 'error' });
        throw err;
      }
    },
  };
}

/** Whether `caller` may claim `id`. */
export function mayClaim(caller: CallerAuthorization, id: SpiffeId): boolean {
  if (typeof caller === 'function') return caller(id);
  return (caller.namespace ?? DEFAULT_NAMESPACE) === id.namespace && caller.allowedServices.includes(id.service);
}
