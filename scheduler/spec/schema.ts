/**
 * The job spec: one TypeBox schema for YAML and JSON (YAML is parsed to the
 * same tree). Kept close to Nomad's job file (groups of co-located tasks,
 * constraints, affinities, spread, update/restart/reschedule policies) with
 * the names Kubernetes users expect (count, resources, env, volumes).
 *
 * The schema holds the shape and the ranges; cross-field rules (unique names,
 * a docker task has an image, a mount names a declared volume, ...) live in
 * semantic.ts. Policy defaults are not schema defaults: a group inherits the
 * job's policy field by field, so defaults are applied in compile.ts from
 * SPEC_DEFAULTS.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { MAX_GROUP_COUNT, NAME_RULES, SEGMENT_PATTERN, SERVICE_NAME_PATTERN } from '../../base/contracts/names.js';

/** A string enum that ajv reports as one error ("must be one of a, b") rather than one per literal. */
function OneOf<const T extends readonly string[]>(values: T, opts: { default?: T[number] } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...opts });
}

/**
 * A string-keyed map. TypeBox's Record compiles to patternProperties, which lets
 * a key that misses the pattern through silently; propertyNames rejects it.
 */
function MapOf<V extends TSchema>(value: V, keyPattern?: string) {
  return Type.Unsafe<Record<string, Static<V>>>({
    type: 'object',
    additionalProperties: value,
    ...(keyPattern === undefined ? {} : { propertyNames: { pattern: keyPattern } }),
  });
}

/** DNS label: job, group and task names end up in service names, KV keys and container names. */
export const NAME_PATTERN = SERVICE_NAME_PATTERN;
const Name = Type.String({ pattern: NAME_PATTERN });
/** A Go duration (`500ms`, `10s`, `1m30s`); ranges are checked in semantic.ts. */
const Duration = Type.String({ pattern: '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$' });
/** Environment variable names, as POSIX shells accept them. */
export const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
const AbsolutePath = Type.String({ pattern: '^/', minLength: 1, maxLength: 4096 });
/** Secret names: `weft secret set NAME`. */
export const SECRET_NAME_PATTERN = SEGMENT_PATTERN;

/** Constraint and affinity operators. `version` takes a semver range (`>= 5.10, < 7` or `^1.2`). */
export const OPERATORS = ['=', '!=', 'regexp', 'version', 'is_set', 'is_not_set'] as const;
export type Operator = (typeof OPERATORS)[number];

const constraintFields = {
  /** A node attribute (`zone`, `rack`, `kernel.version`) or a built-in (`node.name`, `node.address`). */
  attribute: Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$', maxLength: 256 }),
  operator: Type.Optional(OneOf(OPERATORS)),
  value: Type.Optional(Type.String({ maxLength: 1024 })),
};

/** A hard filter on nodes (Nomad's constraint). Operator defaults to `=`. */
export const ConstraintSchema = Type.Object(constraintFields, { additionalProperties: false });

/** A soft preference (Nomad's affinity): matching nodes score up (weight > 0) or down (weight < 0). */
export const AffinitySchema = Type.Object(
  { ...constraintFields, weight: Type.Optional(Type.Integer({ minimum: -100, maximum: 100 })) },
  { additionalProperties: false },
);

/** Spread allocations over an attribute's values, evenly or by target percentages. */
export const SpreadSchema = Type.Object(
  {
    attribute: constraintFields.attribute,
    weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    targets: Type.Optional(
      Type.Array(Type.Object({ value: Type.String({ minLength: 1 }), percent: Type.Integer({ minimum: 0, maximum: 100 }) }, { additionalProperties: false }), {
        maxItems: 64,
      }),
    ),
  },
  { additionalProperties: false },
);

