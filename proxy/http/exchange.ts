/**
 * One request/response over an undici pool, for both stacks: the head
 * decides the outcome (a status, or how the request failed), then the
 * caller either relays the response to its client (`pipeTo`) or, on the
 * outbound's retry path, drops it to try elsewhere (`discard`).
 *
 * It is an undici dispatch handler rather than `pool.request()`: the body
 * goes straight from undici's parser to the client's ServerResponse, with no
 * Readable, promise or header object per response in between, which is most
 * of what a proxied request costs beyond the two HTTP parsers.
 *
 * Body chunks that arrive before the forward loop decided (usually the whole
 * body of a small response, parsed with the head) are held, up to
 * HOLD_LIMIT bytes; beyond that the connection pauses until the decision.
 */
import type { ServerResponse } from 'node:http';
import { downstreamRawHeaders } from './headers.js';

/** Bytes held before the caller has decided what to do with a response. */
const HOLD_LIMIT = 64 * 1024;

/** How an exchange ended before a response head (the outbound's retry policy tells these apart). */
export type ExchangeFailure =
  | { readonly kind: 'connect-error'; readonly error: Error }
  | { readonly kind: 'reset'; readonly error: Error }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'aborted' };

/** Where an exchange is (numbers, not strings: compared on every body chunk). */
const Phase = {
  /** Waiting for the response head. */
  Head: 0,
  /** Head received; the caller has not decided yet. */
  Held: 1,
  /** Relaying to the client. */
  Piping: 2,
  /** Dropping the body (the request is retried elsewhere). */
  Discarding: 3,
  /** Ended: complete, failed or cut. */
  Done: 4,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/** An upstream response relayed to the client, or dropped. */
export interface UpstreamResponse {
  readonly status: number;
  /**
   * Writes the head (hop-by-hop headers removed) and streams the body to
   * `res` with backpressure; stops reading the body if `res` closes first.
   */
  pipeTo(res: ServerResponse): void;
  /** Reads and drops the body so the connection goes back to the pool. */
  discard(): void;
}

/** The undici dispatch handler (its callback API; see the file comment). */
export class UpstreamExchange implements UpstreamResponse {
  status = 0;
  #statusText = '';
  #rawHeaders: Buffer[] = [];
  #phase: Phase = Phase.Head;
  #connected = false;
  #complete = false;
  #failed = false;
  #cancelled: 'timeout' | 'aborted' | undefined;
  #abort: ((err?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #paused = false;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #sink: ServerResponse | undefined;
  readonly #settle: (outcome: UpstreamExchange | ExchangeFailure) => void;

  /** `settle` is called once: with the exchange when the head arrives, else with the failure. */
  constructor(settle: (outcome: UpstreamExchange | ExchangeFailure) => void) {
    this.#settle = settle;
  }

  /** Stops an exchange that has no head yet (per-try timeout, or the client left). */
  cancel(why: 'timeout' | 'aborted', message: string): void {
    if (this.#phase !== Phase.Head) {
      if (why === 'aborted') this.#cut();
      return;
    }
    this.#cancelled = why;
    if (this.#abort !== undefined) {
      this.#abort(new Error(message));
      return;
    }
    // Still queued or connecting: answer now; onConnect aborts it if it ever gets a connection.
    this.#phase = Phase.Done;
    this.#settle(why === 'timeout' ? { kind: 'timeout' } : { kind: 'aborted' });
  }

  // ---- undici's handler callbacks ----

  onConnect(abort: (err?: Error) => void): void {
    if (this.#cancelled !== undefined) {
      abort(new Error(`attempt ${this.#cancelled}`));
      return;
    }
    this.#abort = abort;
    // The request is about to be written on a connected socket: from here a failure may have reached the app.
    this.#connected = true;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.#phase !== Phase.Head) return false;
    // 1xx interim answers (103 Early Hints) are not the response; undici goes on to the final head.
    if (statusCode < 200) return true;
    this.status = statusCode;
    this.#statusText = statusText;
    this.#rawHeaders = rawHeaders;
    this.#resume = resume;
    this.#phase = Phase.Held;
    this.#settle(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    switch (this.#phase) {
      case Phase.Piping: {
        if (this.#sink!.write(chunk)) return true;
        this.#paused = true;
        this.#sink!.once('drain', this.#onDrain);
        return false;
      }
      case Phase.Held:
        this.#held.push(chunk);
        this.#heldBytes += chunk.length;
        if (this.#heldBytes < HOLD_LIMIT) return true;
        this.#paused = true;
        return false;
      default:
        return true;
    }
  }

  onComplete(): void {
    this.#complete = true;
    if (this.#phase === Phase.Piping) {
      this.#phase = Phase.Done;
      this.#sink!.end();
    } else if (this.#phase === Phase.Discarding) {
      this.#phase = Phase.Done;
    }
  }

  onError(err: Error): void {
    switch (this.#phase) {
      case Phase.Head:
        this.#phase = Phase.Done;
        if (this.#cancelled !== undefined) this.#settle({ kind: this.#cancelled });
        else this.#settle(this.#connected ? { kind: 'reset', error: err } : { kind: 'connect-error', error: err });
        return;
      case Phase.Held:
        this.#failed = true;
        return;
      case Phase.Piping:
        this.#phase = Phase.Done;
        this.#sink!.destroy();
        return;
      default:
        this.#phase = Phase.Done;
    }
  }

  // ---- UpstreamResponse ----

  pipeTo(res: ServerResponse): void {
    if (this.#phase !== Phase.Held) return;
    // The client left while the head waited for a decision: 'close' will not come again.
    if (res.destroyed) {
      this.#cut();
      return;
    }
    res.writeHead(this.status, this.#statusText, downstreamRawHeaders(this.#rawHeaders));
    if (this.#failed) {
      this.#phase = Phase.Done;
      res.destroy();
      return;
    }
    for (const chunk of this.#held) res.write(chunk);
    this.#held = [];
    if (this.#complete) {
      this.#phase = Phase.Done;
      res.end();
      return;
    }
    this.#phase = Phase.Piping;
    this.#sink = res;
    res.once('close', this.#onSinkClose);
    if (this.#paused) this.#onDrain();
  }

  discard(): void {
    if (this.#phase !== Phase.Held) return;
    this.#held = [];
    if (this.#complete || this.#failed) {
      this.#phase = Phase.Done;
      return;
    }
    this.#phase = Phase.Discarding;
    if (this.#paused) {
      this.#paused = false;
      this.#resume?.();
    }
  }

  readonly #onDrain = (): void => {
    this.#paused = false;
    this.#resume?.();
  };

  /** The client left before the body ended: stop reading it (the connection is closed, not reused). */
  readonly #onSinkClose = (): void => {
    if (this.#phase === Phase.Piping) this.#cut();
  };

  #cut(): void {
    if (this.#phase === Phase.Done) return;
    this.#phase = Phase.Done;
    this.#abort?.(new Error('the client left'));
  }
}
