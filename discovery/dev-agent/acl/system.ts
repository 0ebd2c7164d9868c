/**
 * The dev agent's ACL system: tokens and policies in the state store (so they
 * persist with everything else and get Raft-like indexes), the builtin
 * global-management policy and anonymous token, bootstrap, and resolving a
 * request's SecretID to an Authorizer.
 *
 * Like Consul: with `acl.enabled` a request without a token acts as the
 * anonymous token (or `acl.tokens.default` when set); a SecretID no token has
 * is 403 `ACL not found`; `acl.tokens.initial_management` creates a
 * management token with that SecretID at start (and that counts as the
 * bootstrap); otherwise PUT /v1/acl/bootstrap hands out one management token,
 * once. Losing it is recovered as in Consul: write the reset index (in the
 * refusal's text) to `<data-dir>/acl-bootstrap-reset` and bootstrap again.
 * Policy rules are compiled when written (and at start), so resolving a token
 * on the request path never parses.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../../base/log.js';
import { ConsulHttpError } from '../http-error.js';
import type { Store } from '../state/store.js';
import type { AclPolicyRecord, AclTokenRecord } from '../state/types.js';
import { ANONYMOUS_SECRET, ANONYMOUS_TOKEN_ID, Authorizer, GLOBAL_MANAGEMENT_ID } from './authorizer.js';
import { type PolicyRules, parseRules, RulesError } from './rules.js';

/** `acl.*` of the agent's configuration. */
export interface AclOptions {
  /** acl.enabled: enforce ACLs (default off, as in Consul). */
  readonly enabled: boolean;
  /** acl.default_policy: what applies where no rule matches (default allow, as in Consul). */
  readonly defaultPolicy?: 'allow' | 'deny';
  /** acl.tokens.initial_management: a management token's SecretID, created at start if missing. */
  readonly initialManagementToken?: string;
  /** acl.tokens.default: the token used for requests that carry none (default: the anonymous token). */
  readonly defaultToken?: string;
}

/** The file Consul reads a bootstrap reset index from. */
export const BOOTSTRAP_RESET_FILE = 'acl-bootstrap-reset';

/** The rules of Consul's builtin global-management policy (shown as they are; the policy is special-cased). */
const GLOBAL_MANAGEMENT_RULES = `
acl = "write"
agent_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
keyring = "write"
node_prefix "" {
  policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "write"
  intentions = "write"
}
session_prefix "" {
  policy = "write"
}`;

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const POLICY_NAME = /^[A-Za-z0-9\-_]{1,128}$/;
/** Consul reserves IDs starting with this for its builtin objects. */
const RESERVED_PREFIX = '00000000-0000-0000-0000-0000000000';

/** What a token or policy write asks for (decoded from the body). */
export interface TokenInput {
  accessorId?: string;
  secretId?: string;
  description?: string;
  policies: Array<{ id?: string; name?: string }>;
  local?: boolean;
}

export interface PolicyInput {
  id?: string;
  name: string;
  description: string;
  rules: string;
  datacenters: string[];
}

/** Tokens, policies and token resolution. */
export class AclSystem {
  readonly enabled: boolean;
  readonly defaultPolicy: 'allow' | 'deny';
  private readonly compiled = new Map<string, { modifyIndex: number; rules: PolicyRules }>();
  private resolved = new Map<string, Authorizer>();
  private resolvedAt = '';

  constructor(
    private readonly store: Store,
    private readonly options: AclOptions,
    private readonly datacenter: string,
    private readonly dataDir: string,
    private readonly logger: Logger,
  ) {
    this.enabled = options.enabled;
    this.defaultPolicy = options.defaultPolicy ?? 'allow';
  }

