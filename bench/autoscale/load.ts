/**
 * The bench's load: an open-loop generator (requests leave at the rate set,
 * whatever the answers do, as wrk2 sends; Debian's wrk only saturates and
 * cannot hold a rate, and this one must also read which instance answered).
 * GETs over keep-alive connections to the caller's outbound proxy, the
 * service named in Host.
 *
 * Every answer is booked under the phase current when its request left:
 * sent, answered 200, failed (non-200 status with weft's x-weft-reason, or a
 * socket error / the 10 s timeout), and the first 200 from each instance
 * (the demo app echoes its host and port, unique per instance).
 *
 * Bounded: at most `maxInFlight` requests outstanding (beyond, a request is
 * not sent and is booked as such, apart from the failures), each at most
 * `timeoutMs`; the generator stops itself after `limitMs`.
 */
import http from 'node:http';

/** One phase's figures. */
export interface PhaseTally {
  sent: number;
  ok: number;
  /** Answered with another status than 200, or a socket error or the timeout. */
  failed: number;
  /** Not sent: `maxInFlight` requests were outstanding (the generator's bound, not an answer). */
  notSent: number;
  /** Wall-clock ms the phase began and (once another began) ended. */
  fromMs: number;
  toMs: number | undefined;
  /** Why requests failed: `503 WEFT_ERR_...`, `ECONNRESET`, `timeout`, ... -> how many. */
  reasons: Map<string, number>;
  /** The first 200 failures: wall-clock ms the request left, how long it took, why. */
  failures: Array<{ sentAtMs: number; ms: number; reason: string }>;
  /** Answered (ok) latencies in ms, from the request's scheduled time. */
  latencies: number[];
}

export interface LoadOptions {
  host: string;
  port: number;
  hostHeader: string;
  maxInFlight?: number;
  timeoutMs?: number;
  /** The generator stops itself after this long (ms). */
  limitMs: number;
}

/** The open-loop generator; `start()`, move the rate and the phase, `stop()`. */
export class OpenLoopLoad {
  readonly #opts: Required<LoadOptions>;
  readonly #agent: http.Agent;
  #rate = 0;
  #nextAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #limit: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #drained: (() => void) | undefined;
  #stopping: Promise<void> | undefined;
  #phase = 'start';
  readonly tallies = new Map<string, PhaseTally>();
  /** instance (`host:port`) -> wall-clock ms of its first 200 answer. */
  readonly firstSeen = new Map<string, number>();

  constructor(opts: LoadOptions) {
    this.#opts = { maxInFlight: 2000, timeoutMs: 10_000, ...opts };
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  }

  /** Requests per second from now on (0 pauses). */
  set rate(rps: number) {
    const now = performance.now();
    // A step takes effect at once: the next request leaves now, not after the old gap.
    if (rps > this.#rate || this.#nextAt < now) this.#nextAt = now;
    this.#rate = rps;
  }

  get rate(): number {
    return this.#rate;
  }

  /** The phase requests are booked under from now on. */
  set phase(name: string) {
    const now = Date.now();
    const old = this.tallies.get(this.#phase);
    if (old !== undefined && old.toMs === undefined) old.toMs = now;
    this.#phase = name;
    this.tally(name);
  }

  get phase(): string {
    return this.#phase;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  start(): void {
    this.#nextAt = performance.now();
    const tick = (): void => {
      const now = performance.now();
      if (this.#rate > 0) {
        const gap = 1000 / this.#rate;
        for (let n = 0; this.#nextAt <= now && n < 1000; n++) {
          this.#fire(this.#nextAt);
          this.#nextAt += gap;
        }
      } else {
        this.#nextAt = now;
      }
      if (this.#stopping === undefined) this.#timer = setTimeout(tick, 1);
    };
    tick();
    this.#limit = setTimeout(() => void this.stop(), this.#opts.limitMs);
  }

  /** Stops sending and waits for the requests in flight (each ends within timeoutMs). Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#timer);
      clearTimeout(this.#limit);
      this.#rate = 0;
      const cur = this.tallies.get(this.#phase);
      if (cur !== undefined && cur.toMs === undefined) cur.toMs = Date.now();
      if (this.#inFlight > 0) await new Promise<void>((r) => (this.#drained = r));
      this.#agent.destroy();
    })();
    return this.#stopping;
  }

  /** The tally of `phase` (created empty). */
  tally(phase: string): PhaseTally {
    let t = this.tallies.get(phase);
    if (t === undefined) {
      t = { sent: 0, ok: 0, failed: 0, notSent: 0, fromMs: Date.now(), toMs: undefined, reasons: new Map(), failures: [], latencies: [] };
      this.tallies.set(phase, t);
    }
    return t;
  }

  #fire(scheduled: number): void {
    const t = this.tally(this.#phase);
    if (this.#inFlight >= this.#opts.maxInFlight) {
      t.notSent++;
      return;
    }
    t.sent++;
    this.#inFlight++;
    const sentAtMs = Date.now();
    let settled = false;
    const fail = (reason: string): void => {
      t.failed++;
      t.reasons.set(reason, (t.reasons.get(reason) ?? 0) + 1);
      if (t.failures.length < 200) t.failures.push({ sentAtMs, ms: performance.now() - scheduled, reason });
    };
    const done = (): void => {
      settled = true;
      if (--this.#inFlight === 0) this.#drained?.();
    };
    const req = http.request(
      { host: this.#opts.host, port: this.#opts.port, path: '/', agent: this.#agent, headers: { host: this.#opts.hostHeader }, timeout: this.#opts.timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          if (settled) return;
          if (res.statusCode === 200) {
            t.ok++;
            t.latencies.push(performance.now() - scheduled);
            const who = instanceOf(body);
            if (who !== undefined && !this.firstSeen.has(who)) this.firstSeen.set(who, Date.now());
          } else {
            fail(`${res.statusCode} ${String(res.headers['x-weft-reason'] ?? '')}`.trim());
          }
          done();
        });
        res.on('error', (err: NodeJS.ErrnoException) => {
          if (settled) return;
          fail(err.code ?? err.message);
          done();
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      fail(err.code ?? err.message);
      done();
    });
    req.end();
  }
}

/** `host:port` of the demo app that answered (its JSON echoes both). */
export function instanceOf(body: string): string | undefined {
  try {
    const j = JSON.parse(body) as { host?: string; port?: number };
    return j.port === undefined ? undefined : `${j.host}:${j.port}`;
  } catch {
    return undefined;
  }
}