/** Rolling updates (Nomad's update stanza). */
export const UpdateSchema = Type.Object(
  {
    /** How many allocations are replaced at once. */
    parallelism: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /** Wait between batches (after a batch is healthy). */
    delay: Type.Optional(Duration),
    /** stop-first replaces in place; start-first surges by `parallelism` and stops the old once the new is healthy. */
    order: Type.Optional(OneOf(['stop-first', 'start-first'] as const)),
    /** An allocation counts as healthy once its checks have passed this long. */
    minHealthyTime: Type.Optional(Duration),
    /** A new allocation not healthy by then fails the deployment. */
    healthDeadline: Type.Optional(Duration),
    /** On failure, go back to the last version whose deployment succeeded. */
    autoRevert: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** Restarts on the same host, done by the agent (base/contracts/alloc.ts RestartPolicy). */
export const RestartSchema = Type.Object(
  {
    attempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    interval: Type.Optional(Duration),
    delay: Type.Optional(Duration),
    mode: Type.Optional(OneOf(['fail', 'delay'] as const)),
  },
  { additionalProperties: false },
);

/** Replacement on another host once restarts are spent (Nomad's reschedule stanza). */
export const RescheduleSchema = Type.Object(
  {
    /** Reschedules allowed within `interval` when not `unlimited`. */
    attempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    interval: Type.Optional(Duration),
    delay: Type.Optional(Duration),
    delayFunction: Type.Optional(OneOf(['constant', 'exponential'] as const)),
    maxDelay: Type.Optional(Duration),
    unlimited: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** A task's health check, the same settings as the weft.check.* labels. */
export const CheckSchema = Type.Object(
  {
    /** A path on the task's port (`/healthz`) or a full URL. */
    http: Type.Optional(Type.String({ minLength: 1 })),
    tcp: Type.Optional(Type.Boolean()),
    interval: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
    failures: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    successes: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
);

/** A volume a group's tasks may mount: a host directory (the group sticks to hosts that have it) or a Docker named volume. */
export const VolumeSchema = Type.Object(
  {
    type: OneOf(['host', 'docker'] as const),
    /** host: the name of a host volume the node advertises; docker: the named volume. */
    source: Type.String({ pattern: SEGMENT_PATTERN }),
    readOnly: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** The autoscaler's block (the autoscale issue owns its semantics; the scheduler validates the bounds). */
export const AutoscaleSchema = Type.Object(
  {
    min: Type.Integer({ minimum: 0, maximum: MAX_GROUP_COUNT }),
    max: Type.Integer({ minimum: 1, maximum: MAX_GROUP_COUNT }),
    /** What to scale on, e.g. `rps`, `latency_p99`, `cpu`, `inflight`. */
    metric: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })),
    /** The per-replica value to hold the metric at. */
    target: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    cooldown: Type.Optional(Duration),
  },
  { additionalProperties: false },
);

/** One container or process. */
export const TaskSchema = Type.Object(
  {
    name: Name,
    driver: OneOf(['docker', 'process'] as const),
    /** driver docker: the image. */
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    /** driver process: the executable; driver docker: overrides the entrypoint. */
    command: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    args: Type.Optional(Type.Array(Type.String(), { maxItems: 256 })),
    /** The port the task listens on: a fixed port, or 0 for one the scheduler picks on the host. */
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    /**
     * What placement reserves on the node. driver docker enforces both (NanoCpus, Memory);
     * driver process does not (like Nomad's raw_exec): see agent/README.md.
     */
    resources: Type.Optional(
      Type.Object(
        {
          /** Millicores (1000 = one core). */
          cpu: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_024_000 })),
          /** MiB. */
          memory: Type.Optional(Type.Integer({ minimum: 4, maximum: 16_777_216 })),
        },
        { additionalProperties: false },
      ),
    ),
    env: Type.Optional(MapOf(Type.String(), ENV_NAME_PATTERN)),
    /** Container labels; weft.* keys are checked exactly as the agent will decode them. */
    labels: Type.Optional(MapOf(Type.String(), '^\\S+$')),
    check: Type.Optional(CheckSchema),
    /** `service` or `service:localPort`, as the weft.upstreams label. */
    upstreams: Type.Optional(Type.Array(Type.String({ pattern: `^${NAME_RULES.serviceName}(:[0-9]{1,5})?$` }), { maxItems: 64 })),
    volumeMounts: Type.Optional(
      Type.Array(
        Type.Object({ volume: Name, destination: AbsolutePath, readOnly: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        { maxItems: 32 },
      ),
    ),
    /** Secrets (`weft secret set NAME`) injected as an environment variable (default: the name) or a file. */
    secrets: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ pattern: SECRET_NAME_PATTERN }),
            env: Type.Optional(Type.String({ pattern: ENV_NAME_PATTERN })),
            file: Type.Optional(AbsolutePath),
          },
          { additionalProperties: false },
        ),
        { maxItems: 64 },
      ),
    ),
    /** Plain configuration files written before the task starts. */
    files: Type.Optional(
      Type.Array(Type.Object({ destination: AbsolutePath, content: Type.String({ maxLength: 1_048_576 }) }, { additionalProperties: false }), {
        maxItems: 64,
      }),
    ),
  },
  { additionalProperties: false },
);

