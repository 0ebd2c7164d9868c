/**
 * Secret values for allocations, fetched from the scheduler's API at task
 * start (`GET /v1/allocations/:host/:alloc/secrets`, the host's agent token).
 * Values go only into the task's environment: never into KV, logs or the
 * allocation's status.
 */
import { AUTH_HEADER, bearer, pathOf, ROUTES } from '../src/contracts/scheduler-api.js';

/** Returns the values of one allocation's secrets, by secret name. */
export type SecretSource = (host: string, alloc: string) => Promise<Map<string, string>>;

/** A SecretSource over the scheduler API at `address` (`host:port` or URL) with a host's agent token. */
export function apiSecretSource(address: string, token: string, timeoutMs = 10_000): SecretSource {
  const base = /^https?:\/\//.test(address) ? address.replace(/\/$/, '') : `http://${address}`;
  return async (host, alloc) => {
    const res = await fetch(base + pathOf(ROUTES.allocSecrets, { host, alloc }), {
      headers: { [AUTH_HEADER]: bearer(token) },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await res.json()) as { secrets?: Array<{ name: string; value: string }>; code?: string; message?: string };
    // The error body never carries a value: it is safe to put in a message.
    if (!res.ok || body.secrets === undefined) throw new Error(`secrets for ${alloc}: ${res.status} ${body.code ?? ''} ${body.message ?? ''}`.trim());
    return new Map(body.secrets.map((s) => [s.name, s.value]));
  };
}
