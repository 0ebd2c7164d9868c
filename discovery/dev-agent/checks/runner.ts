/**
 * Runs the agent's own checks: script, HTTP and TCP probes every Interval (the first
 * one after a random stagger within the interval, as Consul does so a burst of
 * registrations does not probe in lockstep), TTL timers, and Consul's
 * SuccessBeforePassing / FailuresBeforeWarning / FailuresBeforeCritical
 * counters (agent/checks/check.go StatusHandler). Results go to a sink; the
 * runner owns no state beyond timers and counters.
 */
import type { Logger } from '../../../base/log.js';
import type { CheckRecord, CheckStatus } from '../state/types.js';
import { DEFAULT_OUTPUT_MAX_SIZE, type ProbeResult, probeHttp, probeTcp } from './probes.js';
import { probeScript } from './script.js';

/** Where results go (the agent writes them to the store). */
export interface CheckSink {
  /** A verdict that passed the thresholds. */
  result(checkId: string, status: CheckStatus, output: string): void;
  /** A TTL check was not refreshed in time. */
  ttlExpired(checkId: string): void;
}

interface Running {
  readonly check: CheckRecord;
  timer?: NodeJS.Timeout;
  successes: number;
  failures: number;
  stopped: boolean;
  /** Stops an in-flight script (its process group is killed). */
  abort: AbortController | undefined;
  /** Bumped each time a TTL clock (re)starts: an expiry of an older clock is void. */
  ttlArmed: number;
}

/** Consul's cap for script output: 4 KiB, lowered (never raised) by the check's OutputMaxSize. */
function scriptOutputMax(own: number | undefined): number {
  return own !== undefined && own > 0 && own < DEFAULT_OUTPUT_MAX_SIZE ? own : DEFAULT_OUTPUT_MAX_SIZE;
}

/** Timers and counters for every executed check, by check ID. */
export class CheckRunner {
  private readonly running = new Map<string, Running>();

  constructor(
    private readonly sink: CheckSink,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  /** Starts (or restarts, resetting counters) the check; API-only checks are ignored. */
  start(check: CheckRecord): void {
    this.stop(check.checkId);
    const d = check.definition;
    if (d.kind === 'none' && d.script === undefined) return;
    const r: Running = { check, successes: 0, failures: 0, stopped: false, abort: undefined, ttlArmed: 0 };
    this.running.set(check.checkId, r);
    if (d.kind === 'ttl') this.armTtl(r);
    else r.timer = setTimeout(() => void this.probe(r), Math.floor(this.random() * d.intervalMs!));
  }

  /** Stops a check's timers; an in-flight probe's result is dropped. */
  stop(checkId: string): void {
    const r = this.running.get(checkId);
    if (r === undefined) return;
    r.stopped = true;
    clearTimeout(r.timer);
    r.abort?.abort();
    this.running.delete(checkId);
  }

  /** A TTL check was updated through the API: its clock starts over. */
  touchTtl(checkId: string): void {
    const r = this.running.get(checkId);
    if (r !== undefined && r.check.definition.kind === 'ttl') this.armTtl(r);
  }

  /** True when the runner executes this check. */
  has(checkId: string): boolean {
    return this.running.has(checkId);
  }

  /** Stops everything (agent shutdown). */
  stopAll(): void {
    for (const id of [...this.running.keys()]) this.stop(id);
  }

  private armTtl(r: Running): void {
    clearTimeout(r.timer);
    const armed = ++r.ttlArmed;
    r.timer = setTimeout(() => {
      // Timers run before the poll phase reads sockets: when the loop has been busy, an update that
      // already arrived is still unread. Expiry waits one turn (setImmediate runs after the poll
      // phase), so such an update restarts the clock instead of the check flapping to critical.
      setImmediate(() => {
        if (!r.stopped && r.ttlArmed === armed) this.sink.ttlExpired(r.check.checkId);
      });
    }, r.check.definition.ttlMs!);
  }

  private async probe(r: Running): Promise<void> {
    const d = r.check.definition;
    let result: ProbeResult & { timedOut?: true };
    try {
      result = await this.execute(r);
    } catch (err) {
      result = { status: 'critical', output: (err as Error).message };
    }
    if (r.stopped) return;
    // Consul reports a script timeout straight away, past the thresholds (CheckMonitor notifies directly).
    if (result.timedOut === true) this.sink.result(r.check.checkId, 'critical', result.output);
    else this.apply(r, result);
    r.timer = setTimeout(() => void this.probe(r), d.intervalMs!);
  }

  private async execute(r: Running): Promise<ProbeResult & { timedOut?: true }> {
    const d = r.check.definition;
    if (d.script !== undefined) {
      r.abort = new AbortController();
      try {
        return await probeScript({ run: d.script, timeoutMs: d.timeoutMs!, outputMaxSize: scriptOutputMax(d.outputMaxSize), signal: r.abort.signal });
      } finally {
        r.abort = undefined;
      }
    }
    if (d.kind === 'http') {
      return probeHttp({
        url: d.http!,
        timeoutMs: d.timeoutMs!,
        ...(d.method === undefined ? {} : { method: d.method }),
        ...(d.header === undefined ? {} : { header: d.header }),
        ...(d.body === undefined ? {} : { body: d.body }),
        ...(d.tlsSkipVerify === undefined ? {} : { tlsSkipVerify: d.tlsSkipVerify }),
        ...(d.disableRedirects === undefined ? {} : { disableRedirects: d.disableRedirects }),
        ...(d.outputMaxSize === undefined ? {} : { outputMaxSize: d.outputMaxSize }),
      });
    }
    return probeTcp(d.tcp!, d.timeoutMs!);
  }

  /** Consul's StatusHandler: only report once a threshold of consecutive results is reached. */
  private apply(r: Running, result: ProbeResult): void {
    const d = r.check.definition;
    if (result.status === 'passing' || result.status === 'warning') {
      r.successes++;
      r.failures = 0;
      if (r.successes >= d.successBeforePassing) this.sink.result(r.check.checkId, result.status, result.output);
      else this.logger.debug({ checkId: r.check.checkId, successes: r.successes }, 'check passed but has not reached success threshold');
      return;
    }
    r.failures++;
    r.successes = 0;
    if (r.failures >= d.failuresBeforeCritical) this.sink.result(r.check.checkId, 'critical', result.output);
    else if (r.failures >= d.failuresBeforeWarning) this.sink.result(r.check.checkId, 'warning', result.output);
    else this.logger.debug({ checkId: r.check.checkId, failures: r.failures }, 'check failed but has not reached failure threshold');
  }
}
