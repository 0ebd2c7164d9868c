/**
 * Service and check keys of Consul's config files (schema.ts checks their
 * types), kept apart from the schema so registering a file's definitions
 * does not load TypeBox.
 */

/**
 * Service and check keys, in Consul's config spelling, with the HTTP API name
 * each becomes. Consul matches these keys without regard to case or
 * underscores (`ServiceID`, `service_id`), and knows a few aliases.
 */
export const SERVICE_KEYS: Readonly<Record<string, string>> = {
  name: 'Name',
  id: 'ID',
  tags: 'Tags',
  address: 'Address',
  port: 'Port',
  meta: 'Meta',
  weights: 'Weights',
  enable_tag_override: 'EnableTagOverride',
  kind: 'Kind',
  tagged_addresses: 'TaggedAddresses',
  check: 'Check',
  checks: 'Checks',
};

export const CHECK_KEYS: Readonly<Record<string, string>> = {
  id: 'CheckID',
  name: 'Name',
  notes: 'Notes',
  service_id: 'ServiceID',
  status: 'Status',
  args: 'Args',
  script: 'Script',
  http: 'HTTP',
  method: 'Method',
  header: 'Header',
  body: 'Body',
  tls_skip_verify: 'TLSSkipVerify',
  disable_redirects: 'DisableRedirects',
  tcp: 'TCP',
  interval: 'Interval',
  timeout: 'Timeout',
  ttl: 'TTL',
  deregister_critical_service_after: 'DeregisterCriticalServiceAfter',
  success_before_passing: 'SuccessBeforePassing',
  failures_before_warning: 'FailuresBeforeWarning',
  failures_before_critical: 'FailuresBeforeCritical',
  output_max_size: 'OutputMaxSize',
  docker_container_id: 'DockerContainerID',
  grpc: 'GRPC',
  h2ping: 'H2PING',
  udp: 'UDP',
  os_service: 'OSService',
  alias_node: 'AliasNode',
  alias_service: 'AliasService',
};

/** Other spellings Consul accepts for a check key. */
export const CHECK_ALIASES: Readonly<Record<string, string>> = { check_id: 'id', script_args: 'args', checkid: 'id', scriptargs: 'args' };

export const WEIGHT_KEYS: Readonly<Record<string, string>> = { passing: 'Passing', warning: 'Warning' };
export const TAGGED_ADDRESS_KEYS: Readonly<Record<string, string>> = { address: 'Address', port: 'Port' };
