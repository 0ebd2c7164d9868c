/**
 * "Which node, from position p on, has at least this much cpu AND memory
 * free?" in O(log N) rather than a scan: a segment tree holding each subtree's
 * largest free cpu and largest free memory. A subtree whose maximum falls short
 * in either dimension cannot hold a fit and is skipped whole. This is what keeps
 * placement fast on a nearly full cluster, where a scan would walk past
 * thousands of full nodes to find the few with room.
 */

/** Free resources of a set of positions; positions outside the set hold -1. */
export class FitIndex {
  readonly size: number;
  private readonly cpu: Float64Array;
  private readonly mem: Float64Array;

  /** `capacity`: how many positions (nodes). Everything starts outside the set. */
  constructor(capacity: number) {
    let size = 1;
    while (size < capacity) size *= 2;
    this.size = size;
    this.cpu = new Float64Array(2 * size).fill(-1);
    this.mem = new Float64Array(2 * size).fill(-1);
  }

  /** Puts a position in the set with its free resources, or takes it out (`cpu = mem = -1`). */
  set(pos: number, cpu: number, mem: number): void {
    let i = pos + this.size;
    this.cpu[i] = cpu;
    this.mem[i] = mem;
    i >>= 1;
    while (i >= 1) {
      const l = 2 * i;
      const c = Math.max(this.cpu[l]!, this.cpu[l + 1]!);
      const m = Math.max(this.mem[l]!, this.mem[l + 1]!);
      if (this.cpu[i] === c && this.mem[i] === m) break; // ancestors already agree
      this.cpu[i] = c;
      this.mem[i] = m;
      i >>= 1;
    }
  }

  /** Takes a position out of the set. */
  clear(pos: number): void {
    this.set(pos, -1, -1);
  }

  /** The first position >= `from` in the set with cpu >= `cpu` and memory >= `mem`; -1 when there is none. */
  firstFit(from: number, cpu: number, mem: number): number {
    if (from >= this.size) return -1;
    return this.search(1, 0, this.size, from, cpu, mem);
  }

  private search(node: number, lo: number, hi: number, from: number, cpu: number, mem: number): number {
    if (hi <= from || this.cpu[node]! < cpu || this.mem[node]! < mem) return -1;
    if (hi - lo === 1) return lo; // a leaf's values are exact
    const mid = (lo + hi) >> 1;
    const left = this.search(2 * node, lo, mid, from, cpu, mem);
    return left !== -1 ? left : this.search(2 * node + 1, mid, hi, from, cpu, mem);
  }
}
