/**
 * Signed desired state: the envelope the scheduler wraps around the KV
 * documents hosts act on (intentions and splits; allocations next), and its
 * verification. Ed25519 from node:crypto; pure (no I/O, time passed in).
 *
 *   KV value = {"weft_signed":1,"kid":"<key id>","signedAt":<ms>,"sig":"<base64>","doc":"<the document's JSON text>"}
 *   signed bytes = "weft-signed-v1" \0 <KV key path> \0 <signedAt> \0 <doc text>
 *
 * The key path is inside the signature, so a valid document cannot be moved
 * to another key (another host, another name). `signedAt` is inside too: a
 * verifier that holds a newer document for a key refuses an older one written
 * back there (`SignedDocGate`, rollback). Key id = the first 16 hex digits of
 * SHA-256 over the raw 32-byte public key.
 *
 * A key set is what the scheduler publishes (GET /v1/signing/keys) and what
 * agents hand to their proxy (<dataDir>/proxy/signing-keys.json): every key
 * still known, each with its retire time once rotated out; a key past its
 * retire time verifies nothing.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign as edSign, verify as edVerify } from 'node:crypto';
import { WeftError } from './errors.js';

/** The envelope's version tag (its `weft_signed` field). */
export const SIGNED_VERSION = 1;
/** The domain separation prefix of the signed bytes. */
export const SIGNED_CONTEXT = 'weft-signed-v1';
/** The scheduler's key folder under its data directory (private keys 0600, folder 0700). */
export const SIGNING_DIR = 'scheduler/signing';
/** The public key set inside SIGNING_DIR (and what GET /v1/signing/keys answers). */
export const KEYSET_FILE = 'keys.json';
/** What the agent writes for its host's proxy, under `<dataDir>/proxy/` (the host-proxy hand-off folder). */
export const PROXY_KEYSET_FILE = 'signing-keys.json';

/** One public key: what a verifier needs. */
export interface PublicSigningKey {
  /** First 16 hex digits of SHA-256(raw public key). */
  readonly kid: string;
  /** The raw 32-byte Ed25519 public key, base64url (a JWK's `x`). */
  readonly publicKey: string;
  /** ISO 8601. */
  readonly createdAt: string;
  /** ISO 8601: when the key starts signing (absent: at creation). Published before, so every host knows it by then. */
  readonly signsFrom?: string;
  /** ISO 8601: from then on the key verifies nothing (set when a newer key took over). */
  readonly retireAt?: string;
}

/** A private key and its id: what signs. */
export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly kid: string;
}

/** The published keys. */
export interface SigningKeySet {
  readonly keys: readonly PublicSigningKey[];
}

/** Why a document was refused. */
export type RefusalReason = 'unsigned' | 'malformed' | 'unknown-key' | 'retired-key' | 'bad-signature' | 'rollback';

/** Every reason, for metrics that export each one. */
export const REFUSAL_REASONS: readonly RefusalReason[] = ['unsigned', 'malformed', 'unknown-key', 'retired-key', 'bad-signature', 'rollback'];

/** A verified document. */
export interface Verified {
  readonly ok: true;
  /** The document's JSON text, as the scheduler wrote it. */
  readonly doc: string;
  readonly kid: string;
  readonly signedAt: number;
}

/** A refused document. */
export interface Refused {
  readonly ok: false;
  readonly reason: RefusalReason;
  /** One line for logs (never the document itself). */
  readonly detail: string;
}

export type Verification = Verified | Refused;

/** The envelope, as stored (JSON) in the KV value. */
export interface SignedEnvelope {
  weft_signed: number;
  kid: string;
  signedAt: number;
  sig: string;
  doc: string;
}
const ENVELOPE_FIELDS = ['weft_signed', 'kid', 'signedAt', 'sig', 'doc'];
const KID = /^[0-9a-f]{16}$/;

/** The key id of a raw public key. */
export function keyIdOf(rawPublicKey: Uint8Array): string {
  return createHash('sha256').update(rawPublicKey).digest('hex').slice(0, 16);
}

