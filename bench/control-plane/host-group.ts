/**
 * The simulated hosts of one benchmark size, split over several processes
 * (hosts.ts, HOSTS_PER_PROCESS each): one event loop cannot keep 2,000
 * agents' heartbeats, watches and status reports on time, and real agents
 * each have their own. The children are started and stopped here; commands
 * go to all of them and their answers come back merged (sums, maxima, the
 * heartbeat round trips pooled before taking percentiles). A child that dies
 * fails the waits at once instead of leaving them to time out.
 *
 * The children run at a lower CPU priority (nice 10, BENCH_HOSTS_NICE): the
 * simulated hosts stand for other machines, and on this 2-core machine
 * several of them could otherwise take both cores from the control plane
 * being measured (one simulator process could take at most one). They still
 * use every cycle the control plane leaves, and their own event-loop lag is
 * reported beside the heartbeat delays.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import type { HostsCommand, HostsMessage } from './hosts.js';

/** Hosts per simulator process. */
export const HOSTS_PER_PROCESS = 500;
/** The simulators' niceness (BENCH_HOSTS_NICE; 0 runs them at the control plane's priority). */
export const HOSTS_NICE = Number(process.env['BENCH_HOSTS_NICE'] ?? 10);

type Stats = Extract<HostsMessage, { type: 'stats' }>;

/** The merged stats of every simulator process. */
export interface GroupStats {
  beats: number;
  failures: number;
  maxRttMs: number;
  p99RttMs: number;
  maxGapMs: number;
  /** The largest event-loop lag of any simulator process. */
  maxLoopLagMs: number;
  tracked: number;
  running: number;
  errors: Array<[string, number]>;
  firstReportAt: number | undefined;
  lastReportAt: number | undefined;
}

export interface HostGroupOptions {
  hosts: number;
  /** Extra node flags (a CPU profile). */
  execArgv: readonly string[];
  /** Environment of every child (BENCH_CONSUL, BENCH_TTL_MS, BENCH_SCHED_DIR); BENCH_HOSTS and BENCH_HOST_OFFSET are set here. */
  env: NodeJS.ProcessEnv;
}

/** Several hosts.ts processes, driven as one. */
export class HostGroup {
  private readonly procs: ChildProcess[] = [];
  private readonly exited: Array<Promise<void>> = [];
  private readonly died: Promise<never>;
  private dead: ((err: Error) => void) | undefined;
  private stopping = false;

  constructor(opts: HostGroupOptions) {
    this.died = new Promise<never>((_, reject) => {
      this.dead = reject;
    });
    this.died.catch(() => undefined); // observed through the waits
    for (let offset = 0; offset < opts.hosts; offset += HOSTS_PER_PROCESS) {
      const count = Math.min(HOSTS_PER_PROCESS, opts.hosts - offset);
      const proc = spawn(process.execPath, [...opts.execArgv, '--import', 'tsx', join(import.meta.dirname, 'hosts.ts')], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...opts.env, BENCH_HOSTS: String(count), BENCH_HOST_OFFSET: String(offset) },
      });
      proc.on('error', () => undefined); // a send to a child that is gone: the exit below says so
      if (HOSTS_NICE !== 0 && proc.pid !== undefined) setPriority(proc.pid, HOSTS_NICE);
      this.exited.push(
        new Promise((resolve) =>
          proc.once('exit', (code, signal) => {
            if (!this.stopping) this.dead?.(new Error(`host simulator ${offset}-${offset + count - 1} exited (${signal ?? code})`));
            resolve();
          }),
        ),
      );
      this.procs.push(proc);
    }
  }

  /** The simulator processes' ids (their CPU and memory are the hosts' share). */
  get pids(): number[] {
    return this.procs.map((p) => p.pid!);
  }

  /** How many processes simulate the hosts. */
  get processes(): number {
    return this.procs.length;
  }

  /** Sends `cmd` to every process and resolves with each one's first answer of `type`. */
  private async ask<T extends HostsMessage['type']>(cmd: HostsCommand | undefined, type: T): Promise<Array<Extract<HostsMessage, { type: T }>>> {
    const answers = this.procs.map(
      (proc) =>
        new Promise<Extract<HostsMessage, { type: T }>>((resolve) => {
          const on = (m: HostsMessage): void => {
            if (m.type !== type) return;
            proc.off('message', on);
            resolve(m as Extract<HostsMessage, { type: T }>);
          };
          proc.on('message', on);
          if (cmd !== undefined && proc.connected) proc.send(cmd);
        }),
    );
    return Promise.race([Promise.all(answers), this.died]);
  }

  /** Waits until every host runs; resolves with all host names, in order. */
  async ready(): Promise<string[]> {
    return (await this.ask(undefined, 'ready')).flatMap((m) => m.hosts);
  }

  /** Crashes `hosts` (each process those it simulates). */
  async lose(hosts: string[]): Promise<void> {
    await this.ask({ cmd: 'lose', hosts }, 'lost');
  }

  /** The merged heartbeat and allocation figures; `reset` starts the next period afresh. */
  async stats(reset = false): Promise<GroupStats> {
    const all: Stats[] = await this.ask({ cmd: 'stats', reset }, 'stats');
    const rtts = all.flatMap((s) => s.rtts).sort((a, b) => a - b);
    const errors = new Map<string, number>();
    for (const s of all) for (const [k, n] of s.errors) errors.set(k, (errors.get(k) ?? 0) + n);
    const defined = (xs: Array<number | undefined>): number[] => xs.filter((x): x is number => x !== undefined);
    const first = defined(all.map((s) => s.firstReportAt));
    const last = defined(all.map((s) => s.lastReportAt));
    return {
      beats: rtts.length,
      failures: all.reduce((n, s) => n + s.failures, 0),
      maxRttMs: rtts.at(-1) ?? 0,
      p99RttMs: rtts.length === 0 ? 0 : rtts[Math.min(rtts.length - 1, Math.ceil(rtts.length * 0.99) - 1)]!,
      maxGapMs: Math.max(0, ...all.map((s) => s.maxGapMs)),
      maxLoopLagMs: Math.max(0, ...all.map((s) => s.maxLoopLagMs)),
      tracked: all.reduce((n, s) => n + s.tracked, 0),
      running: all.reduce((n, s) => n + s.running, 0),
      errors: [...errors].sort((a, b) => b[1] - a[1]).slice(0, 5),
      firstReportAt: first.length === 0 ? undefined : Math.min(...first),
      lastReportAt: last.length === 0 ? undefined : Math.max(...last),
    };
  }

  /** Stops every process (asked first, killed after 10 s). */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const proc of this.procs) if (proc.connected) proc.send({ cmd: 'stop' } satisfies HostsCommand);
    const all = Promise.all(this.exited);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => {
      timer = setTimeout(() => r(false), 10_000);
    });
    const done = await Promise.race([all.then(() => true), late]);
    clearTimeout(timer);
    if (done) return;
    for (const proc of this.procs) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await all;
  }
}
