/**
 * The `weft-agent` registration: how a host agent describes its host in Consul
 * and how the scheduler reads it back. One definition, so the writer
 * (agent/node.ts) and the reader (scheduler/state/observe.ts) cannot drift.
 */

/** The Consul service name of host agents (one instance per host, TTL check = heartbeat). */
export const AGENT_SERVICE = 'weft-agent';

/** Meta keys of a `weft-agent` registration. */
export const NODE_META = {
  /** The host's node name. */
  host: 'weft_host',
  /** CPU capacity in millicores. */
  cpu: 'weft_cpu',
  /** Memory capacity in MiB. */
  memory: 'weft_memory',
  /** Drivers the agent runs (comma list). */
  driver: 'weft_driver',
  /** weft's version on the host. */
  version: 'weft_version',
  /** Host volume names (comma list), for sticky host-volume placement. */
  volumes: 'weft_volumes',
} as const;

/** Meta key prefix of node attributes: `weft_attr_zone` = `a`. */
export const ATTR_META_PREFIX = 'weft_attr_';
