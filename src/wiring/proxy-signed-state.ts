/**
 * The proxy's side of signed desired state (docs/security.md): intentions and
 * splits from KV are acted on only when the scheduler signed them for their
 * key path (base/signing.ts).
 *
 *   <dataDir>/proxy/signing-keys.json (written by the host's agent; polled with local.json)
 *        ─▶ one SignedDocGate per kind ─▶ watchIntentions (proxy-intentions.ts), consulRouteSource splits (proxy-routes.ts)
 *
 * A refused value is logged once per key path and value with its reason and
 * counted in `weft_proxy_signed_state_refused_total{kind,reason}`; the last
 * verified document of that key stays in force. An intention refused with
 * nothing verified before denies its pair (fail closed, as an invalid one); a
 * split so refused is no split. Without a key file, nothing from KV is
 * admitted; when the keys change (the file appears, a rotation), every
 * consumer admits its current values again.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Counter } from 'prom-client';
import { HOST_PROXY_DIR } from '../../base/contracts/host-proxy.js';
import type { Logger } from '../../base/log.js';
import { parseKeySet, PROXY_KEYSET_FILE, type Refused, SignedDocGate, type SigningKeySet } from '../../base/signing.js';

/** What the proxy verifies. */
export type SignedKind = 'intention' | 'split';

/** The proxy's key file in a data directory. */
export function proxyKeysPath(dataDir: string): string {
  return join(dataDir, HOST_PROXY_DIR, PROXY_KEYSET_FILE);
}

/** One kind's gate: admits values, logging and counting refusals. */
export interface KindGate {
  /** The document text in force for `key` after this value (undefined: none); `refused` when this value was refused. */
  admit(key: string, raw: string | null): { doc: string | undefined; refused?: Refused };
  /** Forgets keys deleted from KV (`retain`: all but these; `forget`: this one). */
  retain(present: Iterable<string>): void;
  forget(key: string): void;
}

/** The scheduler's keys as the host's agent hands them over, and the gates that use them. */
export class ProxySignedState {
  readonly path: string;
  readonly #logger: Logger;
  readonly #refusals: Counter<'kind' | 'reason'> | undefined;
  readonly #now: () => number;
  readonly #gates: SignedDocGate[] = [];
  readonly #listeners = new Set<() => void>();
  #set: SigningKeySet | undefined;
  #stamp = '';
  #said = '';

  constructor(path: string, opts: { logger: Logger; refusals?: Counter<'kind' | 'reason'> | undefined; now?: () => number }) {
    this.path = path;
    this.#logger = opts.logger;
    this.#refusals = opts.refusals;
    this.#now = opts.now ?? Date.now;
  }

  /** The keys in force; undefined before a first good file. */
  get keys(): SigningKeySet | undefined {
    return this.#set;
  }

  /**
   * Re-reads the key file when it changed; true when the keys changed (the
   * consumers were told). A missing or bad file keeps the keys known, said once.
   */
  reload(): boolean {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      this.#sayOnce(`no signing keys at ${this.path} (the host's agent writes it): intentions and splits in KV are refused until it appears`);
      return false;
    }
    if (stamp === this.#stamp) return false;
    this.#stamp = stamp;
    let set: SigningKeySet;
    try {
      set = parseKeySet(readFileSync(this.path, 'utf8'), this.path);
    } catch (err) {
      this.#sayOnce(`${(err as Error).message}: keeping the keys known (${this.#set?.keys.length ?? 0})`);
      return false;
    }
    this.#said = '';
    let changed = false;
    for (const gate of this.#gates) changed = gate.setKeys(set) || changed;
    const first = this.#set === undefined;
    this.#set = set;
    if (!changed && !first) return false;
    this.#logger.info({ kids: set.keys.map((k) => k.kid), path: this.path }, 'signing keys loaded');
    for (const fn of this.#listeners) fn();
    return true;
  }

  /** Calls `fn` after each change of keys (consumers admit their current values again); returns the unsubscribe. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** A gate for one kind of document (one per consumer: each keeps its own last verified state). */
  gate(kind: SignedKind): KindGate {
    const gate = new SignedDocGate();
    if (this.#set !== undefined) gate.setKeys(this.#set);
    this.#gates.push(gate);
    return {
      admit: (key, raw) => {
        const a = gate.admit(key, raw, this.#now());
        if (a.refused !== undefined && a.fresh) {
          this.#refusals?.inc({ kind, reason: a.refused.reason });
          this.#logger.warn(
            { code: 'WEFT_ERR_SIGNED_STATE', kind, key, reason: a.refused.reason, inForce: a.doc === undefined ? 'none' : 'last verified' },
            `${kind} refused: not signed by the scheduler for this key (${a.refused.detail})`,
          );
        }
        return a.refused === undefined ? { doc: a.doc } : { doc: a.doc, refused: a.refused };
      },
      retain: (present) => gate.retain(present),
      forget: (key) => gate.forget(key),
    };
  }

  #sayOnce(line: string): void {
    if (line === this.#said) return;
    this.#said = line;
    this.#logger.warn({ code: 'WEFT_ERR_SIGNING_KEYS', path: this.path }, line);
  }
}
