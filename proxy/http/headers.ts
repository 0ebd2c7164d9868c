/**
 * Header hygiene for both directions of the proxy. A proxy forwards
 * end-to-end headers and consumes hop-by-hop ones (RFC 9110 7.6.1): the
 * fixed list, plus whatever the sender names in `Connection`, which is how a
 * caller would otherwise make us drop (or keep) a header of its choosing.
 *
 * X-Forwarded-*: a caller that is not trusted (an app talking to outbound)
 * could claim any client address, so its values are overwritten, never
 * appended to. A trusted caller (a peer proxy that proved a mesh identity on
 * inbound, and which itself overwrote its app's values) is appended to. The
 * headers stay informational: nothing in weft authorizes on them.
 *
 * The policy is compiled once into a set; h1/head.ts applies it in one pass
 * over a request's flat header list (no allocation for the usual
 * `Connection: keep-alive` / `close`).
 */
/** Hop-by-hop headers never forwarded in either direction. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Client-address headers an untrusted caller may not set (we overwrite or drop them). */
export const FORWARDING_HEADERS: ReadonlySet<string> = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'forwarded',
]);

/** Headers a `Connection` token may not remove: without Host the upstream could not route. */
const PROTECTED: ReadonlySet<string> = new Set(['host']);

/** How a direction treats the request headers of its callers. */
export interface RequestHeaderPolicy {
  /** True when callers are trusted to have set X-Forwarded-* (append); false overwrites them. */
  readonly trustForwarded: boolean;
  /** The protocol callers used to reach this listener ('https' on inbound, 'http' on outbound). */
  readonly proto: 'http' | 'https';
  /** More lower-case header names never forwarded (e.g. the proxy's own x-weft-* control headers). */
  readonly drop?: Iterable<string>;
}

/** A policy compiled for the hot path: see `compileRequestPolicy`. */
export interface CompiledRequestPolicy {
  readonly skip: ReadonlySet<string>;
  readonly trustForwarded: boolean;
  readonly proto: 'http' | 'https';
}

/** Builds the skip set once per listener. */
export function compileRequestPolicy(policy: RequestHeaderPolicy): CompiledRequestPolicy {
  const skip = new Set(HOP_BY_HOP);
  for (const name of policy.drop ?? []) skip.add(name.toLowerCase());
  if (!policy.trustForwarded) for (const name of FORWARDING_HEADERS) skip.add(name);
  return { skip, trustForwarded: policy.trustForwarded, proto: policy.proto };
}

/**
 * The extra header names the sender listed in `Connection`, or undefined for
 * the common values (`keep-alive`, `close`, `upgrade`) that name no header
 * we would forward anyway.
 */
export function connectionNominated(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined;
  const value = Array.isArray(connection) ? connection.join(',') : connection;
  if (value.length <= 10) {
    const lower = value.toLowerCase();
    if (lower === 'keep-alive' || lower === 'close' || lower === 'upgrade') return undefined;
  }
  let out: Set<string> | undefined;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || PROTECTED.has(name)) continue;
    if (out === undefined) out = new Set();
    out.add(name);
  }
  return out;
}
