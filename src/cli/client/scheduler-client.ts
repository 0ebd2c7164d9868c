/**
 * A small typed client for the scheduler's HTTP API, written against
 * base/contracts/scheduler-api.ts: one `call(route, request)` whose request and
 * response types come from the contract's TypeBox schemas, using Node 20's
 * fetch. Answers are checked against the contract, so a server that drifted
 * fails loudly here instead of rendering half a table.
 *
 * Every failure is a WeftError the CLI prints as `weft: CODE: message`:
 * the API's own `{ code, message, key, value }` when it answered with one,
 * WEFT_ERR_SCHEDULER_UNREACHABLE (naming the address) when nothing answered,
 * WEFT_ERR_SCHEDULER_RESPONSE when the answer is not the contract's.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  AUTH_HEADER,
  ApiErrorSchema,
  ROUTE_SCHEMAS,
  ROUTES,
  bearer,
  pathOf,
  routeOf,
} from '../../../base/contracts/scheduler-api.js';
import { ERROR_CODES, type ErrorCode, WeftError } from '../../../base/errors.js';


/** A route's name in the contract (`submitJob`, `jobStatus`, `jobAutoscale`, ...). */
export type RouteName = keyof typeof ROUTES;
type Schemas = typeof ROUTE_SCHEMAS;
/** The success body of a route. */
export type ResponseOf<K extends RouteName> = Static<Schemas[K]['response']>;
/** The request body of a route (undefined for routes without one). */
export type BodyOf<K extends RouteName> = Schemas[K] extends { body: infer B extends TSchema } ? Static<B> : undefined;
/** The path parameters of a route. */
export type ParamsOf<K extends RouteName> = Schemas[K] extends { params: infer P extends TSchema } ? Static<P> : undefined;

/** What one call sends. */
export interface CallRequest<K extends RouteName> {
  params?: ParamsOf<K>;
  query?: Record<string, string | number | boolean>;
  body?: BodyOf<K>;
}

/** How the client reaches the scheduler. */
export interface SchedulerClientOptions {
  /** `http://host:port` (no path). */
  address: string;
  token?: string | undefined;
  /** Where the token came from, for the 401 hint (`$WEFT_TOKEN`, `--token`, the token file). */
  tokenSource?: string | undefined;
  /** Per request; the default suits every route (none of them blocks). */
  timeoutMs?: number;
}

/** Default per-request timeout. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

/** Talks to one scheduler API. */
export class SchedulerClient {
  readonly address: string;
  readonly #token: string | undefined;
  readonly #tokenSource: string | undefined;
  readonly #timeoutMs: number;

  constructor(opts: SchedulerClientOptions) {
    this.address = opts.address.replace(/\/+$/, '');
    this.#token = opts.token;
    this.#tokenSource = opts.tokenSource;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** Calls a route and returns its body, checked against the contract. */
  async call<K extends RouteName>(route: K, req: CallRequest<K> = {}): Promise<ResponseOf<K>> {
    const { method } = routeOf(ROUTES[route]);
    let url = this.address + pathOf(ROUTES[route], (req.params ?? {}) as Record<string, string>);
    if (req.query !== undefined) {
      const qs = new URLSearchParams(Object.entries(req.query).map(([k, v]) => [k, String(v)]));
      url += `?${qs}`;
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#token !== undefined) headers[AUTH_HEADER] = bearer(this.#token);
    let body: string | undefined;
    if (req.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.body);
    }

    let res: Response;
    try {
      res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (err) {
      throw this.#unreachable(err);
    }
    const text = await res.text().catch((err: unknown) => {
      throw this.#unreachable(err);
    });
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new WeftError('WEFT_ERR_SCHEDULER_RESPONSE', `${method} ${url}: answered ${res.status} with a body that is not JSON: ${clip(text)}`, {
        key: 'url',
        value: url,
      });
    }
    if (!res.ok) throw this.#apiError(res.status, json, `${method} ${url}`);
    const schema = ROUTE_SCHEMAS[route].response as TSchema;
    if (!Value.Check(schema, json)) {
      const first = Value.Errors(schema, json).First();
      throw new WeftError(
        'WEFT_ERR_SCHEDULER_RESPONSE',
        `${method} ${url}: the answer does not match the API contract${first ? ` at ${first.path || '/'}: ${first.message}` : ''} (is the scheduler another weft version?)`,
        { key: first?.path ?? 'body', value: first?.value },
      );
    }
    return json as ResponseOf<K>;
  }

  /** The API's error answer as a WeftError with the same code, key and value. */
  #apiError(status: number, json: unknown, what: string): WeftError {
    if (!Value.Check(ApiErrorSchema, json)) {
      return new WeftError('WEFT_ERR_SCHEDULER_RESPONSE', `${what}: answered ${status} without weft's error shape: ${clip(JSON.stringify(json) ?? '')}`, {
        key: 'status',
        value: status,
      });
    }
    const e = json as Static<typeof ApiErrorSchema>;
    if (!(e.code in ERROR_CODES)) {
      // A newer scheduler may know codes this CLI does not: keep its code visible.
      return new WeftError('WEFT_ERR_SCHEDULER_RESPONSE', `${e.code}: ${e.message}`, { key: e.key ?? 'code', value: e.code });
    }
    let message = e.message;
    if (e.code === 'WEFT_ERR_API_UNAUTHORIZED') message += `; ${this.#tokenHint()}`;
    if (e.code === 'WEFT_ERR_JOB_INVALID' && Array.isArray(e.value)) {
      // Every problem of a job spec on its own line, path first, as `weft plan` users fix them.
      const problems = (e.value as Array<{ path?: unknown; message?: unknown }>).map((p) => `\n  ${String(p.path ?? '')}: ${String(p.message ?? '')}`);
      if (!problems.some((p) => message.includes(p.trim()))) message += problems.join('');
    }
    const details: { key?: string; value?: unknown } = {};
    if (e.key !== undefined) details.key = e.key;
    if ('value' in e) details.value = e.value;
    return new WeftError(e.code as ErrorCode, message, details);
  }

  #tokenHint(): string {
    if (this.#token === undefined) {
      return 'no token was sent: set WEFT_TOKEN (or pass --token), or run on the scheduler\'s machine where <data-dir>/scheduler/token is read';
    }
    return `the token from ${this.#tokenSource ?? 'the configuration'} was refused`;
  }

  #unreachable(err: unknown): WeftError {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const name = (err as { name?: string }).name;
    const why =
      name === 'TimeoutError' || name === 'AbortError'
        ? `no answer within ${Math.round(this.#timeoutMs / 1000)}s`
        : (cause?.code ?? cause?.message ?? (err as Error).message ?? String(err));
    return new WeftError(
      'WEFT_ERR_SCHEDULER_UNREACHABLE',
      `cannot reach the scheduler API at ${this.address} (${why}): is \`weft scheduler\` (or \`weft up\`) running there? Point the CLI elsewhere with --addr or WEFT_ADDR`,
      { key: 'client.address', value: this.address, cause: err },
    );
  }
}

function clip(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 200 ? `${one.slice(0, 200)}...` : one;
}
