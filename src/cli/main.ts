/**
 * The `weft` command line. One subcommand per process of the architecture; each
 * loads the configuration once (flags > env > file), then hands off to its
 * subsystem. Errors print their code and the bad key, and exit non-zero.
 */
import { Command, Option } from 'commander';
import { ALL_ENV } from '../env.js';
import { isWeftError } from '../errors.js';
import { createLogger } from '../log.js';
import { VERSION } from '../version.js';
import { registerAgentCommand } from './agent.js';
import { registerCaCommands } from './ca.js';
import { registerSchedulerClientCommands } from './client/index.js';
import { registerDevConsulCommand } from './dev-consul.js';
import { registerProxyCommand } from './proxy.js';
import { registerSchedulerCommand } from './scheduler.js';
import { registerUpCommand } from './up/index.js';
import { GLOBAL_FLAGS } from './flags.js';

/** Builds the program. Exported so tests drive the real CLI in-process. */
export function buildProgram(): Command {
  const program = new Command('weft')
    .description('weft: a service mesh and container orchestrator for Docker fleets')
    .version(VERSION, '-v, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `\nEnvironment: ${ALL_ENV.join(', ')}\nPrecedence: flags > environment > config file > defaults.\nDocs: README.md, docs/configuration.md, docs/errors.md`,
    );
  for (const [flag, , description] of GLOBAL_FLAGS) program.addOption(new Option(flag, description));

  registerDevConsulCommand(program);
  registerCaCommands(program);
  registerAgentCommand(program);
  registerProxyCommand(program);
  registerSchedulerCommand(program);
  registerSchedulerClientCommands(program);
  registerUpCommand(program);
  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, for tests. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (isWeftError(err)) {
      process.stderr.write(`weft: ${err.code}: ${err.message}\n`);
      return 2;
    }
    const code = (err as { code?: string; exitCode?: number }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) return (err as { exitCode: number }).exitCode;
    createLogger({ name: 'weft' }).error({ err }, 'unexpected error');
    return 1;
  }
}
