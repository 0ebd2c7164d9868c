/**
 * SPIFFE IDs as weft uses them: `spiffe://<trust-domain>/ns/<namespace>/svc/<service>`.
 * Parsing is strict (SPIFFE ID spec: lowercase trust domain, path segments of
 * letters, digits, `.`, `-`, `_`, no dot segments, no query, fragment, port or
 * user info) because the ID is what intentions authorize.
 */
import { WeftError } from '../base/errors.js';
import { CONSUL_NAME_PATTERN } from '../base/contracts/names.js';

/** A parsed weft workload identity. */
export interface SpiffeId {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly service: string;
  /** The canonical URI form. */
  readonly uri: string;
}

/** Trust domain: lowercase letters, digits, `.`, `-`, `_` (SPIFFE ID spec 2.1). */
export const TRUST_DOMAIN_PATTERN = '^[a-z0-9][a-z0-9._-]{0,252}$';
/** Namespace and service names: Consul's name rule, which is also a valid SPIFFE path segment. */
export const SEGMENT_PATTERN = CONSUL_NAME_PATTERN;

const TRUST_DOMAIN = new RegExp(TRUST_DOMAIN_PATTERN);
const SEGMENT = new RegExp(SEGMENT_PATTERN);
const WORKLOAD = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/svc\/([^/]+)$/;

/** The default namespace, as in Consul. */
export const DEFAULT_NAMESPACE = 'default';

/** Builds an ID, refusing names that are not valid SPIFFE path segments (WEFT_ERR_SPIFFE_ID_INVALID). */
export function spiffeId(trustDomain: string, namespace: string, service: string): SpiffeId {
  check('trustDomain', trustDomain, TRUST_DOMAIN, 'must be lowercase letters, digits, ".", "-" or "_"');
  check('namespace', namespace, SEGMENT, 'must match ' + SEGMENT_PATTERN);
  check('service', service, SEGMENT, 'must match ' + SEGMENT_PATTERN);
  return { trustDomain, namespace, service, uri: `spiffe://${trustDomain}/ns/${namespace}/svc/${service}` };
}

/** Parses a workload SPIFFE ID URI; throws WEFT_ERR_SPIFFE_ID_INVALID naming the URI. */
export function parseSpiffeId(uri: string): SpiffeId {
  const m = WORKLOAD.exec(uri);
  if (m === null) {
    throw new WeftError('WEFT_ERR_SPIFFE_ID_INVALID', `not a weft SPIFFE ID, want spiffe://<trust-domain>/ns/<namespace>/svc/<service> (got ${JSON.stringify(uri)})`, {
      key: 'spiffeId',
      value: uri,
    });
  }
  // Segments must start with a letter or digit, so "." and ".." never pass.
  return spiffeId(m[1]!, m[2]!, m[3]!);
}

/** The trust domain's own ID (`spiffe://<trust-domain>`), which CA certificates carry. */
export function trustDomainUri(trustDomain: string): string {
  check('trustDomain', trustDomain, TRUST_DOMAIN, 'must be lowercase letters, digits, ".", "-" or "_"');
  return `spiffe://${trustDomain}`;
}

/** A DNS name for a service, or undefined when the service name is not a valid host name (the URI SAN still identifies it). */
export function serviceDnsName(service: string): string | undefined {
  const lower = service.toLowerCase();
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(lower) ? lower : undefined;
}

function check(key: string, value: string, pattern: RegExp, reason: string): void {
  if (!pattern.test(value)) {
    throw new WeftError('WEFT_ERR_SPIFFE_ID_INVALID', `${key}: ${reason} (got ${JSON.stringify(value)})`, { key, value });
  }
}
