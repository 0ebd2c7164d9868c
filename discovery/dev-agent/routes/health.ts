/**
 * /v1/health/*: service instances with their checks (node checks included,
 * as in Consul, so `passing` also requires serfHealth), checks by service,
 * node or state. All blocking; health/service and health/checks use the
 * per-service index so watchers of one service sleep through others' churn.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
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
    return sendBlocking(ctx, req, reply, ['nodes', 'services', 'checks'], () => {
      const entries: unknown[] = [];
      for (const s of instancesOf(store, name, tags)) {
        const node = store.nodes.get(s.node);
        if (node === undefined || !nodeMatches(node, meta)) continue;
        const checks = checksOfInstance(store, s);
        if (passing && checks.some((c) => c.status !== 'passing')) continue;
        entries.push({ Node: nodeJson(node), Service: nodeServiceJson(s), Checks: checks.map((c) => checkJson(store, c)) });
      }
      return { index: serviceIndex(store, name), value: { json: applyFilter(entries, filter) } };
    });
  });

  app.get('/v1/health/checks/:service', FILTERED, (req, reply) => {
    const name = pathParam(req, 'service');
    const filter = requestFilter(req, HEALTH_CHECK);
    return sendBlocking(ctx, req, reply, ['nodes', 'services', 'checks'], () => {
      const checks = [...store.checks.values()].filter((c) => c.serviceName === name).sort(byNodeThenId);
      return { index: serviceIndex(store, name), value: { json: applyFilter(checks.map((c) => checkJson(store, c)), filter) } };
    });
  });

  app.get('/v1/health/node/:node', FILTERED, (req, reply) => {
    const node = pathParam(req, 'node');
    const filter = requestFilter(req, HEALTH_CHECK);
    return sendBlocking(ctx, req, reply, ['checks'], () => ({
      index: store.maxIndex('checks'),
      value: { json: applyFilter(store.checksOfNode(node).map((c) => checkJson(store, c)), filter) },
    }));
  });

  app.get('/v1/health/state/:state', FILTERED, (req, reply) => {
    const state = pathParam(req, 'state');
    const filter = requestFilter(req, HEALTH_CHECK);
    return sendBlocking(ctx, req, reply, ['checks'], () => {
      const checks = [...store.checks.values()].filter((c) => state === 'any' || c.status === state).sort(byNodeThenId);
      return { index: store.maxIndex('checks'), value: { json: applyFilter(checks.map((c) => checkJson(store, c)), filter) } };
    });
  });
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
  return store.checksOfNode(s.node).filter((c) => c.serviceId === '' || c.serviceId === s.id);
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
