/**
 * /v1/acl/*: bootstrap, policies and tokens, as Consul's ACL HTTP API answers
 * them (agent/acl_endpoint.go): with ACLs off every endpoint is 401 `ACL
 * support disabled`; reading needs acl:read (token SecretIDs are shown as
 * `<hidden>` without acl:write), writing needs acl:write; token/self needs
 * only the token itself. Roles, auth methods, binding rules, service and node
 * identities and expiring tokens are not implemented: a body asking for them
 * is refused with 400 rather than half-applied.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authzOf, requestToken } from '../acl/gate.js';
import type { AclSystem, PolicyInput, TokenInput } from '../acl/system.js';
import { ConsulHttpError } from '../http-error.js';
import { type JsonObject, parseJson } from '../json-body.js';
import type { AclPolicyRecord, AclTokenRecord } from '../state/types.js';
import { queryOf, type RouteContext, sendJson, setQueryMeta } from './common.js';

/** What Consul shows instead of a SecretID to a token without acl:write. */
const REDACTED = '<hidden>';

/** Registers the ACL routes. */
export function aclRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const system = (): AclSystem => {
    if (ctx.acl === undefined || !ctx.acl.enabled) throw new ConsulHttpError(401, 'ACL support disabled');
    return ctx.acl;
  };
  const policyJson = (p: AclPolicyRecord, stub = false): Record<string, unknown> => ({
    ID: p.id,
    Name: p.name,
    Description: p.description,
    ...(stub ? {} : { Rules: p.rules }),
    Datacenters: p.datacenters.length === 0 ? null : [...p.datacenters],
    Hash: system().policyHash(p),
    CreateIndex: p.createIndex,
    ModifyIndex: p.modifyIndex,
  });
  const tokenJson = (t: AclTokenRecord, showSecret: boolean, stub = false): Record<string, unknown> => {
    const links = system()
      .livePolicies(t)
      .map((p) => ({ ID: p.id, Name: p.name }));
    return {
      AccessorID: t.accessorId,
      SecretID: showSecret ? t.secretId : REDACTED,
      Description: t.description,
      ...(links.length === 0 ? {} : { Policies: links }),
      Local: t.local,
      CreateTime: t.createTime,
      Hash: system().tokenHash(t),
      CreateIndex: t.createIndex,
      ModifyIndex: t.modifyIndex,
      ...(stub ? { Legacy: false } : {}),
    };
  };
  const meta = (req: FastifyRequest, reply: FastifyReply, table: 'acl-tokens' | 'acl-policies'): void => {
    setQueryMeta(reply, ctx.store.maxIndex(table), queryOf(req));
  };

  app.put('/v1/acl/bootstrap', (req, reply) => {
    const acl = system();
    const body = parseObject(req.body, 'Request decoding failed');
    const token = acl.bootstrap(str(body, 'BootstrapSecret', 'Request decoding failed'));
    return sendJson(reply, { ID: token.secretId, ...tokenJson(token, true) });
  });

  // Policies.
  app.get('/v1/acl/policies', (req, reply) => {
    system();
    authzOf(ctx, req).need('acl', 'read');
    meta(req, reply, 'acl-policies');
    return sendJson(reply, sortBy([...ctx.store.aclPolicies.values()], (p) => p.id).map((p) => policyJson(p, true)));
  });
  const readPolicy = (req: FastifyRequest, reply: FastifyReply, p: AclPolicyRecord | undefined): FastifyReply => {
    authzOf(ctx, req).need('acl', 'read');
    if (p === undefined) throw new ConsulHttpError(404, 'Requested policy does not exist: ACL not found');
    meta(req, reply, 'acl-policies');
    return sendJson(reply, policyJson(p));
  };
  app.get('/v1/acl/policy/:id', (req, reply) => {
    system();
    return readPolicy(req, reply, ctx.store.aclPolicies.get(pathParam(req, 'id')));
  });
  app.get('/v1/acl/policy/name/:name', (req, reply) => {
    const acl = system();
    return readPolicy(req, reply, acl.policyByName(pathParam(req, 'name')));
  });
  const writePolicy = async (req: FastifyRequest, reply: FastifyReply, urlId: string | undefined): Promise<FastifyReply> => {
    const acl = system();
    const body = parseObject(req.body, 'Policy decoding failed');
    const input = policyInput(body);
    if (urlId === undefined && input.id !== undefined && input.id !== '') throw new ConsulHttpError(400, 'Cannot specify the ID when creating a new policy');
    if (urlId !== undefined) {
      if (input.id !== undefined && input.id !== '' && input.id !== urlId) throw new ConsulHttpError(400, 'Policy ID in URL and payload do not match');
      input.id = urlId;
    }
    authzOf(ctx, req).need('acl', 'write');
    return sendJson(reply, policyJson(await acl.writePolicy(input)));
  };
  app.put('/v1/acl/policy', (req, reply) => writePolicy(req, reply, undefined));
  app.put('/v1/acl/policy/:id', (req, reply) => writePolicy(req, reply, pathParam(req, 'id')));
  app.delete('/v1/acl/policy/:id', (req, reply) => {
    const acl = system();
    authzOf(ctx, req).need('acl', 'write');
    acl.deletePolicy(pathParam(req, 'id'));
    return sendJson(reply, true);
  });

  // Tokens.
  app.get('/v1/acl/tokens', (req, reply) => {
    system();
    const a = authzOf(ctx, req);
    a.need('acl', 'read');
    const policy = (req.query as Record<string, string | undefined>)['policy'];
    const tokens = sortBy([...ctx.store.aclTokens.values()], (t) => t.accessorId).filter((t) => policy === undefined || policy === '' || t.policies.includes(policy));
    meta(req, reply, 'acl-tokens');
    return sendJson(reply, tokens.map((t) => tokenJson(t, a.allows('acl', 'write'), true)));
  });
  app.get('/v1/acl/token/self', (req, reply) => {
    const acl = system();
    const secret = requestToken(req) ?? acl.defaultToken ?? '';
    const token = secret === '' ? undefined : acl.bySecret(secret);
    if (token === undefined) throw new ConsulHttpError(404, 'Supplied token does not exist');
    meta(req, reply, 'acl-tokens');
    return sendJson(reply, tokenJson(token, true));
  });
  app.get('/v1/acl/token/:id', (req, reply) => {
    system();
    const a = authzOf(ctx, req);
    a.need('acl', 'read');
    const token = ctx.store.aclTokens.get(pathParam(req, 'id'));
    if (token === undefined) throw new ConsulHttpError(404, 'Requested token does not exist: ACL not found');
    meta(req, reply, 'acl-tokens');
    return sendJson(reply, tokenJson(token, a.allows('acl', 'write')));
  });
  const writeToken = (req: FastifyRequest, reply: FastifyReply, urlId: string | undefined): FastifyReply => {
    const acl = system();
    const body = parseObject(req.body, 'Token decoding failed');
    const input = tokenInput(body);
    if (urlId !== undefined) {
      if (input.accessorId === undefined || input.accessorId === '') input.accessorId = urlId;
      if (input.accessorId !== urlId) throw new ConsulHttpError(400, 'Token Accessor ID in URL and payload do not match');
    }
    authzOf(ctx, req).need('acl', 'write');
    return sendJson(reply, tokenJson(acl.writeToken(input, urlId === undefined), true));
  };
  app.put('/v1/acl/token', (req, reply) => writeToken(req, reply, undefined));
  app.put('/v1/acl/token/:id', (req, reply) => writeToken(req, reply, pathParam(req, 'id')));
  app.delete('/v1/acl/token/:id', (req, reply) => {
    const acl = system();
    authzOf(ctx, req).need('acl', 'write');
    acl.deleteToken(pathParam(req, 'id'), requestToken(req));
    return sendJson(reply, true);
  });
}

