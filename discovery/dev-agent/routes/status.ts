/**
 * /v1/status/*: the Raft leader and peers. A single dev node is its own
 * leader; the addresses use Consul's server RPC port (8300) as real answers do.
 */
import type { FastifyInstance } from 'fastify';
import { type RouteContext, sendJson } from './common.js';

/** Consul's server RPC port, part of every leader/peer address. */
export const SERVER_RPC_PORT = 8300;

/** Registers the status routes. */
export function statusRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const self = `${ctx.advertiseAddress}:${SERVER_RPC_PORT}`;
  app.get('/v1/status/leader', (_req, reply) => sendJson(reply, self));
  app.get('/v1/status/peers', (_req, reply) => sendJson(reply, [self]));
}
