/**
 * A CsrSigner over the scheduler's CSR route (`POST /v1/ca/sign`, the host's
 * agent token): the key stays on this host, only the CSR travels, and the
 * scheduler signs only services allocated to this host (WEFT_ERR_CSR_IDENTITY
 * otherwise). The trust domain and bundle come from `GET /v1/ca/roots`; the
 * bundle is read at every issuance so a rotated root reaches new identities.
 */
import { X509Certificate } from 'node:crypto';
import type { IssuedLeaf } from '../certs/index.js';
import type { CaRootsResponse, SignCsrResponse } from '../base/contracts/scheduler-api.js';
import type { CsrSigner } from './identities.js';
import { callScheduler, type SchedulerEndpoint } from './scheduler-http.js';

/** Signs through the scheduler API at `ep.address` with the agent token `ep.token`. */
export function schedulerSigner(ep: SchedulerEndpoint): CsrSigner {
  let trustDomain: string | undefined;
  const roots = async (): Promise<CaRootsResponse> => {
    const r = await callScheduler<CaRootsResponse>(ep, 'caRoots');
    trustDomain = r.trustDomain;
    return r;
  };
  return {
    async trustDomain() {
      return trustDomain ?? (await roots()).trustDomain; // fixed for a CA's life: one call per agent
    },
    async bundlePem() {
      return (await roots()).bundlePem;
    },
    async sign(csrPem: string): Promise<IssuedLeaf> {
      const r = await callScheduler<SignCsrResponse>(ep, 'signCsr', {}, { csr: csrPem });
      return {
        spiffeId: r.spiffeId,
        certPem: r.certPem,
        chainPems: r.chainPems,
        serial: new X509Certificate(r.certPem).serialNumber, // not in the response; the certificate has it
        notBefore: new Date(r.notBefore),
        notAfter: new Date(r.notAfter),
      };
    },
  };
}
