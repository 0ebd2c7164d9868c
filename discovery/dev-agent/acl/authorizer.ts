/**
 * Deciding a request, as Consul's policy authorizer does.
 *
 * A token's policies are merged into one rule set. For a segmented resource
 * (key, service, node, session, agent, event, query) an exact rule for the
 * name wins; else the longest prefix rule that the name starts with; else
 * nothing matches and the default policy decides (`acl.default_policy`:
 * allow or deny). When two policies (or two blocks) name the same segment,
 * deny wins, else the more permissive level. Levels grant: write = read,
 * list and write; list = read and list (keys only); read = read; deny =
 * nothing, and stops the search (a deny is never overridden by the default).
 *
 * Writing a key prefix (a recursive delete, a txn delete-tree) needs write on
 * the longest prefix rule above it AND no rule under it that grants less
 * than write (Consul's KeyWritePrefix). `acl:*` is never granted by the
 * default policy: only a rule or the management policy grants it.
 *
 * A refusal is a 403 with Consul's text: `Permission denied: token with
 * AccessorID '<id>' lacks permission 'key:write' on "weft/allocs/h1/x"`
 * (`anonymous token` and a hint when the request carried none).
 */
import { ConsulHttpError } from '../http-error.js';
import type { AccessLevel, PolicyRules, Resource, Segmented, Single } from './rules.js';
import { SEGMENTED } from './rules.js';

/** The AccessorID of the anonymous token (used when a request carries none). */
export const ANONYMOUS_TOKEN_ID = '00000000-0000-0000-0000-000000000002';
/** The SecretID Consul gives the anonymous token. */
export const ANONYMOUS_SECRET = 'anonymous';
/** The builtin global-management policy: a token linked to it may do anything. */
export const GLOBAL_MANAGEMENT_ID = '00000000-0000-0000-0000-000000000001';

/** What a request needs: read, list (keys) or write. */
export type Need = 'read' | 'list' | 'write';

/** Rules of several policies merged into lookups. */
interface Merged {
  readonly exact: Record<Segmented, Map<string, AccessLevel>>;
  readonly prefix: Record<Segmented, Map<string, AccessLevel>>;
  readonly single: Partial<Record<Single, AccessLevel>>;
}

/** Which of two levels for the same segment stands: deny, then the more permissive. */
export function takesPrecedence(a: AccessLevel, b: AccessLevel): boolean {
  if (a === 'deny') return true;
  if (b === 'deny') return false;
  const rank = { read: 1, list: 2, write: 3 } as const;
  return rank[a] > rank[b];
}

/** Merges the rules of a token's policies. */
export function mergeRules(all: readonly PolicyRules[]): Merged {
  const blank = (): Record<Segmented, Map<string, AccessLevel>> =>
    Object.fromEntries(SEGMENTED.map((r) => [r, new Map<string, AccessLevel>()])) as Record<Segmented, Map<string, AccessLevel>>;
  const merged: Merged = { exact: blank(), prefix: blank(), single: {} };
  const put = (map: Map<string, AccessLevel>, name: string, level: AccessLevel): void => {
    const before = map.get(name);
    if (before === undefined || takesPrecedence(level, before)) map.set(name, level);
  };
  for (const rules of all) {
    for (const r of SEGMENTED) for (const rule of rules.segments[r]) put((rule.prefix ? merged.prefix : merged.exact)[r], rule.name, rule.access);
    for (const [k, level] of Object.entries(rules.single) as Array<[Single, AccessLevel]>) {
      const before = merged.single[k];
      if (before === undefined || takesPrecedence(level, before)) merged.single[k] = level;
    }
  }
  return merged;
}

/** Consul's enforce(): does a rule at `level` grant `need`? */
function grants(level: AccessLevel, need: Need): boolean {
  if (level === 'write') return true;
  if (level === 'list') return need === 'read' || need === 'list';
  if (level === 'read') return need === 'read';
  return false;
}

