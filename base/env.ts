/**
 * Every environment variable weft reads, as a named constant (as linkerd2-proxy
 * does), so a grep finds each one and docs/configuration.md can list them all.
 */

/** Consul's own variable: `host:port` or a URL of the Consul HTTP API. */
export const ENV_CONSUL_HTTP_ADDR = 'CONSUL_HTTP_ADDR';
/** Consul's own ACL token variable. */
export const ENV_CONSUL_HTTP_TOKEN = 'CONSUL_HTTP_TOKEN';
/** Path of a weft config file (YAML or JSON). */
export const ENV_WEFT_CONFIG = 'WEFT_CONFIG';
/** Where weft keeps state (dev Consul data, keys, caches). */
export const ENV_WEFT_DATA_DIR = 'WEFT_DATA_DIR';
/** pino level: trace, debug, info, warn, error, fatal, silent. */
export const ENV_WEFT_LOG_LEVEL = 'WEFT_LOG_LEVEL';
/** Log format: auto (pretty in a terminal, JSON otherwise), json or pretty. */
export const ENV_WEFT_LOG_FORMAT = 'WEFT_LOG_FORMAT';
/** Address the dev Consul agent binds to. */
export const ENV_WEFT_DEV_CONSUL_BIND = 'WEFT_DEV_CONSUL_BIND';
/** Port the dev Consul agent listens on. */
export const ENV_WEFT_DEV_CONSUL_PORT = 'WEFT_DEV_CONSUL_PORT';
/** Node name the dev Consul agent reports. */
export const ENV_WEFT_NODE_NAME = 'WEFT_NODE_NAME';
/** Datacenter name. */
export const ENV_WEFT_DATACENTER = 'WEFT_DATACENTER';
/** The scheduler API the CLI talks to (`weft deploy`, `status`, ...): a URL or `host:port`. */
export const ENV_WEFT_ADDR = 'WEFT_ADDR';
/** The scheduler API's bearer token for the CLI; never pass it as a flag in scripts (it shows in `ps`). */
export const ENV_WEFT_TOKEN = 'WEFT_TOKEN';

/** All of the above, for docs and for the config loader. */
export const ALL_ENV = [
  ENV_CONSUL_HTTP_ADDR,
  ENV_CONSUL_HTTP_TOKEN,
  ENV_WEFT_CONFIG,
  ENV_WEFT_DATA_DIR,
  ENV_WEFT_LOG_LEVEL,
  ENV_WEFT_LOG_FORMAT,
  ENV_WEFT_DEV_CONSUL_BIND,
  ENV_WEFT_DEV_CONSUL_PORT,
  ENV_WEFT_NODE_NAME,
  ENV_WEFT_DATACENTER,
  ENV_WEFT_ADDR,
  ENV_WEFT_TOKEN,
] as const;
