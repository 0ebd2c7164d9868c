/**
 * /v1/kv/<key>: GET (raw, recurse, keys + separator; blocking), PUT (raw body;
 * flags, cas, acquire, release; answers true/false) and DELETE (recurse, cas),
 * following Consul's kvs_endpoint.go, including its status codes and texts.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authzOf } from '../acl/gate.js';
import { badRequest, ConsulHttpError, serverError } from '../http-error.js';
import {
  KvError,
  kvCas,
  kvDelete,
  kvDeleteCas,
  kvDeleteTree,
  kvGet,
  kvKeyIndex,
  kvKeys,
  kvList,
  kvLock,
  kvPrefixIndex,
  kvSet,
  kvUnlock,
  type KvWrite,
} from '../state/kv.js';
import { kvJson, kvJsonText } from '../state/views.js';
import { type Answer, has, param, type Query, queryOf, type RouteContext, sendBlockingIndexed, sendJson } from './common.js';

/** Consul's kv_max_value_size default. */
export const KV_MAX_VALUE_SIZE = 512 * 1024;

/** Registers the KV routes. */
export function kvRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store } = ctx;

  app.get('/v1/kv/*', (req, reply) => {
    const key = keyOf(req);
    const query = queryOf(req);
    // Lists hold only the keys the token may read (Consul filters, and a list filtered to nothing is a 404).
    const a = authzOf(ctx, req);
    const readable = a.isManagement ? undefined : (k: string): boolean => a.allows('key', 'read', k);
    const hidden = (): boolean => readable !== undefined && kvList(store, key).some((e) => !readable(e.key));
    // A query parks on its own key range: writes elsewhere neither wake nor re-evaluate it.
    const range = (wake: () => void): (() => void) => store.watchKv(key, wake);
    if (has(query, 'keys')) {
      const separator = param(query, 'separator') ?? param(query, 'seperator') ?? ''; // Consul accepts its old misspelling
      return sendBlockingIndexed(ctx, req, reply, range, () => kvPrefixIndex(store, key), () => {
        const keys = kvKeys(store, key, separator, readable);
        const filtered = hidden();
        return keys.length === 0 && key !== '' ? { status: 404, filtered } : { json: keys, filtered };
      });
    }
    if (has(query, 'recurse')) {
      return sendBlockingIndexed(ctx, req, reply, range, () => kvPrefixIndex(store, key), () => {
        const entries = kvList(store, key, readable);
        const filtered = hidden();
        return entries.length === 0 ? { status: 404, filtered } : { jsonText: `[${entries.map(kvJsonText).join(',')}]`, filtered };
      });
    }
    if (key === '') throw badRequest('Missing key name');
    const raw = has(query, 'raw');
    return sendBlockingIndexed(ctx, req, reply, range, () => kvKeyIndex(store, key), (): Answer => {
      const e = kvGet(store, key);
      if (e === undefined) return { status: 404 };
      return raw ? { raw: e.value ?? Buffer.alloc(0) } : { json: [kvJson(e)] };
    });
  });

  app.put('/v1/kv/*', (req, reply) => {
    const key = keyOf(req);
    const query = queryOf(req);
    if (key === '') throw badRequest('Missing key name');
    conflicting(req, query, ['cas', 'acquire', 'release']);
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (body.length > KV_MAX_VALUE_SIZE) {
      throw new ConsulHttpError(
        413,
        `Request body(${body.length} bytes) too large, max size: ${KV_MAX_VALUE_SIZE} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.`,
      );
    }
    const w: KvWrite = { key, value: body.length === 0 ? null : Buffer.from(body), flags: uintParam(query, 'flags') ?? 0 };
    const cas = uintParam(query, 'cas');
    const acquire = param(query, 'acquire');
    const release = param(query, 'release');
    const ok = store.write((tx) => {
      try {
        if (acquire !== undefined) return kvLock(tx, store, w, acquire, Date.now()).ok;
        if (release !== undefined) return kvUnlock(tx, store, w, release) !== undefined;
        if (cas !== undefined) return kvCas(tx, store, w, cas) !== undefined;
        kvSet(tx, store, w);
        return true;
      } catch (err) {
        if (err instanceof KvError) throw serverError(err.message);
        throw err;
      }
    });
    return sendJson(reply, ok);
  });

  app.delete('/v1/kv/*', (req, reply) => {
    const key = keyOf(req);
    const query = queryOf(req);
    conflicting(req, query, ['recurse', 'cas']);
    const cas = uintParam(query, 'cas');
    const recurse = has(query, 'recurse');
    if (!recurse && key === '') throw badRequest('Missing key name');
    const ok = store.write((tx) => {
      if (cas !== undefined) return kvDeleteCas(tx, store, key, cas);
      if (recurse) kvDeleteTree(tx, store, key);
      else kvDelete(tx, key);
      return true;
    });
    return sendJson(reply, ok);
  });
}

function keyOf(req: FastifyRequest): string {
  return (req.params as Record<string, string>)['*'] ?? '';
}

/** Consul's "Conflicting flags" 400, for options that cannot be combined. */
function conflicting(req: FastifyRequest, query: Query, flags: readonly string[]): void {
  if (flags.filter((f) => has(query, f)).length > 1) {
    const qs = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
    throw badRequest(`Conflicting flags: ${qs}\n`);
  }
}

/** An unsigned integer query parameter; Consul answers a parse failure with a 500 from strconv. */
function uintParam(query: Query, name: string): number | undefined {
  if (!has(query, name)) return undefined;
  const v = param(query, name) ?? '';
  if (!/^\d+$/.test(v)) throw serverError(`strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax`);
  return Number(v);
}
