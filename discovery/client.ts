/**
 * The one way weft talks to Consul: a `consul` npm client built from weft's
 * config, whose failures come back as coded WeftErrors (unreachable vs. an HTTP
 * error with its status and path), and a blocking-query call that returns the
 * X-Consul-Index and can be aborted mid-flight. The embedded dev agent and a
 * real cluster go through exactly this code.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Writable } from 'node:stream';
import Consul from 'consul';
import { WeftError } from '../base/errors.js';
import { type Logger, silentLogger } from '../base/log.js';
import { formatDuration } from '../base/duration.js';

/** Parses CONSUL_HTTP_ADDR-style addresses into what the consul client wants. */
export function parseConsulAddress(address: string): { host: string; port: number; secure: boolean } {
  const secure = address.startsWith('https://');
  const bare = address.replace(/^https?:\/\//, '').replace(/\/$/, '');
  const [host, port] = bare.split(':');
  return { host: host!, port: port === undefined ? (secure ? 443 : 8500) : Number(port), secure };
}

/** How long a non-blocking request may take before Consul counts as unreachable. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** Socket-level failures: Consul is not there (as opposed to answering with an error). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

/** A WeftError from a Consul call; HTTP errors also carry the status, method and path. */
export class ConsulError extends WeftError {
  readonly status?: number;
  readonly method?: string;
  readonly path?: string;

  constructor(
    code: 'WEFT_ERR_CONSUL_UNAVAILABLE' | 'WEFT_ERR_CONSUL_REQUEST',
    message: string,
    details: { key?: string; value?: unknown; cause?: unknown; status?: number; method?: string; path?: string },
  ) {
    super(code, message, details);
    if (details.status !== undefined) this.status = details.status;
    if (details.method !== undefined) this.method = details.method;
    if (details.path !== undefined) this.path = details.path;
  }
}

/** Where and how to reach Consul: the `consul` part of weft's config. */
export interface ConsulSettings {
  /** `host:port` or `http(s)://host:port`, like CONSUL_HTTP_ADDR. */
  address: string;
  token?: string | undefined;
}

export interface ClientOptions {
  logger?: Logger;
  requestTimeoutMs?: number;
}

/** Options node-consul reads but does not declare in its types. */
export interface RequestExtras {
  ctx: EventEmitter;
  index?: string;
  wait?: string;
  timeout?: number;
}

/** One answer to a blocking query. `index` is absent when Consul sent no X-Consul-Index. */
export interface QueryResult<T> {
  body: T | undefined;
  index: bigint | undefined;
  status: number;
}

/** A Consul client for weft: `consul` is the raw node-consul client for calls not wrapped here. */
export class DiscoveryClient {
  readonly consul: Consul;
  readonly address: string;
  readonly logger: Logger;
  readonly requestTimeoutMs: number;
  private readonly token: string | undefined;

  constructor(settings: ConsulSettings, opts: ClientOptions = {}) {
    const { host, port, secure } = parseConsulAddress(settings.address);
    this.address = settings.address;
    this.token = settings.token;
    this.logger = opts.logger ?? silentLogger;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const defaults: Record<string, unknown> = { timeout: this.requestTimeoutMs };
    if (settings.token !== undefined) defaults['token'] = settings.token;
    this.consul = new Consul({ host, port, secure, defaults });
  }

  /** Runs one node-consul call; its failures become ConsulErrors naming `op`. */
  async call<T>(op: string, run: (consul: Consul) => Promise<T>): Promise<T> {
    try {
      return await run(this.consul);
    } catch (err) {
      throw this.wrap(err, op);
    }
  }

  /**
   * Runs a (blocking) read that reports its X-Consul-Index. `run` must pass
   * `extras` into the node-consul options. Aborting `signal` ends the HTTP
   * request at once and rejects with the signal's reason.
   */
  async query<T>(
    op: string,
    run: (consul: Consul, extras: RequestExtras) => Promise<unknown>,
    q: { index?: bigint; waitMs?: number; signal?: AbortSignal } = {},
  ): Promise<QueryResult<T>> {
    q.signal?.throwIfAborted();
    // node-consul aborts a request when its ctx emits 'cancel', and answers [res, body] with includeResponse.
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true, canceled: false });
    const extras: RequestExtras = { ctx };
    if (q.index !== undefined && q.index > 0n) extras.index = q.index.toString();
    if (q.waitMs !== undefined) {
      extras.wait = formatDuration(q.waitMs);
      // Consul adds up to wait/16 of jitter; past that plus a margin the connection is dead.
      extras.timeout = q.waitMs + Math.ceil(q.waitMs / 16) + this.requestTimeoutMs;
    }
    const abort = (): void => {
      ctx.canceled = true;
      ctx.emit('cancel');
    };
    q.signal?.addEventListener('abort', abort, { once: true });
    try {
      const answer = (await run(this.consul, extras)) as [IncomingMessage, T | undefined] | undefined;
      const res = answer?.[0];
      const header = res?.headers['x-consul-index'];
      let index: bigint | undefined;
      try {
        index = typeof header === 'string' && header !== '' ? BigInt(header) : undefined;
      } catch {
        index = undefined;
      }
      return { body: answer?.[1], index, status: res?.statusCode ?? 0 };
    } catch (err) {
      if (q.signal?.aborted) throw q.signal.reason;
      throw this.wrap(err, op);
    } finally {
      q.signal?.removeEventListener('abort', abort);
    }
  }

  /**
   * A (blocking) GET whose answer stays bytes: nothing is decoded here, for
   * answers of megabytes the caller decodes elsewhere (kv-changes.ts, off the
   * main thread). `path` is below /v1, with `{name}` placeholders filled from
   * `params` (encoded); a 404 answers no body. With `into`, the answer is
   * piped there as it arrives (and `body` is undefined): not even gathered
   * into one buffer here. Otherwise as query().
   */
  queryRaw(
    op: string,
    path: string,
    params: Record<string, string>,
    query: Record<string, string>,
    q: { index?: bigint; waitMs?: number; signal?: AbortSignal; into?: Writable } = {},
  ): Promise<QueryResult<Buffer>> {
    return this.query<Buffer>(
      op,
      (consul, extras) => {
        const headers: Record<string, string> = this.token === undefined ? {} : { 'x-consul-token': this.token };
        const req = { name: op, path, params, query: { ...query }, headers, buffer: true, ctx: extras.ctx, timeout: extras.timeout ?? this.requestTimeoutMs, ...(q.into === undefined ? {} : { pipe: q.into }) };
        if (extras.index !== undefined) req.query['index'] = extras.index;
        if (extras.wait !== undefined) req.query['wait'] = extras.wait;
        // papi's own request call (node-consul's methods are built on it), asked for the body as bytes.
        return (consul as unknown as PapiClient)._get(req, (request, next) => {
          const res = request.res;
          if (res?.statusCode === 404) return next(false, undefined, [res, undefined]);
          if (request.err !== undefined && request.err !== null) {
            (request.err as { response?: unknown }).response = res;
            return next(request.err);
          }
          return next(false, undefined, [res, res?.body]);
        });
      },
      q,
    );
  }

  /** Turns a node-consul/papi failure into a ConsulError; programming errors pass through. */
  wrap(err: unknown, op: string): Error {
    if (err instanceof WeftError) return err;
    const e = err as {
      message?: string;
      code?: string;
      isResponse?: boolean;
      isTimeout?: boolean;
      isCodec?: boolean;
      isValidation?: boolean;
      response?: IncomingMessage & { body?: unknown; req?: { method?: string; path?: string } };
    };
    if (e.isValidation === true) return err as Error;
    if (e.isResponse === true || e.isCodec === true) {
      const res = e.response;
      const status = res?.statusCode ?? 0;
      const method = res?.req?.method ?? 'GET';
      const path = safeDecode((res?.req?.path ?? op).split('?')[0]!); // node-consul sends weft/x as weft%2Fx
      const body = bodyText(res?.body);
      const what = e.isCodec === true ? `unreadable answer: ${e.message ?? ''}` : `${status}${body === '' ? '' : ` ${body}`}`;
      return new ConsulError('WEFT_ERR_CONSUL_REQUEST', `consul ${method} ${path} (${op}): ${what}`, {
        key: path,
        value: status,
        status,
        method,
        path,
        cause: err,
      });
    }
    const reason = e.isTimeout === true ? 'no answer in time' : (e.code ?? e.message ?? String(err));
    if (e.isTimeout !== true && e.code !== undefined && !UNREACHABLE.has(e.code)) {
      this.logger.debug({ err, op }, 'unexpected transport error treated as Consul unavailable');
    }
    return new ConsulError('WEFT_ERR_CONSUL_UNAVAILABLE', `consul at ${this.address} unreachable (${op}): ${reason}`, {
      key: 'consul.address',
      value: this.address,
      cause: err,
    });
  }

  /** Closes idle keep-alive connections. In-flight queries end through their signals. */
  close(): void {
    this.consul.destroy();
  }
}

/** The part of papi's client (node-consul's base class) that queryRaw uses. */
interface PapiClient {
  _get(
    req: object,
    middleware: (request: { res?: IncomingMessage & { body?: Buffer }; err?: unknown }, next: (err: unknown, value?: unknown, result?: unknown) => void) => void,
  ): Promise<unknown>;
}

/** Builds the client from weft's config (`consul.address`, `consul.token`). */
export function createDiscoveryClient(config: { consul: ConsulSettings }, opts: ClientOptions = {}): DiscoveryClient {
  return new DiscoveryClient(config.consul, opts);
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return '';
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : JSON.stringify(body);
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 200 ? `${oneLine.slice(0, 200)}…` : oneLine;
}
