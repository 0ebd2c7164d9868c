/**
 * The host's workload identities, as the agent (or `weft cert issue --out`)
 * leaves them under `<dataDir>/proxy/identities/<service>/` (key.pem,
 * cert.pem, bundle.pem: base/contracts/host-proxy.ts). `refresh()` re-reads a
 * service only when one of its files changed (inode, size or mtime: writers
 * rename into place), builds its SecureContext once, and bumps `generation`
 * so the proxy's pools and contexts follow a renewal without a restart.
 *
 * Polled rather than fs.watch'ed: renames into a directory that may itself
 * be created later are where fs.watch misses events, and a few stat calls a
 * second cost nothing. A service whose files are unreadable, unsafe (key not
 * 0600) or not a certificate keeps its last good identity, logged once per
 * bad version of the files.
 */
import { X509Certificate } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { type MeshIdentity, readIdentityFiles, secureContextOptions } from '../../certs/runtime.js';
import { HOST_PROXY_DIR, HOST_PROXY_IDENTITIES_DIR } from '../../base/contracts/host-proxy.js';
import { type Logger, silentLogger } from '../../base/log.js';

/** One service's identity, ready for TLS. */
export interface LoadedIdentity {
  readonly service: string;
  readonly identity: MeshIdentity;
  /** Built once per version of the files: contexts are expensive to build and cheap to share. */
  readonly context: SecureContext;
  /** The leaf's notAfter. */
  readonly notAfter: Date;
}

/** The identities folder of a data directory. */
export function identitiesDir(dataDir: string): string {
  return join(dataDir, HOST_PROXY_DIR, HOST_PROXY_IDENTITIES_DIR);
}

const FILES = ['key.pem', 'cert.pem', 'bundle.pem'] as const;

/** The identities of every local service, reloaded on change. */
export class IdentityStore {
  readonly dir: string;
  readonly #logger: Logger;
  readonly #loaded = new Map<string, LoadedIdentity>();
  /** Per service: the stamp of the files last read (good or bad), so unchanged files are not re-read. */
  readonly #stamps = new Map<string, string>();
  #generation = 0;
  #bundle = '';

  constructor(dir: string, opts: { logger?: Logger } = {}) {
    this.dir = dir;
    this.#logger = opts.logger ?? silentLogger;
  }

  /** Moves whenever an identity appears, changes or goes away. */
  get generation(): number {
    return this.#generation;
  }

  /** The identity of `service`, if this host has one. */
  get(service: string): LoadedIdentity | undefined {
    return this.#loaded.get(service);
  }

  /** Services with an identity, sorted. */
  services(): string[] {
    return [...this.#loaded.keys()].sort();
  }

  /** Every root any local identity trusts (deduplicated PEM blocks): the inbound's client CA list. */
  bundlePem(): string {
    return this.#bundle;
  }

  /** Re-reads what changed on disk. Returns true when anything changed (and `generation` moved). */
  refresh(): boolean {
    let changed = false;
    const present = new Set(listDirs(this.dir));
    for (const service of [...this.#loaded.keys()]) {
      if (present.has(service)) continue;
      this.#loaded.delete(service);
      this.#stamps.delete(service);
      this.#logger.info({ service }, 'identity removed');
      changed = true;
    }
    for (const service of present) {
      const dir = join(this.dir, service);
      const stamp = stampOf(dir);
      if (stamp === this.#stamps.get(service)) continue;
      this.#stamps.set(service, stamp);
      try {
        const identity = readIdentityFiles(dir);
        const notAfter = new Date(new X509Certificate(identity.certChainPem).validTo);
        const context = createSecureContext(secureContextOptions(identity));
        this.#loaded.set(service, { service, identity, context, notAfter });
        this.#logger.info({ service, notAfter: notAfter.toISOString() }, 'identity loaded');
        changed = true;
      } catch (err) {
        // A half-written renewal or a bad chmod must not take the service's working identity away.
        this.#logger.error({ err, service, dir, kept: this.#loaded.has(service) }, 'identity unreadable: keeping the last good one');
      }
    }
    if (changed) {
      this.#generation++;
      this.#bundle = mergeBundles([...this.#loaded.values()].map((l) => l.identity.bundlePem));
    }
    return changed;
  }
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name);
  } catch {
    return []; // no identities yet: the agent has not issued any
  }
}

function stampOf(dir: string): string {
  return FILES.map((f) => {
    try {
      const st = statSync(join(dir, f));
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return '-';
    }
  }).join('|');
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Unique certificates of several bundles, in first-seen order (bundles differ only mid-rotation). */
export function mergeBundles(bundles: readonly string[]): string {
  const seen = new Set<string>();
  for (const b of bundles) for (const m of b.match(PEM_BLOCK) ?? []) seen.add(m);
  return [...seen].map((pem) => `${pem}\n`).join('');
}
