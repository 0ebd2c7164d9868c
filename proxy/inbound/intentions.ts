/**
 * Intentions: may service A call service B? Stored in Consul KV as
 * `weft/intentions/<source>/<destination>` = `{"action":"allow"|"deny"}`
 * (optionally `"description"`), where either name may be `*`.
 *
 * Precedence follows Consul's: the most specific match wins, and the
 * destination counts more than the source:
 *   src/dst  >  * /dst  >  src/ *  >  * / *  >  the default action.
 *
 * Fail closed: a document that does not validate denies its pair (with a
 * reason saying so) rather than vanishing, because a vanished deny under a
 * default of allow would open the door. A key that names no pair
 * (`weft/intentions/a`) cannot deny anything and is only reported. An entry
 * whose signature the wiring refused (`refused`, src/wiring/proxy-signed-state.ts)
 * denies its pair the same way.
 *
 * Decisions are precomputed objects in nested Maps: a request costs at most
 * four Map lookups and allocates nothing.
 */
import { invalid, WeftError } from '../../base/errors.js';
import type { IntentionDecision, IntentionSource } from '../ports.js';
import { CONSUL_NAME_PATTERN } from '../../base/contracts/names.js';

/** The KV folder intentions live in. */
export const INTENTIONS_PREFIX = 'weft/intentions/';

/** `*` matches any service. */
export const WILDCARD = '*';

/** The validated document. */
export interface IntentionDocument {
  readonly action: 'allow' | 'deny';
  readonly description?: string;
}

/** What a KV watch delivers (structurally discovery's KvEntry; the proxy does not import it). */
export interface IntentionEntry {
  readonly key: string;
  readonly value: string | null;
  /** Set when the value was refused before parsing (not signed by the scheduler): why. The pair is denied. */
  readonly refused?: string;
}

// Consul's name rule, which is also the SPIFFE ID's service segment: intentions name what certificates name.
const SERVICE = new RegExp(CONSUL_NAME_PATTERN);
const DOCUMENT_KEYS = new Set(['action', 'description']);

/** Splits `weft/intentions/<source>/<destination>`; WEFT_ERR_INTENTION_INVALID otherwise. */
export function parseIntentionKey(key: string, prefix: string = INTENTIONS_PREFIX): { source: string; destination: string } {
  const parts = key.startsWith(prefix) ? key.slice(prefix.length).split('/') : [];
  const [source, destination] = parts;
  const ok = (s: string | undefined): s is string => s !== undefined && (s === WILDCARD || SERVICE.test(s));
  if (parts.length !== 2 || !ok(source) || !ok(destination)) {
    throw invalid('WEFT_ERR_INTENTION_INVALID', 'key', key, `must be ${prefix}<source>/<destination>, each a service name or *`);
  }
  return { source, destination };
}

/** Validates an intention document (the raw KV string); WEFT_ERR_INTENTION_INVALID names the key and field. */
export function parseIntentionDocument(key: string, raw: string | null): IntentionDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(raw ?? '');
  } catch (cause) {
    throw new WeftError('WEFT_ERR_INTENTION_INVALID', `${key}: not JSON (${(cause as Error).message})`, { key, value: raw, cause });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('WEFT_ERR_INTENTION_INVALID', key, doc, 'must be a JSON object');
  const record = doc as Record<string, unknown>;
  for (const field of Object.keys(record)) {
    if (!DOCUMENT_KEYS.has(field)) throw invalid('WEFT_ERR_INTENTION_INVALID', `${key}#/${field}`, record[field], 'unknown field (allowed: action, description)');
  }
  const action = record['action'];
  if (action !== 'allow' && action !== 'deny') throw invalid('WEFT_ERR_INTENTION_INVALID', `${key}#/action`, action, 'must be "allow" or "deny"');
  const description = record['description'];
  if (description === undefined) return { action };
  if (typeof description !== 'string' || description.length > 512) {
    throw invalid('WEFT_ERR_INTENTION_INVALID', `${key}#/description`, description, 'must be a string of at most 512 characters');
  }
  return { action, description };
}

const DENIED = 'WEFT_ERR_INTENTION_DENIED';

/** The decisions that do not depend on KV. */
export const DEFAULT_ALLOW: IntentionDecision = Object.freeze({ action: 'allow', reason: 'weft: no intention matches; default action is allow' });
export const DEFAULT_DENY: IntentionDecision = Object.freeze({ action: 'deny', reason: `weft: ${DENIED}: no intention allows this call (default action is deny)` });
export const NOT_LOADED: IntentionDecision = Object.freeze({ action: 'deny', reason: `weft: ${DENIED}: intentions not loaded yet` });

