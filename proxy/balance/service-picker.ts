/**
 * The picker the proxy holds per service: first a version (when a split
 * applies), then an instance of that version with the service's algorithm.
 *
 * Versions are chosen by smooth weighted round robin, not at random, so a
 * 90/10 split is exact over every 100 requests (10,000 requests give exactly
 * 9,000 / 1,000) and the canary's requests are spread out, not bunched.
 *
 * Every version keeps its own instance picker, plus one over all instances for
 * when no split applies. onStart/onEnd feed both, so latency estimates stay
 * warm whichever is in use and a split change never unbalances outstanding
 * counts. See split.ts for how shares move when a version has no instances.
 */
import { type Algorithm, createPicker, DEFAULT_ALGORITHM, type PickerOptions } from './create.js';
import type { AttemptResult, Endpoint, Picker } from './picker.js';
import { uniqueById } from './picker.js';
import { effectiveVersionWeights, type Split } from './split.js';
import { SwrrPicker } from './swrr.js';

/** Options of a service picker. */
export interface ServicePickerOptions<E extends Endpoint = Endpoint> extends PickerOptions<E> {
  /** Instance-level algorithm (default p2c). */
  readonly algorithm?: Algorithm | undefined;
  /** The split in force, if any (change it later with setSplit). */
  readonly split?: Split | undefined;
}

interface VersionSlot {
  readonly id: string;
  readonly weight: number;
}

/** Version split, then per-instance balancing, behind the one Picker interface. */
export class ServicePicker<E extends Endpoint = Endpoint> implements Picker<E> {
  readonly #algorithm: Algorithm;
  readonly #options: PickerOptions<E>;
  readonly #all: Picker<E>;
  #byVersion = new Map<string, Picker<E>>();
  /** Versions with at least one instance of weight > 0. */
  #live = new Set<string>();
  readonly #versions = new SwrrPicker<VersionSlot>();
  #split: Split | undefined;
  #weights: ReadonlyMap<string, number> | undefined;

  constructor(endpoints: readonly E[] = [], options: ServicePickerOptions<E> = {}) {
    this.#algorithm = options.algorithm ?? DEFAULT_ALGORITHM;
    const { algorithm: _a, split: _s, ...pickerOptions } = options;
    this.#options = pickerOptions;
    this.#all = createPicker(this.#algorithm, [], pickerOptions);
    this.#split = options.split;
    this.update(endpoints);
  }

  pick(): E | undefined {
    if (this.#weights === undefined) return this.#all.pick();
    // A version whose instances are all hidden (ejected) passes its turn to the next.
    for (let i = 0; i < this.#weights.size; i++) {
      const version = this.#versions.pick();
      if (version === undefined) break;
      const endpoint = this.#byVersion.get(version.id)?.pick();
      if (endpoint !== undefined) return endpoint;
    }
    // Every split version hidden: the all-instances picker (with its panic mode) decides.
    return this.#all.pick();
  }

  update(endpoints: readonly E[]): void {
    const unique = uniqueById(endpoints);
    this.#all.update(unique);
    const groups = new Map<string, E[]>();
    const live = new Set<string>();
    for (const e of unique) {
      if (e.version === undefined) continue;
      let group = groups.get(e.version);
      if (group === undefined) {
        group = [];
        groups.set(e.version, group);
      }
      group.push(e);
      if (e.weight > 0) live.add(e.version);
    }
    const next = new Map<string, Picker<E>>();
    for (const [version, group] of groups) {
      const picker = this.#byVersion.get(version);
      if (picker === undefined) {
        // No panic inside a version: when all its instances are hidden, its share moves to the other versions.
        next.set(version, createPicker(this.#algorithm, group, { ...this.#options, panic: false }));
      } else {
        picker.update(group);
        next.set(version, picker);
      }
    }
    this.#byVersion = next;
    this.#live = live;
    this.#refreshVersions();
  }

  /** Sets (or clears) the split. Versions that stay keep their place in the rotation. */
  setSplit(split: Split | undefined): void {
    this.#split = split;
    this.#refreshVersions();
  }

  /** The version weights in force now, or undefined when every instance serves (no split applies). */
  versionWeights(): ReadonlyMap<string, number> | undefined {
    return this.#weights;
  }

  #refreshVersions(): void {
    this.#weights = effectiveVersionWeights(this.#split, this.#live);
    const slots = this.#weights === undefined ? [] : [...this.#weights].map(([id, weight]) => ({ id, weight }));
    this.#versions.update(slots);
  }

  onStart(endpoint: E): void {
    this.#all.onStart(endpoint);
    if (endpoint.version !== undefined) this.#byVersion.get(endpoint.version)?.onStart(endpoint);
  }

  onEnd(endpoint: E, result: AttemptResult): void {
    this.#all.onEnd(endpoint, result);
    if (endpoint.version !== undefined) this.#byVersion.get(endpoint.version)?.onEnd(endpoint, result);
  }
}
