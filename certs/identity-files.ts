/**
 * Workload identity files (`weft cert issue --out`, the agent, the host
 * proxy): key.pem (0600), cert.pem (leaf + chain), bundle.pem; and the
 * atomic, owner-only file writes the CA store uses too.
 *
 * Apart from store.ts because the proxy reads identities and nothing else of
 * the CA: store.ts brings the CA, and with it node-forge (about 10 MB of a
 * process's memory), which the data plane must not carry.
 */
import { createPrivateKey } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../base/atomic-write.js';
import { WeftError } from '../base/errors.js';
import type { MeshIdentity } from './mtls.js';

/** Writes a workload identity: key.pem (0600), cert.pem, bundle.pem. Returns the paths. */
export function writeIdentityFiles(dir: string, identity: MeshIdentity): { key: string; cert: string; bundle: string } {
  const paths = { key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem'), bundle: join(dir, 'bundle.pem') };
  storeWrap(dir, () => {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeSecretFile(paths.key, identity.keyPem);
    writeAtomic(paths.cert, identity.certChainPem, 0o644);
    writeAtomic(paths.bundle, identity.bundlePem, 0o644);
  });
  return paths;
}

/** Reads what writeIdentityFiles wrote, refusing a key file others can read. */
export function readIdentityFiles(dir: string): MeshIdentity {
  const keyPath = join(dir, 'key.pem');
  readSecretKey(keyPath); // permission and format check
  return storeWrap(dir, () => ({
    keyPem: readFileSync(keyPath, 'utf8'),
    certChainPem: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    bundlePem: readFileSync(join(dir, 'bundle.pem'), 'utf8'),
  }));
}

/** Writes a private key file: created 0600 under a temporary name, then renamed into place. */
export function writeSecretFile(path: string, data: string): void {
  writeAtomic(path, data, 0o600);
}

/** Writes `path` with `mode` (exact, from the file's creation) through base/atomic-write.ts: a reader never sees half a file. */
export function writeAtomic(path: string, data: string, mode: number): void {
  writeFileAtomicSync(path, data, { mode });
}

/** Reads a private key, refusing a file readable by group or others (as ssh does). */
export function readSecretKey(path: string): ReturnType<typeof createPrivateKey> {
  const st = storeWrap(path, () => statSync(path));
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new WeftError('WEFT_ERR_CA_STORE', `${path} is readable by group or others (mode ${mode}); run chmod 600 ${path}`, { key: path, value: mode });
  }
  return storeWrap(path, () => createPrivateKey(readFileSync(path)));
}

/** Runs `fn`, turning a file system error into WEFT_ERR_CA_STORE naming `path`. */
export function storeWrap<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (cause) {
    if (cause instanceof WeftError) throw cause;
    throw new WeftError('WEFT_ERR_CA_STORE', `${path}: ${(cause as Error).message}`, { key: path, cause });
  }
}