  /** Creates the builtin policy, the anonymous token and the initial management token; compiles every policy. */
  async init(): Promise<void> {
    if (!this.enabled) return;
    const initial = this.options.initialManagementToken;
    this.store.write((tx) => {
      if (!this.store.aclPolicies.has(GLOBAL_MANAGEMENT_ID)) {
        tx.put('acl-policies', GLOBAL_MANAGEMENT_ID, {
          id: GLOBAL_MANAGEMENT_ID,
          name: 'global-management',
          description: 'Builtin Policy that grants unlimited access',
          rules: GLOBAL_MANAGEMENT_RULES,
          datacenters: [],
          createIndex: tx.index,
          modifyIndex: tx.index,
        });
      }
      if (!this.store.aclTokens.has(ANONYMOUS_TOKEN_ID)) {
        tx.put('acl-tokens', ANONYMOUS_TOKEN_ID, newToken(tx.index, { accessorId: ANONYMOUS_TOKEN_ID, secretId: ANONYMOUS_SECRET, description: 'Anonymous Token' }));
      }
      if (initial !== undefined && initial !== '' && this.bySecret(initial) === undefined) {
        const accessorId = randomUUID();
        tx.put('acl-tokens', accessorId, newToken(tx.index, { accessorId, secretId: initial, description: 'Initial Management Token', policies: [GLOBAL_MANAGEMENT_ID] }));
        // Consul creates it through the bootstrap when that is still possible: afterwards bootstrap is refused.
        if (this.store.aclBootstrapIndex === 0) this.setBootstrapIndex(tx, tx.index);
        this.logger.info('dev-consul: ACL initial management token created from configuration');
      }
    });
    for (const p of this.store.aclPolicies.values()) await this.compile(p);
    if (this.store.aclBootstrapIndex === 0) {
      this.logger.info(`dev-consul: ACLs enabled (default policy ${this.defaultPolicy}); PUT /v1/acl/bootstrap once for a management token`);
    }
  }

  /** The token a request's SecretID (or none) stands for, as an Authorizer; 403 `ACL not found` for an unknown secret. */
  resolve(secret: string | undefined): Authorizer {
    if (!this.enabled) return Authorizer.manage('');
    const version = `${this.store.tableIndex['acl-tokens']}:${this.store.tableIndex['acl-policies']}`;
    if (version !== this.resolvedAt) {
      this.resolved = new Map();
      this.resolvedAt = version;
    }
    const s = secret === undefined || secret === '' ? (this.options.defaultToken ?? ANONYMOUS_SECRET) : secret;
    const hit = this.resolved.get(s);
    if (hit !== undefined) return hit;
    const token = this.bySecret(s);
    if (token === undefined) throw new ConsulHttpError(403, 'ACL not found');
    const policies = this.livePolicies(token);
    const authz = policies.some((p) => p.id === GLOBAL_MANAGEMENT_ID)
      ? Authorizer.manage(token.accessorId)
      : Authorizer.of(
          token.accessorId,
          policies.filter((p) => p.datacenters.length === 0 || p.datacenters.includes(this.datacenter)).map((p) => this.rulesOf(p)),
          this.defaultPolicy === 'allow',
        );
    if (this.resolved.size > 1024) this.resolved.clear();
    this.resolved.set(s, authz);
    return authz;
  }

  /** The SecretID a request without a token acts with (acl.tokens.default), if one is configured. */
  get defaultToken(): string | undefined {
    return this.options.defaultToken;
  }

  /** The token with this SecretID. */
  bySecret(secret: string): AclTokenRecord | undefined {
    for (const t of this.store.aclTokens.values()) if (t.secretId === secret) return t;
    return undefined;
  }

  /** The policy with this name. */
  policyByName(name: string): AclPolicyRecord | undefined {
    for (const p of this.store.aclPolicies.values()) if (p.name === name) return p;
    return undefined;
  }

  /** The policies a token links to that still exist. */
  livePolicies(token: AclTokenRecord): AclPolicyRecord[] {
    return token.policies.map((id) => this.store.aclPolicies.get(id)).filter((p): p is AclPolicyRecord => p !== undefined);
  }

  /** PUT /v1/acl/bootstrap: one management token, once (or again with a matching reset file). */
  bootstrap(secret?: string): AclTokenRecord {
    const done = this.store.aclBootstrapIndex;
    if (done !== 0) {
      const specified = this.resetIndexFromFile();
      if (specified === 0) throw new ConsulHttpError(403, `Permission denied: ACL bootstrap no longer allowed (reset index: ${done})`);
      if (specified !== done) throw serverError(`Invalid bootstrap reset index (specified ${specified}, reset index: ${done})`);
      rmSync(join(this.dataDir, BOOTSTRAP_RESET_FILE), { force: true });
    }
    if (secret !== undefined && secret !== '') this.checkNewId(secret, 'SecretID');
    const accessorId = randomUUID();
    return this.store.write((tx) => {
      const token = newToken(tx.index, {
        accessorId,
        secretId: secret !== undefined && secret !== '' ? secret : randomUUID(),
        description: 'Bootstrap Token (Global Management)',
        policies: [GLOBAL_MANAGEMENT_ID],
      });
      tx.put('acl-tokens', accessorId, token);
      this.setBootstrapIndex(tx, tx.index);
      this.logger.info('dev-consul: ACL bootstrap completed');
      return token;
    });
  }

