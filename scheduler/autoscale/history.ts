/**
 * The autoscaler's memory, one JSON document per group (stored by the
 * leader's loop; proposed key `weft/autoscale/<job>/<group>`), so a standby
 * that takes over keeps the stabilization windows, cooldowns, step periods
 * and the idle clock:
 *
 *   { "version": 1,
 *     "recommendations": [{ "atMs": 1700000000000, "desired": 4 }, ...],
 *     "events": [{ "atMs": 1700000000000, "from": 2, "to": 4 }, ...],
 *     "lastTrafficAtMs": 1700000000000 }
 *
 * Times are wall-clock ms since the epoch (they cross processes; a
 * monotonic clock would not). Pure: parse, append, prune.
 */

/** The document's version; a reader refuses a newer one rather than misread it. */
export const HISTORY_VERSION = 1;

/** Bounds on the lists, whatever the windows: a KV value stays small. */
export const MAX_RECOMMENDATIONS = 4096;
export const MAX_EVENTS = 1024;

/** One recommendation: the count the metrics asked for (clamped to min..max) at a decision. */
export interface Recommendation {
  atMs: number;
  desired: number;
}

/** One applied scale event: the count went from `from` to `to`. */
export interface ScaleEvent {
  atMs: number;
  from: number;
  to: number;
}

/** What decide() reads and returns; store it as JSON after the count it decided was written. */
export interface AutoscaleHistory {
  version: typeof HISTORY_VERSION;
  /**
   * Oldest first. A run of equal recommendations keeps only its newest time:
   * the windows take a min or max, for which the newest of equal values is the
   * one that stays in the window longest, so nothing is lost.
   */
  recommendations: Recommendation[];
  /** Oldest first; the cooldowns and maxStep periods read them. */
  events: ScaleEvent[];
  /** The last decision that saw traffic (or an activation): idleToZero counts from here. */
  lastTrafficAtMs?: number | undefined;
}

/** A history with nothing in it (a group's first decision, or after an unreadable document). */
export function emptyHistory(): AutoscaleHistory {
  return { version: HISTORY_VERSION, recommendations: [], events: [] };
}

/**
 * Reads a stored document (already JSON-parsed). Anything unreadable gives an
 * empty history and says why: the autoscaler then starts afresh, which holds
 * scale-down for one window (calculator.ts), the safe side.
 */
export function parseHistory(value: unknown): { history: AutoscaleHistory; problem?: string } {
  if (value === undefined || value === null) return { history: emptyHistory() };
  if (typeof value !== 'object' || Array.isArray(value)) return { history: emptyHistory(), problem: 'not a JSON object' };
  const doc = value as Record<string, unknown>;
  if (doc.version !== HISTORY_VERSION) {
    return { history: emptyHistory(), problem: `version ${JSON.stringify(doc.version)} is not ${HISTORY_VERSION}, the one this weft reads` };
  }
  const recommendations = listOf(doc.recommendations, (r) => (count(r.desired) && time(r.atMs) ? { atMs: r.atMs, desired: r.desired } : undefined));
  const events = listOf(doc.events, (e) => (count(e.from) && count(e.to) && time(e.atMs) ? { atMs: e.atMs, from: e.from, to: e.to } : undefined));
  if (recommendations === undefined) return { history: emptyHistory(), problem: 'recommendations: not a list of { atMs, desired }' };
  if (events === undefined) return { history: emptyHistory(), problem: 'events: not a list of { atMs, from, to }' };
  if (doc.lastTrafficAtMs !== undefined && !time(doc.lastTrafficAtMs)) return { history: emptyHistory(), problem: 'lastTrafficAtMs: not a time' };
  return {
    history: {
      version: HISTORY_VERSION,
      recommendations: recommendations.sort((a, b) => a.atMs - b.atMs),
      events: events.sort((a, b) => a.atMs - b.atMs),
      ...(doc.lastTrafficAtMs === undefined ? {} : { lastTrafficAtMs: doc.lastTrafficAtMs }),
    },
  };
}

/** Appends a recommendation, folding it into the last one when equal (see AutoscaleHistory.recommendations). */
export function withRecommendation(list: readonly Recommendation[], rec: Recommendation): Recommendation[] {
  const last = list.at(-1);
  if (last !== undefined && last.desired === rec.desired) return [...list.slice(0, -1), rec];
  return [...list, rec];
}

/**
 * Drops what no rule can read any more: recommendations older than the
 * longest window, events older than the longest cooldown or step period, and
 * the oldest beyond the list bounds.
 */
export function pruneHistory(history: AutoscaleHistory, nowMs: number, keep: { recommendationsMs: number; eventsMs: number }): AutoscaleHistory {
  const recommendations = history.recommendations.filter((r) => r.atMs > nowMs - keep.recommendationsMs).slice(-MAX_RECOMMENDATIONS);
  const events = history.events.filter((e) => e.atMs > nowMs - keep.eventsMs).slice(-MAX_EVENTS);
  return { ...history, recommendations, events };
}

/**
 * Times from another leader's clock may run ahead of ours: an entry "in the
 * future" would stay in a window too long, so it counts as now.
 */
export function clampToNow(history: AutoscaleHistory, nowMs: number): AutoscaleHistory {
  const at = (t: number): number => Math.min(t, nowMs);
  return {
    ...history,
    recommendations: history.recommendations.map((r) => ({ ...r, atMs: at(r.atMs) })),
    events: history.events.map((e) => ({ ...e, atMs: at(e.atMs) })),
    ...(history.lastTrafficAtMs === undefined ? {} : { lastTrafficAtMs: at(history.lastTrafficAtMs) }),
  };
}

function listOf<T>(value: unknown, item: (v: Record<string, unknown>) => T | undefined): T[] | undefined {
  if (value === undefined) return [];
  if (!Array.isArray(value)) return undefined;
  const out: T[] = [];
  for (const v of value) {
    const parsed = v !== null && typeof v === 'object' ? item(v as Record<string, unknown>) : undefined;
    if (parsed === undefined) return undefined;
    out.push(parsed);
  }
  return out;
}

function count(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function time(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}