/** An immutable table of intentions with a default action. */
export class IntentionTable implements IntentionSource {
  /** destination -> source -> decision; `*` keys hold the wildcards. */
  private readonly byDestination: Map<string, Map<string, IntentionDecision>>;
  private readonly fallback: IntentionDecision;
  /** Entries that were refused (bad key or bad document), for logs. */
  readonly errors: readonly WeftError[];
  readonly size: number;

  private constructor(byDestination: Map<string, Map<string, IntentionDecision>>, fallback: IntentionDecision, errors: WeftError[], size: number) {
    this.byDestination = byDestination;
    this.fallback = fallback;
    this.errors = errors;
    this.size = size;
  }

  /** Builds a table from KV entries under `prefix`; folder placeholders (empty values ending in `/`) are skipped. */
  static fromEntries(entries: Iterable<IntentionEntry>, opts: { defaultAction: 'allow' | 'deny'; prefix?: string }): IntentionTable {
    const byDestination = new Map<string, Map<string, IntentionDecision>>();
    const errors: WeftError[] = [];
    let size = 0;
    for (const entry of entries) {
      if (entry.key.endsWith('/') && (entry.value === null || entry.value === '')) continue;
      let pair: { source: string; destination: string };
      try {
        pair = parseIntentionKey(entry.key, opts.prefix);
      } catch (err) {
        errors.push(err as WeftError);
        continue;
      }
      let decision: IntentionDecision;
      try {
        if (entry.refused !== undefined) throw new WeftError('WEFT_ERR_SIGNED_STATE', `${entry.key}: ${entry.refused}`, { key: entry.key });
        const doc = parseIntentionDocument(entry.key, entry.value);
        decision = Object.freeze({
          action: doc.action,
          reason: doc.action === 'allow' ? `weft: allowed by intention ${entry.key}` : `weft: ${DENIED}: denied by intention ${entry.key}`,
        });
      } catch (err) {
        errors.push(err as WeftError);
        const why = entry.refused === undefined ? 'is invalid' : 'is not signed by the scheduler';
        decision = Object.freeze({ action: 'deny', reason: `weft: ${DENIED}: intention ${entry.key} ${why}, so it denies until fixed` });
      }
      let sources = byDestination.get(pair.destination);
      if (sources === undefined) {
        sources = new Map();
        byDestination.set(pair.destination, sources);
      }
      sources.set(pair.source, decision);
      size++;
    }
    return new IntentionTable(byDestination, opts.defaultAction === 'allow' ? DEFAULT_ALLOW : DEFAULT_DENY, errors, size);
  }

  /** The decision for `source` calling `destination` (both service names). */
  decide(source: string, destination: string): IntentionDecision {
    const exact = this.byDestination.get(destination);
    if (exact !== undefined) {
      const d = exact.get(source) ?? exact.get(WILDCARD);
      if (d !== undefined) return d;
    }
    const wild = this.byDestination.get(WILDCARD);
    if (wild !== undefined) {
      const d = wild.get(source) ?? wild.get(WILDCARD);
      if (d !== undefined) return d;
    }
    return this.fallback;
  }
}

/**
 * The live intention source: a KV watch feeds `update` with the entries under
 * `weft/intentions/` (discovery's `watchKeyPrefix`, which keeps the last good
 * answer while Consul is unreachable). Until the first update every call is
 * denied: the proxy cannot know yet whether a deny exists.
 */
export class KvIntentions implements IntentionSource {
  private table: IntentionTable | undefined;
  private readonly opts: { defaultAction: 'allow' | 'deny'; prefix?: string };

  constructor(opts: { defaultAction: 'allow' | 'deny'; prefix?: string }) {
    this.opts = opts;
  }

  /** True once a first set of entries arrived. */
  get loaded(): boolean {
    return this.table !== undefined;
  }

  /** Replaces every intention with `entries`; returns the refused ones (already applied as denies when the pair is known). */
  update(entries: Iterable<IntentionEntry>): readonly WeftError[] {
    this.table = IntentionTable.fromEntries(entries, this.opts);
    return this.table.errors;
  }

  decide(source: string, destination: string): IntentionDecision {
    return this.table === undefined ? NOT_LOADED : this.table.decide(source, destination);
  }
}
