/**
 * Secret values for allocations, fetched from the scheduler's API at task
 * start (`GET /v1/allocations/:host/:alloc/secrets`, the host's agent token).
 * alloc-secrets.ts puts them in the task's environment or files: never into
 * KV, logs, the allocation's status or a driver's state file.
 */
import type { AllocSecretsResponse } from '../base/contracts/scheduler-api.js';
import { callScheduler } from './scheduler-http.js';

/** Returns the values of one allocation's secrets, by secret name. */
export type SecretSource = (host: string, alloc: string) => Promise<Map<string, string>>;

/** A SecretSource over the scheduler API at `address` (`host:port` or URL) with a host's agent token. */
export function apiSecretSource(address: string, token: string, timeoutMs = 10_000): SecretSource {
  return async (host, alloc) => {
    const body = await callScheduler<AllocSecretsResponse>({ address, token, timeoutMs }, 'allocSecrets', { host, alloc });
    return new Map(body.secrets.map((s) => [s.name, s.value]));
  };
}
