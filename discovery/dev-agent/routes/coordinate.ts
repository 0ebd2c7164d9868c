/**
 * /v1/coordinate/*: network coordinates. One node, so its coordinate is the
 * origin Serf starts from (the one agent/self shows); nodes registered through
 * the catalog run no agent and have none, as in Consul.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authzOf } from '../acl/gate.js';
import { type RouteContext, sendBlocking, sendJson } from './common.js';

/** A fresh Serf coordinate (8 dimensions at the origin), as agent/self reports it. */
export const ORIGIN_COORD = { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-5 } as const;

/** Registers the coordinate routes. */
export function coordinateRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store } = ctx;
  const entry = (): Record<string, unknown> => ({ Node: ctx.nodeName, Segment: '', Coord: coord() });

  // The WAN pool: this server, named <node>.<datacenter>.
  app.get('/v1/coordinate/datacenters', (_req, reply) =>
    sendJson(reply, [{ Datacenter: ctx.datacenter, AreaID: 'WAN', Coordinates: [{ Node: `${ctx.nodeName}.${ctx.datacenter}`, Coord: coord() }] }]),
  );

  // Coordinates are filtered by node:read.
  app.get('/v1/coordinate/nodes', (req, reply) => {
    const readable = authzOf(ctx, req).allows('node', 'read', ctx.nodeName);
    return sendBlocking(ctx, req, reply, ['nodes'], () => ({
      index: store.maxIndex('nodes'),
      value: { json: store.nodes.has(ctx.nodeName) && readable ? [entry()] : [] },
    }));
  });

  // Unknown nodes (and nodes without an agent) answer 404 with an empty body and the index headers.
  app.get('/v1/coordinate/node/:node', (req, reply) => {
    const readable = authzOf(ctx, req).allows('node', 'read', nodeParam(req));
    return sendBlocking(ctx, req, reply, ['nodes'], () => ({
      index: store.maxIndex('nodes'),
      value: nodeParam(req) === ctx.nodeName && store.nodes.has(ctx.nodeName) && readable ? { json: [entry()] } : { status: 404 },
    }));
  });
}

function coord(): Record<string, unknown> {
  return { ...ORIGIN_COORD, Vec: [...ORIGIN_COORD.Vec] };
}

function nodeParam(req: FastifyRequest): string {
  return (req.params as Record<string, string>)['node'] ?? '';
}
