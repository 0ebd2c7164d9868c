/**
 * /v1/session/*: create, renew, destroy, and the blocking reads info, list
 * and node. Unknown sessions read as `[]` (Consul does not 404 reads); only
 * renew answers 404, which is how a holder learns its session is gone.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authorizer } from '../acl/authorizer.js';
import { authzOf } from '../acl/gate.js';
import { parseJsonObject } from '../json-body.js';
import type { SessionRecord } from '../state/types.js';
import { sessionJson } from '../state/views.js';
import { type RouteContext, sendBlocking, sendJson } from './common.js';

/** Registers the session routes. */
export function sessionRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store, sessions } = ctx;

  app.put('/v1/session/create', (req, reply) => {
    const s = sessions.create(parseJsonObject(req.body));
    return sendJson(reply, { ID: s.id });
  });

  app.put('/v1/session/renew/:id', (req, reply) => sendJson(reply, [sessionJson(sessions.renew(pathParam(req, 'id')))]));

  app.put('/v1/session/destroy/:id', (req, reply) => {
    sessions.destroy(pathParam(req, 'id'));
    return sendJson(reply, true);
  });

  // Reads are filtered by session:read on each session's node.
  app.get('/v1/session/info/:id', (req, reply) => {
    const id = pathParam(req, 'id');
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['sessions'], () => {
      const s = store.sessions.get(id);
      return { index: store.maxIndex('sessions'), value: readable(acl, s === undefined ? [] : [s]) };
    });
  });

  app.get('/v1/session/list', (req, reply) => {
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['sessions'], () => ({
      index: store.maxIndex('sessions'),
      value: readable(acl, sorted([...store.sessions.values()])),
    }));
  });

  app.get('/v1/session/node/:node', (req, reply) => {
    const node = pathParam(req, 'node');
    const acl = authzOf(ctx, req);
    return sendBlocking(ctx, req, reply, ['sessions'], () => ({
      index: store.maxIndex('sessions'),
      value: readable(acl, sorted([...store.sessions.values()].filter((s) => s.node === node))),
    }));
  });
}

function readable(acl: Authorizer, all: readonly SessionRecord[]): { json: unknown; filtered: boolean } {
  const list = all.filter((s) => acl.allows('session', 'read', s.node));
  return { json: list.map(sessionJson), filtered: list.length !== all.length };
}

function sorted<T extends { id: string }>(list: T[]): T[] {
  return list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function pathParam(req: FastifyRequest, name: string): string {
  return (req.params as Record<string, string>)[name] ?? '';
}
