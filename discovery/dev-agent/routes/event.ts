/**
 * /v1/event/*: user events, the way one Consul agent keeps them. Consul
 * gossips an event to every node and each agent keeps, in memory, a ring of
 * the last 256 it received (its node, service and tag filters decide whether
 * it is received at all). With a single node the agent receives its own
 * events: `fire` answers the event and, when the filters match this node,
 * puts it in the ring that `list` reads, oldest first. Nothing persists, as in
 * Consul.
 *
 * `list` blocks the way Consul's does: the index of an answer is the last
 * event's ID folded to 64 bits (the two halves of the UUID XORed; 1 when the
 * list is empty), which is not monotonic, so a query with `?index` waits only
 * while the answer's index *equals* it, and wakes when an event arrives.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseDuration } from '../../../base/duration.js';
import { authzOf } from '../acl/gate.js';
import { MAX_WAIT_MS } from '../blocking.js';
import { badRequest, serverError } from '../http-error.js';
import type { Store } from '../state/store.js';
import { TABLES } from '../state/types.js';
import { param, queryOf, type RouteContext, sendJson } from './common.js';

/** How many received events an agent keeps (Consul's eventBuf). */
export const EVENT_RING_SIZE = 256;
/** Serf's default user event size limit, in bytes, before and after encoding. */
export const USER_EVENT_SIZE_LIMIT = 512;
/** Consul names its events on the gossip layer with this prefix. */
const GOSSIP_NAME_PREFIX = 'consul:event:';
/** Remote exec rides on this event name; the agent never lists it (and the dev agent does not run it). */
const REMOTE_EXEC_EVENT = '_rexec';

/** One user event (Consul's agent.UserEvent). */
export interface UserEvent {
  readonly id: string;
  readonly name: string;
  readonly payload: Buffer | null;
  readonly nodeFilter: string;
  readonly serviceFilter: string;
  readonly tagFilter: string;
  readonly version: number;
  /** The Lamport time of delivery; 0 in the answer to `fire`, which is given before delivery. */
  readonly ltime: number;
}

