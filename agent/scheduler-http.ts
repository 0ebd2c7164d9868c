/**
 * The agent's calls to the scheduler API (the agent routes: CSR signing, CA
 * roots, its allocations' secrets) with the host's agent token. A refusal
 * keeps the scheduler's code (WEFT_ERR_CSR_IDENTITY, WEFT_ERR_API_FORBIDDEN,
 * ...) so the agent's log names the real reason. Error bodies of these routes
 * never carry a secret value, so they are safe to put in messages.
 */
import { AUTH_HEADER, bearer, pathOf, ROUTES } from '../base/contracts/scheduler-api.js';
import { ERROR_CODES, type ErrorCode, WeftError } from '../base/errors.js';

/** Where and as whom the agent calls the scheduler. */
export interface SchedulerEndpoint {
  /** `host:port` or a URL (client.address, WEFT_ADDR, --addr). */
  address: string;
  /** The host's agent token (client.token, WEFT_TOKEN, --token). */
  token: string;
  timeoutMs?: number;
}

/** Calls one agent route and returns its JSON body; throws a WeftError with the scheduler's code on refusal. */
export async function callScheduler<T>(ep: SchedulerEndpoint, route: keyof typeof ROUTES, params: Record<string, string> = {}, body?: unknown): Promise<T> {
  const base = /^https?:\/\//.test(ep.address) ? ep.address.replace(/\/+$/, '') : `http://${ep.address}`;
  const method = ROUTES[route].split(' ')[0]!;
  const url = base + pathOf(ROUTES[route], params);
  const what = `scheduler ${method} ${pathOf(ROUTES[route], params)}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { [AUTH_HEADER]: bearer(ep.token), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(ep.timeoutMs ?? 10_000),
    });
  } catch (err) {
    throw new WeftError('WEFT_ERR_SCHEDULER_UNREACHABLE', `${what}: ${base} did not answer (${(err as Error).message})`, { key: 'client.address', value: base, cause: err });
  }
  let parsed: unknown;
  try {
    parsed = await res.json();
  } catch (err) {
    throw new WeftError('WEFT_ERR_SCHEDULER_RESPONSE', `${what}: ${res.status}, not JSON`, { key: 'client.address', value: base, cause: err });
  }
  if (res.ok) return parsed as T;
  const e = (parsed ?? {}) as { code?: string; message?: string; key?: string };
  const code: ErrorCode = e.code !== undefined && e.code in ERROR_CODES ? (e.code as ErrorCode) : 'WEFT_ERR_SCHEDULER_RESPONSE';
  throw new WeftError(code, `${what}: ${res.status} ${e.code ?? ''}: ${e.message ?? ''}`, { ...(e.key === undefined ? {} : { key: e.key }) });
}
