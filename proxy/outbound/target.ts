/**
 * Which service a request to the outbound proxy is for. Apps call services by
 * name in one of two ways:
 * - as an HTTP proxy (`HTTP_PROXY=http://127.0.0.1:15001`): the request line
 *   carries an absolute URI, `GET http://backend/path HTTP/1.1`;
 * - directly, with the service in the Host header: `backend` or `backend.weft`
 *   (a port in either is ignored: the service decides where it listens).
 * A listener dedicated to one upstream (`weft.upstreams` `svc:localPort`)
 * ignores both and always routes to its service.
 *
 * `https://` URIs and CONNECT are refused: the app would do TLS itself and
 * the proxy could neither balance nor retry. Apps speak plain HTTP to the
 * local proxy; the proxy does the mTLS.
 */
import { isServiceName } from './options.js';

/** The suffix apps may use to make mesh names look like host names. */
export const MESH_DOMAIN = 'weft';

/** A routable request: the service and the origin-form path to send. */
export interface RouteTarget {
  readonly service: string;
  /** Origin-form request target (`/path?query`). */
  readonly path: string;
  /** The Host header to send upstream (the app's, or the service name for absolute-form). */
  readonly host: string;
}

/** Why a request cannot be routed (answered 400 with WEFT_ERR_PROXY_TARGET_INVALID). */
export interface TargetError {
  readonly error: string;
}

/** What the target is read from: the request line and the Host header. */
export interface TargetRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: { readonly host?: string | undefined };
}

/** Reads the service out of a request. */
export function resolveTarget(req: TargetRequest, fixedService?: string): RouteTarget | TargetError {
  const url = req.url ?? '/';
  if (req.method === 'CONNECT') return { error: 'CONNECT is not supported: send plain HTTP, the proxy does the mTLS' };
  let host: string | undefined;
  let path = url;
  if (!url.startsWith('/') && url !== '*') {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return { error: `bad request target ${JSON.stringify(url.slice(0, 100))}` };
    }
    if (parsed.protocol !== 'http:') return { error: `only http:// URIs are proxied (got ${parsed.protocol}): the proxy does the mTLS` };
    host = parsed.host;
    path = `${parsed.pathname}${parsed.search}`;
  } else {
    host = req.headers.host;
  }
  if (fixedService !== undefined) return { service: fixedService, path, host: host ?? fixedService };
  if (host === undefined || host === '') return { error: 'no Host header and no absolute URI: cannot tell which service is called' };
  const service = serviceOfHost(host);
  if (service === undefined) return { error: `host ${JSON.stringify(host.slice(0, 100))} is not a service name (use "backend" or "backend.${MESH_DOMAIN}")` };
  return { service, path, host };
}

/** `backend`, `backend:8080`, `backend.weft`, `Backend.weft.` -> `backend`; anything else -> undefined. */
export function serviceOfHost(host: string): string | undefined {
  let name = host.toLowerCase();
  if (name.startsWith('[')) return undefined; // an IPv6 literal
  const colon = name.lastIndexOf(':');
  if (colon !== -1) {
    if (!/^[0-9]{1,5}$/.test(name.slice(colon + 1))) return undefined;
    name = name.slice(0, colon);
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.endsWith(`.${MESH_DOMAIN}`)) name = name.slice(0, -(MESH_DOMAIN.length + 1));
  return isServiceName(name) && !/^[0-9]+$/.test(name) ? name : undefined;
}
