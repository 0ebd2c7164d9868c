/**
 * `weft up`: a first run on one machine in one command. Starts dev Consul (when
 * nothing answers on the Consul address), `weft ca init` (when there is no CA),
 * a scheduler, an agent and its proxy, each as a child process with prefixed
 * log lines, each awaited until healthy; prints what to do next; restarts a
 * piece that dies on its own (children.ts); and on Ctrl-C or SIGTERM stops
 * them in reverse order within a deadline.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { parseDurationArg } from '../client/args.js';
import { configFrom } from '../flags.js';
import { ChildSet } from './children.js';
import { type UpStep, globalArgs, planUp, proxyMetricsUrl, schedulerUrl, whatNow } from './plan.js';
import { type Probe, agentDriver, agentProbe, consulProbe, proxyProbe, schedulerProbe } from './probes.js';
import { DEFAULT_PROMETHEUS_LISTEN, findPrometheus, grafanaDir, preparePrometheus, prometheusFiles, prometheusProbe, prometheusUrl } from './prometheus.js';
import { WeftError } from '../../../base/errors.js';

interface UpFlags {
  driver?: string;
  /** true, or the listen address given with it. */
  prometheus?: boolean | string;
  startTimeout: string;
  stopTimeout: string;
}

/**
 * The `weft` entry point children run: found by walking up from this module,
 * which lives at src/cli/up/ in the sources but at dist/ in the bundle.
 */
function weftBin(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'bin', 'weft.js');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return process.argv[1] ?? 'bin/weft.js';
}

