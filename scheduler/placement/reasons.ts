/**
 * Why a group could not be placed, counted per reason over every node, so
 * `weft status` answers "3 nodes lacked memory, 2 failed zone = a" (Nomad's
 * AllocMetric: NodesEvaluated, ConstraintFiltered, DimensionExhausted).
 */

/** The answer for one group that is short of placements. */
export interface PlacementFailure {
  job: string;
  group: string;
  /** Allocations that could not be placed. */
  missing: number;
  /** Nodes looked at (all known nodes). */
  nodesEvaluated: number;
  /** Reasons, most frequent first: `{ reason: 'lacked memory', count: 3 }`. */
  reasons: Array<{ reason: string; count: number }>;
  /** One line: `3 nodes lacked memory, 2 nodes failed zone = a`. */
  message: string;
}

/** Counts reasons as nodes are rejected. */
export class ReasonCounter {
  private readonly counts = new Map<string, number>();
  evaluated = 0;

  /** Records one node's rejection. */
  add(reason: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
  }

  /** The failure record; reasons sorted by count, then name, for stable output. */
  failure(job: string, group: string, missing: number): PlacementFailure {
    const reasons = [...this.counts].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
    return { job, group, missing, nodesEvaluated: this.evaluated, reasons, message: formatReasons(reasons, this.evaluated) };
  }
}

/** `3 nodes lacked memory, 1 node failed zone = a`; `no nodes` when the cluster is empty. */
export function formatReasons(reasons: ReadonlyArray<{ reason: string; count: number }>, evaluated: number): string {
  if (evaluated === 0) return 'no nodes are registered';
  if (reasons.length === 0) return `${evaluated} ${plural(evaluated)} evaluated, none rejected`;
  return reasons.map((r) => `${r.count} ${plural(r.count)} ${r.reason}`).join(', ');
}

function plural(n: number): string {
  return n === 1 ? 'node' : 'nodes';
}
