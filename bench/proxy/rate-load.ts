/**
 * A constant-rate (open-loop) HTTP load generator, because wrk can only
 * saturate and wrk2 is not packaged in Debian. Requests are scheduled at
 * start + i / rate; latency is measured from the *scheduled* time, so a
 * stalled proxy is charged for the requests it held back (no coordinated
 * omission, as in wrk2). Percentiles are exact (sorted samples: 10 s at
 * 1,000 rps is 10,000 numbers).
 */
import http from 'node:http';

/** What one run measured. */
export interface RateResult {
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  /** Milliseconds. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Sends GETs to host:port at `rate` per second for `ms`, over up to `connections` keep-alive connections. */
export async function constantRate(opts: { host: string; port: number; hostHeader?: string; rate: number; ms: number; connections?: number }): Promise<RateResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections ?? 64 });
  const total = Math.round((opts.rate * opts.ms) / 1000);
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  let done = 0;
  const start = performance.now() + 5;
  await new Promise<void>((resolve) => {
    const fire = (scheduled: number): void => {
      const req = http.request(
        { host: opts.host, port: opts.port, path: '/', agent, headers: opts.hostHeader === undefined ? {} : { host: opts.hostHeader }, timeout: 5000 },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(performance.now() - scheduled);
            else errors++;
            if (++done === total) resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        errors++;
        if (++done === total) resolve();
      });
      req.end();
    };
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + (sent * 1000) / opts.rate <= now) fire(start + (sent++ * 1000) / opts.rate);
      if (sent < total) setTimeout(tick, 1);
    };
    setTimeout(tick, 5);
  });
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return { sent: total, ok: latencies.length, errors, p50: at(0.5), p99: at(0.99), max: latencies[latencies.length - 1] ?? Number.NaN };
}