/** The raw 32 bytes of an Ed25519 public key. */
export function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new WeftError('WEFT_ERR_SIGNING_KEYS', 'not an Ed25519 key', { key: 'publicKey', value: jwk.crv });
  return Buffer.from(jwk.x, 'base64url');
}

/** The public half of a private key, as published. */
export function publicKeyEntry(privateKey: KeyObject, createdAt: string, retireAt?: string): PublicSigningKey {
  const raw = rawPublicKey(createPublicKey(privateKey));
  return { kid: keyIdOf(raw), publicKey: raw.toString('base64url'), createdAt, ...(retireAt === undefined ? {} : { retireAt }) };
}

/** A private key from its PKCS#8 PEM; WEFT_ERR_SIGNING_KEYS when it is not Ed25519. */
export function privateKeyFromPem(pem: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (cause) {
    throw new WeftError('WEFT_ERR_SIGNING_KEYS', `${source}: not a private key (${(cause as Error).message})`, { key: 'signingKey', value: source, cause });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new WeftError('WEFT_ERR_SIGNING_KEYS', `${source}: a ${key.asymmetricKeyType} key, not Ed25519`, { key: 'signingKey', value: source });
  return key;
}

function message(path: string, signedAt: number, doc: string): Buffer {
  return Buffer.from(`${SIGNED_CONTEXT}\0${path}\0${signedAt}\0${doc}`, 'utf8');
}

/**
 * Wraps `doc` (a JSON text) for KV key `path`: the value to write there.
 * `signedAt` (epoch ms) must grow per key: a writer overwriting a document
 * passes at least the old one's + 1 (see `nextSignedAt`).
 */
export function signDocument(key: SigningKey, path: string, doc: string, signedAt: number): string {
  return JSON.stringify(signEnvelope(key, path, doc, signedAt));
}

/** The envelope as an object, for writers that serialise values themselves (putJSON, fenced transactions). */
export function signEnvelope(key: SigningKey, path: string, doc: string, signedAt: number): SignedEnvelope {
  if (!Number.isSafeInteger(signedAt) || signedAt < 0) throw new WeftError('WEFT_ERR_SIGNING_KEYS', `signedAt must be a non-negative integer (ms), got ${signedAt}`, { key: 'signedAt', value: signedAt });
  const sig = edSign(null, message(path, signedAt, doc), key.privateKey).toString('base64');
  return { weft_signed: SIGNED_VERSION, kid: key.kid, signedAt, sig, doc };
}

/** The signedAt for a new version of a key: now, or just after the version it replaces (clocks of two schedulers may differ). */
export function nextSignedAt(nowMs: number, previousRaw: string | null | undefined): number {
  const before = previousRaw === null || previousRaw === undefined ? undefined : parseEnvelope(previousRaw);
  const floor = before === undefined || typeof before === 'string' ? 0 : before.signedAt + 1;
  return Math.max(Math.floor(nowMs), floor);
}

/** The envelope of a raw value; a string says why it is not one (`unsigned` or a `malformed` detail). */
function parseEnvelope(raw: string): SignedEnvelope | 'unsigned' | `malformed: ${string}` {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return 'unsigned';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !('weft_signed' in value)) return 'unsigned';
  const e = value as Record<string, unknown>;
  if (e['weft_signed'] !== SIGNED_VERSION) return `malformed: weft_signed is ${JSON.stringify(e['weft_signed'])}, not ${SIGNED_VERSION}`;
  const extra = Object.keys(e).filter((k) => !ENVELOPE_FIELDS.includes(k));
  if (extra.length > 0) return `malformed: unknown field ${extra[0]}`;
  if (typeof e['kid'] !== 'string' || !KID.test(e['kid'])) return 'malformed: kid must be 16 hex digits';
  if (typeof e['signedAt'] !== 'number' || !Number.isSafeInteger(e['signedAt']) || e['signedAt'] < 0) return 'malformed: signedAt must be a non-negative integer';
  if (typeof e['sig'] !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(e['sig'])) return 'malformed: sig must be base64';
  if (typeof e['doc'] !== 'string') return 'malformed: doc must be a string';
  return e as unknown as SignedEnvelope;
}

/** Public keys by kid, each with its retire time in ms (Infinity while current). */
export interface Verifier {
  readonly keys: ReadonlyMap<string, { key: KeyObject; retireAtMs: number }>;
}

