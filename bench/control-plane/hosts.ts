/**
 * A host simulator of the control-plane benchmark: one process playing N
 * `weft agent`s (the benchmark starts one per 500 hosts: host-group.ts).
 * Each host runs the agent's real registration and heartbeat
 * (agent/node.ts NodeHeartbeat: weft-agent with a TTL check passed every
 * TTL/3) and its real allocation runner (agent/allocations.ts AllocRunner:
 * a blocking query on weft/allocs/<host>/, status reports to
 * weft/alloc-status/<host>/) over a driver that runs nothing
 * (null-driver.ts). Hosts share one Consul client, as they would share
 * nothing but the wire; every heartbeat's round trip and the gap between a
 * host's successful beats are measured.
 *
 * Driven by its parent over IPC: `lose` stops some hosts as a crash would
 * (no deregistration: their check goes critical), `stats` answers the
 * heartbeat figures (with every round trip, which the parent pools across
 * processes), `stop` ends it. Env: BENCH_CONSUL, BENCH_HOSTS,
 * BENCH_HOST_OFFSET (the number of this process's first host), BENCH_TTL_MS,
 * BENCH_SCHED_DIR (the scheduler's data directory: its public signing keys,
 * which every allocation document must verify with).
 */
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { AllocRunner, NodeHeartbeat, Registrar, SigningKeys } from '../../agent/index.js';
import { createDiscoveryClient, type DiscoveryClient } from '../../discovery/index.js';
import { silentLogger } from '../../base/log.js';
import { NullDriver } from './null-driver.js';

const consul = process.env['BENCH_CONSUL']!;
const hostCount = Number(process.env['BENCH_HOSTS'] ?? 100);
const hostOffset = Number(process.env['BENCH_HOST_OFFSET'] ?? 0);
const ttlMs = Number(process.env['BENCH_TTL_MS'] ?? 15_000);
const START_CONCURRENCY = 25;

/** Messages to the parent. */
export type HostsMessage =
  | { type: 'ready'; hosts: string[]; startMs: number }
  | { type: 'stats'; beats: number; rtts: number[]; failures: number; maxRttMs: number; p99RttMs: number; maxGapMs: number; maxGapHost: string; maxLoopLagMs: number; tracked: number; running: number; errors: Array<[string, number]>; firstReportAt: number | undefined; lastReportAt: number | undefined }
  | { type: 'lost'; hosts: string[] };

/** Messages from the parent. */
export type HostsCommand = { cmd: 'lose'; hosts: string[] } | { cmd: 'stats'; reset?: boolean } | { cmd: 'stop' };

interface SimHost {
  name: string;
  heartbeat: NodeHeartbeat;
  runner: AllocRunner;
  lastBeatAt: number | undefined;
  lost: boolean;
}

// A thousand hosts keep their connections to Consul open (in a real cluster each to its own local
// agent). Node's default agent keeps at most 256 idle sockets and closes them after 5 s, so a host
// beating every 5 s would reconnect at every beat: a thousand new connections in bursts, queued
// for accept behind the work they come to do. Here idle sockets stay, as long-lived clients keep them.
http.globalAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 4096, timeout: 60_000, scheduling: 'lifo' });
const shared = createDiscoveryClient({ consul: { address: consul } });
// node-consul makes its own keep-alive agent rather than using the global one: the same limit there
// (with its default of 256, connections beyond that were closed when idle and opened again at the next beat).
(shared.consul as unknown as { _opts: { agent: http.Agent } })._opts.agent.maxFreeSockets = 4096;
/** This process's own event-loop lag: a heartbeat late because of it is the simulator's, not Consul's. */
const lag = monitorEventLoopDelay({ resolution: 20 });
lag.enable();
const rtts: number[] = [];
let failures = 0;
let maxGap = { ms: 0, host: '' };

/** The shared client, with heartbeats timed per host. */
function clientFor(host: SimHost): DiscoveryClient {
  const c = Object.create(shared) as DiscoveryClient;
  c.call = async <T>(op: string, run: Parameters<DiscoveryClient['call']>[1]): Promise<T> => {
    if (op !== 'agent.check.pass') {
      try {
        const out = (await shared.call(op, run)) as T;
        if (op === 'txn') {
          reports.first ??= Date.now();
          reports.last = Date.now();
        }
        return out;
      } catch (err) {
        noteError(op, err);
        throw err;
      }
    }
    const t0 = performance.now();
    try {
      const out = (await shared.call(op, run)) as T;
      const now = performance.now();
      rtts.push(now - t0);
      if (host.lastBeatAt !== undefined && !host.lost && now - host.lastBeatAt > maxGap.ms) maxGap = { ms: now - host.lastBeatAt, host: host.name };
      host.lastBeatAt = now;
      return out;
    } catch (err) {
      failures++;
      noteError(op, err);
      throw err;
    }
  };
  return c;
}