/** The ring of received events and the waiters for the next one. */
export class EventRing {
  private readonly events: UserEvent[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(private readonly size = EVENT_RING_SIZE) {}

  /** Appends an event (dropping the oldest beyond the size) and wakes every waiter. */
  add(e: UserEvent): void {
    this.events.push(e);
    if (this.events.length > this.size) this.events.shift();
    const due = [...this.waiters];
    this.waiters.clear();
    for (const cb of due) cb();
  }

  /** The received events, oldest first. */
  list(): readonly UserEvent[] {
    return this.events;
  }

  /** Calls `cb` once, at the next event; returns the cancel function. */
  once(cb: () => void): () => void {
    this.waiters.add(cb);
    return () => this.waiters.delete(cb);
  }
}

/**
 * The 64-bit index Consul derives from an event ID: the UUID's first 16 hex
 * digits XOR its last 16, as an unsigned decimal.
 */
export function eventIdToIndex(id: string): bigint {
  const hex = id.replaceAll('-', '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${id}`);
  return BigInt(`0x${hex.slice(0, 16)}`) ^ BigInt(`0x${hex.slice(16)}`);
}

/** Registers the event routes; the ring lives as long as the server. */
export function eventRoutes(app: FastifyInstance, ctx: RouteContext): EventRing {
  const ring = new EventRing();
  // Serf's event clock starts at 1; every successful fire takes the next tick.
  let clock = 1;

  app.put('/v1/event/fire/*', (req, reply) => {
    const name = (req.params as Record<string, string>)['*'] ?? '';
    if (name === '') throw badRequest('Missing name');
    const query = queryOf(req);
    const nodeFilter = param(query, 'node') ?? '';
    const serviceFilter = param(query, 'service') ?? '';
    const tagFilter = param(query, 'tag') ?? '';
    // Consul checks the parameters in the agent and answers a failure with 500.
    if (tagFilter !== '' && serviceFilter === '') throw serverError('Cannot provide tag filter without service filter');
    const nodeRe = filterRegexp(nodeFilter, 'node');
    const serviceRe = filterRegexp(serviceFilter, 'service');
    const tagRe = filterRegexp(tagFilter, 'tag');
    const body = Buffer.isBuffer(req.body) ? req.body : undefined;
    const event: UserEvent = {
      id: randomUUID(),
      name,
      payload: body !== undefined && body.length > 0 ? Buffer.from(body) : null,
      nodeFilter,
      serviceFilter,
      tagFilter,
      version: 1,
      ltime: 0,
    };
    const tooLarge = sizeProblem(event, clock);
    if (tooLarge !== undefined) throw serverError(`error broadcasting event: ${tooLarge}`);
    const ltime = clock++;
    if (name !== REMOTE_EXEC_EVENT && receives(ctx, nodeRe, serviceRe, tagRe)) ring.add({ ...event, ltime });
    return sendJson(reply, eventJson(event));
  });

  // The list holds the events whose name the token may read (event:read).
  app.get('/v1/event/list', (req, reply) => {
    const acl = authzOf(ctx, req);
    return listEvents(ctx.store, ring, req, reply, (name) => acl.allows('event', 'read', name));
  });
  return ring;
}

async function listEvents(store: Store, ring: EventRing, req: FastifyRequest, reply: FastifyReply, readable: (name: string) => boolean): Promise<FastifyReply> {
  const query = queryOf(req);
  const name = param(query, 'name') ?? '';
  const minIndex = indexParam(param(query, 'index'));
  const waitMs = waitParam(param(query, 'wait'));
  const run = (): { index: bigint; events: UserEvent[] } => {
    const events = ring.list().filter((e) => (name === '' || e.name === name) && readable(e.name));
    const last = events.at(-1);
    // An empty answer still says 1, so a watcher without events does not spin.
    return { index: last === undefined ? 1n : eventIdToIndex(last.id), events };
  };
  let result = run();
  if (minIndex > 0n && result.index === minIndex) {
    const abort = new AbortController();
    const onClose = (): void => abort.abort();
    reply.raw.once('close', onClose);
    try {
      const deadline = Date.now() + waitMs;
      while (result.index === minIndex && !store.isClosed && !abort.signal.aborted) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        await nextEvent(ring, store, remaining, abort.signal);
        result = run();
      }
    } finally {
      reply.raw.off('close', onClose);
    }
  }
  reply.header('X-Consul-Index', result.index.toString());
  return sendJson(reply, result.events.map(eventJson));
}

/** Resolves at the next event, when the wait runs out, when the agent shuts down, or on abort. */
function nextEvent(ring: EventRing, store: Store, timeoutMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      cancel();
      unwatch();
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    const cancel = ring.once(done);
    // The store wakes every watcher when it closes: parked lists answer before shutdown.
    const unwatch = store.watch(TABLES, () => {
      if (store.isClosed) done();
    });
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Consul's UserEvent JSON: Payload is base64, or null when there is none. */
function eventJson(e: UserEvent): Record<string, unknown> {
  return {
    ID: e.id,
    Name: e.name,
    Payload: e.payload === null ? null : e.payload.toString('base64'),
    NodeFilter: e.nodeFilter,
    ServiceFilter: e.serviceFilter,
    TagFilter: e.tagFilter,
    Version: e.version,
    LTime: e.ltime,
  };
}

/**
 * Whether this agent receives an event with these filters (Consul's
 * shouldProcessUserEvent): the node filter must match the node name; the
 * service filter must match the ID of one of the agent's own services (Consul
 * matches the service ID, which is the name unless an ID was given) and, with
 * a tag filter, one of that service's tags must match too.
 */
function receives(ctx: RouteContext, node: RegExp | undefined, service: RegExp | undefined, tag: RegExp | undefined): boolean {
  if (node !== undefined && !node.test(ctx.nodeName)) return false;
  if (service === undefined) return true;
  for (const s of ctx.store.servicesOfNode(ctx.nodeName)) {
    if (!s.local || !service.test(s.id)) continue;
    if (tag === undefined || s.tags.some((t) => tag.test(t))) return true;
  }
  return false;
}

/**
 * A filter as a RegExp, unanchored like Go's MatchString. Go's RE2 syntax is
 * close to JavaScript's for what filters use; leading flag groups such as
 * `(?i)` become flags, and what RE2 refuses (lookaround, backreferences) is
 * refused here too, with Consul's wording around the reason.
 */
function filterRegexp(source: string, what: 'node' | 'service' | 'tag'): RegExp | undefined {
  if (source === '') return undefined;
  const fail = (why: string): never => {
    throw serverError(`Invalid ${what} filter: error parsing regexp: ${why}`);
  };
  let body = source;
  let flags = '';
  const lead = /^\(\?([a-zA-Z]+)\)/.exec(body);
  if (lead !== null) {
    for (const f of lead[1]!) {
      if (!'ims'.includes(f)) fail(`invalid or unsupported Perl syntax: \`(?${f}\``);
      if (!flags.includes(f)) flags += f;
    }
    body = body.slice(lead[0].length);
  }
  const perl = /\(\?<?[=!]/.exec(body);
  if (perl !== null) fail(`invalid or unsupported Perl syntax: \`${perl[0]}\``);
  const backref = /\\[1-9]/.exec(body);
  if (backref !== null) fail(`invalid escape sequence: \`${backref[0]}\``);
  try {
    return new RegExp(body, flags);
  } catch (err) {
    return fail((err as Error).message);
  }
}

/**
 * Serf's size limits on a user event, computed on the message Consul would
 * gossip: "consul:event:<name>" plus the MessagePack-encoded event must fit in
 * 512 bytes, and so must the encoded gossip message that wraps them. With a
 * short name that leaves about 400 bytes of payload ("keep it < 100 bytes",
 * Consul's docs say). Returns serf's message when the event does not fit.
 */
function sizeProblem(e: UserEvent, ltime: number): string | undefined {
  const str = (n: number): number => (n < 32 ? 1 : n < 0x10000 ? 3 : 5) + n;
  const field = (key: string, len: number): number => str(key.length) + str(len);
  let inner = 1 + field('ID', e.id.length) + field('n', Buffer.byteLength(e.name)) + str(1) + 1;
  if (e.payload !== null) inner += field('p', e.payload.length);
  if (e.nodeFilter !== '') inner += field('nf', Buffer.byteLength(e.nodeFilter));
  if (e.serviceFilter !== '') inner += field('sf', Buffer.byteLength(e.serviceFilter));
  if (e.tagFilter !== '') inner += field('tf', Buffer.byteLength(e.tagFilter));
  const gossipName = Buffer.byteLength(GOSSIP_NAME_PREFIX + e.name);
  if (gossipName + inner > USER_EVENT_SIZE_LIMIT) {
    return `user event exceeds configured limit of ${USER_EVENT_SIZE_LIMIT} bytes before encoding`;
  }
  const uint = ltime < 0x80 ? 1 : ltime < 0x100 ? 2 : ltime < 0x10000 ? 3 : ltime < 0x100000000 ? 5 : 9;
  const encoded = 1 + 1 + str(5) + uint + field('Name', gossipName) + field('Payload', inner) + str(2) + 1;
  if (encoded > USER_EVENT_SIZE_LIMIT) {
    return `encoded user event exceeds configured limit of ${USER_EVENT_SIZE_LIMIT} bytes after encoding`;
  }
  return undefined;
}

/** `?index` as Consul parses it: an unsigned 64-bit decimal (event indexes use all 64 bits). */
function indexParam(raw: string | undefined): bigint {
  if (raw === undefined || raw === '') return 0n;
  if (!/^\d+$/.test(raw)) throw badRequest('Invalid index');
  const v = BigInt(raw);
  if (v > 0xffff_ffff_ffff_ffffn) throw badRequest('Invalid index');
  return v;
}

/** `?wait`: event/list waits up to 10 minutes, also when no wait is given (Consul's maxQueryTime). */
function waitParam(raw: string | undefined): number {
  if (raw === undefined || raw === '') return MAX_WAIT_MS;
  const ms = parseDuration(raw);
  if (ms === undefined || ms < 0) throw badRequest('Invalid wait time');
  return ms === 0 ? MAX_WAIT_MS : Math.min(ms, MAX_WAIT_MS);
}
