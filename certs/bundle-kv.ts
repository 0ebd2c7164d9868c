/**
 * Publishing and reading the trust bundle in Consul KV through the `consul`
 * npm client (the same code path for the dev agent and a real cluster). The
 * functions take the smallest interface they need, so certs/ never depends on
 * discovery/ internals; src/ wiring hands in the client.
 */
import type Consul from 'consul';
import { WeftError } from '../base/errors.js';
import { BUNDLE_KV_KEY, type TrustBundle, parseBundle, serializeBundle } from './bundle.js';

/** The part of a `consul` client that reads and writes the bundle. */
export interface BundleKvClient {
  readonly kv: {
    get(key: string): Promise<{ Value: string | null } | null | undefined>;
    set(key: string, value: string): Promise<boolean>;
  };
}

/** Writes the bundle to `weft/ca/roots`. WEFT_ERR_CONSUL_UNAVAILABLE / _REQUEST on failure. */
export async function publishBundle(consul: BundleKvClient, bundle: TrustBundle): Promise<void> {
  const json = serializeBundle(bundle); // refuses private key material before anything leaves the process
  let ok: boolean;
  try {
    ok = await consul.kv.set(BUNDLE_KV_KEY, json);
  } catch (err) {
    throw consulError(err, `write ${BUNDLE_KV_KEY}`);
  }
  if (!ok) throw new WeftError('WEFT_ERR_CONSUL_REQUEST', `Consul refused the write of ${BUNDLE_KV_KEY}`, { key: BUNDLE_KV_KEY });
}

/** Reads the bundle, or undefined when none has been published. */
export async function readBundle(consul: BundleKvClient): Promise<TrustBundle | undefined> {
  let item: { Value: string | null } | null | undefined;
  try {
    item = await consul.kv.get(BUNDLE_KV_KEY);
  } catch (err) {
    throw consulError(err, `read ${BUNDLE_KV_KEY}`);
  }
  if (item === null || item === undefined || item.Value === null) return undefined;
  return parseBundle(item.Value);
}

/** A running watch; `stop()` ends it. */
export interface BundleWatch {
  stop(): void;
}

/**
 * Follows `weft/ca/roots` with blocking queries and calls `onBundle` for each
 * new valid bundle. A bad value or a Consul error goes to `onError` and the
 * watch keeps going (the client backs off), so one bad write never blinds a proxy.
 */
export function watchBundle(
  consul: Consul,
  handlers: { onBundle(bundle: TrustBundle): void; onError(err: WeftError): void },
): BundleWatch {
  const watch = consul.watch({ method: consul.kv.get, options: { key: BUNDLE_KV_KEY } });
  watch.on('change', (item: { Value: string | null } | undefined) => {
    if (item === undefined || item.Value === null) return;
    try {
      handlers.onBundle(parseBundle(item.Value));
    } catch (err) {
      handlers.onError(err as WeftError);
    }
  });
  watch.on('error', (err: unknown) => handlers.onError(consulError(err, `watch ${BUNDLE_KV_KEY}`)));
  return { stop: () => watch.end() };
}

/** Maps a consul client error to WEFT_ERR_CONSUL_REQUEST (Consul answered) or _UNAVAILABLE (it did not). */
export function consulError(err: unknown, action: string): WeftError {
  const e = err as { isResponse?: boolean; statusCode?: number; message?: string; code?: string };
  if (e.isResponse === true) {
    return new WeftError('WEFT_ERR_CONSUL_REQUEST', `Consul answered ${e.statusCode ?? '?'} to ${action}: ${e.message ?? ''}`, { key: BUNDLE_KV_KEY, cause: err });
  }
  return new WeftError('WEFT_ERR_CONSUL_UNAVAILABLE', `cannot reach Consul to ${action}: ${e.code ?? e.message ?? String(err)}`, { key: BUNDLE_KV_KEY, cause: err });
}
