/**
 * On-disk layout. The CA lives in `<dataDir>/ca/` (directory 0700):
 *
 *   ca.json                     public state (roots, cross-signs, intermediate)
 *   root-<id>.key.pem           the active root's key, 0600
 *   intermediate-<id>.key.pem   the active intermediate's key, 0600 (if used)
 *
 * Keys are named by id so a rotation writes new keys, then switches ca.json
 * atomically, then deletes the old keys: a crash at any point leaves a CA that
 * loads. Loading refuses key files readable by group or others, as ssh does.
 * Workload identities (`weft cert issue --out`) are key.pem (0600), cert.pem
 * (leaf + chain) and bundle.pem.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { WeftError } from '../base/errors.js';
import { CertificateAuthority, type CaOptions } from './ca.js';
import { readSecretKey, storeWrap as wrap, writeAtomic, writeSecretFile } from './identity-files.js';
import { privateKeyPem } from './keys.js';
import { caKeyId } from './profiles.js';
import type { CaKeys, CaState } from './rotation.js';

// Identity files live in identity-files.ts (no CA, so no node-forge, for the proxy); re-exported for existing callers.
export { readIdentityFiles, writeIdentityFiles, writeSecretFile } from './identity-files.js';

/** The CA directory under a data directory. */
export function caDir(dataDir: string): string {
  return join(dataDir, 'ca');
}

/** True when a CA has been initialised under `dataDir`. */
export function caExists(dataDir: string): boolean {
  return existsSync(join(caDir(dataDir), 'ca.json'));
}

/** Writes the CA (keys first, then state, then removes keys no longer referenced). */
export function saveCa(dataDir: string, ca: CertificateAuthority): void {
  const dir = caDir(dataDir);
  wrap(dir, () => {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const names = keyFileNames(ca.state);
    writeSecretFile(join(dir, names.root), privateKeyPem(ca.keys.root));
    if (names.intermediate !== undefined && ca.keys.intermediate !== undefined) {
      writeSecretFile(join(dir, names.intermediate), privateKeyPem(ca.keys.intermediate));
    }
    writeAtomic(join(dir, 'ca.json'), JSON.stringify(ca.state, null, 2) + '\n', 0o644);
    const keep = new Set([names.root, names.intermediate]);
    for (const f of readdirSync(dir)) if (f.endsWith('.key.pem') && !keep.has(f)) unlinkSync(join(dir, f));
  });
}

/** Loads the CA; WEFT_ERR_CA_MISSING when there is none, WEFT_ERR_CA_STORE when it is unreadable or unsafe. */
export function loadCa(dataDir: string, opts: Omit<CaOptions, 'trustDomain' | 'intermediate'> = {}): CertificateAuthority {
  const dir = caDir(dataDir);
  if (!caExists(dataDir)) throw new WeftError('WEFT_ERR_CA_MISSING', `no CA in ${dir}: run \`weft ca init\` first`, { key: 'dataDir', value: dataDir });
  const state = wrap(dir, () => JSON.parse(readFileSync(join(dir, 'ca.json'), 'utf8')) as CaState);
  if (state.version !== 1 || typeof state.trustDomain !== 'string' || !Array.isArray(state.roots)) {
    throw new WeftError('WEFT_ERR_CA_STORE', `${join(dir, 'ca.json')}: not a weft CA state file`, { key: 'ca.json', value: join(dir, 'ca.json') });
  }
  const names = keyFileNames(state);
  const keys: CaKeys = { root: readSecretKey(join(dir, names.root)) };
  const withInter = names.intermediate === undefined ? keys : { ...keys, intermediate: readSecretKey(join(dir, names.intermediate)) };
  return CertificateAuthority.restore(state, withInter, opts);
}

function keyFileNames(state: CaState): { root: string; intermediate?: string } {
  const root = `root-${state.activeRootId}.key.pem`;
  if (state.intermediatePem === undefined) return { root };
  return { root, intermediate: `intermediate-${caKeyId(new X509Certificate(state.intermediatePem).publicKey)}.key.pem` };
}
