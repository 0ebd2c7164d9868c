/**
 * /v1/health/*: service instances with their checks (node checks included,
 * as in Consul, so `passing` also requires serfHealth), checks by service,
 * node or state. All blocking; health/service and health/checks use the
 * per-service index so watchers of one service sleep through others' churn.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authorizer } from '../acl/authorizer.js';
import { authzOf } from '../acl/gate.js';
import { applyFilter, CHECK_SERVICE_NODE, FILTERED, HEALTH_CHECK, requestFilter } from '../filter/index.js';
import type { Store } from '../state/store.js';
import type { CheckRecord, ServiceRecord } from '../state/types.js';
import { checkJson, nodeJson, nodeServiceJson } from '../state/views.js';
import { boolParam, params, queryOf, type RouteContext, sendBlocking } from './common.js';
import { nodeMatches, nodeMetaFilter } from './node-meta.js';

/** Registers the health routes. */
export function healthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store } = ctx;

  app.get('/v1/health/service/:service', FILTERED, (req, reply) => {
    const name = pathParam(req, 'service');
    const query = queryOf(req);
    const filter = requestFilter(req, CHECK_SERVICE_NODE);
    const tags = params(query, 'tag');
    const passing = boolParam(query, 'passing') === true; // ?near is accepted and ignored: one node
    const meta = nodeMetaFilter(query);
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['nodes', 'services', 'checks'], () => {
      const entries: unknown[] = [];
      let filtered = false;
      for (const s of instancesOf(store, name, tags)) {
        const node = store.nodes.get(s.node);
        if (node === undefined || !nodeMatches(node, meta)) continue;
        // Consul keeps an instance only when both its node and its service may be read.
        if (!acl.allows('node', 'read', s.node) || !acl.allows('service', 'read', s.name)) {
          filtered = true;
          continue;
        }
        const checks = checksOfInstance(store, s);
        if (passing && checks.some((c) => c.status !== 'passing')) continue;
        entries.push({ Node: nodeJson(node), Service: nodeServiceJson(s), Checks: checks.map((c) => checkJson(store, c)) });
      }
      return { index: serviceIndex(store, name), value: { json: applyFilter(entries, filter), filtered } };
    });
  });

  app.get('/v1/health/checks/:service', FILTERED, (req, reply) => {
    const name = pathParam(req, 'service');
    const filter = requestFilter(req, HEALTH_CHECK);
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['nodes', 'services', 'checks'], () => {
      const { checks, filtered } = readableChecks(acl, [...store.checks.values()].filter((c) => c.serviceName === name).sort(byNodeThenId));
      return { index: serviceIndex(store, name), value: { json: applyFilter(checks.map((c) => checkJson(store, c)), filter), filtered } };
    });
  });

  app.get('/v1/health/node/:node', FILTERED, (req, reply) => {
    const node = pathParam(req, 'node');
    const filter = requestFilter(req, HEALTH_CHECK);
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['checks'], () => {
      const { checks, filtered } = readableChecks(acl, store.checksOfNode(node));
      return { index: store.maxIndex('checks'), value: { json: applyFilter(checks.map((c) => checkJson(store, c)), filter), filtered } };
    });
  });

  app.get('/v1/health/state/:state', FILTERED, (req, reply) => {
    const state = pathParam(req, 'state');
    const filter = requestFilter(req, HEALTH_CHECK);
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['checks'], () => {
      const { checks, filtered } = readableChecks(acl, [...store.checks.values()].filter((c) => state === 'any' || c.status === state).sort(byNodeThenId));
      return { index: store.maxIndex('checks'), value: { json: applyFilter(checks.map((c) => checkJson(store, c)), filter), filtered } };
    });
  });
}

/** Checks the token may read: node:read on the check's node and, for a service check, service:read on its service (Consul's filterHealthChecks). */
export function readableChecks(acl: Authorizer, all: readonly CheckRecord[]): { checks: CheckRecord[]; filtered: boolean } {
  if (acl.isManagement) return { checks: [...all], filtered: false };
  const checks = all.filter((c) => acl.allows('node', 'read', c.node) && (c.serviceName === '' || acl.allows('service', 'read', c.serviceName)));
  return { checks, filtered: checks.length !== all.length };
}

/** Instances of a service carrying every tag in `tags`, by node then ID. */
export function instancesOf(store: Store, name: string, tags: readonly string[]): ServiceRecord[] {
  return [...store.services.values()]
    .filter((s) => s.name === name && tags.every((t) => s.tags.includes(t)))
    .sort((a, b) => (a.node === b.node ? cmp(a.id, b.id) : cmp(a.node, b.node)));
}

/**
 * The index of a service-scoped query: the service's own index (it also
 * records the last deregistration), else the catalog tables' max.
 */
export function serviceIndex(store: Store, name: string): number {
  return store.serviceIndex.get(name) ?? store.maxIndex('nodes', 'services', 'checks');
}

function checksOfInstance(store: Store, s: ServiceRecord): CheckRecord[] {
  return store.checksOfInstance(s.node, s.id);
}

function pathParam(req: FastifyRequest, name: string): string {
  return (req.params as Record<string, string>)[name] ?? '';
}

function byNodeThenId(a: CheckRecord, b: CheckRecord): number {
  return a.node === b.node ? cmp(a.checkId, b.checkId) : cmp(a.node, b.node);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
