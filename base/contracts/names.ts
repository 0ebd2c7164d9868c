/**
 * The naming and weighting rules every process agrees on, written once: what
 * a service name, a Consul name, a KV key segment and a version may be, and
 * the range of an instance's weight. Labels (labels.ts), the scheduler API
 * (scheduler-api.ts), allocations (alloc.ts), job specs (scheduler/spec/),
 * the configuration (src/config/schema.ts) and the proxy read them from here.
 *
 * Each rule comes as a JSON Schema pattern (a string, anchored), as its
 * unanchored body in NAME_RULES for patterns that compose it
 * (`service:port`, `*` or a name), and as a predicate.
 */

/** The rules' bodies, unanchored, for patterns built from them. */
export const NAME_RULES = {
  /** A DNS label: lowercase letters, digits and '-', 1-63 characters, no '-' at either end. */
  serviceName: '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?',
  /** A letter or digit, then letters, digits, '_', '.' or '-': 1-63 characters. */
  consulName: '[A-Za-z0-9][A-Za-z0-9_.-]{0,62}',
  /** As consulName, 1-128 characters. */
  segment: '[A-Za-z0-9][A-Za-z0-9_.-]{0,127}',
  /** A letter or digit, then letters, digits, '_', '.', '+' or '-': 1-128 characters. */
  version: '[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}',
} as const;

/**
 * A service name weft registers and routes to: the `weft.service` label, job,
 * group and task names (they become service names, KV keys and container
 * names), upstreams, outbound listeners. A DNS label.
 */
export const SERVICE_NAME_PATTERN = `^${NAME_RULES.serviceName}$`;

/**
 * A name as Consul (and a SPIFFE path segment) takes it, wider than a DNS
 * label: a service registered outside weft (splits, intentions), this host's
 * node name in the configuration, a SPIFFE namespace.
 */
export const CONSUL_NAME_PATTERN = `^${NAME_RULES.consulName}$`;

/**
 * One segment of a KV key, an ID or a file name, up to 128 characters: node
 * names in allocation keys and API paths, allocation IDs, secret and host
 * volume names.
 */
export const SEGMENT_PATTERN = `^${NAME_RULES.segment}$`;

/** An instance's version (`weft.version`, Meta weft_version): what splits choose between. */
export const VERSION_PATTERN = `^${NAME_RULES.version}$`;

/** The most instances of one group a job may ask for (the job spec, the scale API, `weft scale`). */
export const MAX_GROUP_COUNT = 10_000;

/** The smallest weight: 0 drains an instance. */
export const MIN_WEIGHT = 0;

/** The largest weight of an instance, as Consul's Weights.Passing. */
export const MAX_WEIGHT = 65535;

/** The weight of an instance that does not say (Consul's default too). */
export const DEFAULT_WEIGHT = 1;

/** The largest weight of one version in a split (`weft/splits/<service>`): generous, and keeps sums exact in floating point. */
export const MAX_SPLIT_WEIGHT = 1_000_000;

const SERVICE_NAME_RE = new RegExp(SERVICE_NAME_PATTERN);
const CONSUL_NAME_RE = new RegExp(CONSUL_NAME_PATTERN);
const SEGMENT_RE = new RegExp(SEGMENT_PATTERN);
const VERSION_RE = new RegExp(VERSION_PATTERN);

/** True for a service name weft registers and routes to (a DNS label). */
export function isServiceName(name: string): boolean {
  return SERVICE_NAME_RE.test(name);
}

/** True for a name Consul takes (CONSUL_NAME_PATTERN). */
export function isConsulName(name: string): boolean {
  return CONSUL_NAME_RE.test(name);
}

/** True for a KV key segment (SEGMENT_PATTERN). */
export function isSegment(name: string): boolean {
  return SEGMENT_RE.test(name);
}

/** True for an instance version (VERSION_PATTERN). */
export function isVersion(version: string): boolean {
  return VERSION_RE.test(version);
}

/** True for an instance weight: an integer from MIN_WEIGHT to MAX_WEIGHT. */
export function isWeight(weight: unknown): weight is number {
  return typeof weight === 'number' && Number.isInteger(weight) && weight >= MIN_WEIGHT && weight <= MAX_WEIGHT;
}
