/**
 * `weft stat` and `weft top`: the mesh's golden signals per service (and per
 * version, per instance on request) from the scheduler's `GET /v1/stats`,
 * which reads the proxies' own metrics, as `linkerd viz stat` / `top` do.
 * `stat` prints one table; `top` redraws it in place on a terminal (a new
 * block each interval elsewhere) with who calls whom below, until Ctrl-C or
 * `--iterations`. `--json` prints the API's answer.
 */
import type { Command } from 'commander';
import type { StatsResponse } from '../../base/contracts/scheduler-api.js';
import { invalid, isWeftError } from '../../base/errors.js';
import { parseDuration } from '../../base/duration.js';
import { parseDurationArg, parseName } from './client/args.js';
import { type ConnectionFlags, clientFor, withConnectionFlags } from './client/connection.js';
import { type Output, processOutput } from './client/output.js';
import type { SchedulerClient } from './client/scheduler-client.js';
import { renderEdges, renderServices, statsHeader } from './client/stats-view.js';
import { paint } from './client/table.js';
import { clip } from './up/view.js';

interface StatFlags extends ConnectionFlags {
  versions?: boolean;
  instances?: boolean;
  window: string;
}

interface TopFlags extends StatFlags {
  interval: string;
  iterations?: string;
}

/** `--window 30s` -> 30: whole seconds from 2 to 600 (the API's bounds). */
export function parseWindow(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms < 2000 || ms > 600_000 || ms % 1000 !== 0) throw invalid('WEFT_ERR_ARGUMENT_INVALID', '--window', text, 'must be whole seconds from 2s to 10m, e.g. 30s or 1m');
  return ms / 1000;
}

/** The answer narrowed to one service: its row and the edges into or out of it. */
export function onlyService(r: StatsResponse, service: string | undefined): StatsResponse {
  if (service === undefined) return r;
  return {
    ...r,
    services: r.services.filter((s) => s.service === service),
    edges: r.edges.filter((e) => e.source === service || e.destination === service),
  };
}

/** Fetches the stats for `window` seconds. */
export function fetchStats(client: SchedulerClient, window: number): Promise<StatsResponse> {
  return client.call('stats', { query: { window } });
}

/** One frame of `weft top`: a header, the services, the edges. */
export function topFrame(r: StatsResponse, o: { color: boolean; versions?: boolean; instances?: boolean; now?: number }): string {
  const at = new Date(o.now ?? Date.now()).toISOString().slice(11, 19);
  const parts = [paint(`weft top · ${at} UTC · ${statsHeader(r, o.now)} · Ctrl-C quits`, 'dim', o.color), '', renderServices(r, o)];
  const edges = renderEdges(r.edges, o);
  if (edges !== '') parts.push('', edges);
  return parts.join('\n');
}

/** Adds `weft stat` and `weft top`. */
export function registerStatCommands(program: Command, io: Output = processOutput): void {
  withConnectionFlags(
    program
      .command('stat [service]')
      .description("golden metrics per service from the proxies (requests/s, success rate, p50/p99), like `linkerd viz stat`")
      .option('--versions', 'a row per version, with its share of the traffic against the split')
      .option('--instances', 'a row per instance, with its host')
      .option('--window <duration>', 'the window rates and latencies are taken over (2s to 10m)', '30s'),
  ).action(async (service: string | undefined, opts: StatFlags, cmd: Command) => {
    const window = parseWindow(opts.window);
    const only = service === undefined ? undefined : parseName('service', service);
    const { client } = clientFor(cmd, opts);
    const r = onlyService(await fetchStats(client, window), only);
    if (opts.json) {
      io.json(r);
      return;
    }
    if (only !== undefined && r.services.length === 0) throw invalid('WEFT_ERR_ARGUMENT_INVALID', 'service', only, 'no instance of this service is registered');
    io.out(`${paint(statsHeader(r), 'dim', io.color)}\n${renderServices(r, { color: io.color, versions: opts.versions === true, instances: opts.instances === true })}`);
  });

  withConnectionFlags(
    program
      .command('top')
      .description('golden metrics per service and who calls whom, refreshing until Ctrl-C (weft stat, live)')
      .option('--versions', 'a row per version, with its share of the traffic against the split')
      .option('--instances', 'a row per instance, with its host')
      .option('--window <duration>', 'the window rates and latencies are taken over (2s to 10m)', '30s')
      .option('--interval <duration>', 'how often it refreshes', '2s')
      .option('--iterations <n>', 'stop after this many refreshes (default: until Ctrl-C)'),
  ).action(async (opts: TopFlags, cmd: Command) => {
    const window = parseWindow(opts.window);
    const intervalMs = parseDurationArg('--interval', opts.interval);
    const iterations = opts.iterations === undefined ? Number.POSITIVE_INFINITY : parseIterations(opts.iterations);
    const { client } = clientFor(cmd, opts);
    let stop = false;
    let wake: (() => void) | undefined;
    const onSignal = (): void => {
      stop = true;
      wake?.();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let shown = 0;
    try {
      for (let i = 0; i < iterations && !stop; i++) {
        let frame: string;
        try {
          const r = await fetchStats(client, window);
          frame = opts.json ? JSON.stringify(r) : topFrame(r, { color: io.color, versions: opts.versions === true, instances: opts.instances === true });
        } catch (err) {
          // A scheduler restarting is not the end of `top`: say so and try again next interval.
          if (!isWeftError(err) || opts.json) throw err;
          frame = paint(`weft: ${err.code}: ${err.message}`, 'red', io.color);
        }
        if (io.tty && !opts.json) {
          // Move over the previous frame and clear it, then draw the new one; a line
          // wider than the terminal would wrap and throw the count off, so lines are clipped.
          const columns = process.stdout.columns ?? 200;
          const lines = frame.split('\n').map((l) => clip(l, columns - 1));
          io.write(`${shown > 0 ? `\u001b[${shown}F\u001b[J` : ''}${lines.join('\n')}\n`);
          shown = lines.length;
        } else {
          io.out(i === 0 || opts.json ? frame : `\n${frame}`);
        }
        if (i + 1 < iterations && !stop) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, intervalMs);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}

function parseIterations(text: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > 1_000_000) throw invalid('WEFT_ERR_ARGUMENT_INVALID', '--iterations', text, 'must be a whole number from 1');
  return Number(text);
}
