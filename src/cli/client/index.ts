/**
 * The scheduler client commands in one call for src/cli/main.ts:
 * deploy, plan, status, scale, autoscale (job-commands.ts) and split, allow, deny,
 * secret, node (mesh-commands.ts), all over base/contracts/scheduler-api.ts.
 */
import type { Command } from 'commander';
import { registerJobCommands } from './job-commands.js';
import { registerMeshCommands } from './mesh-commands.js';
import { type Output, processOutput } from './output.js';

/** Adds every scheduler client command to the program. */
export function registerSchedulerClientCommands(program: Command, io: Output = processOutput): void {
  registerJobCommands(program, io);
  registerMeshCommands(program, io);
}
