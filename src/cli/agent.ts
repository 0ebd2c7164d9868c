/**
 * `weft agent`: the per-host agent (agent/README.md). Runs until SIGTERM or
 * SIGINT, then stops its own loops only: containers, their registrations and
 * the host proxy keep running, and the next agent adopts them.
 *
 * The agent's modules (Docker client, drivers) load only when the command
 * runs, so other commands never pay for them.
 */
import type { Command } from 'commander';
import { invalid } from '../../base/errors.js';
import { createLogger } from '../../base/log.js';
import { configFrom } from './flags.js';

interface AgentFlags {
  driver?: string;
  address?: string;
  cpu?: string;
  memory?: string;
  attr?: string[];
  volume?: string[];
  proxy?: boolean;
  leave?: boolean;
  addr?: string;
  token?: string;
  onlyLabel?: string;
}

/** Adds the agent subcommand to the program. */
export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description("the host agent: runs this host's containers, registers them by label, supervises the proxy")
    .option('--driver <name>', 'auto|docker|process (default auto: docker when its daemon answers)')
    .option('--address <addr>', "this host's address, where its instances are reached (default 127.0.0.1)")
    .option('--cpu <millicores>', 'CPU capacity offered to the scheduler (default: cores x 1000)')
    .option('--memory <MiB>', 'memory capacity offered to the scheduler (default: total memory)')
    .option('--attr <key=value>', 'a node attribute for placement (zone, rack, ...); repeatable', (v: string, all: string[] = []) => [...all, v])
    .option('--volume <name=path>', 'a host volume jobs may mount (an absolute directory); repeatable', (v: string, all: string[] = []) => [...all, v])
    .option('--addr <url>', 'scheduler API address for CSRs and secrets; also $WEFT_ADDR (default http://127.0.0.1:7400)')
    .option('--token <token>', "this host's agent token (weft node token HOST); prefer $WEFT_TOKEN (a flag shows in ps)")
    .option('--no-proxy', 'do not start and supervise weft proxy')
    .option('--leave', 'on shutdown, also deregister this host (weft-agent) from Consul')
    .option('--only-label <key=value>', 'register only containers with this label (hosts sharing one Docker daemon, as under weft up)')
    .action(async (opts: AgentFlags, cmd: Command) => {
      const extra: Record<string, [unknown, string]> = {
        'agent.driver': [opts.driver, '--driver'],
        'agent.address': [opts.address, '--address'],
        'agent.cpu': [opts.cpu, '--cpu'],
        'agent.memory': [opts.memory, '--memory'],
        'agent.superviseProxy': [opts.proxy === false ? false : undefined, '--no-proxy'],
        'client.address': [opts.addr, '--addr'],
        'client.token': [opts.token, '--token'],
      };
      for (const kv of opts.attr ?? []) {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw invalid('WEFT_ERR_CONFIG_INVALID', '--attr', kv, 'must be key=value');
        extra[`agent.attributes.${kv.slice(0, eq)}`] = [kv.slice(eq + 1), '--attr'];
      }
      for (const kv of opts.volume ?? []) {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw invalid('WEFT_ERR_CONFIG_INVALID', '--volume', kv, 'must be name=/absolute/path');
        extra[`agent.hostVolumes.${kv.slice(0, eq)}`] = [kv.slice(eq + 1), '--volume'];
      }
      const config = configFrom(cmd, extra);
      const logger = createLogger({ level: config.log.level, format: config.log.format, name: 'agent' });
      const { HostAgent } = await import('../wiring/agent-process.js');
      const agent = await HostAgent.start({ config, logger, ...(opts.onlyLabel === undefined ? {} : { labelFilter: opts.onlyLabel }) });
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          logger.info({ signal }, 'stopping the agent; workloads and the proxy keep running');
          process.once('SIGINT', () => process.exit(130));
          process.once('SIGTERM', () => process.exit(143));
          void agent.close({ deregisterNode: opts.leave === true }).then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      logger.info('stopped');
    });
}