/** When the first and the last status transaction (since the last reset) went through (ms epoch). */
const reports: { first: number | undefined; last: number | undefined } = { first: undefined, last: undefined };

/** Failed calls by operation and message (the first words), for the parent's report. */
const errors = new Map<string, number>();
function noteError(op: string, err: unknown): void {
  const key = `${op}: ${String((err as Error).message).slice(0, 120)}`;
  errors.set(key, (errors.get(key) ?? 0) + 1);
}

async function startHost(i: number): Promise<SimHost> {
  const name = `h${String(i).padStart(5, '0')}`;
  const address = `127.0.${Math.floor(i / 250) + 1}.${(i % 250) + 2}`;
  const host = { name, lastBeatAt: undefined, lost: false } as SimHost;
  const client = clientFor(host);
  const driver = new NullDriver(name);
  host.heartbeat = new NodeHeartbeat({ client, host: name, address, cpu: 4000, memory: 8192, attributes: {}, driver: 'process', ttlMs, logger: silentLogger });
  const registrar = new Registrar({ driver, client, host: name, hostAddress: address, meshPort: 15443, logger: silentLogger, drainDelayMs: 0 });
  host.runner = new AllocRunner({ driver, client, registrar, host: name, hostAddress: address, logger: silentLogger, stopDeadlineMs: 1000, signingKeys });
  await host.heartbeat.start();
  await host.runner.start();
  return host;
}

// The scheduler's public keys, as an agent without a host token reads them on the scheduler's machine; one copy
// for every simulated host (each real agent holds its own).
const signingKeys = new SigningKeys({ dataDir: process.env['BENCH_SCHED_DIR']!, refreshMs: 60_000, logger: silentLogger });
signingKeys.setMaxListeners(0); // one listener per simulated host's runner
await signingKeys.start();
const hosts: SimHost[] = [];
const t0 = performance.now();
for (let i = 0; i < hostCount; i += START_CONCURRENCY) {
  const batch = [];
  for (let j = i; j < Math.min(hostCount, i + START_CONCURRENCY); j++) batch.push(startHost(hostOffset + j));
  hosts.push(...(await Promise.all(batch)));
}
process.send!({ type: 'ready', hosts: hosts.map((h) => h.name), startMs: performance.now() - t0 } satisfies HostsMessage);

process.on('message', (msg: HostsCommand) => {
  void (async () => {
    if (msg.cmd === 'lose') {
      const names = new Set(msg.hosts);
      const lost = hosts.filter((h) => names.has(h.name));
      for (const h of lost) h.lost = true;
      // A crash: no deregistration, the watch and the beats just stop.
      await Promise.all(lost.map(async (h) => {
        await h.heartbeat.stop();
        await h.runner.stop();
      }));
      process.send!({ type: 'lost', hosts: lost.map((h) => h.name) } satisfies HostsMessage);
    } else if (msg.cmd === 'stats') {
      const sorted = [...rtts].sort((a, b) => a - b);
      const p99 = sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
      process.send!({ type: 'stats', beats: rtts.length, rtts: [...rtts], failures, maxRttMs: sorted.at(-1) ?? 0, p99RttMs: p99, maxGapMs: maxGap.ms, maxGapHost: maxGap.host, maxLoopLagMs: lag.max / 1e6, ...allocCounts(), errors: [...errors].sort((a, b) => b[1] - a[1]).slice(0, 5), firstReportAt: reports.first, lastReportAt: reports.last } satisfies HostsMessage);
      if (msg.reset === true) {
        lag.reset();
        reports.first = undefined;
        reports.last = undefined;
        rtts.length = 0;
        failures = 0;
        maxGap = { ms: 0, host: '' };
      }
    } else if (msg.cmd === 'stop') {
      await stopAll();
    }
  })();
});

/** Allocations the runners track, and those reported running. */
function allocCounts(): { tracked: number; running: number } {
  let tracked = 0;
  let running = 0;
  for (const h of hosts) {
    if (h.lost) continue;
    for (const a of h.runner.snapshot()) {
      tracked++;
      if (a.state === 'running') running++;
    }
  }
  return { tracked, running };
}

let stopping: Promise<void> | undefined;
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    await Promise.all(
      hosts
        .filter((h) => !h.lost)
        .map(async (h) => {
          await h.heartbeat.stop();
          await h.runner.stop();
        }),
    );
    shared.close();
    process.disconnect?.();
    process.exit(0);
  })();
  return stopping;
}
process.on('SIGTERM', () => void stopAll());
// Bounded: the parent's death ends this process too.
process.on('disconnect', () => void stopAll());
