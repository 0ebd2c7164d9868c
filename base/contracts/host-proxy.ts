/**
 * The contract between a host's agent and its proxy: what the agent writes for
 * the proxy to read, so the two stay separate processes (restarting the agent
 * never stops the proxy). Everything lives under `<dataDir>/proxy/`:
 *
 *   local.json                    this file's `HostProxyLocal` document (written atomically: tmp + rename)
 *   identities/<service>/key.pem  the service's private key (0600), generated on this host
 *   identities/<service>/cert.pem leaf + chain
 *   identities/<service>/bundle.pem trusted roots
 *
 * The identity layout is the one `weft cert issue --out DIR` writes, so an
 * operator can run a proxy without an agent. The proxy reloads when local.json
 * or an identity changes (renewals swap certificates without dropping
 * connections). Local instances for inbound forwarding are read from Consul
 * (registrations whose Meta weft_host is this host), not from this file.
 *
 * local.json's schema is host-proxy-schema.ts (TypeBox), apart from these
 * names so that the proxy, which imports them, does not load TypeBox
 * (src/wiring/proxy-local-config.ts checks the file without it).
 */

/**
 * Node flags for the `weft proxy` process; every launcher passes them before
 * the script (the agent's supervisor, `weft up`, the two-hop bench).
 *
 * A semi-space of 2 MB (the young generation is two of them) instead of
 * V8's 16 MB: under load V8 grows the young generation to its maximum, 32 MB
 * of RSS, against an 80 MB budget per proxy; with 2 MB the peak RSS under the
 * two-hop bench fell from 113-155 MB to 108 MB, throughput within the spread
 * of the A/B runs (proxy/README.md, "Figures"). V8 reads
 * the flag only when the heap is created, so the process cannot set it on
 * itself, and bin/weft.js does not re-execute itself to add it: a second
 * process would cost more memory than the flag saves.
 */
export const PROXY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** The folder under the data directory. */
export const HOST_PROXY_DIR = 'proxy';
/** The document's file name inside it. */
export const HOST_PROXY_LOCAL_FILE = 'local.json';
/** Identities folder inside it: one sub-folder per service. */
export const HOST_PROXY_IDENTITIES_DIR = 'identities';

/** The document (local.json) and one of its services: see host-proxy-schema.ts. */
export type { HostProxyLocal, LocalService } from './host-proxy-schema.js';
