/**
 * The part of Consul's agent configuration file that one dev agent honours,
 * as a schema (TypeBox, checked with Ajv when a file is read: types are
 * strict, nothing is coerced). Keys outside it are not errors: Consul has
 * hundreds, and a file written for a real agent should still load, so they
 * are named in a warning instead (see read.ts).
 *
 * Services and checks are validated here for their shape with Consul's
 * snake_case names; the agent then applies its HTTP API rules to them
 * (definitions.ts), so a check in a file and one sent to
 * /v1/agent/check/register meet the same checks.
 */
import { type Static, Type } from '@sinclair/typebox';

const StringMap = Type.Record(Type.String(), Type.String());
const Port = Type.Integer({ minimum: 0, maximum: 65535 });

/** A check definition (Consul's CheckDefinition, config-file spelling). */
export const CheckFileSchema = Type.Partial(
  Type.Object(
    {
      id: Type.String(),
      name: Type.String(),
      notes: Type.String(),
      service_id: Type.String(),
      status: Type.String(),
      args: Type.Array(Type.String()),
      script: Type.String(),
      http: Type.String(),
      method: Type.String(),
      header: Type.Record(Type.String(), Type.Array(Type.String())),
      body: Type.String(),
      tls_skip_verify: Type.Boolean(),
      disable_redirects: Type.Boolean(),
      tcp: Type.String(),
      interval: Type.String(),
      timeout: Type.String(),
      ttl: Type.String(),
      deregister_critical_service_after: Type.String(),
      success_before_passing: Type.Integer({ minimum: 0 }),
      failures_before_warning: Type.Integer({ minimum: 0 }),
      failures_before_critical: Type.Integer({ minimum: 0 }),
      output_max_size: Type.Integer({ minimum: 0 }),
      // Kinds the agent refuses with its own message; typed so the refusal, not a type error, is what the user reads.
      docker_container_id: Type.String(),
      grpc: Type.String(),
      h2ping: Type.String(),
      udp: Type.String(),
      os_service: Type.String(),
      alias_node: Type.String(),
      alias_service: Type.String(),
    },
    { additionalProperties: false },
  ),
);

const CheckOrList = Type.Union([CheckFileSchema, Type.Array(CheckFileSchema)]);

/** A service definition (Consul's ServiceDefinition, config-file spelling). */
export const ServiceFileSchema = Type.Partial(
  Type.Object(
    {
      name: Type.String(),
      id: Type.String(),
      tags: Type.Array(Type.String()),
      address: Type.String(),
      port: Port,
      meta: StringMap,
      weights: Type.Partial(Type.Object({ passing: Type.Integer({ minimum: 0 }), warning: Type.Integer({ minimum: 0 }) }, { additionalProperties: false })),
      enable_tag_override: Type.Boolean(),
      kind: Type.String(),
      tagged_addresses: Type.Record(Type.String(), Type.Partial(Type.Object({ address: Type.String(), port: Port }, { additionalProperties: false }))),
      check: CheckOrList,
      checks: Type.Array(CheckFileSchema),
    },
    { additionalProperties: false },
  ),
);

const ServiceOrList = Type.Union([ServiceFileSchema, Type.Array(ServiceFileSchema)]);

/** The honoured keys of one config file (after unknown keys were set aside). */
export const ConsulConfigFileSchema = Type.Partial(
  Type.Object(
    {
      node_name: Type.String({ minLength: 1 }),
      datacenter: Type.String({ pattern: '^[A-Za-z0-9_-]+$' }),
      data_dir: Type.String({ minLength: 1 }),
      client_addr: Type.String({ minLength: 1 }),
      bind_addr: Type.String({ minLength: 1 }),
      advertise_addr: Type.String({ minLength: 1 }),
      ports: Type.Partial(Type.Object({ http: Port }, { additionalProperties: false })),
      addresses: Type.Partial(Type.Object({ http: Type.String({ minLength: 1 }) }, { additionalProperties: false })),
      enable_script_checks: Type.Boolean(),
      enable_local_script_checks: Type.Boolean(),
      node_meta: StringMap,
      log_level: Type.String({ pattern: '^(trace|debug|info|warn|err|error|TRACE|DEBUG|INFO|WARN|ERR|ERROR)$' }),
      log_json: Type.Boolean(),
      pid_file: Type.String({ minLength: 1 }),
      server: Type.Boolean(),
      bootstrap: Type.Boolean(),
      bootstrap_expect: Type.Integer({ minimum: 0 }),
      // Consul's ACL system, as far as the dev agent implements it (acl/): on or off, the default policy, the
      // management token's SecretID and the token for requests that carry none.
      acl: Type.Partial(
        Type.Object(
          {
            enabled: Type.Boolean(),
            default_policy: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
            tokens: Type.Partial(Type.Object({ initial_management: Type.String({ minLength: 1 }), default: Type.String({ minLength: 1 }) }, { additionalProperties: false })),
          },
          { additionalProperties: false },
        ),
      ),
      service: ServiceOrList,
      services: Type.Array(ServiceFileSchema),
      check: CheckOrList,
      checks: Type.Array(CheckFileSchema),
    },
    { additionalProperties: false },
  ),
);

export type ConsulConfigFile = Static<typeof ConsulConfigFileSchema>;
export type ServiceFile = Static<typeof ServiceFileSchema>;
export type CheckFile = Static<typeof CheckFileSchema>;

/** Nested objects whose keys the dev agent honours, one level down (others are warned about). */
export const NESTED_KEYS: Readonly<Record<string, readonly string[]>> = {
  ports: ['http'],
  addresses: ['http'],
  acl: ['enabled', 'default_policy', 'tokens'],
};

/** Keys honoured two levels down (`acl.tokens.*`); others are warned about. */
export const DEEP_NESTED_KEYS: Readonly<Record<string, readonly string[]>> = {
  'acl.tokens': ['initial_management', 'default'],
};