  /** Creates (no accessor given, or `create`) or updates a token; 500 with Consul's message when refused. */
  writeToken(input: TokenInput, create: boolean): AclTokenRecord {
    const policies = this.policyLinks(input.policies);
    if (create) {
      if (input.accessorId !== undefined && input.accessorId !== '') this.checkNewId(input.accessorId, 'AccessorID');
      if (input.secretId !== undefined && input.secretId !== '') this.checkNewId(input.secretId, 'SecretID');
      const accessorId = input.accessorId || randomUUID();
      return this.store.write((tx) => {
        const token = newToken(tx.index, {
          accessorId,
          secretId: input.secretId || randomUUID(),
          description: input.description ?? '',
          policies,
          local: input.local ?? false,
        });
        tx.put('acl-tokens', accessorId, token);
        return token;
      });
    }
    const id = input.accessorId ?? '';
    if (!UUID.test(id)) throw serverError('AccessorID is not a valid UUID');
    const match = this.store.aclTokens.get(id);
    if (match === undefined) throw serverError(`Cannot find token ${JSON.stringify(id)}`);
    if (input.secretId !== undefined && input.secretId !== '' && input.secretId !== match.secretId) throw serverError("Changing a token's SecretID is not permitted");
    if (input.local !== undefined && input.local !== match.local) throw serverError(`Cannot toggle local mode of ${id}`);
    return this.store.write((tx) => {
      const token: AclTokenRecord = { ...match, description: input.description ?? '', policies, modifyIndex: tx.index };
      tx.put('acl-tokens', id, token);
      return token;
    });
  }

  /** DELETE /v1/acl/token/:id. */
  deleteToken(accessorId: string, requestSecret: string | undefined): void {
    if (!UUID.test(accessorId)) throw serverError('Accessor ID is missing or an invalid UUID');
    if (accessorId === ANONYMOUS_TOKEN_ID) throw serverError('Delete operation not permitted on the anonymous token');
    const token = this.store.aclTokens.get(accessorId);
    if (token === undefined) throw new ConsulHttpError(404, 'Cannot find token to delete');
    if (requestSecret !== undefined && token.secretId === requestSecret) throw serverError("Deletion of the request's authorization token is not permitted");
    this.store.write((tx) => tx.put('acl-tokens', accessorId, undefined));
  }

  /** Creates or updates a policy; its rules are parsed first (500 with Consul's message when they do not). */
  async writePolicy(input: PolicyInput): Promise<AclPolicyRecord> {
    if (input.name === '') throw serverError('Invalid Policy: no Name is set');
    if (!POLICY_NAME.test(input.name)) throw serverError("Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed");
    const nameMatch = this.policyByName(input.name);
    let existing: AclPolicyRecord | undefined;
    if (input.id === undefined || input.id === '') {
      if (nameMatch !== undefined) throw serverError(`Invalid Policy: A Policy with Name ${JSON.stringify(input.name)} already exists`);
    } else {
      if (!UUID.test(input.id)) throw serverError('Policy ID invalid UUID');
      existing = this.store.aclPolicies.get(input.id);
      if (existing === undefined) throw serverError(`cannot find policy ${input.id}`);
      if (existing.name !== input.name && nameMatch !== undefined) throw serverError(`Invalid Policy: A policy with name ${JSON.stringify(input.name)} already exists`);
      if (input.id === GLOBAL_MANAGEMENT_ID) {
        if (input.datacenters.length > 0) throw serverError('Changing the Datacenters of the builtin global-management policy is not permitted');
        if (input.rules !== existing.rules) throw serverError('Changing the Rules for the builtin global-management policy is not permitted');
      }
    }
    let rules: PolicyRules;
    try {
      rules = await parseRules(input.rules);
    } catch (err) {
      if (err instanceof RulesError) throw serverError(err.message);
      throw err;
    }
    const id = existing?.id ?? randomUUID();
    const record = this.store.write((tx): AclPolicyRecord => {
      const p: AclPolicyRecord = {
        id,
        name: input.name,
        description: input.description,
        rules: input.rules,
        datacenters: [...input.datacenters],
        createIndex: existing?.createIndex ?? tx.index,
        modifyIndex: tx.index,
      };
      tx.put('acl-policies', id, p);
      return p;
    });
    this.compiled.set(id, { modifyIndex: record.modifyIndex, rules });
    return record;
  }

