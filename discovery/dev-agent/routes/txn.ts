/**
 * /v1/txn: KV operations applied all-or-nothing at one index. Like Consul's
 * txnDispatch, every operation is attempted and every failure reported
 * (`Errors: [{OpIndex, What}]`, status 409), and then the whole write is
 * rolled back. Write results carry no Value; deletes and checks add none.
 */
import type { FastifyInstance } from 'fastify';
import { authzOf } from '../acl/gate.js';
import type { Authorizer } from '../acl/authorizer.js';
import { badRequest, ConsulHttpError } from '../http-error.js';
import { type JsonObject, parseJson } from '../json-body.js';
import {
  KvError,
  kvCas,
  kvDelete,
  kvDeleteCas,
  kvDeleteTree,
  kvGet,
  kvList,
  kvLock,
  kvSet,
  kvUnlock,
  type KvWrite,
} from '../state/kv.js';
import { Rollback, type Store, type WriteTx } from '../state/store.js';
import type { KvEntry } from '../state/types.js';
import { kvJson } from '../state/views.js';
import { queryOf, type RouteContext, sendJson, setQueryMeta } from './common.js';
import { KV_MAX_VALUE_SIZE } from './kv.js';

/** Consul's cap on operations per transaction. */
export const MAX_TXN_OPS = 128;

const READ_VERBS = new Set(['get', 'get-or-empty', 'get-tree', 'check-index', 'check-session', 'check-not-exists']);

/** One KV operation as sent. */
interface KvOp {
  readonly verb: string;
  readonly key: string;
  readonly value: Buffer | null;
  readonly flags: number;
  readonly index: number;
  readonly session: string;
}

/** Registers the txn route. */
export function txnRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store } = ctx;
  app.put('/v1/txn', (req, reply) => {
    const ops = parseOps(parseJson(req.body));
    const now = Date.now();
    const a = authzOf(ctx, req);
    // ACLs and lock delay are checked before anything is applied, as Consul's pre-apply does.
    const preErrors = ops.flatMap((op, i) => {
      const denied = aclProblem(a, op);
      if (denied !== undefined) return [{ OpIndex: i, What: denied }];
      const until = store.lockDelays.get(op.key);
      return op.verb === 'lock' && until !== undefined && until > now
        ? [{ OpIndex: i, What: `failed to lock key ${JSON.stringify(op.key)} due to lock delay` }]
        : [];
    });
    if (preErrors.length > 0) return sendJson(reply, { Results: null, Errors: preErrors }, 409);

    const results: unknown[] = [];
    try {
      store.write((tx) => {
        const errors: Array<{ OpIndex: number; What: string }> = [];
        ops.forEach((op, i) => {
          try {
            results.push(...apply(tx, store, op, now));
          } catch (err) {
            if (!(err instanceof KvError)) throw err;
            errors.push({ OpIndex: i, What: err.message });
          }
        });
        if (errors.length > 0) throw new Rollback(errors);
      });
    } catch (err) {
      if (!(err instanceof Rollback)) throw err;
      return sendJson(reply, { Results: null, Errors: err.reason }, 409);
    }
    if (ops.every((op) => READ_VERBS.has(op.verb))) setQueryMeta(reply, store.maxIndex('kvs'), queryOf(req));
    // Results the token may not read are left out (get and get-tree are filtered on the way out, as in Consul).
    const visible = a.isManagement ? results : results.filter((r) => a.allows('key', 'read', String((r as { KV: { Key: string } }).KV.Key)));
    return sendJson(reply, { Results: visible, Errors: null });
  });
}

/**
 * Consul's kvsPreApply ACL check for one operation: check-index and
 * check-session need key:read, delete-tree write on the whole prefix, every
 * other verb key:write (check-not-exists included, as in Consul).
 */
function aclProblem(a: Authorizer, op: KvOp): string | undefined {
  if (a.isManagement) return undefined;
  switch (op.verb) {
    case 'get':
    case 'get-or-empty':
    case 'get-tree':
      return undefined; // filtered on the way out
    case 'check-index':
    case 'check-session':
      return a.allows('key', 'read', op.key) ? undefined : a.denied('key', 'read', op.key).message;
    case 'delete-tree':
      return a.allowsKeyWritePrefix(op.key) ? undefined : a.denied('key', 'write', op.key).message;
    default:
      return a.allows('key', 'write', op.key) ? undefined : a.denied('key', 'write', op.key).message;
  }
}

