/**
 * The `weft` command line. One subcommand per process of the architecture; each
 * loads the configuration once (flags > env > file), then hands off to its
 * subsystem. Errors print their code and the bad key, and exit non-zero.
 *
 * `weft proxy` is the data plane, one per host for as long as the host runs:
 * it gets a program with only its own command, so the other commands'
 * modules (the scheduler client's API schemas, `weft up`'s process handling,
 * ...) are never loaded into it (proxy/README.md, "Runtime and hot path").
 */
import { Command, Option } from 'commander';
import { ALL_ENV } from '../../base/env.js';
import { isWeftError } from '../../base/errors.js';
import { createLogger } from '../../base/log.js';
import { VERSION } from '../../base/version.js';
import { GLOBAL_FLAGS } from './flags.js';
import { registerProxyCommand } from './proxy.js';

/** Builds the program with every command. Exported so tests drive the real CLI in-process. */
export async function buildProgram(): Promise<Command> {
  const [agent, ca, client, devConsul, scheduler, up, stat, logs] = await Promise.all([
    import('./agent.js'),
    import('./ca.js'),
    import('./client/index.js'),
    import('./dev-consul.js'),
    import('./scheduler.js'),
    import('./up/index.js'),
    import('./stat.js'),
    import('./logs.js'),
  ]);
  const program = baseProgram();
  devConsul.registerDevConsulCommand(program);
  ca.registerCaCommands(program);
  agent.registerAgentCommand(program);
  registerProxyCommand(program);
  scheduler.registerSchedulerCommand(program);
  client.registerSchedulerClientCommands(program);
  up.registerUpCommand(program);
  stat.registerStatCommands(program);
  logs.registerLogsCommand(program);
  return program;
}

/** The subcommand `argv` names: the first word that is neither a global flag nor its value. */
export function subcommandOf(argv: readonly string[]): string | undefined {
  const takesValue = new Set(GLOBAL_FLAGS.map(([flag]) => flag.split(' ')[0]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (takesValue.has(arg)) i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/** The program's name, version, help text and global flags, without commands. */
function baseProgram(): Command {
  const program = new Command('weft')
    .description('weft: a service mesh and container orchestrator for Docker fleets')
    .version(VERSION, '-v, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `\nEnvironment: ${ALL_ENV.join(', ')}\nPrecedence: flags > environment > config file > defaults.\nDocs: README.md, docs/configuration.md, docs/errors.md`,
    );
  for (const [flag, , description] of GLOBAL_FLAGS) program.addOption(new Option(flag, description));
  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, for tests. */
export async function run(argv: string[]): Promise<number> {
  let program: Command;
  if (subcommandOf(argv) === 'proxy') {
    program = baseProgram();
    registerProxyCommand(program);
  } else {
    program = await buildProgram();
  }
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
