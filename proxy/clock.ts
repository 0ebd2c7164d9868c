/**
 * Time and randomness as injectable functions. Every stateful piece of the
 * proxy's balancing and resilience core takes these instead of calling
 * Date.now()/Math.random() itself, so tests replay exact sequences and a bench
 * or a bug report can be reproduced from a seed.
 */

/** Milliseconds on a monotonic-enough timeline; only differences are used. */
export type Clock = () => number;

/** A number in [0, 1), like Math.random(). */
export type Random = () => number;

/**
 * The real clock: performance.now() is monotonic, so a wall-clock step (NTP,
 * a suspended VM) cannot make a deadline jump or an ejection last forever.
 */
export const systemClock: Clock = () => performance.now();

/** The real random source. */
export const systemRandom: Random = Math.random;

/**
 * A deterministic random source (mulberry32: 32-bit state, fast, and good
 * enough for choosing endpoints and jitter; not for anything secret).
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
