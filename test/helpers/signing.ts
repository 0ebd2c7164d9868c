/**
 * Signed desired state for tests that write documents into KV by hand, as the
 * scheduler would: a real key store (src/wiring/scheduler-signing.ts) in a
 * temporary folder, its envelopes, and the key files hosts read.
 *
 *   const signer = await testSigner(t);
 *   await signer.put(consul.consul, 'weft/intentions/web/api', { action: 'deny' });
 *   await signer.handToProxy(host.dataDir);   // <dataDir>/proxy/signing-keys.json, as the agent writes it
 *   await signer.installFor(agentDataDir);    // <dataDir>/scheduler/signing/, as a scheduler on the same machine
 */
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Consul from 'consul';
import { writeFileAtomic } from '../../base/atomic-write.js';
import { PROXY_KEYSET_FILE, SIGNING_DIR, type SigningKeySet } from '../../base/signing.js';
import { SigningKeyStore } from '../../src/wiring/scheduler-signing.js';
import type { TeardownHost } from './dev-consul.js';

/** A scheduler's signing keys, outside any scheduler. */
export interface TestSigner {
  readonly store: SigningKeyStore;
  /** The data directory holding `scheduler/signing/`. */
  readonly dataDir: string;
  /** The signed KV value of `doc` (an object, or JSON text) at `key`. */
  value(key: string, doc: unknown): string;
  /** Writes the signed value into KV. */
  put(consul: Consul, key: string, doc: unknown): Promise<void>;
  keySet(): SigningKeySet;
  /** Writes the public keys where a host's proxy reads them. */
  handToProxy(dataDir: string): Promise<void>;
  /** Copies the whole key folder into another data directory (an agent without a token reads it there). */
  installFor(dataDir: string): Promise<void>;
}

/** A fresh key store in a temporary data directory, removed at teardown. */
export async function testSigner(t: TeardownHost): Promise<TestSigner> {
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-test-signing-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const { store } = SigningKeyStore.open(dataDir);
  const value = (key: string, doc: unknown): string => JSON.stringify(store.sign(key, typeof doc === 'string' ? doc : JSON.stringify(doc)));
  return {
    store,
    dataDir,
    value,
    async put(consul, key, doc) {
      await consul.kv.set(key, value(key, doc));
    },
    keySet: () => store.keySet(),
    async handToProxy(target) {
      await mkdir(join(target, 'proxy'), { recursive: true, mode: 0o700 });
      await writeFileAtomic(join(target, 'proxy', PROXY_KEYSET_FILE), JSON.stringify(store.keySet()));
    },
    async installFor(target) {
      await mkdir(join(target, 'scheduler'), { recursive: true, mode: 0o700 });
      await cp(join(dataDir, SIGNING_DIR), join(target, SIGNING_DIR), { recursive: true });
    },
  };
}