/** A resolved token: decides requests and explains refusals. */
export class Authorizer {
  /**
   * @param accessorId the token's AccessorID (for messages)
   * @param rules merged rules; `'manage'` for a management token (or ACLs off)
   * @param defaultAllow what applies where no rule matches (`acl.default_policy`)
   */
  constructor(
    readonly accessorId: string,
    private readonly rules: Merged | 'manage',
    private readonly defaultAllow: boolean,
  ) {}

  /** A token for which everything is allowed (management, or ACLs disabled). */
  static manage(accessorId: string): Authorizer {
    return new Authorizer(accessorId, 'manage', true);
  }

  /** A token with these policies' rules. */
  static of(accessorId: string, policies: readonly PolicyRules[], defaultAllow: boolean): Authorizer {
    return new Authorizer(accessorId, mergeRules(policies), defaultAllow);
  }

  get isManagement(): boolean {
    return this.rules === 'manage';
  }

  /** The rule level that applies to `name`, or undefined when none matches. */
  level(resource: Resource, name = ''): AccessLevel | undefined {
    if (this.rules === 'manage') return 'write';
    if (!(SEGMENTED as readonly string[]).includes(resource)) return this.rules.single[resource as Single];
    const r = resource as Segmented;
    const exact = this.rules.exact[r].get(name);
    if (exact !== undefined) return exact;
    let best: string | undefined;
    for (const p of this.rules.prefix[r].keys()) if (name.startsWith(p) && (best === undefined || p.length > best.length)) best = p;
    return best === undefined ? undefined : this.rules.prefix[r].get(best);
  }

  /** Whether `need` on `resource` `name` is allowed. */
  allows(resource: Resource, need: Need, name = ''): boolean {
    if (this.rules === 'manage') return true;
    const level = this.level(resource, name);
    if (level !== undefined) return grants(level, need);
    // The default policy never grants ACL management (Consul's static authorizers do not "manage").
    return resource === 'acl' ? false : this.defaultAllow;
  }

  /** Consul's KeyWritePrefix: write on the prefix's own rule and on every rule beneath it. */
  allowsKeyWritePrefix(prefix: string): boolean {
    if (this.rules === 'manage') return true;
    let parent: AccessLevel | undefined;
    let parentLen = -1;
    for (const [p, level] of this.rules.prefix.key) {
      if (prefix.startsWith(p) && p.length > parentLen) {
        parent = level;
        parentLen = p.length;
      }
    }
    if (parent !== undefined && parent !== 'write') return false;
    for (const map of [this.rules.exact.key, this.rules.prefix.key]) {
      for (const [p, level] of map) if (p.startsWith(prefix) && level !== 'write') return false;
    }
    return parent === 'write' || this.defaultAllow;
  }

  /** Throws Consul's 403 unless allowed. */
  need(resource: Resource, need: Need, name?: string): void {
    if (!this.allows(resource, need, name ?? '')) throw this.denied(resource, need, name);
  }

  /** Throws Consul's 403 unless the whole prefix may be written. */
  needKeyWritePrefix(prefix: string): void {
    if (!this.allowsKeyWritePrefix(prefix)) throw this.denied('key', 'write', prefix);
  }

  /** The 403 Consul answers for a refused permission. */
  denied(resource: Resource, need: Need, name?: string): ConsulHttpError {
    return new ConsulHttpError(403, permissionDeniedText(this.accessorId, resource, need, name));
  }
}

/** Consul's PermissionDeniedError text for a refused permission. */
export function permissionDeniedText(accessorId: string, resource: Resource, need: Need, name?: string): string {
  const anonymous = accessorId === ANONYMOUS_TOKEN_ID;
  let text = `Permission denied: ${anonymous ? 'anonymous token' : `token with AccessorID '${accessorId}'`} lacks permission '${resource}:${need}'`;
  if (name !== undefined && name !== '') text += ` on "${name}"`;
  if (anonymous) text += '. The anonymous token is used implicitly when a request does not specify a token.';
  return text;
}
