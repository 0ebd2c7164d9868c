/**
 * The schema of `<dataDir>/proxy/local.json`, the agent's hand-off to its
 * proxy (host-proxy.ts: the contract). The proxy checks documents against it
 * with a check written out in src/wiring/proxy-local-config.ts (no TypeBox in
 * the data plane); test/src/wiring/proxy-local-config.test.ts holds the two
 * to the same verdicts and messages, so a change here goes there too.
 */
import { type Static, Type } from '@sinclair/typebox';
import { SERVICE_NAME_PATTERN } from './names.js';

/** One local service that calls out through the mesh. */
export const LocalServiceSchema = Type.Object(
  {
    /** Service name (DNS label). */
    service: Type.String({ pattern: SERVICE_NAME_PATTERN }),
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
