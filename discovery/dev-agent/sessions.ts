/**
 * Sessions with Consul's semantics: TTL sessions expire after twice their TTL
 * unless renewed (Consul's SessionTTLMultiplier: the TTL is a promise to renew
 * within it, the server waits double), sessions die with their node checks
 * turning critical, and an invalidated session releases (or deletes, per
 * Behavior) its locks and arms each key's LockDelay so a dead holder's
 * in-flight work cannot race the next one.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../base/log.js';
import { SERF_CHECK } from './agent.js';
import { formatGoDuration, parseDuration } from '../../base/duration.js';
import { ConsulHttpError, serverError } from './http-error.js';
import { type JsonObject, objList, optStr, str, strList } from './json-body.js';
import { kvClearSession } from './state/kv.js';
import type { Store, WriteTx } from './state/store.js';
import type { CheckRecord, SessionBehavior, SessionRecord } from './state/types.js';

/** Consul's bounds and defaults. */
export const SESSION_TTL_MAX_MS = 86_400_000;
export const DEFAULT_LOCK_DELAY_MS = 15_000;
export const MAX_LOCK_DELAY_MS = 60_000;
/** Consul invalidates a TTL session only after TTL x 2. */
export const SESSION_TTL_MULTIPLIER = 2;

/** Limits the manager enforces. */
export interface SessionLimits {
  /** Consul's session_ttl_min (10s by default; tests lower it). */
  readonly ttlMinMs: number;
}

/** Creates, renews, destroys and expires sessions. */
export class SessionManager {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly store: Store,
    private readonly limits: SessionLimits,
    private readonly defaultNode: string,
    private readonly logger: Logger,
  ) {
    // A check turning critical (or going away) kills the sessions that watch it, in the same write.
    store.checkTrigger = (tx, check) => this.onCheckDown(tx, check);
  }

  /** Arms TTL clocks for sessions loaded from disk: they start over, as the brief of a restart. */
  startTimers(): void {
    for (const s of this.store.sessions.values()) this.arm(s);
  }

  /** PUT /v1/session/create. */
  create(body: JsonObject): SessionRecord {
    const node = str(body, 'Node') || this.defaultNode;
    const behavior = (str(body, 'Behavior') || 'release') as SessionBehavior;
    if (behavior !== 'release' && behavior !== 'delete') throw serverError(`Invalid Behavior setting '${behavior}'`);
    const ttl = str(body, 'TTL');
    let ttlMs = 0;
    if (ttl !== '') {
      const parsed = parseDuration(ttl);
      if (parsed === undefined) throw serverError(`Session TTL '${ttl}' invalid: time: invalid duration "${ttl}"`);
      ttlMs = parsed;
      if (ttlMs !== 0 && (ttlMs < this.limits.ttlMinMs || ttlMs > SESSION_TTL_MAX_MS)) {
        throw serverError(
          `Invalid Session TTL '${Math.round(ttlMs * 1e6)}', must be between [${formatGoDuration(this.limits.ttlMinMs)}=${formatGoDuration(SESSION_TTL_MAX_MS)}]`,
        );
      }
    }
    const lockDelayMs = lockDelay(body['LockDelay']);
    if (lockDelayMs > MAX_LOCK_DELAY_MS) throw serverError(`Lock delay must be under ${formatGoDuration(MAX_LOCK_DELAY_MS)}`);

    const explicit = body['Checks'] !== undefined || body['NodeChecks'] !== undefined || body['ServiceChecks'] !== undefined;
    const nodeChecks = explicit ? [...new Set([...strList(body, 'Checks'), ...strList(body, 'NodeChecks')])] : [SERF_CHECK];
    const serviceChecks = objList(body, 'ServiceChecks').map((c) => str(c, 'ID'));

    if (!this.store.nodes.has(node)) throw serverError('Missing node registration');
    for (const id of [...nodeChecks, ...serviceChecks]) {
      const c = this.store.check(node, id);
      if (c === undefined) throw serverError(`Missing check '${id}' registration`);
      if (c.status === 'critical') throw serverError(`Check '${id}' is in critical state`);
    }
    const session = this.store.write((tx) => {
      const s: SessionRecord = {
        id: randomUUID(),
        name: optStr(body, 'Name') ?? '',
        node,
        lockDelayMs,
        behavior,
        ttl,
        ttlMs,
        nodeChecks,
        serviceChecks,
        createIndex: tx.index,
        modifyIndex: tx.index,
      };
      tx.put('sessions', s.id, s);
      return s;
    });
    this.arm(session);
    return session;
  }

  /** PUT /v1/session/renew/:id: restarts the TTL clock; 404 when the session is gone. */
  renew(id: string): SessionRecord {
    const s = this.store.sessions.get(id);
    if (s === undefined) throw new ConsulHttpError(404, `Session id '${id}' not found`);
    this.arm(s);
    return s;
  }

  /** PUT /v1/session/destroy/:id: idempotent, like Consul. */
  destroy(id: string): void {
    if (!this.store.sessions.has(id)) return;
    this.store.write((tx) => this.invalidate(tx, id));
  }

  /** Removes a session inside a write: releases or deletes its locks and arms their lock delays. */
  invalidate(tx: WriteTx, id: string): void {
    const s = this.store.sessions.get(id);
    if (s === undefined) return;
    this.disarm(id);
    const until = Date.now() + s.lockDelayMs;
    for (const e of [...this.store.kv.values()]) {
      if (e.session !== id) continue;
      if (s.lockDelayMs > 0) {
        const before = this.store.lockDelays.get(e.key);
        this.store.lockDelays.set(e.key, until);
        tx.onRollback(() => (before === undefined ? this.store.lockDelays.delete(e.key) : this.store.lockDelays.set(e.key, before)));
      }
      if (s.behavior === 'delete') tx.put('kvs', e.key, undefined);
      else kvClearSession(tx, e);
    }
    tx.put('sessions', id, undefined);
    this.logger.debug({ session: id, behavior: s.behavior }, 'session invalidated');
  }

  /** Clears every TTL timer (agent shutdown). */
  close(): void {
    for (const id of [...this.timers.keys()]) this.disarm(id);
  }

  private onCheckDown(tx: WriteTx, check: CheckRecord): void {
    for (const s of [...this.store.sessions.values()]) {
      if (s.node !== check.node) continue;
      if (s.nodeChecks.includes(check.checkId) || s.serviceChecks.includes(check.checkId)) this.invalidate(tx, s.id);
    }
  }

  private arm(s: SessionRecord): void {
    this.disarm(s.id);
    if (s.ttlMs <= 0) return;
    const timer = setTimeout(() => {
      this.timers.delete(s.id);
      this.logger.debug({ session: s.id }, 'session TTL expired');
      this.destroy(s.id);
    }, s.ttlMs * SESSION_TTL_MULTIPLIER);
    timer.unref();
    this.timers.set(s.id, timer);
  }

  private disarm(id: string): void {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
  }
}

/**
 * LockDelay as Consul reads it: a Go duration string, or a number that is
 * nanoseconds, except that numbers under 1000 are taken as seconds (Consul's
 * FixupLockDelay, for clients that send `15`).
 */
export function lockDelay(value: unknown): number {
  if (value === undefined || value === null || value === '') return DEFAULT_LOCK_DELAY_MS;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value < 1000 ? value * 1000 : value / 1e6;
  if (typeof value === 'string') {
    const ms = parseDuration(value);
    if (ms !== undefined && ms >= 0) return ms;
  }
  throw new ConsulHttpError(400, `Request decode failed: invalid LockDelay ${JSON.stringify(value)}`);
}
