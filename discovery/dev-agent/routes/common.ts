/**
 * What every route shares: the context it is given, Consul's query-meta
 * headers, JSON replies, query-string reading, and the blocking-query wrapper
 * that parks a request until its index moves (or the client goes away).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../../src/log.js';
import type { LocalAgent } from '../agent.js';
import { blockingQuery, parseBlockingParams, type QueryResult } from '../blocking.js';
import { badRequest } from '../http-error.js';
import type { SessionManager } from '../sessions.js';
import type { Store } from '../state/store.js';
import type { Table } from '../state/types.js';

/** Everything a route module needs. */
export interface RouteContext {
  readonly store: Store;
  readonly agent: LocalAgent;
  readonly sessions: SessionManager;
  readonly datacenter: string;
  readonly nodeName: string;
  /** Address the listener is bound to, for status/leader and agent/self. */
  readonly advertiseAddress: string;
  readonly logger: Logger;
}

/** The parsed query string (fastify's default parser: repeated keys become arrays). */
export type Query = Readonly<Record<string, string | string[] | undefined>>;

/** Reads the query of a request. */
export function queryOf(req: FastifyRequest): Query {
  return req.query as Query;
}

/** True when `name` is present at all (Consul tests presence: `?recurse` and `?recurse=true` alike). */
export function has(query: Query, name: string): boolean {
  return query[name] !== undefined;
}

/** The first value of a query parameter. */
export function param(query: Query, name: string): string | undefined {
  const v = query[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Every value of a repeated query parameter (`?tag=a&tag=b`). */
export function params(query: Query, name: string): string[] {
  const v = query[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** A boolean query parameter the way Go's strconv.ParseBool reads it; bare `?x` is true. */
export function boolParam(query: Query, name: string): boolean | undefined {
  const v = param(query, name);
  if (v === undefined) return undefined;
  if (v === '' || /^(1|t|true)$/i.test(v)) return true;
  if (/^(0|f|false)$/i.test(v)) return false;
  throw badRequest(`Invalid value for ${name}: ${v}`);
}

/** Consul's query meta headers; the index is never below 1. */
export function setQueryMeta(reply: FastifyReply, index: number, query: Query): void {
  reply.header('X-Consul-Index', String(Math.max(1, index)));
  reply.header('X-Consul-KnownLeader', 'true');
  reply.header('X-Consul-LastContact', '0');
  reply.header('X-Consul-Default-ACL-Policy', 'allow');
  const consistency = has(query, 'consistent') ? 'consistent' : has(query, 'stale') ? 'stale' : 'leader';
  reply.header('X-Consul-Effective-Consistency', consistency);
}

/** Sends a JSON body with Consul's content type. */
export function sendJson(reply: FastifyReply, value: unknown, status = 200): FastifyReply {
  // A Buffer keeps fastify from appending "; charset=utf-8": Consul sends the bare type.
  return reply.code(status).header('Content-Type', 'application/json').send(Buffer.from(JSON.stringify(value)));
}

/** Sends the empty 200 Consul's agent write endpoints answer with. */
export function sendEmpty(reply: FastifyReply): FastifyReply {
  return reply.code(200).send();
}

/** A query's answer: a JSON value, or a status with no body (a KV 404). */
export type Answer = { json: unknown } | { status: number } | { raw: Buffer };

/**
 * Runs a blocking query over `tables` and sends its answer with query meta.
 * The wait ends early when the client disconnects, so parked requests never
 * outlive their sockets.
 */
export async function sendBlocking(
  ctx: RouteContext,
  req: FastifyRequest,
  reply: FastifyReply,
  tables: readonly Table[],
  run: () => QueryResult<Answer>,
): Promise<FastifyReply> {
  const query = queryOf(req);
  const blocking = parseBlockingParams(query);
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  reply.raw.once('close', onClose);
  try {
    const result = await blockingQuery(ctx.store, tables, blocking, run, { signal: abort.signal });
    setQueryMeta(reply, result.index, query);
    const answer = result.value;
    if ('json' in answer) return sendJson(reply, answer.json);
    if ('raw' in answer) {
      return reply
        .code(200)
        .header('Content-Type', 'text/plain')
        .header('X-Content-Type-Options', 'nosniff')
        .header('Content-Security-Policy', 'sandbox')
        .send(answer.raw);
    }
    return reply.code(answer.status).send();
  } finally {
    reply.raw.off('close', onClose);
  }
}