/** Fields the dev agent does not implement: refused rather than ignored (an ignored expiry would be a token that never expires). */
const UNSUPPORTED_TOKEN_FIELDS = ['Roles', 'ServiceIdentities', 'NodeIdentities', 'TemplatedPolicies', 'ExpirationTTL', 'ExpirationTime', 'AuthMethod', 'Rules'];

function tokenInput(body: JsonObject): TokenInput {
  for (const f of UNSUPPORTED_TOKEN_FIELDS) {
    const v = body[f];
    if (v !== undefined && v !== null && v !== '' && v !== 0 && !(Array.isArray(v) && v.length === 0)) {
      throw new ConsulHttpError(400, `weft dev agent: token field ${f} is not supported (policies only)`);
    }
  }
  const rawPolicies = body['Policies'];
  if (rawPolicies !== undefined && rawPolicies !== null && !Array.isArray(rawPolicies)) throw decodeError('Token decoding failed', 'Policies', 'a list of {ID} or {Name}');
  const policies = ((rawPolicies as unknown[] | null | undefined) ?? []).map((l) => {
    if (l === null || typeof l !== 'object' || Array.isArray(l)) throw decodeError('Token decoding failed', 'Policies', 'a list of {ID} or {Name}');
    const link = l as JsonObject;
    return { id: str(link, 'ID', 'Token decoding failed') ?? '', name: str(link, 'Name', 'Token decoding failed') ?? '' };
  });
  const local = body['Local'];
  if (local !== undefined && local !== null && typeof local !== 'boolean') throw decodeError('Token decoding failed', 'Local', 'bool');
  const out: TokenInput = { policies };
  const accessorId = str(body, 'AccessorID', 'Token decoding failed');
  const secretId = str(body, 'SecretID', 'Token decoding failed');
  const description = str(body, 'Description', 'Token decoding failed');
  if (accessorId !== undefined) out.accessorId = accessorId;
  if (secretId !== undefined) out.secretId = secretId;
  if (description !== undefined) out.description = description;
  if (typeof local === 'boolean') out.local = local;
  return out;
}

function policyInput(body: JsonObject): PolicyInput {
  const dcs = body['Datacenters'];
  if (dcs !== undefined && dcs !== null && (!Array.isArray(dcs) || dcs.some((d) => typeof d !== 'string'))) throw decodeError('Policy decoding failed', 'Datacenters', '[]string');
  const id = str(body, 'ID', 'Policy decoding failed');
  return {
    ...(id === undefined ? {} : { id }),
    name: str(body, 'Name', 'Policy decoding failed') ?? '',
    description: str(body, 'Description', 'Policy decoding failed') ?? '',
    rules: str(body, 'Rules', 'Policy decoding failed') ?? '',
    datacenters: (dcs as string[] | null | undefined) ?? [],
  };
}

function parseObject(raw: unknown, what: string): JsonObject {
  let v: unknown;
  try {
    v = parseJson(raw);
  } catch (err) {
    throw new ConsulHttpError(400, `${what}: ${(err as Error).message.replace(/^Request decode failed: /, '')}`);
  }
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new ConsulHttpError(400, `${what}: json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v} into a JSON object`);
  return v as JsonObject;
}

function str(o: JsonObject, field: string, what: string): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw decodeError(what, field, 'string');
  return v;
}

function decodeError(what: string, field: string, want: string): ConsulHttpError {
  return new ConsulHttpError(400, `${what}: json: cannot unmarshal into field ${field} (want ${want})`);
}

function sortBy<T>(list: T[], key: (x: T) => string): T[] {
  return list.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function pathParam(req: FastifyRequest, name: string): string {
  return (req.params as Record<string, string>)[name] ?? '';
}
