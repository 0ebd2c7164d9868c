/**
 * A node's readiness, from its heartbeat and the operator's drain flag. `down`
 * and `lost` differ only in time: a node whose heartbeat has failed for less
 * than `lost_after` keeps its allocations (a restarting agent must not cause a
 * reshuffle); after that they are replaced elsewhere.
 */
import type { NodeInfo } from './model.js';

/** ready: takes new work; draining: keeps running, nothing new, work migrates; down: heartbeat failing; lost: failing for lost_after. */
export type Readiness = 'ready' | 'draining' | 'down' | 'lost';

/** Default for `scheduler.lostAfterMs`: 30 s, as the issue asks (Nomad's heartbeat grace is 10 s + TTL). */
export const DEFAULT_LOST_AFTER_MS = 30_000;

/** Classifies one node at `nowMs`. A node whose heartbeat is down without a known start counts from now. */
export function readiness(node: NodeInfo | undefined, nowMs: number, lostAfterMs: number): Readiness {
  if (node === undefined) return 'lost';
  if (node.heartbeat === 'passing' || node.heartbeat === 'warning') return node.drain ? 'draining' : 'ready';
  const since = node.downSinceMs ?? nowMs;
  return nowMs - since >= lostAfterMs ? 'lost' : 'down';
}

/** When a down node becomes lost (for the reconciler's follow-up); undefined when it is not down. */
export function lostAtMs(node: NodeInfo, nowMs: number, lostAfterMs: number): number | undefined {
  if (node.heartbeat === 'passing' || node.heartbeat === 'warning') return undefined;
  return (node.downSinceMs ?? nowMs) + lostAfterMs;
}
