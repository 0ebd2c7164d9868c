/**
 * /v1/catalog/*: datacenters, nodes, services, instances of a service, a
 * node's services (all blocking), and register/deregister of entries that no
 * agent runs (external nodes and services, like consul-esm would feed).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authzOf } from '../acl/gate.js';
import { FILTERED, NODE, NODE_SERVICE, requestFilter, SERVICE_NODE } from '../filter/index.js';
import { badRequest, serverError } from '../http-error.js';
import { type JsonObject, obj, objList, parseJsonObject, str, strList, strMap, uint } from '../json-body.js';
import type { WriteTx } from '../state/store.js';
import { CHECK_STATUSES, type CheckStatus, nodeKey } from '../state/types.js';
import { catalogServiceJson, nodeJson, nodeServiceJson } from '../state/views.js';
import { params, queryOf, type RouteContext, sendBlocking, sendJson } from './common.js';
import { instancesOf, serviceIndex } from './health.js';
import { nodeMatches, nodeMetaFilter } from './node-meta.js';

/** Registers the catalog routes. */
export function catalogRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store } = ctx;

  app.get('/v1/catalog/datacenters', (_req, reply) => sendJson(reply, [ctx.datacenter]));

  app.get('/v1/catalog/nodes', FILTERED, (req, reply) => {
    const meta = nodeMetaFilter(queryOf(req));
    const filter = requestFilter(req, NODE);
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['nodes'], () => {
      const all = [...store.nodes.values()];
      const readable = all.filter((n) => acl.allows('node', 'read', n.node));
      return {
        index: store.maxIndex('nodes'),
        value: {
          json: readable
            .filter((n) => nodeMatches(n, meta))
            .sort((a, b) => (a.node < b.node ? -1 : 1))
            .map(nodeJson)
            .filter((json) => filter === undefined || filter(json)),
          filtered: readable.length !== all.length,
        },
      };
    });
  });

  app.get('/v1/catalog/services', FILTERED, (req, reply) => {
    const meta = nodeMetaFilter(queryOf(req));
    // Consul filters the service instances (ServiceNode rows), then lists the names and tags of those left.
    const filter = requestFilter(req, SERVICE_NODE);
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['nodes', 'services'], () => {
      const out: Record<string, string[]> = {};
      let filtered = false;
      for (const s of [...store.services.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        if (!acl.allows('service', 'read', s.name)) {
          filtered = true;
          continue;
        }
        if (!nodeMatches(store.nodes.get(s.node), meta)) continue;
        if (filter !== undefined) {
          const n = store.nodes.get(s.node);
          if (n === undefined || !filter(catalogServiceJson(s, n))) continue;
        }
        const tags = out[s.name] ?? [];
        out[s.name] = tags;
        for (const t of s.tags) if (!tags.includes(t)) tags.push(t);
      }
      return { index: store.maxIndex('nodes', 'services'), value: { json: out, filtered } };
    });
  });

  app.get('/v1/catalog/service/:service', FILTERED, (req, reply) => {
    const name = pathParam(req, 'service');
    const tags = params(queryOf(req), 'tag');
    const meta = nodeMetaFilter(queryOf(req));
    const filter = requestFilter(req, SERVICE_NODE);
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['nodes', 'services'], () => {
      const rows: unknown[] = [];
      let filtered = false;
      for (const s of instancesOf(store, name, tags)) {
        const n = store.nodes.get(s.node);
        if (n === undefined || !nodeMatches(n, meta)) continue;
        // Consul keeps an instance only when both its node and its service may be read.
        if (!acl.allows('node', 'read', s.node) || !acl.allows('service', 'read', s.name)) {
          filtered = true;
          continue;
        }
        const row = catalogServiceJson(s, n);
        if (filter === undefined || filter(row)) rows.push(row);
      }
      return { index: serviceIndex(store, name), value: { json: rows, filtered } };
    });
  });

  // The filter runs on the node's services (the values of Services), not on the node.
  app.get('/v1/catalog/node/:node', FILTERED, (req, reply) => {
    const name = pathParam(req, 'node');
    const filter = requestFilter(req, NODE_SERVICE);
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['nodes', 'services'], () => {
      const n = store.nodes.get(name);
      if (n === undefined) return { index: store.maxIndex('nodes', 'services'), value: { json: null } };
      // A node the token may not read answers as an unknown one; its services are filtered by service:read.
      if (!acl.allows('node', 'read', name)) return { index: store.maxIndex('nodes', 'services'), value: { json: null, filtered: true } };
      const services: Record<string, unknown> = {};
      let filtered = false;
      for (const s of store.servicesOfNode(name)) {
        if (!acl.allows('service', 'read', s.name)) {
          filtered = true;
          continue;
        }
        const json = nodeServiceJson(s);
        if (filter === undefined || filter(json)) services[s.id] = json;
      }
      return { index: store.maxIndex('nodes', 'services'), value: { json: { Node: nodeJson(n), Services: services }, filtered } };
    });
  });

  // Consul 1.7+: the same as node/:node with Services as a list by ID; an unknown node is {Node: null, Services: []}.
  app.get('/v1/catalog/node-services/:node', FILTERED, (req, reply) => {
    const name = pathParam(req, 'node');
    const filter = requestFilter(req, NODE_SERVICE);
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['nodes', 'services'], () => {
      const known = store.nodes.get(name);
      const n = known !== undefined && acl.allows('node', 'read', name) ? known : undefined;
      const all = n === undefined ? [] : store.servicesOfNode(name).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const services = all.filter((s) => acl.allows('service', 'read', s.name));
      return {
        index: store.maxIndex('nodes', 'services'),
        value: {
          json: {
            Node: n === undefined ? null : nodeJson(n),
            Services: services.map(nodeServiceJson).filter((json) => filter === undefined || filter(json)),
          },
          filtered: (known !== undefined && n === undefined) || services.length !== all.length,
        },
      };
    });
  });

  app.put('/v1/catalog/register', (req, reply) => {
    const body = parseJsonObject(req.body);
    const node = str(body, 'Node');
    if (node === '') throw badRequest('Must provide node');
    const address = str(body, 'Address');
    const service = obj(body, 'Service');
    const checks = [...(obj(body, 'Check') === undefined ? [] : [obj(body, 'Check')!]), ...objList(body, 'Checks')];
    if (service !== undefined && str(service, 'Service') === '') throw badRequest('Must provide service name with ID');
    store.write((tx) => {
      const before = store.nodes.get(node);
      if (before === undefined && address === '') throw badRequest('Must provide address if SkipNodeUpdate is not set');
      if (body['SkipNodeUpdate'] !== true || before === undefined) {
        tx.put('nodes', node, {
          id: str(body, 'ID') || before?.id || '',
          node,
          address: address || before!.address,
          datacenter: ctx.datacenter,
          taggedAddresses: strMap(body, 'TaggedAddresses'),
          meta: strMap(body, 'NodeMeta'),
          createIndex: before?.createIndex ?? tx.index,
          modifyIndex: tx.index,
        });
      }
      if (service !== undefined) putService(tx, ctx, node, service);
      for (const c of checks) putCheck(tx, ctx, node, c, service);
    });
    return sendJson(reply, true);
  });

  app.put('/v1/catalog/deregister', (req, reply) => {
    const body = parseJsonObject(req.body);
    const node = str(body, 'Node');
    if (node === '') throw badRequest('Must provide node');
    const serviceId = str(body, 'ServiceID');
    const checkId = str(body, 'CheckID');
    // Checks this agent runs stop running when the catalog drops them.
    const dropCheck = (tx: WriteTx, id: string): void => {
      if (node === ctx.nodeName) ctx.agent.runner.stop(id);
      tx.put('checks', nodeKey(node, id), undefined);
    };
    store.write((tx) => {
      if (serviceId !== '') {
        for (const c of store.checksOfNode(node)) if (c.serviceId === serviceId) dropCheck(tx, c.checkId);
        tx.put('services', nodeKey(node, serviceId), undefined);
      }
      if (checkId !== '') dropCheck(tx, checkId);
      if (serviceId === '' && checkId === '') {
        for (const s of [...store.sessions.values()]) if (s.node === node) ctx.sessions.invalidate(tx, s.id);
        for (const c of store.checksOfNode(node)) dropCheck(tx, c.checkId);
        for (const s of store.servicesOfNode(node)) tx.put('services', nodeKey(node, s.id), undefined);
        tx.put('nodes', node, undefined);
      }
    });
    return sendJson(reply, true);
  });
}

