/**
 * What `weft up` will start, decided before anything starts: a pure function of
 * the configuration and a few facts about the machine (does Consul answer, is
 * there a CA, does a scheduler already answer). Each piece is `weft <command>`
 * with global flags naming its configuration, so every child reads the same
 * settings as `weft up` itself.
 *
 * The cluster pieces (dev Consul, the CA, the scheduler) run once; then each
 * simulated host (hosts.ts) gets an agent and a proxy, on its own loopback
 * address with its own data directory and configuration file.
 */
import type { Config } from '../../config/load.js';
import { parseConsulAddress } from '../../../discovery/index.js';
import { PROXY_NODE_FLAGS } from '../../../base/contracts/host-proxy.js';
import type { SimHost } from './hosts.js';

/** What a piece is. Names are `consul`, `ca`, `scheduler`, `agent-1`, `proxy-1`, ..., `prometheus`. */
export type PieceRole = 'consul' | 'ca' | 'scheduler' | 'agent' | 'proxy' | 'prometheus';

/** One step of the plan. */
export interface UpStep {
  /** The piece's name: its log file, its `weft logs` name, its prefix in weft up's lines. */
  name: string;
  role: PieceRole;
  /** The simulated host an agent or proxy belongs to. */
  host?: SimHost;
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
  /** The agents' driver, decided before the plan (docker when its daemon answers, else process). */
  driver: 'docker' | 'process';
  /** The simulated hosts (hosts.ts simHosts). */
  hosts: readonly SimHost[];
  /** The config file `weft up` was given, passed on to the cluster pieces. */
  configFile?: string | undefined;
  /** `--prometheus`: run Prometheus last, with these arguments (prometheus.ts writes its configuration). */
  prometheus?: { command: string; args: string[] } | undefined;
  /** `--acl`: the dev Consul enforces ACLs, default deny, with the management token in this file (acl.ts). */
  acl?: { managementTokenFile: string } | undefined;
}

/** The scheduler API's URL as the CLI reaches it (a wildcard bind is reached on loopback). */
export function schedulerUrl(config: Readonly<Config>): string {
  const host = config.scheduler.bind === '0.0.0.0' || config.scheduler.bind === '::' ? '127.0.0.1' : config.scheduler.bind;
  return `http://${host}:${config.scheduler.port}`;
}

/** A proxy's metrics URL (`/metrics`, `/healthz`). */
export function proxyMetricsUrl(config: Readonly<Config>): string {
  return `http://${config.proxy.metrics.bind}:${config.proxy.metrics.port}`;
}

/**
 * Global flags for a child: the config file, then the settings an environment
 * variable could otherwise override in the child (flags win over env), so a
 * child reads exactly `config`. Children always log JSON: their lines go to
 * files, which `weft logs` prints pretty.
 */
export function globalArgs(config: Readonly<Config>, configFile: string | undefined): string[] {
  return [
    ...(configFile === undefined ? [] : ['--config', configFile]),
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
    'json',
  ];
}

/** The ordered steps. */
export function planUp(config: Readonly<Config>, facts: UpFacts, opts: UpOptions): UpStep[] {
  const consul = parseConsulAddress(config.consul.address);
  const steps: UpStep[] = [
    {
      name: 'consul',
      role: 'consul',
      kind: 'daemon',
      args: [
        'dev-consul',
        '--bind',
        consul.host,
        '--port',
        String(consul.port),
        // The token by its file: an argument would show it in `ps`.
        ...(opts.acl === undefined ? [] : ['--acl', '--acl-default-policy', 'deny', '--acl-bootstrap-token-file', opts.acl.managementTokenFile]),
      ],
      ...(facts.consulAnswers ? { skip: `Consul already answers at ${config.consul.address}` } : {}),
    },
    {
      name: 'ca',
      role: 'ca',
      kind: 'once',
      args: ['ca', 'init'],
      ...(facts.caExists ? { skip: `a CA exists in ${config.dataDir}/ca` } : {}),
    },
    {
      name: 'scheduler',
      role: 'scheduler',
      kind: 'daemon',
      args: ['scheduler'],
      ...(facts.schedulerAnswers ? { skip: `a scheduler already answers at ${schedulerUrl(config)}` } : {}),
    },
  ];
  for (const host of opts.hosts) {
    // The proxy runs as up's own child instead of under the agent's supervision:
    // its output goes to its own log file and Ctrl-C stops it with everything else.
    steps.push({
      name: `agent-${host.index}`,
      role: 'agent',
      host,
      kind: 'daemon',
      args: [
        'agent',
        '--no-proxy',
        '--driver',
        opts.driver,
        '--addr',
        schedulerUrl(config),
        // The hosts share this machine's Docker daemon: each registers only the containers its allocations started.
        ...(opts.driver === 'docker' ? ['--only-label', `io.weft.host=${host.node}`] : []),
      ],
    });
    steps.push({ name: `proxy-${host.index}`, role: 'proxy', host, kind: 'daemon', args: ['proxy'], nodeArgs: PROXY_NODE_FLAGS });
  }
  if (opts.prometheus !== undefined) steps.push({ name: 'prometheus', role: 'prometheus', kind: 'daemon', command: opts.prometheus.command, args: opts.prometheus.args });
  return steps;
}

