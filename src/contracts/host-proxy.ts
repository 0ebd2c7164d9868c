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
 */
import { type Static, Type } from '@sinclair/typebox';

/** The folder under the data directory. */
export const HOST_PROXY_DIR = 'proxy';
/** The document's file name inside it. */
export const HOST_PROXY_LOCAL_FILE = 'local.json';
/** Identities folder inside it: one sub-folder per service. */
export const HOST_PROXY_IDENTITIES_DIR = 'identities';

/** One local service that calls out through the mesh. */
export const LocalServiceSchema = Type.Object(
  {
    /** Service name (DNS label). */
    service: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }),
    /** The 127.0.0.1 port the proxy listens on for this service's outbound calls. */
    outboundPort: Type.Integer({ minimum: 1, maximum: 65535 }),
  },
  { additionalProperties: false },
);

/** What the agent hands the proxy. */
export const HostProxyLocalSchema = Type.Object(
  {
    /** This host's node name (Consul Meta weft_host of its instances). */
    host: Type.String({ minLength: 1 }),
    /** Bumped on every write, so the proxy can log which version it runs. */
    generation: Type.Integer({ minimum: 0 }),
    services: Type.Array(LocalServiceSchema),
  },
  { additionalProperties: false },
);

export type LocalService = Static<typeof LocalServiceSchema>;
export type HostProxyLocal = Static<typeof HostProxyLocalSchema>;