function putService(tx: WriteTx, ctx: RouteContext, node: string, raw: JsonObject): void {
  const name = str(raw, 'Service');
  const id = str(raw, 'ID') || name;
  const before = ctx.store.service(node, id);
  const weights = obj(raw, 'Weights');
  tx.put('services', nodeKey(node, id), {
    node,
    id,
    name,
    kind: str(raw, 'Kind'),
    tags: strList(raw, 'Tags'),
    address: str(raw, 'Address'),
    port: uint(raw, 'Port'),
    meta: strMap(raw, 'Meta'),
    weights: weights === undefined ? { Passing: 1, Warning: 1 } : { Passing: uint(weights, 'Passing', 1), Warning: uint(weights, 'Warning', 1) },
    enableTagOverride: raw['EnableTagOverride'] === true,
    local: before?.local ?? false,
    createIndex: before?.createIndex ?? tx.index,
    modifyIndex: tx.index,
  });
}

function putCheck(tx: WriteTx, ctx: RouteContext, node: string, raw: JsonObject, service: JsonObject | undefined): void {
  const checkId = str(raw, 'CheckID') || str(raw, 'Name');
  if (checkId === '') throw badRequest('Must provide check ID or name');
  const status = (str(raw, 'Status') || 'critical') as CheckStatus;
  if (!CHECK_STATUSES.includes(status)) throw badRequest(`Invalid check status: '${status}'`);
  const serviceId = str(raw, 'ServiceID') || (service === undefined ? '' : str(service, 'ID') || str(service, 'Service'));
  const svc = serviceId === '' ? undefined : ctx.store.service(node, serviceId);
  if (serviceId !== '' && svc === undefined) throw serverError(`Unknown service ID '${serviceId}' for check '${checkId}'`);
  const before = ctx.store.check(node, checkId);
  tx.put('checks', nodeKey(node, checkId), {
    node,
    checkId,
    name: str(raw, 'Name') || checkId,
    status,
    notes: str(raw, 'Notes'),
    output: str(raw, 'Output'),
    serviceId,
    serviceName: svc?.name ?? '',
    type: '',
    definition: { kind: 'none', successBeforePassing: 0, failuresBeforeCritical: 0, failuresBeforeWarning: 0 },
    local: before?.local ?? false,
    createIndex: before?.createIndex ?? tx.index,
    modifyIndex: tx.index,
  });
}

function pathParam(req: FastifyRequest, name: string): string {
  return (req.params as Record<string, string>)[name] ?? '';
}