function apply(tx: WriteTx, store: Store, op: KvOp, now: number): Array<{ KV: Record<string, unknown> }> {
  const q = JSON.stringify(op.key);
  const w: KvWrite = { key: op.key, value: op.value, flags: op.flags };
  const written = (e: KvEntry): Array<{ KV: Record<string, unknown> }> => [{ KV: kvJson(e, false) }];
  switch (op.verb) {
    case 'set':
      return written(kvSet(tx, store, w));
    case 'cas': {
      const e = kvCas(tx, store, w, op.index);
      if (e === undefined) throw new KvError(`failed to set key ${q}, index is stale`);
      return written(e);
    }
    case 'lock': {
      const r = kvLock(tx, store, w, op.session, now);
      if (!r.ok) throw new KvError(`failed to lock key ${q}, lock is already held`);
      return written(r.entry);
    }
    case 'unlock': {
      const e = kvUnlock(tx, store, w, op.session);
      if (e === undefined) throw new KvError(`failed to unlock key ${q}, lock isn't held, or is held by another session`);
      return written(e);
    }
    case 'get': {
      const e = kvGet(store, op.key);
      if (e === undefined) throw new KvError(`key ${q} doesn't exist`);
      return [{ KV: kvJson(e) }];
    }
    case 'get-or-empty': {
      const e = kvGet(store, op.key);
      return e === undefined ? [] : [{ KV: kvJson(e) }];
    }
    case 'get-tree':
      return kvList(store, op.key).map((e) => ({ KV: kvJson(e) }));
    case 'check-index': {
      const e = kvGet(store, op.key);
      if (e === undefined) throw new KvError(`failed to check index, key ${q} doesn't exist`);
      if (e.modifyIndex !== op.index) throw new KvError(`failed index check for key ${q}, current modify index ${e.modifyIndex} != ${op.index}`);
      return written(e);
    }
    case 'check-session': {
      const e = kvGet(store, op.key);
      if (e === undefined) throw new KvError(`failed to check session, key ${q} doesn't exist`);
      if ((e.session ?? '') !== op.session) {
        throw new KvError(`failed session check for key ${q}, current session ${JSON.stringify(e.session ?? '')} != ${JSON.stringify(op.session)}`);
      }
      return written(e);
    }
    case 'check-not-exists':
      if (kvGet(store, op.key) !== undefined) throw new KvError(`key ${q} exists`);
      return [];
    case 'delete':
      kvDelete(tx, op.key);
      return [];
    case 'delete-tree':
      kvDeleteTree(tx, store, op.key);
      return [];
    case 'delete-cas':
      if (!kvDeleteCas(tx, store, op.key, op.index)) throw new KvError(`failed to delete key ${q}, index is stale`);
      return [];
    default:
      throw new KvError(`unknown KV verb ${JSON.stringify(op.verb)}`);
  }
}

/** Decodes the operation list; 400/413 for what Consul rejects before running anything. */
function parseOps(body: unknown): KvOp[] {
  if (!Array.isArray(body)) throw badRequest('Failed to parse body: the transaction must be a JSON list of operations');
  if (body.length > MAX_TXN_OPS) throw new ConsulHttpError(413, `Transaction contains too many operations (${body.length} > ${MAX_TXN_OPS})`);
  return body.map((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badRequest(`Failed to parse body: operation ${i} is not an object`);
    const kv = (raw as JsonObject)['KV'];
    if (typeof kv !== 'object' || kv === null || Array.isArray(kv)) {
      throw badRequest(`weft dev agent: /v1/txn supports KV operations only (operation ${i})`);
    }
    const o = kv as JsonObject;
    const value = o['Value'];
    let buf: Buffer | null = null;
    if (value !== undefined && value !== null && value !== '') {
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
        throw badRequest(`Failed to parse body: illegal base64 data in Value of operation ${i}`);
      }
      buf = Buffer.from(value, 'base64');
    }
    const key = typeof o['Key'] === 'string' ? o['Key'] : '';
    if (buf !== null && buf.length > KV_MAX_VALUE_SIZE) {
      throw new ConsulHttpError(413, `Value for key ${JSON.stringify(key)} is too large (${buf.length} > ${KV_MAX_VALUE_SIZE} bytes)`);
    }
    const num = (f: string): number => (typeof o[f] === 'number' && Number.isInteger(o[f]) && (o[f] as number) >= 0 ? (o[f] as number) : 0);
    return {
      verb: typeof o['Verb'] === 'string' ? o['Verb'] : '',
      key,
      value: buf,
      flags: num('Flags'),
      index: num('Index'),
      session: typeof o['Session'] === 'string' ? o['Session'] : '',
    };
  });
}
