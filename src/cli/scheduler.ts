/**
 * `weft scheduler`: the central scheduler (scheduler/README.md). Runs the API
 * and, while it holds `weft/leader`, the control loop; more instances stand by.
 * Stops on SIGTERM or SIGINT: releases the lock at once so a standby takes
 * over without waiting out the session TTL.
 */
import type { Command } from 'commander';
import { createLogger } from '../../base/log.js';
import { configFrom } from './flags.js';

interface SchedulerFlags {
  bind?: string;
  port?: string;
  lostAfter?: string;
  algorithm?: string;
}

/** Adds the scheduler subcommand to the program. */
export function registerSchedulerCommand(program: Command): void {
  program
    .command('scheduler')
    .description('the central scheduler: jobs, placement, leader election, CA signing, HTTP API')
    .option('--bind <addr>', 'API listen address (default 127.0.0.1)')
    .option('--port <port>', 'API port (default 7400)')
    .option('--lost-after <ms>', "replace a host's allocations after its heartbeat failed this long (default 30000)")
    .option('--algorithm <name>', 'binpack|spread (default binpack)')
    .action(async (opts: SchedulerFlags, cmd: Command) => {
      const config = configFrom(cmd, {
        'scheduler.bind': [opts.bind, '--bind'],
        'scheduler.port': [opts.port, '--port'],
        'scheduler.lostAfterMs': [opts.lostAfter, '--lost-after'],
        'scheduler.algorithm': [opts.algorithm, '--algorithm'],
      });
      const logger = createLogger({ level: config.log.level, format: config.log.format, name: 'scheduler' });
      // Loaded here, not at the top: every weft process (the proxy among them) loads
      // this file, and the scheduler pulls in fastify and node-forge.
      const { startScheduler } = await import('../wiring/scheduler-process.js');
      const scheduler = await startScheduler({ config, logger });
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          logger.info({ signal }, 'stopping the scheduler');
          process.once('SIGINT', () => process.exit(130));
          process.once('SIGTERM', () => process.exit(143));
          void scheduler.close().then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
