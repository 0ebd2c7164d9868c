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

/** The metrics a policy may scale on; each entry of `autoscale.metrics` names exactly one. */
export const AUTOSCALE_METRICS = ['rps', 'inflight', 'latency', 'errors', 'promql'] as const;
export type AutoscaleMetricKind = (typeof AUTOSCALE_METRICS)[number];

/** A per-instance target: more than 0. */
const PerInstanceTarget = Type.Number({ exclusiveMinimum: 0, maximum: 1e12 });

/**
 * One metric of a policy. Two kinds of metric:
 * - per-instance targets, averaged over the ready instances and held at the
 *   target: `{ rps: 100 }` (requests/s each instance's inbound proxy answers),
 *   `{ inflight: 10 }` (concurrent requests), `{ promql: 'expr', target: 5 }`
 *   (an expression returning one series per instance, labelled `instance_id`);
 * - service-level ceilings, which only ever scale up: `{ latency: { quantile: 0.99, max: '250ms' } }`,
 *   `{ errors: { max: 0.05 } }` (the ratio of 5xx answers).
 * `propertyNames` rather than `additionalProperties: false`, so an unknown metric
 * is reported with the list of known ones. semantic.ts checks one metric per entry.
 */
export const AutoscaleMetricSchema = Type.Object(
  {
    rps: Type.Optional(PerInstanceTarget),
    inflight: Type.Optional(PerInstanceTarget),
    latency: Type.Optional(
      Type.Object(
        {
          /** Which quantile of the service's inbound latency: 0.95 or 0.99 (default 0.99). */
          quantile: Type.Optional(Type.Unsafe<0.95 | 0.99>({ type: 'number', enum: [0.95, 0.99] })),
          /** The ceiling: above it (plus the tolerance) the group scales up by value/max. */
          max: Duration,
        },
        { additionalProperties: false },
      ),
    ),
    errors: Type.Optional(
      Type.Object(
        {
          /** The ceiling on the ratio of 5xx answers to all answers, in (0, 1]. */
          max: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
    /** A PromQL expression returning one number per instance (label `instance_id`); checked with Prometheus' own grammar. */
    promql: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** promql only: the per-instance value to hold the expression at. */
    target: Type.Optional(PerInstanceTarget),
  },
  { propertyNames: { enum: [...AUTOSCALE_METRICS, 'target'] } },
);

/**
 * How fast one direction may move (Kubernetes' HPA `behavior.scaleUp` /
 * `scaleDown`): a stabilization window, a cooldown after a scale event, and a
 * step cap per period.
 */
export const ScaleBehaviorSchema = Type.Object(
  {
    /**
     * Scale-down: the count never drops below the highest recommendation of
     * this window; scale-up: never rises above the lowest. Up to 1h.
     */
    stabilizationWindow: Type.Optional(Duration),
    /** After a scale event in this direction, no other one in this direction for this long. */
    cooldown: Type.Optional(Duration),
    /**
     * The most one `period` may move: `+3` (instances) or `+50%` (of the count
     * at the period's start, at least one instance) for scaleUp, `-3` or `-50%`
     * for scaleDown; the sign may be left out. Unset: no cap but min/max.
     */
    maxStep: Type.Optional(Type.String({ minLength: 1, maxLength: 16 })),
    /** The period maxStep counts over (default 15s, the HPA's usual periodSeconds). */
    period: Type.Optional(Duration),
  },
  { additionalProperties: false },
);

/** What the autoscaler does when a metric it needs is unavailable: keep the count, go to min, or report a failure. */
export const AUTOSCALE_ON_ERROR = ['hold', 'min', 'fail'] as const;

/**
 * The autoscaler's policy for a group (docs/autoscaling.md). The group's
 * `count` is the starting count; the autoscaler then moves it within min..max.
 */
export const AutoscaleSchema = Type.Object(
  {
    /** 0 allows scale to zero (through idleToZero) and activation from zero. */
    min: Type.Integer({ minimum: 0, maximum: MAX_GROUP_COUNT }),
    max: Type.Integer({ minimum: 1, maximum: MAX_GROUP_COUNT }),
    /** One or more; the largest count any of them asks for wins (as in the HPA). */
    metrics: Type.Array(AutoscaleMetricSchema, { minItems: 1, maxItems: 8 }),
    /** The service the metrics describe; default: the first of the group's tasks that registers one. */
    service: Type.Optional(Type.String({ pattern: SERVICE_NAME_PATTERN })),
    /** Usage ratios within 1 ± tolerance change nothing (default 0.1). */
    tolerance: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1 })),
    scaleUp: Type.Optional(ScaleBehaviorSchema),
    scaleDown: Type.Optional(ScaleBehaviorSchema),
    /** How often the leader decides (default 1s). */
    interval: Type.Optional(Duration),
    onError: Type.Optional(OneOf(AUTOSCALE_ON_ERROR)),
    /** Decide and report, change nothing. */
    dryRun: Type.Optional(Type.Boolean()),
    /** With min 0: go to zero once the service saw no request for this long. */
    idleToZero: Type.Optional(Duration),
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
export type AutoscaleSpec = Static<typeof AutoscaleSchema>;
export type AutoscaleMetricSpec = Static<typeof AutoscaleMetricSchema>;
export type ScaleBehaviorSpec = Static<typeof ScaleBehaviorSchema>;

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
  /** Kubernetes' HPA defaults (tolerance, stabilization windows), weft's own interval and onError. */
  autoscale: {
    tolerance: 0.1,
    interval: '1s',
    onError: 'hold',
    dryRun: false,
    latencyQuantile: 0.99,
    scaleUp: { stabilizationWindow: '0s', cooldown: '0s', period: '15s' },
    scaleDown: { stabilizationWindow: '60s', cooldown: '0s', period: '15s' },
  },
} as const;

/** The schema as a plain JSON Schema document (for the API's route schemas and docs). */
export const jobSpecJsonSchema: TSchema = JobSpecSchema;
