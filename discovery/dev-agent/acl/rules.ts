/**
 * Consul's ACL rules language: what a policy's `Rules` holds, in HCL or JSON.
 *
 *   key_prefix "weft/allocs/" { policy = "read" }     segmented: exact (`key`) or prefix (`key_prefix`)
 *   service "weft-proxy"      { policy = "write" }    per name, with read / write / deny
 *   acl = "read"                                      single-valued: acl, operator, keyring, mesh, peering
 *
 * Segmented resources are agent, event, key, node, query (prepared queries),
 * service and session; `key` rules may also say `list`. A service rule may
 * carry `intentions` (accepted, not enforced: the dev agent has no Connect).
 * JSON rules (text starting with `{`) are read at once; HCL goes through
 * @cdktn/hcl2json, HashiCorp's HCL 2 parser compiled to WebAssembly, loaded
 * only when a policy is written in HCL (it costs about a second the first
 * time). Consul parses HCL 1; the rules people write read the same in both.
 *
 * Errors are Consul's: `Failed to parse ACL rules: ...` for text that does not
 * parse, `Invalid key_prefix policy: &acl.KeyRule{...}` for a policy value it
 * does not know (the rule is rendered the way Go's %#v renders it, without the
 * enterprise fields). One difference, on purpose: Consul ignores a rule type
 * it does not know (`key_prefx`), which silently grants nothing; the dev agent
 * refuses it, so a typo in a policy fails where it is tested.
 */
import { createRequire } from 'node:module';

/** An access level, as rules spell it. `list` exists for keys only. */
export type AccessLevel = 'deny' | 'read' | 'list' | 'write';

/** Resources whose rules name a segment (exact or prefix). */
export const SEGMENTED = ['agent', 'event', 'key', 'node', 'query', 'service', 'session'] as const;
export type Segmented = (typeof SEGMENTED)[number];

/** Resources with one rule each. */
export const SINGLE = ['acl', 'keyring', 'mesh', 'operator', 'peering'] as const;
export type Single = (typeof SINGLE)[number];

export type Resource = Segmented | Single;

/** One segment rule: `key_prefix "weft/" { policy = "read" }` is `{name: 'weft/', prefix: true, access: 'read'}`. */
export interface SegmentRule {
  readonly name: string;
  readonly prefix: boolean;
  readonly access: AccessLevel;
}

/** A parsed policy. */
export interface PolicyRules {
  readonly segments: Readonly<Record<Segmented, readonly SegmentRule[]>>;
  readonly single: Readonly<Partial<Record<Single, AccessLevel>>>;
}

/** The Go type and field names Consul prints for an invalid rule. */
const GO_RULE: Readonly<Record<Segmented, { type: string; field: string }>> = {
  agent: { type: 'AgentRule', field: 'Node' },
  event: { type: 'EventRule', field: 'Event' },
  key: { type: 'KeyRule', field: 'Prefix' },
  node: { type: 'NodeRule', field: 'Name' },
  query: { type: 'PreparedQueryRule', field: 'Prefix' },
  service: { type: 'ServiceRule', field: 'Name' },
  session: { type: 'SessionRule', field: 'Node' },
};

/** An error in a policy's rules, with Consul's wording. */
export class RulesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RulesError';
  }
}

/** An empty policy (no rules: everything falls to the default policy). */
export function emptyRules(): PolicyRules {
  return { segments: { agent: [], event: [], key: [], node: [], query: [], service: [], session: [] }, single: {} };
}

const require = createRequire(import.meta.url);

/** Parses rules written in HCL or JSON; throws RulesError with Consul's message. */
export async function parseRules(text: string): Promise<PolicyRules> {
  if (text.trim() === '') return emptyRules();
  if (text.trimStart().startsWith('{')) return parseJsonRules(text);
  const { parse } = require('@cdktn/hcl2json') as { parse(name: string, text: string): Promise<unknown> };
  let value: unknown;
  try {
    value = await parse('rules.hcl', text);
  } catch (err) {
    throw new RulesError(`Failed to parse ACL rules: ${(err as Error).message.replace(/^parse config: /, '')}`);
  }
  return rulesFromValue(value);
}