/** Adds the up subcommand to the program. */
export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('run dev Consul, a scheduler, an agent and a proxy on this machine, for a first run')
    .option('--driver <name>', "the agent's driver: auto|docker|process (default auto: docker when its daemon answers)")
    .option('--prometheus [host:port]', `also run Prometheus (Debian's package) with grafana/prometheus-http-sd.yml and grafana/rules/, data in <data-dir>/prometheus (default ${DEFAULT_PROMETHEUS_LISTEN})`)
    .option('--start-timeout <duration>', 'how long each piece may take to become healthy', '60s')
    .option('--stop-timeout <duration>', 'at Ctrl-C, how long all pieces together may take to stop before SIGKILL', '20s')
    .action(async (opts: UpFlags, cmd: Command) => {
      const startMs = parseDurationArg('--start-timeout', opts.startTimeout);
      const stopMs = parseDurationArg('--stop-timeout', opts.stopTimeout);
      const config = configFrom(cmd, { 'agent.driver': [opts.driver, '--driver'] });
      const configFile = (cmd.optsWithGlobals() as { config?: string }).config;
      // Loaded here, not at the top: every weft process loads this file, and certs/ brings node-forge.
      const { caExists } = await import('../../../certs/index.js');
      const say = (line: string): void => {
        process.stdout.write(`${line}\n`);
      };
      // Checked before anything starts: a missing binary should not cost a half-started cluster.
      const promListen = opts.prometheus === undefined || opts.prometheus === false ? undefined : opts.prometheus === true ? DEFAULT_PROMETHEUS_LISTEN : opts.prometheus;
      const promBin = promListen === undefined ? undefined : findPrometheus();
      const grafana = promListen === undefined ? undefined : grafanaDir();
      if (promListen !== undefined && (promBin === undefined || grafana === undefined)) {
        const what = promBin === undefined ? 'no `prometheus` on PATH (apt-get install prometheus)' : 'grafana/ (the shipped configuration) is not beside this weft';
        throw new WeftError('WEFT_ERR_UP_START', `--prometheus: ${what}`, { key: 'piece', value: 'prometheus' });
      }
      if (promListen !== undefined && (await prometheusProbe(prometheusUrl(promListen))())) {
        // Debian's package also runs a prometheus service on 9090: ours would fail to bind, and the probe would pass.
        const url = prometheusUrl(promListen);
        throw new WeftError('WEFT_ERR_UP_START', `--prometheus: a Prometheus already answers at ${url}; give ours another address: --prometheus 127.0.0.1:9091`, {
          key: 'piece',
          value: 'prometheus',
        });
      }
      const steps = planUp(
        config,
        {
          consulAnswers: await consulProbe(config.consul.address)(),
          caExists: caExists(config.dataDir),
          schedulerAnswers: await schedulerProbe(schedulerUrl(config))(),
        },
        { driver: opts.driver, configFile, ...(promBin === undefined ? {} : { prometheus: { command: promBin, args: [] } }) },
      );
      // Children log JSON into a pipe unless told otherwise; a person at a terminal wants pretty lines.
      const childFormat = config.log.format === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : config.log.format;
      const globals = globalArgs(config, { configFile }, childFormat);
      const probes: Record<UpStep['name'], Probe> = {
        consul: consulProbe(config.consul.address),
        ca: async () => true,
        scheduler: schedulerProbe(schedulerUrl(config)),
        agent: agentProbe(config.consul.address, config.nodeName),
        proxy: proxyProbe(proxyMetricsUrl(config)),
        prometheus: prometheusProbe(prometheusUrl(promListen ?? DEFAULT_PROMETHEUS_LISTEN)),
      };

      const bin = weftBin();
      const children = new ChildSet(say);
      let stopping: Promise<void> | undefined;
      const gaveUp: string[] = [];
      const stop = (why: string): Promise<void> => {
        if (stopping === undefined) {
          say(`up        | ${why}: stopping (a second Ctrl-C kills everything at once)`);
          process.once('SIGINT', () => children.killAll());
          process.once('SIGTERM', () => children.killAll());
          stopping = children.stopAll(stopMs);
        }
        return stopping;
      };
      const onSignal = (signal: string) => () => void stop(signal);
      process.once('SIGINT', onSignal('SIGINT'));
      process.once('SIGTERM', onSignal('SIGTERM'));
      // Every daemon is restarted when it dies on its own, not only the proxy: the agent
      // adopts its workloads and the scheduler takes the leader lock again on a restart,
      // and dev Consul reloads its state from disk, so each comes back whole; the others
      // keep serving from what they last knew meanwhile. A piece given up on is reported
      // and the rest keeps running: a dead scheduler should not take the data plane down.
      children.onGiveUp((name) => gaveUp.push(name));

      try {
        for (const step of steps) {
          if (stopping !== undefined) break;
          if (step.skip !== undefined) {
            say(`up        | ${step.name}: skipped, ${step.skip}`);
            continue;
          }
          if (step.name === 'prometheus' && promListen !== undefined && grafana !== undefined) {
            // Written after the scheduler started: its token file exists by now.
            step.args = preparePrometheus(config, promListen, grafana);
          }
          say(`up        | starting ${step.name}: ${step.command === undefined ? `weft ${step.args.join(' ')}` : [step.command, ...step.args].join(' ')}`);
          const spec =
            step.command === undefined
              ? { name: step.name, argv: [...(step.nodeArgs ?? []), bin, ...globals, ...step.args] }
              : { name: step.name, command: step.command, argv: step.args };
          if (step.kind === 'once') {
            await children.runOnce(spec, startMs);
            say(`up        | ${step.name} is healthy`);
          } else {
            const pid = await children.startDaemon(spec, probes[step.name], startMs);
            say(`up        | ${step.name} is healthy (pid ${pid})`);
          }
        }
      } catch (err) {
        await stop('a piece failed to start');
        throw err;
      }
      if (stopping === undefined) {
        const driver = await agentDriver(config.consul.address, config.nodeName);
        const prometheus = promListen === undefined ? undefined : { url: prometheusUrl(promListen), configFile: prometheusFiles(config).configFile };
        say(whatNow(config, { driver, startedConsul: steps[0]!.skip === undefined, configFile, prometheus }));
      }
      await new Promise<void>((resolve) => {
        const wait = (): void => {
          if (stopping !== undefined) void stopping.then(resolve);
          else setTimeout(wait, 200);
        };
        wait();
      });
      if (gaveUp.length > 0) {
        say(`up        | stopped; ${gaveUp.join(', ')} had been given up on after repeated crashes`);
        process.exitCode = 1;
      } else {
        say('up        | stopped');
      }
    });
}
