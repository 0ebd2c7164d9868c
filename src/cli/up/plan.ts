/**
 * What `weft up` will start, decided before anything starts: a pure function of
 * the configuration and a few facts about the machine (does Consul answer, is
 * there a CA, does a scheduler already answer). Each piece is `weft <command>`
 * with the same global flags, so every child reads the same configuration as
 * `weft up` itself.
 */
import type { Config } from '../../config/load.js';
import { parseConsulAddress } from '../../../discovery/index.js';
import { PROXY_NODE_FLAGS } from '../../../base/contracts/host-proxy.js';

/** The pieces, in start order. */
export type PieceName = 'consul' | 'ca' | 'scheduler' | 'agent' | 'proxy' | 'prometheus';

/** One step of the plan. */
export interface UpStep {
  name: PieceName;
  /** `weft` arguments after the global flags. */
  args: string[];
  /** Node flags before the script (the proxy's memory flags). */
  nodeArgs?: readonly string[];
  /** An executable other than weft (Prometheus): `args` are its own, without weft's global flags. */
  command?: string;
  /** daemon: runs until stopped, awaited until healthy; once: must exit 0. */
  kind: 'daemon' | 'once';
  /** Set when the step is skipped, saying why (shown to the user). */
  skip?: string;
}

/** Facts about the machine, probed by the caller. */
export interface UpFacts {
  consulAnswers: boolean;
  caExists: boolean;
  schedulerAnswers: boolean;
}

/** `weft up`'s own options. */
export interface UpOptions {
  /** agent.driver for the agent: auto (docker when its daemon answers), docker or process. */
  driver?: string | undefined;
  /** The config file `weft up` was given, passed on to every child. */
  configFile?: string | undefined;
  /** `--prometheus`: run Prometheus last, with these arguments (prometheus.ts writes its configuration). */
  prometheus?: { command: string; args: string[] } | undefined;
}

/** The scheduler API's URL as the CLI reaches it (a wildcard bind is reached on loopback). */
export function schedulerUrl(config: Readonly<Config>): string {
  const host = config.scheduler.bind === '0.0.0.0' || config.scheduler.bind === '::' ? '127.0.0.1' : config.scheduler.bind;
  return `http://${host}:${config.scheduler.port}`;
}

/** The proxy's metrics URL. */
export function proxyMetricsUrl(config: Readonly<Config>): string {
  return `http://${config.proxy.metrics.bind}:${config.proxy.metrics.port}`;
}

/** Global flags every child gets, so each one reads `weft up`'s configuration. */
export function globalArgs(config: Readonly<Config>, opts: UpOptions, childLogFormat: string): string[] {
  return [
    ...(opts.configFile === undefined ? [] : ['--config', opts.configFile]),
    '--data-dir',
    config.dataDir,
    '--consul',
    config.consul.address,
    '--node',
    config.nodeName,
    '--datacenter',
    config.datacenter,
    '--log-level',
    config.log.level,
    '--log-format',
    childLogFormat,
  ];
}

/** The ordered steps. */
export function planUp(config: Readonly<Config>, facts: UpFacts, opts: UpOptions = {}): UpStep[] {
  const consul = parseConsulAddress(config.consul.address);
  const steps: UpStep[] = [
    {
      name: 'consul',
      kind: 'daemon',
      args: ['dev-consul', '--bind', consul.host, '--port', String(consul.port)],
      ...(facts.consulAnswers ? { skip: `Consul already answers at ${config.consul.address}` } : {}),
    },
    {
      name: 'ca',
      kind: 'once',
      args: ['ca', 'init'],
      ...(facts.caExists ? { skip: `a CA exists in ${config.dataDir}/ca` } : {}),
    },
    {
      name: 'scheduler',
      kind: 'daemon',
      args: ['scheduler'],
      ...(facts.schedulerAnswers ? { skip: `a scheduler already answers at ${schedulerUrl(config)}` } : {}),
    },
    {
      name: 'agent',
      kind: 'daemon',
      // The proxy runs as up's own child instead of under the agent's supervision:
      // its log lines get a prefix here and Ctrl-C stops it with everything else.
      args: ['agent', '--no-proxy', ...(opts.driver === undefined ? [] : ['--driver', opts.driver])],
    },
    { name: 'proxy', kind: 'daemon', args: ['proxy'], nodeArgs: PROXY_NODE_FLAGS },
  ];
  if (opts.prometheus !== undefined) steps.push({ name: 'prometheus', kind: 'daemon', command: opts.prometheus.command, args: opts.prometheus.args });
  return steps;
}

/** The short "what now" printed once everything is healthy. */
export function whatNow(
  config: Readonly<Config>,
  info: { driver?: string | undefined; startedConsul: boolean; configFile?: string | undefined; prometheus?: { url: string; configFile: string } | undefined },
): string {
  const api = schedulerUrl(config);
  // The environment the client commands need to find this scheduler and its token file.
  const clientAddr = config.client.address.replace(/\/+$/, '').replace(/^(?!https?:\/\/)/, 'http://');
  const env = [
    info.configFile === undefined ? '' : `WEFT_CONFIG=${info.configFile}`,
    clientAddr === api ? '' : `WEFT_ADDR=${api}`,
    info.configFile !== undefined || config.dataDir === '.weft' ? '' : `WEFT_DATA_DIR=${config.dataDir}`,
  ]
    .filter(Boolean)
    .join(' ');
  const prefix = env === '' ? '' : `${env} `;
  const lines = [
    '',
    'weft is up on this machine:',
    `  Consul     ${config.consul.address}${info.startedConsul ? ` (embedded dev agent, state in ${config.dataDir}/dev-consul)` : ' (already running)'}`,
    `  scheduler  ${api} (token in ${config.dataDir}/scheduler/token, which the CLI reads on this machine)`,
    `  agent      node ${config.nodeName}, ${info.driver ?? config.agent.driver} driver`,
    `  proxy      inbound mTLS ${config.proxy.inbound.bind}:${config.proxy.inbound.port}, metrics ${proxyMetricsUrl(config)}/metrics`,
    ...(info.prometheus === undefined ? [] : [`  Prometheus ${info.prometheus.url} (config ${info.prometheus.configFile}, rules grafana/rules/, alerts at ${info.prometheus.url}/alerts)`]),
    '',
    'What now (from this directory, in another terminal):',
    `  ${prefix}./scripts/weft deploy examples/hello.yaml     # two instances of scripts/demo-app.mjs`,
    `  ${prefix}./scripts/weft status hello`,
    `  curl -H 'Host: hello' http://127.0.0.1:${config.agent.outboundPortBase}/   # through the proxy: local services get outbound ports from ${config.agent.outboundPortBase} (${config.dataDir}/proxy/local.json)`,
    info.prometheus === undefined
      ? '  Prometheus: `weft up --prometheus` runs one here; or grafana/prometheus-http-sd.yml (Debian build) or grafana/prometheus.yml (consul_sd)'
      : `  curl -s '${info.prometheus.url}/api/v1/query?query=destination_version:weft_proxy_requests:rate1m'   # recorded request rates`,
  ];
  if (info.driver === 'docker') lines.push('  note: examples/hello.yaml uses the process driver; this agent runs docker (start with `weft up --driver process` to run it)');
  lines.push('', 'Ctrl-C stops weft (proxy, agent, scheduler, Consul, in that order); workloads keep running and the next `weft up` adopts them.');
  return lines.join('\n');
}
