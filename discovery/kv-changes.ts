/**
 * What changed under a big KV prefix between two recursive reads, worked out
 * off the main thread.
 *
 * Consul answers a recursive read with the whole prefix: at ten thousand
 * allocation documents that is over ten megabytes of JSON with every value
 * in base64. Decoding it where an API is served holds the event loop for the
 * whole decode (100-270 ms measured at 10,000 documents), once per read;
 * even gathering the answer into one buffer took 50-60 ms. Here the raw
 * answer goes to a worker thread as it arrives (sink(): each chunk is posted
 * as it is read) or in one piece (diff()); the worker parses it, compares
 * each entry's ModifyIndex with the previous read's, and answers only the
 * entries that changed (key, ModifyIndex, value as text) and the keys that
 * are gone. What is left on the main thread is in proportion to the change.
 *
 * One worker per process, shared by every reader, started with the first
 * reader and ended with the last one; it never keeps the process alive. Its
 * code is a self-contained string, so it runs the same from the bundle and
 * from the sources. A reader's previous read is remembered in the worker:
 * a caller that could not apply an answer calls reset(), and the next
 * answer is `full` (every entry, to replace the caller's view).
 */
import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { WeftError } from '../base/errors.js';

/** One entry that is new or was modified since the previous read. */
export interface KvChange {
  key: string;
  modifyIndex: number;
  /** The value decoded from base64 to text; null for a key without a value. */
  value: string | null;
}

/** The difference between a read and the one before it. */
export interface KvChanges {
  /** Entries new or modified since the previous read (every entry when `full`), in the answer's order. */
  changed: KvChange[];
  /** Keys of the previous read that this one lacks (none when `full`). */
  gone: string[];
  /** Entries in this read. */
  entries: number;
  /** No previous read to compare with (the first, or the first after reset()): `changed` is the whole prefix. */
  full: boolean;
}

interface Reply {
  seq: number;
  error?: string;
  keys?: string[];
  indexes?: number[];
  values?: Array<string | null>;
  gone?: string[];
  entries?: number;
  full?: boolean;
}

/**
 * The worker: `{ id, seq, body }` (body: an ArrayBuffer of the answer, or
 * null for no answer), or `{ id, start }`, `{ id, chunk }`... `{ id, seq,
 * end, present }` for an answer sent as it arrived -> the changes against
 * what it last saw for `id`; `{ forget: id }` drops that memory. Plain
 * JavaScript, no imports but Node's.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const seen = new Map();
const arriving = new Map();
parentPort.on('message', (m) => {
  if (m.forget !== undefined) { seen.delete(m.forget); arriving.delete(m.forget); return; }
  if (m.start) { arriving.set(m.id, []); return; }
  if (m.chunk !== undefined) { arriving.get(m.id)?.push(Buffer.from(m.chunk)); return; }
  let body = m.body === null || m.body === undefined ? null : Buffer.from(m.body);
  if (m.end) {
    const chunks = arriving.get(m.id);
    arriving.delete(m.id);
    if (chunks === undefined && m.present) {
      seen.delete(m.id);
      parentPort.postMessage({ seq: m.seq, error: 'the answer did not arrive (read again)' });
      return;
    }
    body = m.present ? Buffer.concat(chunks) : null;
  }
  const before = seen.get(m.id);
  seen.delete(m.id);
  let items;
  try {
    items = body === null ? [] : JSON.parse(body.toString('utf8'));
    if (!Array.isArray(items)) throw new Error('not a JSON array');
  } catch (err) {
    parentPort.postMessage({ seq: m.seq, error: String((err && err.message) || err) });
    return;
  }
  const now = new Map();
  const keys = [];
  const indexes = [];
  const values = [];
  for (const item of items) {
    if (item === null || typeof item !== 'object' || typeof item.Key !== 'string') continue;
    const index = Number(item.ModifyIndex);
    now.set(item.Key, index);
    if (before !== undefined && before.get(item.Key) === index) continue;
    keys.push(item.Key);
    indexes.push(index);
    values.push(typeof item.Value === 'string' ? Buffer.from(item.Value, 'base64').toString('utf8') : null);
  }
  const gone = [];
  if (before !== undefined) for (const key of before.keys()) if (!now.has(key)) gone.push(key);
  seen.set(m.id, now);
  parentPort.postMessage({ seq: m.seq, keys, indexes, values, gone, entries: now.size, full: before === undefined });
});
`;

/** The size of the blocks a sink() moves to the worker. */
const SINK_BLOCK = 1 << 20;

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (err: Error) => void;
}

/** The shared worker, while any reader is open. */
let shared: { worker: Worker; readers: number; seq: number; pending: Map<number, Pending> } | undefined;
let nextReaderId = 0;

