/**
 * The records the dev agent keeps. They mirror Consul's state store tables
 * (kvs, nodes, services, checks, sessions); records are immutable and replaced
 * on every write, which is what lets a write be rolled back (txn) and what
 * keeps persistence a plain serialisation.
 */

/** The tables whose index a blocking query can watch, as in Consul's memdb (ACL tokens and policies included). */
export type Table = 'kvs' | 'nodes' | 'services' | 'checks' | 'sessions' | 'acl-tokens' | 'acl-policies';

/** All tables, in a fixed order (persistence and tests iterate them). */
export const TABLES: readonly Table[] = ['kvs', 'nodes', 'services', 'checks', 'sessions', 'acl-tokens', 'acl-policies'];

/** A check's health, as Consul spells it. */
export type CheckStatus = 'passing' | 'warning' | 'critical';

/** Values a client may set; anything else is a 400 like Consul's. */
export const CHECK_STATUSES: readonly CheckStatus[] = ['passing', 'warning', 'critical'];

/** One KV entry (Consul's DirEntry). */
export interface KvEntry {
  readonly key: string;
  readonly flags: number;
  /** null for an empty value, as Consul answers `"Value": null`. */
  readonly value: Buffer | null;
  readonly lockIndex: number;
  /** The session holding the lock, when locked. */
  readonly session?: string;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** A catalog node. */
export interface NodeRecord {
  readonly id: string;
  readonly node: string;
  readonly address: string;
  readonly datacenter: string;
  readonly taggedAddresses: Readonly<Record<string, string>>;
  readonly meta: Readonly<Record<string, string>>;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** A tagged address of a service (`{Address, Port}`). */
export interface ServiceAddress {
  readonly Address: string;
  readonly Port: number;
}

/** A service instance on a node. */
export interface ServiceRecord {
  readonly node: string;
  readonly id: string;
  readonly name: string;
  readonly kind: string;
  readonly tags: readonly string[];
  readonly address: string;
  readonly port: number;
  readonly meta: Readonly<Record<string, string>>;
  readonly weights: { readonly Passing: number; readonly Warning: number };
  readonly enableTagOverride: boolean;
  readonly taggedAddresses?: Readonly<Record<string, ServiceAddress>>;
  /** True for services registered through this agent (/v1/agent/services lists only those). */
  readonly local: boolean;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** Where a check definition came from: a config file (local) or the HTTP API (remote, as Consul counts it). */
export type CheckSource = 'local' | 'remote';

/** What a script check runs: `Args` without a shell, or the older `Script` through one. */
export type ScriptCommand = { readonly args: readonly string[] } | { readonly command: string };

/** A script check's command, and its source (re-checked against the policy when persisted state loads). */
export type ScriptSpec = ScriptCommand & { readonly source: CheckSource };

/** How a check is executed by the agent; `none` for checks only set by API (maintenance, catalog). */
export interface CheckDefinition {
  readonly kind: 'ttl' | 'http' | 'tcp' | 'script' | 'none';
  /** kind `script`: the command and where it was defined. */
  readonly script?: ScriptSpec;
  readonly http?: string;
  readonly method?: string;
  readonly header?: Readonly<Record<string, readonly string[]>>;
  readonly body?: string;
  readonly tlsSkipVerify?: boolean;
  readonly disableRedirects?: boolean;
  readonly tcp?: string;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly ttlMs?: number;
  readonly successBeforePassing: number;
  readonly failuresBeforeCritical: number;
  readonly failuresBeforeWarning: number;
  readonly deregisterCriticalServiceAfterMs?: number;
  readonly outputMaxSize?: number;
}

/** A health check, on a node or on a service instance. */
export interface CheckRecord {
  readonly node: string;
  readonly checkId: string;
  readonly name: string;
  readonly status: CheckStatus;
  readonly notes: string;
  readonly output: string;
  /** '' for a node-level check. */
  readonly serviceId: string;
  readonly serviceName: string;
  /** Consul's Type: "ttl", "http", "tcp", "" for API-only checks. */
  readonly type: string;
  readonly definition: CheckDefinition;
  /** True for checks this agent registered (and runs); false for catalog-registered ones. */
  readonly local: boolean;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** What happens to a session's locks when it is invalidated. */
export type SessionBehavior = 'release' | 'delete';

/** A session (Consul's structs.Session). */
export interface SessionRecord {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  readonly lockDelayMs: number;
  readonly behavior: SessionBehavior;
  /** The TTL exactly as given ("" when none), as Consul echoes it. */
  readonly ttl: string;
  readonly ttlMs: number;
  readonly nodeChecks: readonly string[];
  readonly serviceChecks: readonly string[];
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** An ACL policy (Consul's structs.ACLPolicy): rules as written, in Consul's HCL or JSON. */
export interface AclPolicyRecord {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly rules: string;
  /** Datacenters the policy applies in; empty: all. */
  readonly datacenters: readonly string[];
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** An ACL token (Consul's structs.ACLToken): what a request presents is the SecretID. */
export interface AclTokenRecord {
  readonly accessorId: string;
  readonly secretId: string;
  readonly description: string;
  /** Policy IDs, in the order given; a link to a policy since deleted is ignored (and not shown). */
  readonly policies: readonly string[];
  readonly local: boolean;
  /** RFC 3339. */
  readonly createTime: string;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** Key of a service or check in its table: node and ID (IDs are unique per node only). */
export function nodeKey(node: string, id: string): string {
  return `${node}\u0000${id}`;
}
