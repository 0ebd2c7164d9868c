/**
 * Jobs, placement, reconciliation, the autoscaler's replica calculator and secrets: the pure core. The service around it is src/wiring/scheduler-*.ts.
 *
 * The public surface of scheduler/: other modules and the application import only
 * this file (test/structure/layers.test.ts enforces it); everything else in
 * the folder is internal.
 */
export { decide } from './autoscale/calculator.js';
export type { DecideInput, Decision, ScaleDirection } from './autoscale/calculator.js';
export { emptyHistory, HISTORY_VERSION, parseHistory } from './autoscale/history.js';
export type { AutoscaleHistory, Recommendation, ScaleEvent } from './autoscale/history.js';
export { DEFAULT_WARMUP_MS } from './autoscale/metrics.js';
export type { MetricOutcome } from './autoscale/metrics.js';
export type { InstanceView, MetricReading, MetricSnapshot, MetricSource, ScaleTarget, Traffic } from './autoscale/source.js';
export type { AllocInfo, AutoscaleMetric, AutoscalePolicy, Deployment, GroupDemand, JobState, NodeInfo, ScaleBehavior, ScaleStep } from './model.js';
export { DEFAULT_LOST_AFTER_MS, readiness } from './nodes.js';
export { DEFAULT_DYNAMIC_PORTS } from './placement/cluster.js';
export type { PlacementFailure } from './placement/reasons.js';
export type { Plan } from './reconcile/plan.js';
export { reconcile } from './reconcile/reconciler.js';
export { loadOrCreateKey } from './secrets/key.js';
export { SecretStore } from './secrets/store.js';
export { canonicalJSON, compileJob, nextVersion } from './spec/compile.js';
export { jobInvalid } from './spec/errors.js';
export type { SpecError } from './spec/errors.js';
export type { JobSpec } from './spec/schema.js';
export { parseJobSpec, validateJobSpec } from './spec/validate.js';
export { allocationDocs } from './state/documents.js';
export { AllocTranslator, observeAllocs, observeNodes } from './state/observe.js';
export type { AgentEntry, ObservedTask } from './state/observe.js';
