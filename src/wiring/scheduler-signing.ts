/**
 * The scheduler's signing keys and the documents it signs with them
 * (docs/security.md, "Signed desired state").
 *
 *   <dataDir>/scheduler/signing/            0700
 *     keys.json        the public key set (base/signing.ts SigningKeySet), what GET /v1/signing/keys serves
 *     <kid>.key        each private key, PKCS#8 PEM, 0600 (a wider mode is refused)
 *     unsigned-adopted the KV prefixes whose documents found unsigned the leader has signed once (JSON list)
 *
 * Every scheduler instance sharing the data directory (as they share the
 * operator token and the secrets key) shares the keys: the first to start
 * creates them (an exclusive link, so two first starts agree on one key), and
 * each re-reads keys.json when it changes, so a rotation made through any
 * instance is seen by all.
 *
 * Rotation adds a key that is published at once but signs only from
 * `signsFrom` (`publish` later: every agent has fetched it by then, so no
 * host meets a document of a key it does not know yet), and gives the
 * current key a retire time `overlap` after that; until then both verify,
 * and the leader's sweep re-signs every document with the new key. The key
 * that signs is the newest whose `signsFrom` has come and that is not
 * retired. Private keys of retired keys are deleted at the next rotation;
 * their public entries stay 30 days (a document of theirs is then refused as
 * `retired-key`, not `unknown-key`).
 */
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../../base/atomic-write.js';
import { WeftError } from '../../base/errors.js';
import type { Logger } from '../../base/log.js';
import {
  KEYSET_FILE,
  nextSignedAt,
  parseKeySet,
  privateKeyFromPem,
  publicKeyEntry,
  type PublicSigningKey,
  type SignedEnvelope,
  type SigningKey,
  type SigningKeySet,
  SIGNING_DIR,
  signEnvelope,
  unwrapDocument,
  type Verification,
  type Verifier,
  verifierOf,
  verify,
} from '../../base/signing.js';
import { type DiscoveryClient, type KvEntry, listEntries, putJSON } from '../../discovery/index.js';

/** Default overlap of a rotation: the old key verifies this long after a new one signs. */
export const DEFAULT_SIGNING_OVERLAP_HOURS = 24;
/** Default publication of a new key before it signs: twice the agents' default refresh (agent.signingKeysRefreshMs, 60 s). */
export const DEFAULT_SIGNING_PUBLISH_SECONDS = 120;
/** Public entries of retired keys are dropped this long after their retire time. */
const RETIRED_KEPT_MS = 30 * 24 * 3_600_000;
const ADOPTED_MARKER = 'unsigned-adopted';

/** The key folder of a data directory. */
export function signingDir(dataDir: string): string {
  return join(dataDir, SIGNING_DIR);
}

function storeError(what: string, cause?: unknown): WeftError {
  return new WeftError('WEFT_ERR_SIGNING_KEYS', what, { key: 'signingKeys', ...(cause === undefined ? {} : { cause }) });
}

/** The scheduler's keys on disk. */
export class SigningKeyStore {
  readonly dir: string;
  readonly #now: () => number;
  #stamp = '';
  #set: SigningKeySet = { keys: [] };
  readonly #private = new Map<string, SigningKey>();
  #verifier: { set: SigningKeySet; verifier: Verifier } | undefined;

  private constructor(dir: string, now: () => number) {
    this.dir = dir;
    this.#now = now;
  }

  /**
   * Opens the store, creating the folder and a first key when there is none.
   * `created` says this call made them (the first start of a signing scheduler).
   */
  static open(dataDir: string, opts: { now?: () => number } = {}): { store: SigningKeyStore; created: boolean } {
    const store = new SigningKeyStore(signingDir(dataDir), opts.now ?? Date.now);
    const created = store.#createIfAbsent();
    store.#reload();
    store.signingKey(); // a store that cannot sign fails at start, not at the first write
    return { store, created };
  }

