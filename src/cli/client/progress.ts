/**
 * `weft deploy`'s progress: poll the job's status until its deployment is
 * healthy or failed, or the timeout passes, printing one line per group such as
 * `web: 2/3 running, 1 healthy`. The loop is bounded by its deadline and takes
 * its clock, sleep and output from the caller, so tests replay it exactly.
 *
 * In a terminal the lines are rewritten in place; elsewhere (CI logs, pipes) a
 * line is printed only when it changes, so a long rollout does not flood a log.
 */
import { WeftError } from '../../../base/errors.js';

/** One task group's counts, as the status route reports them. */
export interface GroupProgress {
  name: string;
  desired: number;
  running: number;
  healthy: number;
  failed?: number;
  pending?: number;
}

/** What the loop needs from one status poll. */
export interface DeploymentProgress {
  /** `running` while rolling out; `successful` once healthy; `failed` ends the watch with an error. */
  status: 'running' | 'successful' | 'failed';
  version?: number;
  groups: readonly GroupProgress[];
  /** The scheduler's reason when failed, or a note while running (`1 allocation not placed: ...`). */
  message?: string;
}

/** `web: 2/3 running, 1 healthy` (`, 1 failed` / `, 1 pending` when there are any). */
export function progressLine(job: string, g: GroupProgress, single: boolean): string {
  const name = single && g.name === job ? job : `${job}.${g.name}`;
  const extra = [(g.failed ?? 0) > 0 ? `${g.failed} failed` : '', (g.pending ?? 0) > 0 ? `${g.pending} pending` : ''].filter(Boolean);
  return `${name}: ${g.running}/${g.desired} running, ${g.healthy} healthy${extra.length > 0 ? `, ${extra.join(', ')}` : ''}`;
}

/** Renders every group's line; a single group named after its job is shown as just the job. */
export function progressLines(job: string, p: DeploymentProgress): string[] {
  const lines = p.groups.map((g) => progressLine(job, g, p.groups.length === 1));
  if (p.message !== undefined && p.message !== '' && p.status === 'running') lines.push(`  ${p.message}`);
  return lines;
}

/** Everything the watch loop touches, injectable. */
export interface WatchOptions {
  job: string;
  poll: () => Promise<DeploymentProgress>;
  timeoutMs: number;
  intervalMs: number;
  write: (text: string) => void;
  /** Rewrite lines in place (a terminal) or print changes only. */
  tty: boolean;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Polls until the deployment is `successful` (returns the last progress),
 * `failed` (throws WEFT_ERR_DEPLOY_FAILED with the scheduler's reason) or the
 * timeout passes (throws WEFT_ERR_DEPLOY_TIMEOUT with the last counts).
 */
export async function watchDeployment(opts: WatchOptions): Promise<DeploymentProgress> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = now() + opts.timeoutMs;
  let shown: string[] = [];
  const show = (lines: string[]): void => {
    if (opts.tty) {
      // Move up over the previous block and clear it, then print the new one.
      const up = shown.length > 0 ? `\u001b[${shown.length}F\u001b[J` : '';
      opts.write(`${up}${lines.join('\n')}\n`);
    } else {
      const changed = lines.filter((l, i) => l !== shown[i]);
      if (changed.length > 0) opts.write(`${changed.join('\n')}\n`);
    }
    shown = lines;
  };
  for (;;) {
    const p = await opts.poll();
    show(progressLines(opts.job, p));
    if (p.status === 'successful') return p;
    if (p.status === 'failed') {
      throw new WeftError('WEFT_ERR_DEPLOY_FAILED', `deployment of ${opts.job}${p.version === undefined ? '' : ` version ${p.version}`} failed: ${p.message ?? 'no reason given'}`, {
        key: 'job',
        value: opts.job,
      });
    }
    const left = deadline - now();
    if (left <= 0) {
      const counts = p.groups.map((g) => progressLine(opts.job, g, p.groups.length === 1)).join('; ');
      throw new WeftError(
        'WEFT_ERR_DEPLOY_TIMEOUT',
        `deployment of ${opts.job} not healthy after ${Math.round(opts.timeoutMs / 1000)}s (${counts}); it keeps rolling out: see \`weft status ${opts.job}\``,
        { key: 'timeout', value: opts.timeoutMs },
      );
    }
    await sleep(Math.min(opts.intervalMs, left));
  }
}
