/**
 * The contract between the scheduler and each host's agent: what a host must
 * run (written by the scheduler) and how it is doing (written by the agent).
 *
 *   weft/allocs/<host>/<alloc>        AllocationSchema     scheduler writes, agent reads (blocking query on the prefix)
 *   weft/alloc-status/<host>/<alloc>  AllocStatusSchema    agent writes, scheduler reads
 *
 * An allocation's key is its `id`. Deleting the key tells the agent to stop the
 * allocation (drain first when it is registered); the agent then deletes the
 * status key, and any of its host's status keys that have no document. The
 * scheduler deletes a status key with the document when it stops an
 * allocation, and sweeps status keys without a document on lost hosts, whose
 * agents never will. Changing an allocation's document in place (new image, env, ...)
 * is treated as stop + start of the same id; the scheduler normally writes a new
 * id instead. Container labels on the allocation are decoded exactly as labels
 * on a hand-started container (base/contracts/labels.ts), so `labels['weft.service']`
 * is what registers it in Consul.
 */
import { type Static, Type } from '@sinclair/typebox';
import { SEGMENT_PATTERN } from './names.js';

/** KV prefix of the allocations a host must run: `weft/allocs/<host>/`. */
export const ALLOCS_PREFIX = 'weft/allocs/';
/** KV prefix of the state agents report: `weft/alloc-status/<host>/`. */
export const ALLOC_STATUS_PREFIX = 'weft/alloc-status/';

/** `weft/allocs/<host>/<alloc>` */
export function allocKey(host: string, alloc: string): string {
  return `${ALLOCS_PREFIX}${host}/${alloc}`;
}

/** `weft/alloc-status/<host>/<alloc>` */
export function allocStatusKey(host: string, alloc: string): string {
  return `${ALLOC_STATUS_PREFIX}${host}/${alloc}`;
}

/** Allocation ids, job/group/task names: safe as KV segments, Docker names and file names. */
const Segment = Type.String({ pattern: SEGMENT_PATTERN });

/**
 * What the agent does when an allocation's task exits (Nomad's restart stanza).
 * At most `attempts` restarts within `interval`, each after `delay` (both in
 * milliseconds); when the budget is spent, `mode: 'fail'` leaves it failed and
 * `mode: 'delay'` waits out the rest of the interval and starts again.
 */
export const RestartPolicySchema = Type.Object(
  {
    attempts: Type.Integer({ minimum: 0, maximum: 1000, default: 2 }),
    /** Milliseconds. */
    interval: Type.Integer({ minimum: 1000, default: 30 * 60_000 }),
    /** Milliseconds. */
    delay: Type.Integer({ minimum: 0, default: 15_000 }),
    mode: Type.Union([Type.Literal('fail'), Type.Literal('delay')], { default: 'fail' }),
  },
  { additionalProperties: false },
);

/** One allocation: a task placed on a host. */
export const AllocationSchema = Type.Object(
  {
    /** Unique within the cluster; also the KV key's last segment. */
    id: Segment,
    job: Segment,
    group: Segment,
    task: Segment,
    driver: Type.Union([Type.Literal('docker'), Type.Literal('process')]),
    /** Docker image (driver docker). */
    image: Type.Optional(Type.String({ minLength: 1 })),
    /** Docker: overrides the image's entrypoint+cmd. Process: the executable. */
    command: Type.Optional(Type.String({ minLength: 1 })),
    args: Type.Optional(Type.Array(Type.String())),
    env: Type.Record(Type.String(), Type.String(), { default: {} }),
    /** The port the task listens on (the agent sets PORT to it); also the default for weft.port. */
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    resources: Type.Object(
      {
        /** CPU in millicores (1000 = one core). */
        cpu: Type.Integer({ minimum: 1 }),
        /** Memory in MiB. */
        memory: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    /** Container labels: weft.* (and SERVICE_*) register the task, as on any container. */
    labels: Type.Record(Type.String(), Type.String(), { default: {} }),
    restart: RestartPolicySchema,
    /**
     * Mounts (added by the scheduler): `host` mounts the node's host volume named `source`
     * (the node advertises it), `docker` a Docker named volume. The group sticks to its node.
     */
    volumes: Type.Optional(
      Type.Array(
        Type.Object(
          {
            type: Type.Union([Type.Literal('host'), Type.Literal('docker')]),
            source: Type.String({ minLength: 1 }),
            destination: Type.String({ pattern: '^/' }),
            readOnly: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
      ),
    ),
    /**
     * Secrets by name only (added by the scheduler): the agent fetches each value from the
     * scheduler's API and passes it as env `env` and/or a 0600 file at `file`; values never go to KV or logs.
     */
    secrets: Type.Optional(
      Type.Array(
        Type.Object(
          { name: Type.String({ minLength: 1 }), env: Type.Optional(Type.String({ minLength: 1 })), file: Type.Optional(Type.String({ pattern: '^/' })) },
          { additionalProperties: false },
        ),
      ),
    ),
    /** Plain configuration files to write before the task starts (added by the scheduler). */
    files: Type.Optional(Type.Array(Type.Object({ destination: Type.String({ pattern: '^/' }), content: Type.String() }, { additionalProperties: false }))),
    /**
     * Scheduler bookkeeping the agent ignores (added by the scheduler). Tasks of one group
     * instance share `instance`. Written once per id: the scheduler never rewrites it in place.
     */
    placement: Type.Optional(
      Type.Object(
        {
          instance: Segment,
          index: Type.Integer({ minimum: 0 }),
          version: Type.Integer({ minimum: 1 }),
          fingerprint: Type.String({ minLength: 1 }),
          /** Ports the instance holds on the host (all its tasks'). */
          ports: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 })),
          /** Times (ms) of the reschedules that led to this instance. */
          reschedules: Type.Array(Type.Integer()),
          /** ms since the epoch. */
          createdAt: Type.Integer(),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The lifecycle states the agent reports. */
export const AllocStateSchema = Type.Union([Type.Literal('pending'), Type.Literal('running'), Type.Literal('failed'), Type.Literal('stopped')]);

/** `weft/alloc-status/<host>/<alloc>`: written by the agent on every transition. */
export const AllocStatusSchema = Type.Object(
  {
    id: Segment,
    state: AllocStateSchema,
    /** The last exit code, when the task has exited at least once. */
    exitCode: Type.Optional(Type.Integer()),
    /** Restarts so far (all time, not only within the policy's interval). */
    restarts: Type.Integer({ minimum: 0 }),
    /** Times (ms since the epoch) of the restarts inside the policy's interval: the budget survives an agent restart. */
    recentRestarts: Type.Optional(Type.Array(Type.Integer())),
    /** Docker container id, or the process driver's task id. */
    containerId: Type.Optional(Type.String()),
    /** Why it failed (driver error, restart budget spent, ...). */
    message: Type.Optional(Type.String()),
    /** ISO 8601. */
    updatedAt: Type.String(),
  },
  { additionalProperties: false },
);

export type RestartPolicy = Static<typeof RestartPolicySchema>;
export type Allocation = Static<typeof AllocationSchema>;
export type AllocState = Static<typeof AllocStateSchema>;
export type AllocStatus = Static<typeof AllocStatusSchema>;
