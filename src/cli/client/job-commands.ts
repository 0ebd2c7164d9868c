/**
 * `weft deploy`, `weft plan`, `weft status`, `weft scale`, `weft autoscale`: jobs through the
 * scheduler API. Job files are sent as text; the scheduler parses YAML or JSON
 * and names every problem by its path (WEFT_ERR_JOB_INVALID), so the CLI never
 * holds a second copy of the job rules.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { JobSubmitResponse } from '../../../base/contracts/scheduler-api.js';
import { WeftError } from '../../../base/errors.js';
import { parseDurationArg, parseName, parseScaleArgs } from './args.js';
import { type ConnectionFlags, clientFor, withConnectionFlags } from './connection.js';
import { type Output, processOutput } from './output.js';
import { watchDeployment } from './progress.js';
import { progressOf, renderAutoscale, renderJobList, renderJobStatus, renderPlan } from './views.js';

interface DeployFlags extends ConnectionFlags {
  detach?: boolean;
  timeout: string;
  interval: string;
}

/** Adds deploy, plan, status, scale and autoscale. */
export function registerJobCommands(program: Command, io: Output = processOutput): void {
  withConnectionFlags(
    program
      .command('deploy <file>')
      .description('submit a job (YAML or JSON) and follow its rollout until it is healthy or failed')
      .option('-d, --detach', 'submit and return without waiting for the rollout')
      .option('--timeout <duration>', 'stop waiting after this long (the rollout goes on)', '5m')
      .option('--interval <duration>', 'how often progress is polled', '1s'),
  ).action(async (file: string, opts: DeployFlags, cmd: Command) => {
    const timeoutMs = parseDurationArg('--timeout', opts.timeout);
    const intervalMs = parseDurationArg('--interval', opts.interval);
    const { client } = clientFor(cmd, opts);
    const submitted = await client.call('submitJob', { body: { spec: readJobFile(file) } });
    if (opts.json) io.json(submitted);
    else io.out(describeSubmit(submitted));
    if (opts.detach) {
      if (!opts.json) io.out(`not waiting (--detach): \`weft status ${submitted.job}\` shows the rollout`);
      return;
    }
    // With --json, stdout carries only JSON: progress goes to stderr.
    const write = opts.json ? io.err : io.write;
    const done = await watchDeployment({
      job: submitted.job,
      poll: async () => progressOf(await client.call('jobStatus', { params: { job: submitted.job } }), submitted.version),
      timeoutMs,
      intervalMs,
      write,
      tty: opts.json ? io.errTty : io.tty,
    });
    const line = `${submitted.job}: version ${done.version ?? submitted.version} is healthy`;
    if (opts.json) io.err(`${line}\n`);
    else io.out(line);
  });

  withConnectionFlags(
    program.command('plan <file>').description('show what submitting a job would start and stop, and what would not fit; changes nothing'),
  ).action(async (file: string, opts: ConnectionFlags, cmd: Command) => {
    const { client } = clientFor(cmd, opts);
    const plan = await client.call('planJob', { body: { spec: readJobFile(file) } });
    if (opts.json) io.json(plan);
    else io.out(renderPlan(plan, { color: io.color }));
  });

  withConnectionFlags(
    program.command('status [job]').description("list jobs, or one job's groups, allocations and recent events"),
  ).action(async (job: string | undefined, opts: ConnectionFlags, cmd: Command) => {
    const { client } = clientFor(cmd, opts);
    if (job === undefined) {
      const jobs = await client.call('listJobs');
      if (opts.json) io.json(jobs);
      else io.out(renderJobList(jobs, { color: io.color }));
      return;
    }
    const status = await client.call('jobStatus', { params: { job: parseName('job', job) } });
    if (opts.json) io.json(status);
    else io.out(renderJobStatus(status, { color: io.color }));
  });

  withConnectionFlags(
    program
      .command('scale <job> <args...>')
      .description('set the instance count of a job\'s group: `weft scale web 5`, or `weft scale web api 5` for group api')
      .usage('<job> [group] <count> [options]'),
  ).action(async (job: string, args: string[], opts: ConnectionFlags, cmd: Command) => {
    const { group, count } = parseScaleArgs(args);
    const { client } = clientFor(cmd, opts);
    const body = group === undefined ? { count } : { group, count };
    const r = await client.call('scaleJob', { params: { job: parseName('job', job) }, body });
    if (opts.json) io.json(r);
    else io.out(`${r.job}.${r.group}: ${r.previous} -> ${r.count} (\`weft status ${r.job}\` follows it)`);
  });

  registerAutoscaleCommand(program, io);
}

/** Adds `weft autoscale JOB`: each autoscaled group's live metrics against their targets, and its decisions. */
export function registerAutoscaleCommand(program: Command, io: Output = processOutput): void {
  withConnectionFlags(
    program.command('autoscale <job>').description("show a job's autoscaled groups: the count, each metric's live value against its target, the last decisions"),
  ).action(async (job: string, opts: ConnectionFlags, cmd: Command) => {
    const { client } = clientFor(cmd, opts);
    const r = await client.call('jobAutoscale', { params: { job: parseName('job', job) } });
    if (opts.json) io.json(r);
    else io.out(renderAutoscale(r, { color: io.color }));
  });
}

function readJobFile(file: string): string {
  try {
    const text = readFileSync(file, 'utf8');
    if (text.trim() === '') throw new Error('the file is empty');
    return text;
  } catch (cause) {
    throw new WeftError('WEFT_ERR_ARGUMENT_INVALID', `job file ${file}: ${(cause as Error).message}`, { key: 'file', value: file, cause });
  }
}

/** One line on what a submit did. */
export function describeSubmit(r: JobSubmitResponse): string {
  switch (r.change) {
    case 'create':
      return `${r.job}: created, version ${r.version}`;
    case 'update':
      return `${r.job}: version ${r.version} rolling out (was ${r.previousVersion ?? '?'})`;
    case 'scale':
      return `${r.job}: counts changed, version ${r.version}`;
    default:
      return `${r.job}: unchanged, version ${r.version}`;
  }
}
