/**
 * A CsrSigner backed by a CA directory on this machine (`weft ca init` writes
 * `<dataDir>/ca/`): for single-machine and dev setups, used only when no
 * scheduler token is configured (else scheduler-signer.ts). The CA is loaded per signature so a `weft ca rotate` by
 * hand is picked up without restarting the agent. In a cluster, hosts must not
 * hold the CA key: they use a signer that sends the CSR to the scheduler.
 */
import { bundlePem } from '../../certs/index.js';
import { createCsrSigner } from '../../certs/index.js';
import { loadCa } from '../../certs/index.js';
import type { CsrSigner } from '../../agent/index.js';

/** Signs with the CA in `<dataDir>/ca/`, allowing each caller only the service it asks for, in `namespace`. */
export function localCaSigner(opts: { dataDir: string; namespace: string; perSecond?: number }): CsrSigner {
  const first = loadCa(opts.dataDir); // fails fast with WEFT_ERR_CA_MISSING and the command to run
  return {
    async trustDomain() {
      return first.trustDomain;
    },
    async sign(csrPem, service) {
      const ca = loadCa(opts.dataDir);
      return createCsrSigner({ ca, perSecond: opts.perSecond ?? 0 }).sign(csrPem, { allowedServices: [service], namespace: opts.namespace });
    },
    async bundlePem() {
      return bundlePem(loadCa(opts.dataDir).bundle());
    },
  };
}
