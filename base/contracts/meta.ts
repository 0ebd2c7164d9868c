/**
 * weft's names in Consul's catalog, written once (ARCHITECTURE.md, "Contracts"):
 * the service names of weft's own processes, the tag of every instance weft
 * registers, and the Meta keys of each kind of registration. The writers
 * (discovery/registry.ts, agent/node.ts, src/wiring/proxy-registration.ts) and
 * the readers (the proxy's routing, scheduler/state/observe.ts) use these, so
 * they cannot drift. Meta carries what node-consul 2.x cannot send (Weights).
 */
import { invalid } from '../errors.js';
import { DEFAULT_WEIGHT, MAX_WEIGHT } from './names.js';

/** Every instance weft registers carries this tag. */
export const WEFT_TAG = 'weft';

/** Host agents: one per host, TTL check = the node's heartbeat (Meta: NODE_META). */
export const AGENT_SERVICE = 'weft-agent';

/** Host proxies: one per host, Port = the metrics port (Prometheus finds proxies by this name; Meta: PROXY_META). */
export const PROXY_SERVICE = 'weft-proxy';

/** Schedulers (HTTP check of /v1/health). */
export const SCHEDULER_SERVICE = 'weft-scheduler';

/** Meta keys of an instance's registration (`<service>`, ID `<host>-<instance>`). */
export const SERVICE_META = {
  /** The host's node name: the first half of the ID. */
  host: 'weft_host',
  /** The instance's name on that host (allocation or container): the second half of the ID. */
  instance: 'weft_instance',
  /** The instance's version, which splits choose between. */
  version: 'weft_version',
  /** The instance's weight, 0..MAX_WEIGHT (names.ts). */
  weight: 'weft_weight',
  /** The host proxy's inbound mTLS port: absent outside the mesh. */
  meshPort: 'weft_mesh_port',
} as const;

/** Meta keys of a `weft-proxy` registration. */
export const PROXY_META = {
  /** The host's node name. */
  host: SERVICE_META.host,
  /** The proxy's inbound mTLS port. */
  meshPort: SERVICE_META.meshPort,
  /** weft's version on the host. */
  version: SERVICE_META.version,
} as const;

/** Meta keys of a `weft-agent` registration: how a host agent describes its host to the scheduler. */
export const NODE_META = {
  /** The host's node name. */
  host: SERVICE_META.host,
  /** CPU capacity in millicores. */
  cpu: 'weft_cpu',
  /** Memory capacity in MiB. */
  memory: 'weft_memory',
  /** Drivers the agent runs (comma list). */
  driver: 'weft_driver',
  /** weft's version on the host. */
  version: SERVICE_META.version,
  /** Host volume names (comma list), for sticky host-volume placement. */
  volumes: 'weft_volumes',
} as const;

/** Meta key prefix of node attributes on `weft-agent`: `weft_attr_zone` = `a`. */
export const ATTR_META_PREFIX = 'weft_attr_';

/**
 * Reads an instance's weight from its Consul Meta. Absent -> DEFAULT_WEIGHT.
 * Anything but an integer 0..MAX_WEIGHT throws WEFT_ERR_WEIGHT_INVALID naming the instance, so
 * the proxy can log and skip that one registration rather than guess.
 */
export function weightFromMeta(meta: Readonly<Record<string, string>> | undefined, serviceId: string): number {
  const raw = meta?.[SERVICE_META.weight];
  if (raw === undefined || raw === '') return DEFAULT_WEIGHT;
  const key = `${serviceId}: Meta.${SERVICE_META.weight}`;
  if (!/^[0-9]{1,5}$/.test(raw)) throw invalid('WEFT_ERR_WEIGHT_INVALID', key, raw, `must be an integer from 0 to ${MAX_WEIGHT}`);
  const weight = Number(raw);
  if (weight > MAX_WEIGHT) throw invalid('WEFT_ERR_WEIGHT_INVALID', key, raw, `must be an integer from 0 to ${MAX_WEIGHT}`);
  return weight;
}