/** Parses JSON rules (`{"key_prefix": {"weft/": {"policy": "read"}}}`); throws RulesError. */
export function parseJsonRules(text: string): PolicyRules {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new RulesError(`Failed to parse ACL rules: ${(err as Error).message}`);
  }
  return rulesFromValue(value);
}

/** Checks and converts decoded rules (hcl2json's shape or Consul's JSON shape). */
export function rulesFromValue(value: unknown): PolicyRules {
  if (!isObject(value)) throw new RulesError('Failed to parse ACL rules: the rules must be an object of rule types');
  const rules = emptyRules();
  const segments = rules.segments as Record<Segmented, SegmentRule[]>;
  const single = rules.single as Partial<Record<Single, AccessLevel>>;
  for (const [type, raw] of Object.entries(value)) {
    const seg = segmentedType(type);
    if (seg !== undefined) {
      for (const [name, body] of blocks(type, raw)) segments[seg.resource].push(segmentRule(seg.resource, seg.prefix, type, name, body));
      continue;
    }
    if ((SINGLE as readonly string[]).includes(type)) {
      const level = typeof raw === 'string' ? raw : undefined;
      if (level === undefined || !validLevel(level, false)) throw new RulesError(`Invalid ${type} policy: ${goValue(raw)}`);
      single[type as Single] = level as AccessLevel;
      continue;
    }
    throw new RulesError(`Failed to parse ACL rules: unknown rule type ${JSON.stringify(type)} (known: ${knownTypes()})`);
  }
  return rules;
}

function segmentedType(type: string): { resource: Segmented; prefix: boolean } | undefined {
  const prefix = type.endsWith('_prefix');
  const base = prefix ? type.slice(0, -'_prefix'.length) : type;
  return (SEGMENTED as readonly string[]).includes(base) ? { resource: base as Segmented, prefix } : undefined;
}

/**
 * The (name, body) pairs of a segmented rule type. hcl2json gives
 * `{name: [body, ...]}` (a block may repeat); Consul's JSON gives
 * `{name: body}`, or a list of such objects.
 */
function blocks(type: string, raw: unknown): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  const fromMap = (m: unknown): void => {
    if (!isObject(m)) throw new RulesError(`Failed to parse ACL rules: ${type}: expected ${type} "<name>" { policy = "..." } blocks`);
    for (const [name, body] of Object.entries(m)) {
      if (Array.isArray(body)) for (const b of body) out.push([name, b]);
      else out.push([name, body]);
    }
  };
  if (Array.isArray(raw)) for (const m of raw) fromMap(m);
  else fromMap(raw);
  return out;
}

function segmentRule(resource: Segmented, prefix: boolean, type: string, name: string, body: unknown): SegmentRule {
  if (!isObject(body)) throw new RulesError(`Failed to parse ACL rules: ${type} ${JSON.stringify(name)}: expected a block with policy = "..."`);
  for (const k of Object.keys(body)) {
    if (k !== 'policy' && !(resource === 'service' && k === 'intentions')) {
      throw new RulesError(`Failed to parse ACL rules: ${type} ${JSON.stringify(name)}: unknown field ${JSON.stringify(k)}`);
    }
  }
  const policy = body['policy'];
  const intentions = body['intentions'];
  const bad =
    typeof policy !== 'string' ||
    !validLevel(policy, resource === 'key') ||
    (intentions !== undefined && (typeof intentions !== 'string' || (intentions !== '' && !validLevel(intentions, false))));
  if (bad) throw new RulesError(`Invalid ${type} policy: ${goRule(resource, name, policy, intentions)}`);
  return { name, prefix, access: policy as AccessLevel };
}

function validLevel(level: string, allowList: boolean): boolean {
  return level === 'deny' || level === 'read' || level === 'write' || (allowList && level === 'list');
}

/** A rule the way Go's %#v prints it (enterprise fields left out). */
function goRule(resource: Segmented, name: string, policy: unknown, intentions: unknown): string {
  const { type, field } = GO_RULE[resource];
  const extra = resource === 'service' ? `, Intentions:${goValue(intentions ?? '')}` : '';
  return `&acl.${type}{${field}:${goValue(name)}, Policy:${goValue(policy ?? '')}${extra}}`;
}

function goValue(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v ?? null);
}

function knownTypes(): string {
  return [...SEGMENTED.flatMap((r) => [r, `${r}_prefix`]), ...SINGLE].join(', ');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