  /** DELETE /v1/acl/policy/:id. */
  deletePolicy(id: string): void {
    if (id === GLOBAL_MANAGEMENT_ID) throw serverError('Delete operation not permitted on the builtin global-management policy');
    if (!this.store.aclPolicies.has(id)) throw new ConsulHttpError(404, 'Cannot find policy to delete');
    this.store.write((tx) => tx.put('acl-policies', id, undefined));
    this.compiled.delete(id);
  }

  /** Consul's policy hash stand-in: a digest of what the policy says (base64, as Consul shows its own). */
  policyHash(p: AclPolicyRecord): string {
    return createHash('sha256').update(JSON.stringify([p.name, p.description, p.rules, p.datacenters])).digest('base64');
  }

  tokenHash(t: AclTokenRecord): string {
    return createHash('sha256').update(JSON.stringify([t.description, t.policies, t.local])).digest('base64');
  }

  private policyLinks(links: TokenInput['policies']): string[] {
    const out: string[] = [];
    for (const link of links) {
      let id = link.id ?? '';
      if (id === '') {
        const p = this.policyByName(link.name ?? '');
        if (p === undefined) throw serverError(`No such ACL policy with name ${JSON.stringify(link.name ?? '')}`);
        id = p.id;
      } else if (!this.store.aclPolicies.has(id)) throw serverError(`No such ACL policy with ID ${JSON.stringify(id)}`);
      if (!out.includes(id)) out.push(id);
    }
    return out;
  }

  private checkNewId(id: string, field: 'AccessorID' | 'SecretID'): void {
    if (id.startsWith(RESERVED_PREFIX)) throw serverError(`Invalid Token: ${field} - UUIDs with the prefix "${RESERVED_PREFIX}" are reserved`);
    if (!UUID.test(id)) throw serverError(`Invalid Token: ${field} - not a valid UUID`);
    for (const t of this.store.aclTokens.values()) if (t.accessorId === id || t.secretId === id) throw serverError(`Invalid Token: ${field} is already in use`);
  }

  private rulesOf(p: AclPolicyRecord): PolicyRules {
    const c = this.compiled.get(p.id);
    if (c === undefined) throw serverError(`weft dev agent: policy ${p.name} is not compiled`);
    return c.rules;
  }

  private async compile(p: AclPolicyRecord): Promise<void> {
    if (p.id === GLOBAL_MANAGEMENT_ID) {
      this.compiled.set(p.id, { modifyIndex: p.modifyIndex, rules: { segments: { agent: [], event: [], key: [], node: [], query: [], service: [], session: [] }, single: {} } });
      return;
    }
    try {
      this.compiled.set(p.id, { modifyIndex: p.modifyIndex, rules: await parseRules(p.rules) });
    } catch (err) {
      // A stored policy that no longer parses grants nothing rather than stopping the agent.
      this.logger.error({ err, policy: p.name }, 'dev-consul: an ACL policy in the state does not parse; it grants nothing');
      this.compiled.set(p.id, { modifyIndex: p.modifyIndex, rules: { segments: { agent: [], event: [], key: [], node: [], query: [], service: [], session: [] }, single: {} } });
    }
  }

  private setBootstrapIndex(tx: { onRollback(fn: () => void): void }, index: number): void {
    const before = this.store.aclBootstrapIndex;
    tx.onRollback(() => {
      this.store.aclBootstrapIndex = before;
    });
    this.store.aclBootstrapIndex = index;
  }

  private resetIndexFromFile(): number {
    try {
      const m = /^\s*(\d+)/.exec(readFileSync(join(this.dataDir, BOOTSTRAP_RESET_FILE), 'utf8'));
      return m === null ? 0 : Number(m[1]);
    } catch {
      return 0;
    }
  }
}

function newToken(
  index: number,
  t: { accessorId: string; secretId: string; description: string; policies?: readonly string[]; local?: boolean },
): AclTokenRecord {
  return {
    accessorId: t.accessorId,
    secretId: t.secretId,
    description: t.description,
    policies: [...(t.policies ?? [])],
    local: t.local ?? false,
    createTime: new Date().toISOString(),
    createIndex: index,
    modifyIndex: index,
  };
}

function serverError(message: string): ConsulHttpError {
  return new ConsulHttpError(500, message);
}
