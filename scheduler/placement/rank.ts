/**
 * Scores for a feasible node, each in [-1, 1], averaged over the ones that
 * apply (Nomad's ScoreNormalizationIterator). The formulas are Nomad's:
 * structs.ScoreFitBinPack / ScoreFitSpread, the job anti-affinity penalty,
 * node affinity and the spread boost (scheduler/feasible/rank.go, spread.go).
 */
import type { SpreadRule } from '../model.js';

/** Nomad's maximum raw fit score (20 - (10^0 + 10^0)), to normalise to [0, 1]. */
const MAX_FIT = 18;

/**
 * Nomad's bin-pack fit: 20 - (10^freeCpu% + 10^freeMem%) after placing, /18.
 * Full nodes score 1, empty ones ~0; exponentials reward filling both dimensions.
 */
export function binPackScore(freeCpuAfter: number, freeMemAfter: number, capCpu: number, capMem: number): number {
  const total = 10 ** (freeCpuAfter / capCpu) + 10 ** (freeMemAfter / capMem);
  const score = 20 - total;
  return score < 0 ? 0 : score > MAX_FIT ? 1 : score / MAX_FIT;
}

/** Nomad's spread fit (the `spread` scheduler algorithm): the mirror image, emptier nodes win. */
export function spreadFitScore(freeCpuAfter: number, freeMemAfter: number, capCpu: number, capMem: number): number {
  const total = 10 ** (freeCpuAfter / capCpu) + 10 ** (freeMemAfter / capMem);
  const score = total - 2;
  return score < 0 ? 0 : score > MAX_FIT ? 1 : score / MAX_FIT;
}

/** Job anti-affinity: -(collisions + 1) / desired count when the node already runs the group (0 = no penalty, not scored). */
export function antiAffinityPenalty(collisions: number, desiredCount: number): number {
  if (collisions <= 0) return 0;
  return Math.max(-1, -(collisions + 1) / Math.max(1, desiredCount));
}

/**
 * The spread boost of one node for one rule: with targets, how far the value
 * is below its desired count (negative above it; -1 for a value with no share);
 * without, Nomad's even-spread boost from the min/max counts over values.
 * `counts` holds the group's allocations per value; `total` the desired count.
 */
export function spreadBoost(rule: SpreadRule, value: string | undefined, counts: ReadonlyMap<string, number>, total: number): number {
  if (rule.targets.size > 0) {
    if (value === undefined) return -1;
    let fraction = rule.targets.get(value);
    if (fraction === undefined) {
      // Values without a target share what the targets leave (Nomad's implicit target "*").
      fraction = rule.targets.get('*');
      if (fraction === undefined) return -1;
    }
    const desired = fraction * total;
    if (desired <= 0) return -1;
    const used = (counts.get(value) ?? 0) + 1; // this placement included
    return (desired - used) / desired;
  }
  return evenSpreadBoost(value, counts);
}

function evenSpreadBoost(value: string | undefined, counts: ReadonlyMap<string, number>): number {
  if (counts.size === 0) return 0; // nothing placed yet
  if (value === undefined) return -1;
  const current = counts.get(value) ?? 0;
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  for (const c of counts.values()) {
    if (c < min) min = c;
    if (c > max) max = c;
  }
  if (current === 0) return 1; // a value with nothing yet gets the most boost
  if (current !== min) return (min - current) / min;
  if (min === max) return -1; // even already: any placement unbalances
  return (max - current) / min;
}