/** Prepares a key set for `verify` (keys parsed once). Throws WEFT_ERR_SIGNING_KEYS on a malformed set. */
export function verifierOf(set: SigningKeySet): Verifier {
  const keys = new Map<string, { key: KeyObject; retireAtMs: number }>();
  for (const k of set.keys) {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.publicKey }, format: 'jwk' });
    keys.set(k.kid, { key, retireAtMs: k.retireAt === undefined ? Number.POSITIVE_INFINITY : Date.parse(k.retireAt) });
  }
  return { keys };
}

/** The empty verifier: refuses everything (`unknown-key`). */
export const NO_KEYS: Verifier = { keys: new Map() };

/**
 * Verifies the raw KV value at `path`: the document's text when the envelope
 * is well formed, its key known and not retired at `nowMs`, and the signature
 * good over this path; else the reason.
 */
export function verify(verifier: Verifier, path: string, raw: string | null, nowMs: number): Verification {
  if (raw === null || raw === '') return { ok: false, reason: 'unsigned', detail: 'empty value' };
  const e = parseEnvelope(raw);
  if (e === 'unsigned') return { ok: false, reason: 'unsigned', detail: 'not a signed envelope (written without the scheduler)' };
  if (typeof e === 'string') return { ok: false, reason: 'malformed', detail: e.slice('malformed: '.length) };
  const k = verifier.keys.get(e.kid);
  if (k === undefined) return { ok: false, reason: 'unknown-key', detail: `key ${e.kid} is not one of the scheduler's (${verifier.keys.size} known)` };
  if (nowMs >= k.retireAtMs) return { ok: false, reason: 'retired-key', detail: `key ${e.kid} retired at ${new Date(k.retireAtMs).toISOString()}` };
  let good = false;
  try {
    good = edVerify(null, message(path, e.signedAt, e.doc), k.key, Buffer.from(e.sig, 'base64'));
  } catch {
    good = false;
  }
  if (!good) return { ok: false, reason: 'bad-signature', detail: `the signature of key ${e.kid} does not match this document at this key` };
  return { ok: true, doc: e.doc, kid: e.kid, signedAt: e.signedAt };
}

/** The document's text of a value the reader already trusts to be the scheduler's (its own reads); undefined when not an envelope. */
export function unwrapDocument(raw: string | null): string | undefined {
  if (raw === null) return undefined;
  const e = parseEnvelope(raw);
  return typeof e === 'string' ? undefined : e.doc;
}

/** The key id and signing time of an envelope, without verifying it (for the scheduler's re-signing sweep). */
export function envelopeInfo(raw: string | null): { kid: string; signedAt: number } | undefined {
  if (raw === null) return undefined;
  const e = parseEnvelope(raw);
  return typeof e === 'string' ? undefined : { kid: e.kid, signedAt: e.signedAt };
}

/**
 * Parses a key set (the API's answer, a key set file); WEFT_ERR_SIGNING_KEYS
 * names `source` and the bad field. Every key must parse as Ed25519 and match
 * its kid.
 */
export function parseKeySet(text: string, source: string): SigningKeySet {
  const fail = (why: string): WeftError => new WeftError('WEFT_ERR_SIGNING_KEYS', `${source}: ${why}`, { key: 'signingKeys', value: source });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new WeftError('WEFT_ERR_SIGNING_KEYS', `${source}: not JSON (${(cause as Error).message})`, { key: 'signingKeys', value: source, cause });
  }
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw fail('must be {"keys": [...]}');
  const out: PublicSigningKey[] = [];
  keys.forEach((k: unknown, i) => {
    const e = (k ?? {}) as Record<string, unknown>;
    const at = `keys[${i}]`;
    if (typeof e['kid'] !== 'string' || !KID.test(e['kid'])) throw fail(`${at}.kid must be 16 hex digits`);
    if (typeof e['publicKey'] !== 'string') throw fail(`${at}.publicKey must be a base64url string`);
    const raw = Buffer.from(e['publicKey'], 'base64url');
    if (raw.length !== 32) throw fail(`${at}.publicKey must be 32 bytes (Ed25519), got ${raw.length}`);
    if (keyIdOf(raw) !== e['kid']) throw fail(`${at}.kid ${e['kid']} does not match its public key`);
    if (typeof e['createdAt'] !== 'string' || Number.isNaN(Date.parse(e['createdAt']))) throw fail(`${at}.createdAt must be an ISO time`);
    for (const field of ['signsFrom', 'retireAt']) {
      if (e[field] !== undefined && (typeof e[field] !== 'string' || Number.isNaN(Date.parse(e[field])))) throw fail(`${at}.${field} must be an ISO time`);
    }
    out.push({
      kid: e['kid'],
      publicKey: e['publicKey'],
      createdAt: e['createdAt'],
      ...(e['signsFrom'] === undefined ? {} : { signsFrom: e['signsFrom'] as string }),
      ...(e['retireAt'] === undefined ? {} : { retireAt: e['retireAt'] as string }),
    });
  });
  return { keys: out };
}

