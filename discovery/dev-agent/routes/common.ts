/**
 * What every route shares: the context it is given, Consul's query-meta
 * headers, JSON replies, query-string reading, and the blocking-query wrapper
 * that parks a request until its index moves (or the client goes away).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../../base/log.js';
import { aclIdentity } from '../acl/gate.js';
import type { AclSystem } from '../acl/system.js';
import type { LocalAgent } from '../agent.js';
import { blockingQuery, blockUntilFresh, parseBlockingParams, type QueryResult, type WakeSource } from '../blocking.js';
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
  /** What agent/leave and agent/reload do; without it, leave only answers and reload does nothing. */
  readonly lifecycle?: AgentLifecycle;
  /** Tokens and policies; absent or disabled: every request is allowed (acl/gate.ts). */
  readonly acl?: AclSystem;
}

/** The agent's own life, as /v1/agent/leave and /v1/agent/reload reach it. */
export interface AgentLifecycle {
  /** Shuts the agent down cleanly; called once the leave answer is on the wire. */
  leave(): void;
  /** Re-reads the configuration; a rejection answers 500 with its message, as Consul's reload does. */
  reload(): Promise<void>;
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

/** The ACL default policy each server reports in X-Consul-Default-ACL-Policy (allow unless ACLs say otherwise). */
const defaultAclPolicy = new WeakMap<object, string>();

/** Sets what X-Consul-Default-ACL-Policy says for `server`'s answers (server.ts). */
export function setDefaultAclPolicyHeader(server: object, policy: string): void {
  defaultAclPolicy.set(server, policy);
}

/** Consul's query meta headers; the index is never below 1. */
export function setQueryMeta(reply: FastifyReply, index: number, query: Query): void {
  reply.header('X-Consul-Index', String(Math.max(1, index)));
  reply.header('X-Consul-KnownLeader', 'true');
  reply.header('X-Consul-LastContact', '0');
  reply.header('X-Consul-Default-ACL-Policy', defaultAclPolicy.get(reply.server) ?? 'allow');
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

/**
 * A query's answer: a JSON value, or a status with no body (a KV 404).
 * `filtered`: ACLs removed something the token may not read (Consul's
 * X-Consul-Results-Filtered-By-ACLs header).
 */
export type Answer = { json: unknown; filtered?: boolean } | { jsonText: string; filtered?: boolean } | { status: number; filtered?: boolean } | { raw: Buffer };

/** An answer whose JSON is already serialised, shared by every request that asks the same thing. */
type CachedAnswer = Exclude<Answer, { json: unknown } | { jsonText: string }> | { body: Buffer; filtered?: boolean };

/** Per store: answers computed at `version`, by request key. */
const answerCache = new WeakMap<Store, { version: number; answers: Map<string, QueryResult<CachedAnswer>> }>();

/** A request's identity for the cache: method, path and query without index/wait, and the token's (answers are filtered per token). */
function answerKey(ctx: RouteContext, req: FastifyRequest): string {
  const who = aclIdentity(ctx, req);
  return who === '' ? requestKey(req) : `${requestKey(req)}\u0000${who}`;
}

function requestKey(req: FastifyRequest): string {
  const q = req.url.indexOf('?');
  if (q === -1) return `${req.method} ${req.url}`;
  const search = new URLSearchParams(req.url.slice(q + 1));
  search.delete('index');
  search.delete('wait');
  search.sort();
  return `${req.method} ${req.url.slice(0, q)}?${search.toString()}`;
}

/**
 * Wraps `run` so that every request asking the same question at the same
 * store version shares one evaluation and one JSON.stringify. Without it, a
 * change that wakes N watchers of a large service is computed N times.
 */
function cached(store: Store, key: string, run: () => QueryResult<Answer>): () => QueryResult<CachedAnswer> {
  return () => {
    let entry = answerCache.get(store);
    if (entry === undefined || entry.version !== store.version) {
      entry = { version: store.version, answers: new Map() };
      answerCache.set(store, entry);
    }
    const hit = entry.answers.get(key);
    if (hit !== undefined) return hit;
    const result = run();
    const out = { index: result.index, value: toCached(result.value) };
    entry.answers.set(key, out);
    return out;
  };
}

/** Per store: the last answer per request key, with the index it was computed at (KV answers). */
const indexedCache = new WeakMap<Store, Map<string, QueryResult<CachedAnswer>>>();
/** Request keys remembered per store; past this the cache starts over (clients choose the keys). */
const INDEXED_CACHE_MAX = 16_384;

function toCached(r: Answer): CachedAnswer {
  const filtered = 'filtered' in r && r.filtered === true ? { filtered: true } : {};
  if ('json' in r) return { body: Buffer.from(JSON.stringify(r.json)), ...filtered };
  if ('jsonText' in r) return { body: Buffer.from(r.jsonText), ...filtered };
  return r;
}

/**
 * A blocking query whose answer is fully determined by its index (KV: a key's
 * or a prefix's highest ModifyIndex): it parks on `source` (the prefix's
 * watchers, not every KV write), reads only `index()` when woken, builds the
 * answer once it is fresh, and shares that answer, serialised, with every
 * request asking the same thing at the same index, across writes elsewhere.
 */
export async function sendBlockingIndexed(
  ctx: RouteContext,
  req: FastifyRequest,
  reply: FastifyReply,
  source: WakeSource,
  index: () => number,
  answer: () => Answer,
): Promise<FastifyReply> {
  const query = queryOf(req);
  const blocking = parseBlockingParams(query);
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  reply.raw.once('close', onClose);
  try {
    const idx = await blockUntilFresh(ctx.store, source, blocking, index, abort.signal);
    let cache = indexedCache.get(ctx.store);
    if (cache === undefined) {
      cache = new Map();
      indexedCache.set(ctx.store, cache);
    }
    // ACL changes alter what a token may read without moving any KV index.
    const key = `${answerKey(ctx, req)}\u0000${ctx.store.tableIndex['acl-tokens']}.${ctx.store.tableIndex['acl-policies']}`;
    let hit = cache.get(key);
    if (hit === undefined || hit.index !== idx) {
      hit = { index: idx, value: toCached(answer()) };
      if (cache.size >= INDEXED_CACHE_MAX) cache.clear();
      cache.set(key, hit);
    }
    return sendAnswer(reply, query, hit);
  } finally {
    reply.raw.off('close', onClose);
  }
}

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
    const result = await blockingQuery(ctx.store, tables, blocking, cached(ctx.store, answerKey(ctx, req), run), { signal: abort.signal });
    return sendAnswer(reply, query, result);
  } finally {
    reply.raw.off('close', onClose);
  }
}

function sendAnswer(reply: FastifyReply, query: Query, result: QueryResult<CachedAnswer>): FastifyReply {
  setQueryMeta(reply, result.index, query);
  const answer = result.value;
  if ('filtered' in answer && answer.filtered === true) reply.header('X-Consul-Results-Filtered-By-ACLs', 'true');
  if ('body' in answer) return reply.code(200).header('Content-Type', 'application/json').send(answer.body);
  if ('raw' in answer) {
    return reply
      .code(200)
      .header('Content-Type', 'text/plain')
      .header('X-Content-Type-Options', 'nosniff')
      .header('Content-Security-Policy', 'sandbox')
      .send(answer.raw);
  }
  return reply.code(answer.status).send();
}
