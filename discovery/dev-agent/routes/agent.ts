/**
 * /v1/agent/*: the local agent's view — self, members, its services and
 * checks, registration, TTL updates and maintenance mode. Agent endpoints
 * answer from local state, so (as in Consul) they carry no X-Consul-Index,
 * except service/:id, which blocks on a content hash.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authzOf } from '../acl/gate.js';
import { parseBlockingParams, blockingQuery } from '../blocking.js';
import { FILTERED, HEALTH_CHECK, NODE_SERVICE, requestFilter } from '../filter/index.js';
import { badRequest, notFound, serverError } from '../http-error.js';
import { parseJsonObject, str } from '../json-body.js';
import { CHECK_STATUSES, type CheckStatus } from '../state/types.js';
import { agentServiceJson, checkJson } from '../state/views.js';
import { boolParam, param, queryOf, type RouteContext, sendEmpty, sendJson } from './common.js';

const VERSION = '1.17.0';

/** Registers the agent routes. */
export function agentRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store, agent } = ctx;

  app.get('/v1/agent/self', (_req, reply) => {
    const node = store.nodes.get(ctx.nodeName);
    return sendJson(reply, {
      Config: {
        Datacenter: ctx.datacenter,
        PrimaryDatacenter: ctx.datacenter,
        NodeName: ctx.nodeName,
        NodeID: node?.id ?? '',
        Revision: 'weft-dev',
        Server: true,
        Version: VERSION,
        BuildDate: '',
      },
      Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-5 },
      Member: member(ctx),
      Meta: node?.meta ?? { 'consul-network-segment': '' },
      Stats: { agent: { checks: String(store.checksOfNode(ctx.nodeName).length) }, consul: { server: 'true', leader: 'true' } },
      DebugConfig: { DevMode: true, DataDir: '', Weft: true },
    });
  });

  app.get('/v1/agent/members', (req, reply) => {
    const query = queryOf(req);
    const wan = (param(query, 'wan') ?? '') !== '';
    const segment = param(query, 'segment') ?? '';
    if (wan && segment !== '' && segment !== '_all') throw badRequest('Cannot provide a segment with wan=true');
    if (!wan && segment !== '' && segment !== '_all') throw serverError('Network segments are not supported in this version of Consul');
    // Members are filtered by node:read (the one member is this node).
    if (!authzOf(ctx, req).allows('node', 'read', ctx.nodeName)) return sendJson(reply, []);
    // The WAN pool names a server <node>.<datacenter> and gossips on port 8302.
    return sendJson(reply, [wan ? { ...member(ctx), Name: `${ctx.nodeName}.${ctx.datacenter}`, Port: 8302 } : member(ctx)]);
  });

  app.get('/v1/agent/services', FILTERED, (req, reply) => {
    const filter = requestFilter(req, NODE_SERVICE);
    const acl = authzOf(ctx, req);
    const out: Record<string, unknown> = {};
    for (const s of sortById(store.servicesOfNode(ctx.nodeName))) {
      if (!s.local || !acl.allows('service', 'read', s.name)) continue;
      const json = agentServiceJson(s, ctx.datacenter);
      if (filter === undefined || filter(json)) out[s.id] = json;
    }
    return sendJson(reply, out);
  });

  app.get('/v1/agent/service/:id', async (req, reply) => {
    const id = idOf(req);
    const query = queryOf(req);
    const hash = param(query, 'hash');
    const run = (): { index: number; value: { json: Record<string, unknown>; hash: string } | undefined } => {
      const s = store.service(ctx.nodeName, id);
      if (s === undefined || !s.local) return { index: 0, value: undefined };
      const json = agentServiceJson(s, ctx.datacenter);
      const h = createHash('sha256').update(JSON.stringify(json)).digest('hex').slice(0, 16);
      return { index: s.modifyIndex, value: { json: { ...json, ContentHash: h }, hash: h } };
    };
    // Consul blocks this endpoint on ?hash (the ContentHash of the last answer), not on ?index.
    const params = hash === undefined ? { minIndex: 0, waitMs: 0 } : parseBlockingParams({ ...query, index: '1' });
    const abort = new AbortController();
    reply.raw.once('close', () => abort.abort());
    const result = await blockingQuery(ctx.store, ['services'], params, run, {
      signal: abort.signal,
      isFresh: (r) => hash === undefined || r.value === undefined || r.value.hash !== hash,
    });
    if (result.value === undefined) throw notFound(`unknown service ID: ${id}`);
    reply.header('X-Consul-ContentHash', result.value.hash);
    return sendJson(reply, result.value.json);
  });

  app.put('/v1/agent/service/register', (req, reply) => {
    const body = parseJsonObject(req.body);
    agent.registerService(body, boolParam(queryOf(req), 'replace-existing-checks') === true);
    return sendEmpty(reply);
  });

  app.put('/v1/agent/service/deregister/:id', (req, reply) => {
    agent.deregisterService(idOf(req));
    return sendEmpty(reply);
  });

  app.put('/v1/agent/service/maintenance/:id', (req, reply) => {
    const query = queryOf(req);
    agent.serviceMaintenance(idOf(req), enableParam(query), param(query, 'reason') ?? '');
    return sendEmpty(reply);
  });

  app.put('/v1/agent/maintenance', (req, reply) => {
    const query = queryOf(req);
    agent.nodeMaintenance(enableParam(query), param(query, 'reason') ?? '');
    return sendEmpty(reply);
  });

  app.put('/v1/agent/reload', async (_req, reply) => {
    await ctx.lifecycle?.reload(); // without a lifecycle (no config to re-read) reload does nothing
    return sendEmpty(reply);
  });

  app.get('/v1/agent/checks', FILTERED, (req, reply) => {
    const filter = requestFilter(req, HEALTH_CHECK);
    const acl = authzOf(ctx, req);
    const out: Record<string, unknown> = {};
    for (const c of store.checksOfNode(ctx.nodeName)) {
      if (!c.local) continue;
      // A service check needs service:read on its service, a node check node:read.
      if (c.serviceName !== '' ? !acl.allows('service', 'read', c.serviceName) : !acl.allows('node', 'read', c.node)) continue;
      const json = checkJson(store, c);
      if (filter === undefined || filter(json)) out[c.checkId] = json;
    }
    return sendJson(reply, out);
  });

  app.put('/v1/agent/check/register', (req, reply) => {
    agent.registerCheck(parseJsonObject(req.body));
    return sendEmpty(reply);
  });

  app.put('/v1/agent/check/deregister/:id', (req, reply) => {
    agent.deregisterCheck(idOf(req));
    return sendEmpty(reply);
  });

  const ttlVerbs: ReadonlyArray<[string, CheckStatus]> = [
    ['pass', 'passing'],
    ['warn', 'warning'],
    ['fail', 'critical'],
  ];
  for (const [verb, status] of ttlVerbs) {
    app.put(`/v1/agent/check/${verb}/:id`, (req, reply) => {
      agent.updateTtl(idOf(req), status, param(queryOf(req), 'note') ?? '');
      return sendEmpty(reply);
    });
  }

  app.put('/v1/agent/check/update/:id', (req, reply) => {
    const body = parseJsonObject(req.body);
    const status = str(body, 'Status');
    if (!CHECK_STATUSES.includes(status as CheckStatus)) throw badRequest(`Invalid check status: '${status}'`);
    agent.updateTtl(idOf(req), status as CheckStatus, str(body, 'Output'));
    return sendEmpty(reply);
  });
}

function member(ctx: RouteContext): Record<string, unknown> {
  return {
    Name: ctx.nodeName,
    Addr: ctx.advertiseAddress,
    Port: 8301,
    Tags: { role: 'consul', dc: ctx.datacenter, port: '8300', bootstrap: '1', build: `${VERSION}:weft`, vsn: '2', raft_vsn: '3' },
    Status: 1,
    ProtocolMin: 1,
    ProtocolMax: 5,
    ProtocolCur: 2,
    DelegateMin: 2,
    DelegateMax: 5,
    DelegateCur: 4,
  };
}

function idOf(req: FastifyRequest): string {
  return (req.params as Record<string, string>)['id'] ?? '';
}

function enableParam(query: ReturnType<typeof queryOf>): boolean {
  const v = param(query, 'enable');
  if (v === undefined || v === '') throw badRequest('Missing value for enable');
  return boolParam(query, 'enable')!;
}

function sortById<T extends { id: string }>(list: T[]): T[] {
  return list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
