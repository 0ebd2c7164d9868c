/**
 * The scheduler's public signing keys, as this host knows them: what the
 * agent verifies allocation documents with, and what it hands to the host's
 * proxy for intentions and splits (base/signing.ts).
 *
 *   with a host token:   GET /v1/signing/keys (client.address, the host's agent token), beside the CA roots
 *   without one:         <dataDir>/scheduler/signing/keys.json on this machine (single machine, dev:
 *                        as the local CA signer reads <dataDir>/ca/)
 *        ─▶ every agent.signingKeysRefreshMs, and at once (at most every 5 s) on refreshSoon() (a document naming a key it lacks)
 *        ─▶ <dataDir>/proxy/signing-keys.json (atomic; the proxy polls it), also the start-up set after a restart
 *
 * Until a first key set arrives the host has none: the proxy admits no
 * intention or split (fail closed), and the agent says why. A failed refresh
 * keeps the keys it has. (Verifying allocations with them in the allocation
 * runner is the part of docs/security.md's signed desired state not done yet.)
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../base/atomic-write.js';
import { HOST_PROXY_DIR } from '../base/contracts/host-proxy.js';
import type { SigningKeysResponse } from '../base/contracts/scheduler-api.js';
import { isWeftError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { KEYSET_FILE, parseKeySet, PROXY_KEYSET_FILE, SIGNING_DIR, type SigningKeySet } from '../base/signing.js';
import { callScheduler, type SchedulerEndpoint } from './scheduler-http.js';

/** On-demand refreshes (a document naming an unknown key) come at most this often. */
const ON_DEMAND_MIN_GAP_MS = 5_000;
/** Without any key yet, the source is asked again this often (or every refreshMs if shorter). */
const NO_KEYS_RETRY_MS = 5_000;

export interface SigningKeysOptions {
  dataDir: string;
  /** The scheduler API and the host's token; without it, the scheduler's key set on this machine. */
  scheduler?: SchedulerEndpoint | undefined;
  refreshMs: number;
  logger: Logger;
}

/** Where the agent hands the keys to its proxy. */
export function proxyKeySetPath(dataDir: string): string {
  return join(dataDir, HOST_PROXY_DIR, PROXY_KEYSET_FILE);
}

/** Where a scheduler on this machine keeps its public key set. */
export function localKeySetPath(dataDir: string): string {
  return join(dataDir, SIGNING_DIR, KEYSET_FILE);
}

/** The host's copy of the scheduler's public keys; emits `change` with the new set. */
export class SigningKeys extends EventEmitter<{ change: [SigningKeySet] }> {
  readonly #o: SigningKeysOptions;
  #set: SigningKeySet | undefined;
  #fingerprint = '';
  #timer: NodeJS.Timeout | undefined;
  #lastOnDemand = Number.NEGATIVE_INFINITY;
  #fetching: Promise<void> | undefined;
  #stopped = false;
  #lastProblem = '';

  constructor(opts: SigningKeysOptions) {
    super();
    this.#o = opts;
  }

  /** The keys known now; undefined before any arrived. */
  current(): SigningKeySet | undefined {
    return this.#set;
  }

  /** Where the keys come from, for logs. */
  get source(): string {
    return this.#o.scheduler === undefined ? localKeySetPath(this.#o.dataDir) : `${this.#o.scheduler.address} GET /v1/signing/keys`;
  }

  /** Loads the set handed to the proxy last time (an agent restart while the scheduler is away), then fetches. */
  async start(): Promise<void> {
    try {
      this.#accept(parseKeySet(readFileSync(proxyKeySetPath(this.#o.dataDir), 'utf8'), proxyKeySetPath(this.#o.dataDir)), false);
    } catch {
      // none yet, or unreadable: the fetch decides
    }
    await this.refresh();
  }

  /** Fetches now (one fetch at a time); never throws: a failure is logged and the keys known stay. */
  refresh(): Promise<void> {
    this.#fetching ??= this.#fetch().finally(() => {
      this.#fetching = undefined;
      this.#schedule();
    });
    return this.#fetching;
  }

  /** A document named a key this host lacks (a rotation): fetch soon, at most every 5 s. */
  refreshSoon(): void {
    const now = Date.now();
    if (this.#stopped || now - this.#lastOnDemand < ON_DEMAND_MIN_GAP_MS) return;
    this.#lastOnDemand = now;
    void this.refresh();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #fetch(): Promise<void> {
    try {
      const set =
        this.#o.scheduler === undefined
          ? parseKeySet(readFileSync(localKeySetPath(this.#o.dataDir), 'utf8'), localKeySetPath(this.#o.dataDir))
          : parseKeySet(JSON.stringify(await callScheduler<SigningKeysResponse>(this.#o.scheduler, 'signingKeys')), this.source);
      this.#accept(set, true);
      this.#lastProblem = '';
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      const problem = missing ? `no ${localKeySetPath(this.#o.dataDir)} and no scheduler token (client.token)` : (err as Error).message;
      if (problem === this.#lastProblem) return; // said once until it changes
      this.#lastProblem = problem;
      const code = isWeftError(err) ? err.code : 'WEFT_ERR_SIGNING_KEYS';
      if (this.#set === undefined) {
        this.#o.logger.error({ code, source: this.source }, `no signing keys (${problem}): this host's proxy admits no intention or split until the scheduler's keys arrive`);
      } else {
        this.#o.logger.warn({ code, source: this.source }, `signing keys not refreshed (${problem}); keeping the ${this.#set.keys.length} known`);
      }
    }
  }

  #accept(set: SigningKeySet, handOff: boolean): void {
    const fingerprint = JSON.stringify(set.keys);
    if (fingerprint === this.#fingerprint) return;
    const first = this.#set === undefined;
    this.#set = set;
    this.#fingerprint = fingerprint;
    if (handOff) {
      const path = proxyKeySetPath(this.#o.dataDir);
      mkdirSync(join(this.#o.dataDir, HOST_PROXY_DIR), { recursive: true, mode: 0o700 });
      writeFileAtomicSync(path, `${JSON.stringify(set, null, 2)}\n`, { mode: 0o644 });
    }
    this.#o.logger.info({ kids: set.keys.map((k) => k.kid), source: handOff ? this.source : proxyKeySetPath(this.#o.dataDir) }, first ? 'signing keys loaded' : 'signing keys changed');
    this.emit('change', set);
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    const ms = this.#set === undefined ? Math.min(NO_KEYS_RETRY_MS, this.#o.refreshMs) : this.#o.refreshMs;
    this.#timer = setTimeout(() => void this.refresh(), ms);
    this.#timer.unref();
  }
}