/** What a gate says about one key's value. */
export interface Admission {
  /** The document in force for the key: this value's when it verified, else the last one that did (undefined: none). */
  readonly doc: string | undefined;
  /** Set when this value was refused. */
  readonly refused?: Refused;
  /** True the first time this value was refused (log and count it then, once). */
  readonly fresh: boolean;
}

/**
 * Per reader (an agent's allocations, a proxy's intentions or splits): keeps
 * the last verified document per key, so a refused value leaves the last
 * verified state in force, and refuses a value signed earlier than the one in
 * force (`rollback`: an old document of the scheduler's written back to its
 * key). A refusal is `fresh` once per distinct value, so a watch delivering
 * the same bad value again is neither logged nor counted twice.
 */
export class SignedDocGate {
  #verifier: Verifier = NO_KEYS;
  #hasKeys = false;
  #fingerprint = '';
  readonly #inForce = new Map<string, { doc: string; signedAt: number }>();
  readonly #refused = new Map<string, string>();

  /**
   * Replaces the keys (a refresh, a rotation). Returns true when they changed:
   * the caller then admits its current values again (one refused for want of
   * a key may pass now; one of a key just retired is refused).
   */
  setKeys(set: SigningKeySet): boolean {
    const fingerprint = set.keys.map((k) => `${k.kid}:${k.publicKey}:${k.retireAt ?? ''}`).join(',');
    if (fingerprint === this.#fingerprint) return false;
    this.#verifier = verifierOf(set);
    this.#hasKeys = set.keys.length > 0;
    this.#fingerprint = fingerprint;
    // A value still refused under the new keys is news again (its reason may have changed).
    this.#refused.clear();
    return true;
  }

  /** False until a key set with at least one key arrived. */
  get hasKeys(): boolean {
    return this.#hasKeys;
  }

  /** Judges the value at `path` at time `nowMs`. */
  admit(path: string, raw: string | null, nowMs: number): Admission {
    const before = this.#inForce.get(path);
    let v = verify(this.#verifier, path, raw, nowMs);
    if (v.ok && before !== undefined && v.signedAt < before.signedAt) {
      v = { ok: false, reason: 'rollback', detail: `signed at ${new Date(v.signedAt).toISOString()}, before the document in force (${new Date(before.signedAt).toISOString()})` };
    }
    if (v.ok) {
      this.#inForce.set(path, { doc: v.doc, signedAt: v.signedAt });
      this.#refused.delete(path);
      return { doc: v.doc, fresh: false };
    }
    const fresh = this.#refused.get(path) !== (raw ?? '');
    this.#refused.set(path, raw ?? '');
    return { doc: before?.doc, refused: v, fresh };
  }

  /** Forgets one key (deleted from KV). */
  forget(path: string): void {
    this.#inForce.delete(path);
    this.#refused.delete(path);
  }

  /** Forgets every key not in `present` (deleted from KV): a deletion cannot be signed, and is taken as it is. */
  retain(present: Iterable<string>): void {
    const keep = new Set(present);
    for (const k of this.#inForce.keys()) if (!keep.has(k)) this.#inForce.delete(k);
    for (const k of this.#refused.keys()) if (!keep.has(k)) this.#refused.delete(k);
  }
}
