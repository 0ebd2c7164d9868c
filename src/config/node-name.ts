/** The default `nodeName`: this host's name, cut to what Consul and the schema accept. */
import { hostname } from 'node:os';

/** The host name with characters outside `[A-Za-z0-9_.-]` replaced, at most 63 long; `weft-node` when it does not start with a letter or digit. */
export function defaultNodeName(): string {
  const h = hostname().replace(/[^A-Za-z0-9_.-]/g, '-');
  return /^[A-Za-z0-9]/.test(h) ? h.slice(0, 63) : 'weft-node';
}
