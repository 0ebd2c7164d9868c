/**
 * `weft up` and `weft down`: a first run on one machine in one command, and
 * its stop. run.ts does the work; this file only declares the commands.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { parseDurationArg } from '../client/args.js';
import { configFrom } from '../flags.js';
import { stopUp } from './detach.js';
import { DEFAULT_HOST_ADDRESSES } from './hosts.js';
import { DEFAULT_PROMETHEUS_LISTEN } from './prometheus.js';
import { type UpFlags, runUp } from './run.js';

/** Adds `weft up` and `weft down` to the program. */
export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('run weft on this machine: dev Consul, the CA, a scheduler and two simulated hosts (agent + proxy each), with a live view; the demo on a first run')
    .option('--driver <name>', "the hosts' driver: auto|docker|process (default auto: docker when its daemon answers)")
    .option('--hosts <addresses>', 'the simulated hosts, one per loopback address', DEFAULT_HOST_ADDRESSES.join(','))
    .option('--demo', 'deploy the demo (frontend -> backend v1/v2 90/10, autoscaled, with a load generator); default on a first run only')
    .option('--no-demo', 'do not deploy the demo, even on a first run')
    .option('-d, --detach', 'run in the background and return once everything is up (`weft down` stops it)')
    .option('--acl', "Consul ACLs on, default deny: the shipped policies (docs/acl/) and a token per process; the management token in <data-dir>/acl/management.token")
    .option('--prometheus [host:port]', `also run Prometheus (Debian's package) with grafana/prometheus-http-sd.yml and grafana/rules/, data in <data-dir>/prometheus (default ${DEFAULT_PROMETHEUS_LISTEN})`)
    .option('--start-timeout <duration>', 'how long each piece may take to become healthy (the demo: three times this)', '60s')
    .option('--stop-timeout <duration>', 'at Ctrl-C, how long all pieces together may take to stop before SIGKILL', '20s')
    .addOption(new Option('--background', 'internal: the process --detach starts').hideHelp())
    .action(async (opts: UpFlags, cmd: Command) => {
      await runUp(opts, cmd);
    });

  program
    .command('down')
    .description('stop the `weft up` running with this data directory (in the background or in another terminal), as Ctrl-C does')
    .option('--timeout <duration>', 'how long it may take before what is left is killed', '90s')
    .action(async (opts: { timeout: string }, cmd: Command) => {
      const timeoutMs = parseDurationArg('--timeout', opts.timeout);
      const config = configFrom(cmd);
      const write = (text: string): void => {
        process.stdout.write(text);
      };
      if (!(await stopUp({ dataDir: config.dataDir, write, timeoutMs }))) write(`weft up is not running with data directory ${config.dataDir}: nothing to stop\n`);
    });
}
