/**
 * `weft proxy`: the per-host data plane (src/wiring/proxy-process.ts).
 * Runs until SIGTERM or SIGINT, then drains: deregisters from Consul, stops
 * accepting, lets in-flight requests finish within `proxy.shutdownGraceMs`,
 * and exits 0. A second signal exits at once.
 *
 * The proxy's modules load only when the command runs (and no other
 * command's do: see ca.ts, agent.ts), which keeps the data plane's memory small.
 */
import type { Command } from 'commander';
import { createLogger } from '../../base/log.js';
import { configFrom } from './flags.js';

interface ProxyFlags {
  inboundBind?: string;
  inboundPort?: string;
  outboundBind?: string;
  metricsBind?: string;
  metricsPort?: string;
  defaultIntention?: string;
  algorithm?: string;
  shutdownGrace?: string;
}

/** Adds the proxy subcommand to the program. */
export function registerProxyCommand(program: Command): void {
  program
    .command('proxy')
    .description('the per-host sidecar proxy: mTLS inbound, outbound load balancing, metrics')
    .option('--inbound-bind <addr>', "inbound mTLS listen address, the host's address (default 127.0.0.1)")
    .option('--inbound-port <port>', 'inbound mTLS port (default 15443)')
    .option('--outbound-bind <addr>', 'outbound listen address; ports come from <data-dir>/proxy/local.json (default 127.0.0.1)')
    .option('--metrics-bind <addr>', '/metrics and /healthz listen address (default 127.0.0.1)')
    .option('--metrics-port <port>', '/metrics port, registered in Consul as weft-proxy (default 15090)')
    .option('--default-intention <action>', 'allow|deny when no intention matches (default allow)')
    .option('--algorithm <name>', 'p2c|swrr (default p2c)')
    .option('--shutdown-grace <ms>', 'time in-flight requests get at shutdown (default 10000)')
    .action(async (opts: ProxyFlags, cmd: Command) => {
      const config = configFrom(cmd, {
        'proxy.inbound.bind': [opts.inboundBind, '--inbound-bind'],
        'proxy.inbound.port': [opts.inboundPort, '--inbound-port'],
        'proxy.outbound.bind': [opts.outboundBind, '--outbound-bind'],
        'proxy.metrics.bind': [opts.metricsBind, '--metrics-bind'],
        'proxy.metrics.port': [opts.metricsPort, '--metrics-port'],
        'proxy.intentions.defaultAction': [opts.defaultIntention, '--default-intention'],
        'proxy.algorithm': [opts.algorithm, '--algorithm'],
        'proxy.shutdownGraceMs': [opts.shutdownGrace, '--shutdown-grace'],
      });
      const logger = createLogger({ level: config.log.level, format: config.log.format, name: 'proxy' });
      const { ProxyProcess } = await import('../wiring/proxy-process.js');
      const proxy = await ProxyProcess.start({ config, logger });
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          logger.info({ signal }, 'shutting down: draining in-flight requests');
          process.once('SIGINT', () => process.exit(130));
          process.once('SIGTERM', () => process.exit(143));
          void proxy.close().then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      logger.info('stopped');
    });
}