const policies = {
  constraints: Type.Optional(Type.Array(ConstraintSchema, { maxItems: 64 })),
  affinities: Type.Optional(Type.Array(AffinitySchema, { maxItems: 64 })),
  spread: Type.Optional(Type.Array(SpreadSchema, { maxItems: 8 })),
  update: Type.Optional(UpdateSchema),
  restart: Type.Optional(RestartSchema),
  reschedule: Type.Optional(RescheduleSchema),
};

/** Tasks placed together on one host (a pod), `count` times. */
export const GroupSchema = Type.Object(
  {
    name: Name,
    count: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_GROUP_COUNT })),
    tasks: Type.Array(TaskSchema, { minItems: 1, maxItems: 32 }),
    volumes: Type.Optional(MapOf(VolumeSchema, NAME_PATTERN)),
    autoscale: Type.Optional(AutoscaleSchema),
    ...policies,
  },
  { additionalProperties: false },
);

/** A job: what a user hands the scheduler (`weft deploy job.yaml`). */
export const JobSpecSchema = Type.Object(
  {
    name: Name,
    /** Higher runs first when capacity is short. */
    priority: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    meta: Type.Optional(MapOf(Type.String())),
    groups: Type.Array(GroupSchema, { minItems: 1, maxItems: 64 }),
    ...policies,
  },
  { additionalProperties: false },
);

export type JobSpec = Static<typeof JobSpecSchema>;
export type GroupSpec = Static<typeof GroupSchema>;
export type TaskSpec = Static<typeof TaskSchema>;
export type ConstraintSpec = Static<typeof ConstraintSchema>;
export type AffinitySpec = Static<typeof AffinitySchema>;
export type SpreadSpec = Static<typeof SpreadSchema>;
export type UpdateSpec = Static<typeof UpdateSchema>;
export type RestartSpec = Static<typeof RestartSchema>;
export type RescheduleSpec = Static<typeof RescheduleSchema>;
export type VolumeSpec = Static<typeof VolumeSchema>;

/** Defaults, in one place (docs in scheduler/README.md repeat them). Nomad's service-job defaults unless noted. */
export const SPEC_DEFAULTS = {
  count: 1,
  priority: 50,
  /** Kubernetes-ish small requests so an unsized task still counts against capacity. */
  resources: { cpu: 100, memory: 64 },
  affinityWeight: 50,
  spreadWeight: 50,
  update: { parallelism: 1, delay: '0s', order: 'stop-first', minHealthyTime: '10s', healthDeadline: '5m', autoRevert: false },
  restart: { attempts: 2, interval: '30m', delay: '15s', mode: 'fail' },
  reschedule: { attempts: 0, interval: '0s', delay: '30s', delayFunction: 'exponential', maxDelay: '1h', unlimited: true },
} as const;

/** The schema as a plain JSON Schema document (for the API's route schemas and docs). */
export const jobSpecJsonSchema: TSchema = JobSpecSchema;