/** What is running and where, and what to try next: printed once everything is up. */
export function whatNow(
  config: Readonly<Config>,
  info: {
    driver: string;
    hosts: readonly SimHost[];
    startedConsul: boolean;
    configFile?: string | undefined;
    prometheus?: { url: string; configFile: string } | undefined;
    /** `--acl`: where the tokens are. */
    acl?: { dir: string; managementTokenFile: string } | undefined;
    /** The demo's jobs when weft up deployed them. */
    demo?: readonly string[] | undefined;
    /** A local service's outbound port on the first host, for the curl example. */
    curl?: { service: string; target: string; address: string; port: number } | undefined;
  },
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
  const weft = `${env === '' ? '' : `${env} `}./scripts/weft`;
  const lines = [
    '',
    'weft is up on this machine:',
    `  Consul     ${config.consul.address}${info.startedConsul ? ` (embedded dev agent, state in ${config.dataDir}/dev-consul)` : ' (already running)'}`,
    ...(info.acl === undefined
      ? []
      : [`  ACLs       on, default deny; a Consul token per process in ${info.acl.dir}/; the management token in ${info.acl.managementTokenFile} (consul CLI: CONSUL_HTTP_TOKEN_FILE=${info.acl.managementTokenFile})`]),
    `  scheduler  ${api} (token in ${config.dataDir}/scheduler/token, which the CLI reads on this machine)`,
    ...info.hosts.map(
      (h) =>
        `  ${h.node.padEnd(10)} ${h.address}: agent (${info.driver} driver), proxy inbound mTLS :${config.proxy.inbound.port}, metrics http://${h.address}:${config.proxy.metrics.port}/metrics, outbound ports from 127.0.0.1:${h.outboundPortBase}`,
    ),
    ...(info.prometheus === undefined ? [] : [`  Prometheus ${info.prometheus.url} (config ${info.prometheus.configFile}, rules grafana/rules/, alerts at ${info.prometheus.url}/alerts)`]),
    `  logs       ${config.dataDir}/logs/ (\`weft logs scheduler\`, \`weft logs proxy-1 -f\`)`,
    '',
    'What now (from this directory, in another terminal):',
  ];
  if (info.demo !== undefined && info.demo.length > 0) {
    lines.push(
      `  ${weft} top                      # golden metrics per service, refreshing (weft stat for one table)`,
      `  ${weft} status backend           # the demo's jobs: ${info.demo.join(', ')}`,
      `  ${weft} autoscale backend        # backend v1's autoscaler: rps per instance against its target`,
      `  ${weft} split backend v1=50 v2=50`,
    );
  } else {
    lines.push(
      `  ${weft} deploy examples/hello.yaml     # two instances of scripts/demo-app.mjs`,
      `  ${weft} status hello`,
      `  ${weft} top                            # golden metrics per service`,
    );
  }
  if (info.curl !== undefined) {
    lines.push(
      `  curl -H 'Host: ${info.curl.target}' http://${info.curl.address}:${info.curl.port}/   # through ${info.hosts[0]?.node ?? 'the host'}'s proxy, as ${info.curl.service} (its outbound port)`,
    );
  }
  lines.push(
    info.prometheus === undefined
      ? '  Prometheus: `weft up --prometheus` runs one here; or grafana/prometheus-http-sd.yml (Debian build) or grafana/prometheus.yml (consul_sd)'
      : `  curl -s '${info.prometheus.url}/api/v1/query?query=destination_version:weft_proxy_requests:rate1m'   # recorded request rates`,
  );
  if (info.driver === 'docker' && (info.demo === undefined || info.demo.length === 0)) {
    lines.push('  note: examples/hello.yaml uses the process driver; these hosts run docker (start with `weft up --driver process` to run it)');
  }
  return lines.join('\n');
}
