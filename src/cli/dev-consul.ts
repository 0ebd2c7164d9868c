/**
 * `weft dev-consul`: the embedded Consul-HTTP-API-compatible agent. Its
 * modules (fastify, the state store) load only when the command runs.
 */
import type { Command } from 'commander';
import { createLogger } from '../../base/log.js';
import { configFrom } from './flags.js';

/** Adds the dev-consul subcommand to the program. */
export function registerDevConsulCommand(program: Command): void {
  program
    .command('dev-consul')
    .description('run the embedded single-node Consul-compatible dev agent (like `consul agent -dev`)')
    .option('--bind <addr>', 'address to listen on; also $WEFT_DEV_CONSUL_BIND (default 127.0.0.1)')
    .option('--port <port>', 'HTTP port; also $WEFT_DEV_CONSUL_PORT (default 8500)')
    .action(async (opts: { bind?: string; port?: string }, cmd: Command) => {
      const config = configFrom(cmd, { 'devConsul.bind': [opts.bind, '--bind'], 'devConsul.port': [opts.port, '--port'] });
      const logger = createLogger({ level: config.log.level, format: config.log.format, name: 'dev-consul' });
      const { startDevConsul } = await import('../../discovery/dev-agent/index.js');
      const agent = await startDevConsul({
        bind: config.devConsul.bind,
        port: config.devConsul.port,
        dataDir: `${config.dataDir}/dev-consul`,
        nodeName: config.nodeName,
        datacenter: config.datacenter,
        logger,
      });
      logger.info({ address: agent.address, dataDir: `${config.dataDir}/dev-consul` }, 'dev Consul agent ready');
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          logger.info('shutting down');
          void agent.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