function pool(): NonNullable<typeof shared> {
  if (shared !== undefined) return shared;
  const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'weft kv changes' });
  worker.unref();
  const p = { worker, readers: 0, seq: 0, pending: new Map<number, Pending>() };
  const fail = (err: Error): void => {
    if (shared === p) shared = undefined; // the next read starts a new worker, which knows no previous read
    for (const w of p.pending.values()) w.reject(err);
    p.pending.clear();
  };
  worker.on('message', (reply: Reply) => {
    const w = p.pending.get(reply.seq);
    p.pending.delete(reply.seq);
    w?.resolve(reply);
  });
  worker.on('error', (err) => fail(new WeftError('WEFT_ERR_CONSUL_REQUEST', `the KV decoding worker failed: ${err.message}`, { key: 'worker', cause: err })));
  worker.on('exit', (code) => fail(new WeftError('WEFT_ERR_CONSUL_REQUEST', `the KV decoding worker exited (${code})`, { key: 'worker', value: code })));
  shared = p;
  return p;
}

/**
 * Follows one prefix's reads: diff() each raw answer in turn (one at a time),
 * reset() when an answer could not be applied, close() at the end.
 */
export class KvChangeReader {
  private readonly id = nextReaderId++;
  private closed = false;
  /** The worker this reader counts in (a new one after a failure). */
  private worker: NonNullable<typeof shared> | undefined;
  /** The worker the last sink() streams into, and how to send what it has gathered. */
  private sinkOf: NonNullable<typeof shared> | undefined;
  private flush: (() => void) | undefined;

  /** `prefix` names the reads in errors. */
  constructor(private readonly prefix: string) {}

  /** The changes in `body` (a recursive read's raw answer; undefined for none, as a 404) since the previous read. */
  async diff(body: Buffer | undefined): Promise<KvChanges> {
    let data: ArrayBuffer | null = null;
    const transfer: ArrayBuffer[] = [];
    if (body !== undefined && body.length > 0) {
      // A Buffer that owns its whole ArrayBuffer (papi's concatenated body) moves to the worker as it is.
      const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer;
      data = owned ? (body.buffer as ArrayBuffer) : new Uint8Array(body).buffer;
      transfer.push(data);
    }
    return this.ask({ body: data }, transfer);
  }

  /**
   * A stream to pipe one raw answer into as it arrives (DiscoveryClient.queryRaw's
   * `into`); changes() then compares it with the previous read. A read that
   * fails midway is simply followed by the next sink().
   */
  sink(): Writable {
    const p = this.attach();
    this.sinkOf = p;
    p.worker.postMessage({ id: this.id, start: true });
    // Chunks (64 KiB off the socket) are gathered into blocks of 1 MiB, each moved to the worker once full:
    // a message per chunk cost more than the copy.
    let block = new Uint8Array(SINK_BLOCK);
    let filled = 0;
    const send = (): void => {
      if (filled === 0) return;
      const out = filled === block.length ? block : block.slice(0, filled);
      p.worker.postMessage({ id: this.id, chunk: out.buffer }, [out.buffer]);
      block = new Uint8Array(SINK_BLOCK);
      filled = 0;
    };
    this.flush = send;
    return new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        for (let at = 0; at < chunk.length; ) {
          const n = Math.min(chunk.length - at, block.length - filled);
          block.set(chunk.subarray(at, at + n), filled);
          filled += n;
          at += n;
          if (filled === block.length) send();
        }
        done();
      },
    });
  }

  /** The changes in the answer piped into the last sink() (`present` false: there was none, as a 404) since the previous read. */
  async changes(present: boolean): Promise<KvChanges> {
    if (this.sinkOf === undefined || this.sinkOf !== shared) {
      throw new WeftError('WEFT_ERR_CONSUL_REQUEST', `the answer for ${this.prefix} went to a worker that is gone: read again`, { key: this.prefix });
    }
    this.sinkOf = undefined;
    this.flush?.();
    this.flush = undefined;
    return this.ask({ end: true, present }, []);
  }

  private attach(): NonNullable<typeof shared> {
    if (this.closed) throw new WeftError('WEFT_ERR_CONSUL_UNAVAILABLE', `the reader of ${this.prefix} is closed`, { key: this.prefix });
    if (this.worker === undefined || this.worker !== shared) {
      this.worker = pool();
      this.worker.readers++;
    }
    return this.worker;
  }

  private async ask(message: object, transfer: ArrayBuffer[]): Promise<KvChanges> {
    const p = this.attach();
    const seq = p.seq++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      p.pending.set(seq, { resolve, reject });
      p.worker.postMessage({ ...message, id: this.id, seq }, transfer);
    });
    if (reply.error !== undefined) {
      throw new WeftError('WEFT_ERR_CONSUL_REQUEST', `consul GET /v1/kv/${this.prefix}?recurse: unreadable answer: ${reply.error}`, { key: this.prefix, value: reply.error });
    }
    const keys = reply.keys ?? [];
    const changed: KvChange[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) changed[i] = { key: keys[i]!, modifyIndex: reply.indexes![i]!, value: reply.values![i]! };
    return { changed, gone: reply.gone ?? [], entries: reply.entries ?? 0, full: reply.full === true };
  }

  /** Forgets the previous read: the next diff() is `full`. */
  reset(): void {
    if (this.closed || this.worker === undefined || this.worker !== shared) return;
    this.worker.worker.postMessage({ forget: this.id });
  }

  /** Ends this reader (the worker ends with the last one). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const p = this.worker;
    if (p === undefined || p !== shared) return;
    p.worker.postMessage({ forget: this.id });
    if (--p.readers > 0) return;
    shared = undefined;
    void p.worker.terminate();
  }
}
