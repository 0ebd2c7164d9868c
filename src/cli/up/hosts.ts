/**
 * `weft up`'s simulated hosts: each is an agent and a proxy on its own
 * loopback address (127.0.0.2, 127.0.0.3 by default; all of 127/8 is loopback
 * on Linux), with its own node name, data directory and configuration file,
 * as two machines would have. What differs per host:
 *
 * - the address: the agent's (where its instances listen and are registered),
 *   the proxy's inbound mTLS listener and metrics, the agent's metrics;
 * - the outbound ports: both proxies' outbound listeners are on 127.0.0.1, as
 *   on a real host, so each host gets its own range (host 2 starts 100 above
 *   host 1), and an app calls 127.0.0.1:<its port> as it would in production;
 * - the host volume `weft-proxy` (the host's proxy directory, where local.json
 *   lists each local service's outbound port): the demo's apps mount it to
 *   find their outbound port;
 * - the agent's token: minted by the scheduler for that host (`weft node
 *   token`), so each host gets its certificates from the scheduler's CA as a
 *   real host does, and never holds the CA key.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { invalid } from '../../../base/errors.js';
import type { Config } from '../../config/load.js';

/** One simulated host. */
export interface SimHost {
  /** 1, 2, ...: the suffix of its piece names (`agent-1`, `proxy-1`). */
  index: number;
  /** Its node name: `<nodeName>-<index>`. */
  node: string;
  address: string;
  /** `<dataDir>/hosts/<node>`, absolute. */
  dataDir: string;
  /** `<host dataDir>/config.json`, written by writeHostConfig. */
  configFile: string;
  /** The first outbound port of its local services. */
  outboundPortBase: number;
}

/** The addresses `weft up` simulates hosts on unless `--hosts` says otherwise. */
export const DEFAULT_HOST_ADDRESSES = ['127.0.0.2', '127.0.0.3'] as const;
/** Outbound ports reserved per host: host N's local services get ports from outboundPortBase + (N-1) x this. */
export const OUTBOUND_PORTS_PER_HOST = 100;
/** The host volume naming a host's proxy directory. */
export const PROXY_VOLUME = 'weft-proxy';
const MAX_HOSTS = 8;

/** Parses `--hosts 127.0.0.2,127.0.0.3`: 1 to 8 distinct addresses in 127.0.0.0/8 other than 127.0.0.1. */
export function parseHostAddresses(text: string): string[] {
  const addresses = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (addresses.length === 0 || addresses.length > MAX_HOSTS) throw invalid('WEFT_ERR_ARGUMENT_INVALID', '--hosts', text, `name 1 to ${MAX_HOSTS} loopback addresses, e.g. 127.0.0.2,127.0.0.3`);
  for (const a of addresses) {
    const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
    if (m === null || m.slice(1).some((o) => Number(o) > 255)) throw invalid('WEFT_ERR_ARGUMENT_INVALID', '--hosts', a, 'each host address must be in 127.0.0.0/8 (simulated hosts share this machine)');
    if (a === '127.0.0.1') throw invalid('WEFT_ERR_ARGUMENT_INVALID', '--hosts', a, '127.0.0.1 is where Consul, the scheduler and every outbound port listen; use 127.0.0.2 and up');
  }
  if (new Set(addresses).size !== addresses.length) throw invalid('WEFT_ERR_ARGUMENT_INVALID', '--hosts', text, 'an address is named twice');
  return addresses;
}

/** The hosts for `addresses`, under `config.dataDir`. */
export function simHosts(config: Readonly<Config>, addresses: readonly string[]): SimHost[] {
  return addresses.map((address, i) => {
    const node = `${config.nodeName}-${i + 1}`;
    const dataDir = resolve(config.dataDir, 'hosts', node);
    return {
      index: i + 1,
      node,
      address,
      dataDir,
      configFile: join(dataDir, 'config.json'),
      outboundPortBase: config.agent.outboundPortBase + i * OUTBOUND_PORTS_PER_HOST,
    };
  });
}

/**
 * The configuration of `host`'s agent and proxy: `config` (what `weft up` was
 * given, every layer merged) with the host's own values. Tokens stay out: the
 * agent gets its own through its environment, the proxy needs none. Pure.
 */
export function hostConfig(config: Readonly<Config>, host: SimHost, apiUrl: string): Record<string, unknown> {
  const { token: _clientToken, ...client } = config.client;
  const { token: _schedulerToken, ...scheduler } = config.scheduler;
  const { bind: _agentMetricsBind, ...agentMetrics } = config.agent.metrics;
  return {
    ...config,
    dataDir: host.dataDir,
    nodeName: host.node,
    log: { ...config.log, format: 'json' },
    scheduler,
    client: { ...client, address: apiUrl },
    agent: {
      ...config.agent,
      address: host.address,
      outboundPortBase: host.outboundPortBase,
      // weft up runs the proxy itself (its own log file, stopped in order at Ctrl-C).
      superviseProxy: false,
      hostVolumes: { ...config.agent.hostVolumes, [PROXY_VOLUME]: join(host.dataDir, 'proxy') },
      metrics: agentMetrics,
    },
    proxy: {
      ...config.proxy,
      inbound: { ...config.proxy.inbound, bind: host.address },
      metrics: { ...config.proxy.metrics, bind: host.address },
    },
  };
}

/** Writes the host's data directory and configuration file (0600: it may hold the Consul token). */
export function writeHostConfig(config: Readonly<Config>, host: SimHost, apiUrl: string): void {
  mkdirSync(join(host.dataDir, 'proxy'), { recursive: true, mode: 0o700 });
  writeFileSync(host.configFile, `${JSON.stringify(hostConfig(config, host, apiUrl), null, 2)}\n`, { mode: 0o600 });
  chmodSync(host.configFile, 0o600);
}

/** The host's proxy metrics URL (`/healthz`, `/metrics`). */
export function hostProxyUrl(config: Readonly<Config>, host: SimHost): string {
  return `http://${host.address}:${config.proxy.metrics.port}`;
}
