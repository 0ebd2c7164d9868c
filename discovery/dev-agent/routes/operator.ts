/**
 * /v1/operator/raft/configuration: the Raft peer set, which on a dev agent is
 * one voter, itself, and the leader. `?stale` is accepted (there is always a
 * leader); the answer carries no query meta, as in Consul.
 */
import type { FastifyInstance } from 'fastify';
import { type RouteContext, sendJson } from './common.js';
import { SERVER_RPC_PORT } from './status.js';

/** The Raft protocol a current Consul server speaks. */
const RAFT_PROTOCOL = '3';

/** Registers the operator routes. */
export function operatorRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/v1/operator/raft/configuration', (_req, reply) => {
    const node = ctx.store.nodes.get(ctx.nodeName);
    return sendJson(reply, {
      Servers: [
        {
          // With Raft protocol 3 a server's ID is its node ID.
          ID: node?.id ?? '',
          Node: ctx.nodeName,
          Address: `${ctx.advertiseAddress}:${SERVER_RPC_PORT}`,
          Leader: true,
          ProtocolVersion: RAFT_PROTOCOL,
          Voter: true,
          LastIndex: ctx.store.index,
        },
      ],
      // The configuration was committed when the single server bootstrapped itself.
      Index: 1,
    });
  });
}