  /** The public keys, as published (re-read when keys.json changed). */
  keySet(): SigningKeySet {
    this.#reload();
    return this.#set;
  }

  /** The public keys prepared for `verify` (prepared again only when keys.json changed). */
  verifier(): Verifier {
    const set = this.keySet();
    if (this.#verifier?.set !== set) this.#verifier = { set, verifier: verifierOf(set) };
    return this.#verifier.verifier;
  }

  /** The key that signs now: the newest whose signsFrom has come, not retired. */
  signingKey(): SigningKey {
    this.#reload();
    const current = signingEntry(this.#set.keys, this.#now());
    if (current === undefined) throw storeError(`${this.#file()}: no key that may sign now (rotate to make one)`);
    return this.#privateKey(current.kid);
  }

  /** When the key that signs now began signing (ms): its signsFrom, else its creation. */
  signingSinceMs(): number {
    this.#reload();
    const current = signingEntry(this.#set.keys, this.#now());
    return current === undefined ? this.#now() : Date.parse(current.signsFrom ?? current.createdAt);
  }

  /** Signs `doc` (JSON text) for KV key `path`; `previousRaw` (the value it replaces, if read) keeps signedAt growing. */
  sign(path: string, doc: string, previousRaw?: string | null): SignedEnvelope {
    return signEnvelope(this.signingKey(), path, doc, nextSignedAt(this.#now(), previousRaw));
  }

  /**
   * Adds a key that signs from `publishMs` from now, and gives every key
   * without a retire time one `overlapMs` after that (both 0: the new key
   * signs at once and the old one verifies nothing more, for a key believed
   * stolen). Private keys already past their retire time are deleted; public
   * entries retired more than 30 days ago are dropped.
   */
  rotate(overlapMs: number, publishMs = 0): { kid: string; signsFrom: string; retiring: Array<{ kid: string; retireAt: string }> } {
    if (!Number.isFinite(overlapMs) || overlapMs < 0) throw storeError(`the overlap must be 0 or more milliseconds, got ${overlapMs}`);
    if (!Number.isFinite(publishMs) || publishMs < 0) throw storeError(`the publication must be 0 or more milliseconds, got ${publishMs}`);
    this.#reload();
    const now = this.#now();
    const { privateKey } = generateKeyPairSync('ed25519');
    const signsFrom = new Date(now + publishMs).toISOString();
    const fresh: PublicSigningKey = { ...publicKeyEntry(privateKey, new Date(now).toISOString()), ...(publishMs === 0 ? {} : { signsFrom }) };
    this.#writePrivate(fresh.kid, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, false);
    const retireAt = new Date(now + publishMs + overlapMs).toISOString();
    const retiring: Array<{ kid: string; retireAt: string }> = [];
    const keys: PublicSigningKey[] = [];
    for (const k of this.#set.keys) {
      if (k.retireAt !== undefined && Date.parse(k.retireAt) + RETIRED_KEPT_MS <= now) continue;
      if (k.retireAt === undefined) {
        retiring.push({ kid: k.kid, retireAt });
        keys.push({ ...k, retireAt });
      } else keys.push(k);
    }
    keys.push(fresh);
    writeFileAtomicSync(this.#file(), `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
    this.#reload();
    for (const k of keys) {
      if (k.retireAt !== undefined && Date.parse(k.retireAt) <= now) {
        rmSync(join(this.dir, `${k.kid}.key`), { force: true });
        this.#private.delete(k.kid);
      }
    }
    return { kid: fresh.kid, signsFrom, retiring };
  }

  /**
   * True until the leader has signed, once, the documents it found unsigned
   * under `prefix` (the first sweep after signing began for that kind of
   * document: an upgrade, or a key folder created anew).
   */
  adoptsUnsigned(prefix: string): boolean {
    return !this.#adopted().includes(prefix);
  }

  /** Records that the unsigned documents under `prefixes` were signed: from now on one found there is never signed. */
  markUnsignedAdopted(prefixes: readonly string[]): void {
    const all = [...new Set([...this.#adopted(), ...prefixes])].sort();
    writeFileAtomicSync(join(this.dir, ADOPTED_MARKER), `${JSON.stringify(all)}\n`, { mode: 0o600 });
  }

  #adopted(): string[] {
    try {
      const list = JSON.parse(readFileSync(join(this.dir, ADOPTED_MARKER), 'utf8')) as unknown;
      return Array.isArray(list) ? list.filter((p): p is string => typeof p === 'string') : [];
    } catch {
      return [];
    }
  }

  #file(): string {
    return join(this.dir, KEYSET_FILE);
  }

  /** First start: a key and keys.json, unless another instance made them (then theirs). */
  #createIfAbsent(): boolean {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const mode = statSync(this.dir).mode & 0o777;
      if ((mode & 0o077) !== 0) throw storeError(`${this.dir}: mode ${mode.toString(8)} lets others in (chmod 700)`);
      statSync(this.#file());
      return false;
    } catch (err) {
      if (err instanceof WeftError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storeError(`${this.dir}: ${(err as Error).message}`, err);
    }
    const { privateKey } = generateKeyPairSync('ed25519');
    const entry = publicKeyEntry(privateKey, new Date(this.#now()).toISOString());
    this.#writePrivate(entry.kid, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, true);
    // keys.json appears complete and only once: written aside, then linked (link fails if it exists).
    const tmp = `${this.#file()}.${process.pid}.${entry.kid}.tmp`;
    try {
      writeFileAtomicSync(tmp, `${JSON.stringify({ keys: [entry] }, null, 2)}\n`, { mode: 0o600 });
      linkSync(tmp, this.#file());
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw storeError(`${this.#file()}: ${(err as Error).message}`, err);
      rmSync(join(this.dir, `${entry.kid}.key`), { force: true }); // another instance won: its key signs
      return false;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  #writePrivate(kid: string, pem: string, exclusive: boolean): void {
    const path = join(this.dir, `${kid}.key`);
    try {
      if (exclusive) {
        writeFileSync(path, pem, { mode: 0o600, flag: 'wx' });
        chmodSync(path, 0o600);
      } else writeFileAtomicSync(path, pem, { mode: 0o600 });
    } catch (err) {
      throw storeError(`${path}: ${(err as Error).message}`, err);
    }
  }

  #reload(): void {
    const file = this.#file();
    let stamp: string;
    try {
      const st = statSync(file);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      throw storeError(`${file}: ${(err as Error).message}`, err);
    }
    if (stamp === this.#stamp) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw storeError(`${file}: ${(err as Error).message}`, err);
    }
    this.#set = parseKeySet(text, file);
    this.#stamp = stamp;
  }

  #privateKey(kid: string): SigningKey {
    const known = this.#private.get(kid);
    if (known !== undefined) return known;
    const path = join(this.dir, `${kid}.key`);
    let pem: string;
    try {
      const st = statSync(path);
      if ((st.mode & 0o077) !== 0) throw storeError(`${path}: mode ${(st.mode & 0o777).toString(8)} lets others read it (chmod 600)`);
      pem = readFileSync(path, 'utf8');
    } catch (err) {
      if (err instanceof WeftError) throw err;
      throw storeError(`${path}: ${(err as Error).message}`, err);
    }
    const privateKey = privateKeyFromPem(pem, path);
    if (publicKeyEntry(privateKey, '').kid !== kid) throw storeError(`${path}: the key does not match its id ${kid}`);
    const key = { privateKey, kid };
    this.#private.set(kid, key);
    return key;
  }

  /** The ids of the private keys on disk. */
  privateKeyIds(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.key'))
      .map((f) => f.slice(0, -'.key'.length))
      .sort();
  }
}

/** The key that signs at `nowMs`: not retired, its signsFrom come, the newest such. */
function signingEntry(keys: readonly PublicSigningKey[], nowMs: number): PublicSigningKey | undefined {
  const from = (k: PublicSigningKey): number => Date.parse(k.signsFrom ?? k.createdAt);
  let best: PublicSigningKey | undefined;
  for (const k of keys) {
    if (k.retireAt !== undefined && Date.parse(k.retireAt) <= nowMs) continue;
    if (from(k) > nowMs) continue;
    if (best === undefined || from(k) >= from(best)) best = k;
  }
  return best;
}

/**
 * How the scheduler's own readers of the documents under `prefix` judge one
 * (the observer, the CSR and secrets routes for allocations), fixed for one
 * pass over many documents: what verifies with the scheduler's keys, and,
 * until the leader's first sweep has signed the documents it found unsigned
 * there (an upgrade from before signing), an unsigned one as it is, so an
 * upgrade does not read every allocation as missing and place them all again.
 */
export function signedReader(store: SigningKeyStore, prefix: string, nowMs: number = Date.now()): (key: string, raw: string | null) => Verification {
  const verifier = store.verifier();
  const unsignedTrusted = store.adoptsUnsigned(prefix);
  return (key, raw) => {
    const v = verify(verifier, key, raw, nowMs);
    if (!v.ok && v.reason === 'unsigned' && unsignedTrusted && raw !== null && raw !== '') return { ok: true, doc: raw, kid: '', signedAt: 0 };
    return v;
  };
}

/** One kind of signed document the sweep looks after. */
export interface SignedPrefix {
  /** KV folder, e.g. `weft/intentions/`. */
  readonly prefix: string;
  /** Throws when a document found unsigned is not a valid one of its kind (it is then never signed). */
  validate(key: string, doc: string): void;
  /** Writes a re-signed value if the key is still at `index`; false when another writer won (default: the sweep's). Allocations: fenced by the leader lock. */
  write?(key: string, value: SignedEnvelope, index: number): Promise<boolean>;
}

/** What one sweep did. */
export interface SweepResult {
  /** Documents re-signed with the current key (signed by an older one that still verifies). */
  resigned: number;
  /** Unsigned documents signed at the first signing start (an upgrade). */
  adopted: number;
  /** Documents left as they are: hosts refuse them. */
  refused: number;
}

/**
 * Re-signs, with the current key, every document under `prefixes` that an
 * older key verified when the current key began signing (a rotation, its
 * overlap included, or none: a key retired at once still had its documents
 * re-signed), with check-and-set so a concurrent writer wins. A document that does not verify is never signed
 * (that would launder a hand-written one), except with `adoptUnsigned`, which
 * the leader's first sweep after the first start of a signing scheduler
 * passes: documents then unsigned were written before signing existed (or
 * signed by a key folder since lost) and were trusted as they were, so they
 * are signed once if they are valid, and the store remembers it was done.
 * Each refused one is logged with its key and reason.
 */
export async function resignDocuments(
  client: DiscoveryClient,
  store: SigningKeyStore,
  prefixes: readonly SignedPrefix[],
  logger: Logger,
  opts: {
    adoptUnsigned?: boolean;
    now?: () => number;
    /** Writes a re-signed value if the key is still at `index`; false when another writer won (default: a CAS put; the leader fences allocations). */
    write?: (key: string, value: SignedEnvelope, index: number) => Promise<boolean>;
  } = {},
): Promise<SweepResult> {
  const result: SweepResult = { resigned: 0, adopted: 0, refused: 0 };
  const now = opts.now ?? Date.now;
  const current = store.signingKey().kid;
  const verifier = verifierOf(store.keySet());
  // As of just before the current key began signing: the keys it replaced were all valid then.
  const asOf = Math.min(now(), store.signingSinceMs() - 1);
  const adopted: string[] = [];
  for (const { prefix, validate, write } of prefixes) {
    const adopting = opts.adoptUnsigned === true && store.adoptsUnsigned(prefix);
    const entries: KvEntry[] = await listEntries(client, prefix);
    for (const [i, e] of entries.entries()) {
      if (i % 256 === 255) await new Promise((resolve) => setImmediate(resolve)); // thousands of allocations: let the API answer meanwhile
      if (e.key.endsWith('/') && (e.value === null || e.value === '')) continue;
      const v = verify(verifier, e.key, e.value, asOf);
      if (v.ok && v.kid === current) continue;
      // At the first start, unsigned documents (from before signing) and those of keys this store never had (a key
      // folder lost and created anew) are what the cluster ran until then: signed once, if valid.
      const adoptable = !v.ok && adopting && e.value !== null ? (v.reason === 'unsigned' ? e.value : v.reason === 'unknown-key' ? unwrapDocument(e.value) : undefined) : undefined;
      let doc: string;
      if (v.ok) doc = v.doc;
      else if (adoptable !== undefined && isValid(validate, e.key, adoptable)) doc = adoptable;
      else {
        result.refused++;
        logger.warn({ code: 'WEFT_ERR_SIGNED_STATE', key: e.key, reason: v.ok ? 'current' : v.reason }, 'document not signed by the scheduler: left as it is, hosts refuse it');
        continue;
      }
      const envelope = store.sign(e.key, doc, e.value);
      const written = await (write ?? opts.write ?? ((key, value, index) => putJSON(client, key, value, { cas: index })))(e.key, envelope, e.modifyIndex);
      if (!written) continue; // a writer replaced it meanwhile: theirs is signed with the current key
      if (v.ok) result.resigned++;
      else result.adopted++;
    }
    if (adopting) adopted.push(prefix);
  }
  if (adopted.length > 0) store.markUnsignedAdopted(adopted);
  if (result.resigned + result.adopted + result.refused > 0) logger.info({ ...result, kid: current }, 'signed documents swept');
  return result;
}

function isValid(validate: SignedPrefix['validate'], key: string, doc: string): boolean {
  try {
    validate(key, doc);
    return true;
  } catch {
    return false;
  }
}

/**
 * The leader's re-signing: a sweep when it starts leading (adopting what is
 * unsigned from before signing, once per prefix), then one whenever the
 * signing key changed (a rotation's new key starts signing); a failed sweep
 * is retried at the next tick. Runs only between `start` and `stop`.
 */
export class SigningSweeper {
  readonly #o: { client: DiscoveryClient; store: SigningKeyStore; prefixes: readonly SignedPrefix[]; logger: Logger; intervalMs: number };
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #sweptKid: string | undefined;
  #stopped = true;

  constructor(opts: { client: DiscoveryClient; store: SigningKeyStore; prefixes: readonly SignedPrefix[]; logger: Logger; intervalMs?: number }) {
    this.#o = { intervalMs: 2_000, ...opts };
  }

  /** Starts sweeping (call when leadership begins). */
  start(): void {
    this.#stopped = false;
    this.#sweptKid = undefined;
    this.#tick();
  }

  /** Stops and waits for a sweep under way (call when leadership ends). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #tick(): void {
    this.#running = this.#running.then(async () => {
      if (this.#stopped) return;
      try {
        const kid = this.#o.store.signingKey().kid;
        if (kid !== this.#sweptKid) {
          await resignDocuments(this.#o.client, this.#o.store, this.#o.prefixes, this.#o.logger, { adoptUnsigned: true });
          this.#sweptKid = kid;
        }
      } catch (err) {
        this.#o.logger.warn({ err }, 'signing sweep failed; retrying');
      }
      if (this.#stopped) return;
      this.#timer = setTimeout(() => this.#tick(), this.#o.intervalMs);
      this.#timer.unref();
    });
  }
}
