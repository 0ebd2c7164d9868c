/**
 * `weft agent` assembled: one host's driver, registrar, allocation runner,
 * identities, heartbeat and proxy supervisor (agent/README.md draws the
 * pipeline). Closing the agent stops its loops only: containers, processes,
 * registrations and the proxy keep running, and the next agent adopts them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createDiscoveryClient, type DiscoveryClient } from '../../discovery/index.js';
import type { Config } from '../config/load.js';
import { PROXY_NODE_FLAGS } from '../../base/contracts/host-proxy.js';
import { isWeftError, WeftError } from '../../base/errors.js';
import type { Logger } from '../../base/log.js';
import { AllocRunner } from '../../agent/index.js';
import type { Driver } from '../../agent/index.js';
import { DockerDriver } from '../../agent/index.js';
import { ProcessDriver } from '../../agent/index.js';
import { type CsrSigner, IdentityManager } from '../../agent/index.js';
import { localCaSigner } from './agent-local-signer.js';
import { apiSecretSource, type SecretSource } from '../../agent/index.js';
import { schedulerSigner } from '../../agent/index.js';
import { NodeHeartbeat } from '../../agent/index.js';
import { ProxySupervisor } from '../../agent/index.js';
import { Registrar } from '../../agent/index.js';
import { type SchedulerEndpoint, SigningKeys } from '../../agent/index.js';
import { HOST_PROXY_DIR, HOST_PROXY_IDENTITIES_DIR } from '../../base/contracts/host-proxy.js';
import { agentMetricsRegistry } from './agent-metrics.js';
import { type MetricsServer, startMetricsServer } from './proxy-metrics-server.js';

/** What the agent needs besides its configuration. */
export interface HostAgentOptions {
  config: Readonly<Config>;
  logger: Logger;
  /** Overrides the configured driver (tests). */
  driver?: Driver;
  /** Secret values for allocations; default: the scheduler API at client.address when client.token (WEFT_TOKEN, the host's agent token) is set. */
  secrets?: SecretSource;
  /** Overrides the signer chosen by `chooseSigner`; `null` runs without identities. */
  signer?: CsrSigner | null;
  /** Where the scheduler's signing keys come from, overriding client.address and client.token (tests that pick the signer themselves). */
  signingKeysFrom?: SchedulerEndpoint;
  /** argv of `weft proxy` (default: this node binary running bin/weft.js proxy). */
  proxyCommand?: readonly string[];
  /** Only tasks with this label are registered (several test agents sharing one dockerd). */
  labelFilter?: string;
  /** Blocking-query wait for allocations (tests lower it). */
  watchWaitMs?: number;
  /** How long an unused service keeps its identity and outbound port (default agent/identities.ts RETIRE_GRACE_MS; tests lower it). */
  retireGraceMs?: number;
}

/**
 * bin/weft.js, which the supervised proxy runs: beside dist/ for the bundle
 * (dist/../bin), two folders up from the sources (src/wiring/../../bin).
 */
function weftEntry(): string {
  const bundled = join(import.meta.dirname, '..', 'bin', 'weft.js');
  return existsSync(bundled) ? bundled : join(import.meta.dirname, '..', '..', 'bin', 'weft.js');
}

/** Picks the runtime: `auto` prefers Docker when its daemon answers. */
export async function chooseDriver(config: Readonly<Config>, logger: Logger): Promise<Driver> {
  const processDir = join(config.dataDir, 'agent', 'processes');
  if (config.agent.driver === 'process') return new ProcessDriver(processDir);
  const docker = new DockerDriver();
  if (await docker.ping()) return docker;
  if (config.agent.driver === 'docker') {
    throw new WeftError('WEFT_ERR_DOCKER_UNAVAILABLE', 'agent.driver is docker but the Docker daemon does not answer (DOCKER_HOST or /var/run/docker.sock)', {
      key: 'agent.driver',
      value: 'docker',
    });
  }
  logger.warn('no Docker daemon answers: using the process driver');
  return new ProcessDriver(processDir);
}

/** A running host agent. */
export class HostAgent {
  readonly driver: Driver;
  readonly client: DiscoveryClient;
  readonly registrar: Registrar;
  readonly allocations: AllocRunner;
  readonly node: NodeHeartbeat;
  readonly identities: IdentityManager | undefined;
  readonly proxy: ProxySupervisor | undefined;
  /** The scheduler's public signing keys, fetched and handed to the proxy. */
  readonly signingKeys: SigningKeys;
  /** The /metrics listener; undefined when its port could not be had. */
  readonly metrics: MetricsServer | undefined;

  private constructor(parts: Omit<HostAgent, 'close'>) {
    Object.assign(this, parts);
    this.driver = parts.driver;
    this.client = parts.client;
    this.registrar = parts.registrar;
    this.allocations = parts.allocations;
    this.node = parts.node;
    this.identities = parts.identities;
    this.proxy = parts.proxy;
    this.signingKeys = parts.signingKeys;
    this.metrics = parts.metrics;
  }

  /** Starts every part; resolves once registrations are resynced and allocations reconciled. */
  static async start(opts: HostAgentOptions): Promise<HostAgent> {
    const { config, logger } = opts;
    const a = config.agent;
    const host = config.nodeName;
    // The proxy's token file is checked before anything starts: a bad one stops the agent here, naming it.
    if (a.superviseProxy && a.proxyConsulTokenFile !== undefined) ProxySupervisor.readConsulTokenFile(a.proxyConsulTokenFile, 'agent.proxyConsulTokenFile');
    const driver = opts.driver ?? (await chooseDriver(config, logger));
    const client = createDiscoveryClient(config, { logger });
    // Listening before the node registers, so the weft-agent registration carries the port. The
    // parts it reads are created below; a scrape before then sees zeros.
    const parts: { registrar?: Registrar; runner?: AllocRunner; node?: NodeHeartbeat; proxy?: ProxySupervisor } = {};
    const metrics = await startAgentMetrics(config, logger, {
      allocations: () => parts.runner?.snapshot() ?? [],
      registered: () => parts.registrar?.instances().length ?? 0,
      heartbeat: () => ({ lastSuccessMs: parts.node?.lastBeatMs, failures: parts.node?.failures ?? 0 }),
      proxyRestarts: () => parts.proxy?.restarts,
      signedStateRefused: () => parts.runner?.refusals() ?? new Map(),
      identitiesDir: join(config.dataDir, HOST_PROXY_DIR, HOST_PROXY_IDENTITIES_DIR),
    });
    const node = new NodeHeartbeat({
      client,
      host,
      address: a.address,
      cpu: a.cpu,
      memory: a.memory,
      attributes: a.attributes,
      hostVolumes: Object.keys(a.hostVolumes),
      driver: driver.kind,
      ttlMs: a.heartbeatTtlMs,
      logger,
      metricsPort: metrics?.address.port,
    });
    parts.node = node;
    try {
      await node.start();
    } catch (err) {
      await metrics?.close(); // Consul refused the registration: the agent does not start, nor keep the port
      throw err;
    }

    // The scheduler's signing keys, beside the CA roots: with the host token from the API, else from this machine.
    const signingKeys = new SigningKeys({
      dataDir: config.dataDir,
      scheduler: opts.signingKeysFrom ?? (config.client.token === undefined ? undefined : { address: config.client.address, token: config.client.token }),
      refreshMs: a.signingKeysRefreshMs,
      logger,
    });
    await signingKeys.start();

    const signer = opts.signer === undefined ? chooseSigner(config, logger) : (opts.signer ?? undefined);
    const identities =
      signer === undefined
        ? undefined
        : new IdentityManager({
            dataDir: config.dataDir,
            host,
            namespace: a.namespace,
            signer,
            outboundPortBase: a.outboundPortBase,
            logger,
            ...(opts.retireGraceMs === undefined ? {} : { retireGraceMs: opts.retireGraceMs }),
          });
    // Identities for what is registered; kept (not removed) for whatever the host still uses:
    // tasks still draining and services named by this host's allocation documents. Nothing is
    // removed before the allocations have been read once (a service about to start is not unused).
    let allocations: AllocRunner | undefined;
    const syncIdentities = (): Promise<void> | undefined =>
      identities?.update(
        registrar.instances().map((i) => i.registration.service),
        allocations === undefined ? undefined : [...registrar.services(), ...allocations.services()],
      );

    const registrar = new Registrar({
      driver,
      client,
      host,
      hostAddress: a.address,
      meshPort: config.proxy.inbound.port,
      logger,
      drainDelayMs: a.drainDelayMs,
      resyncIntervalMs: a.resyncIntervalMs,
      stoppingGraceMs: a.stoppingGraceMs,
      ...(opts.labelFilter === undefined ? {} : { labelFilter: opts.labelFilter }),
    });
    parts.registrar = registrar;
    registrar.on('change', () => void syncIdentities());
    await registrar.start();
    await syncIdentities();

    const runner = new AllocRunner({
      driver,
      client,
      registrar,
      host,
      hostAddress: a.address,
      hostVolumes: a.hostVolumes,
      logger,
      stopDeadlineMs: a.stopDeadlineMs,
      secrets: opts.secrets ?? (config.client.token === undefined ? undefined : apiSecretSource(config.client.address, config.client.token)),
      secretsDir: join(config.dataDir, 'agent', 'secrets'),
      ...(opts.watchWaitMs === undefined ? {} : { watchWaitMs: opts.watchWaitMs }),
      onServicesChange: () => void syncIdentities(),
      signingKeys,
    });
    parts.runner = runner;
    await runner.start();
    allocations = runner;
    await syncIdentities();

    let proxy: ProxySupervisor | undefined;
    if (a.superviseProxy) {
      // The proxy never needs the host's scheduler token; its Consul token is its own when a file names one.
      const { WEFT_TOKEN: _hostToken, ...inherited } = process.env;
      const tokenFile = a.proxyConsulTokenFile;
      if (tokenFile !== undefined) logger.info({ file: tokenFile }, 'weft proxy runs with its own Consul token (agent.proxyConsulTokenFile)');
      else if (config.consul.token !== undefined) logger.warn("weft proxy runs with this agent's Consul token: set agent.proxyConsulTokenFile to give it its own (docs/acl/README.md)");
      proxy = new ProxySupervisor({
        command: opts.proxyCommand ?? [process.execPath, ...PROXY_NODE_FLAGS, weftEntry(), 'proxy', '--inbound-bind', a.address],
        env: { ...inherited, WEFT_DATA_DIR: config.dataDir, CONSUL_HTTP_ADDR: config.consul.address, WEFT_NODE_NAME: host },
        ...(tokenFile === undefined ? {} : { consulToken: { file: tokenFile, key: 'agent.proxyConsulTokenFile' } }),
        stateDir: join(config.dataDir, 'agent'),
        logger,
      });
      parts.proxy = proxy;
      proxy.start();
    } else if (a.proxyConsulTokenFile !== undefined) {
      logger.warn({ file: a.proxyConsulTokenFile }, 'agent.proxyConsulTokenFile is set but this agent does not supervise the proxy (--no-proxy): run weft proxy with that token yourself');
    }
    logger.info({ host, driver: driver.kind, address: a.address }, 'weft agent running');
    return new HostAgent({ driver, client, registrar, allocations: runner, node, identities, proxy, signingKeys, metrics });
  }

  /**
   * Stops the agent's loops. Workloads and the proxy keep running (an agent
   * upgrade must not cause an outage); `deregisterNode` also removes weft-agent.
   */
  async close(opts: { deregisterNode?: boolean } = {}): Promise<void> {
    this.proxy?.stop();
    await this.allocations.stop();
    this.registrar.stop();
    this.identities?.stop();
    this.signingKeys.stop();
    await this.node.stop(opts.deregisterNode === true ? { deregister: true } : {});
    await this.driver.close();
    await this.metrics?.close();
    this.client.close();
  }
}

/**
 * Starts the agent's /metrics listener on agent.metrics (bind default: agent.address). A port
 * already taken is a warning, not a failure: the agent's work (the host's workloads) does not
 * depend on it, and the registration then carries no port (Prometheus shows the target down).
 */
async function startAgentMetrics(config: Readonly<Config>, logger: Logger, sources: Parameters<typeof agentMetricsRegistry>[0]): Promise<MetricsServer | undefined> {
  const m = config.agent.metrics;
  const bind = m.bind ?? config.agent.address;
  try {
    return await startMetricsServer(agentMetricsRegistry(sources), { bind, port: m.port, logger });
  } catch (err) {
    logger.warn({ err, bind, port: m.port }, `agent metrics: could not listen on ${bind}:${m.port}; running without /metrics (agent.metrics.port 0 takes any free port)`);
    return undefined;
  }
}

/**
 * Who signs this host's CSRs: the scheduler (`POST /v1/ca/sign` at client.address)
 * when the agent has a token (client.token: --token, WEFT_TOKEN, config), so no
 * host holds the CA key; else the CA directory on this machine (single machine,
 * dev), and without one the agent runs with a warning and no identities.
 */
export function chooseSigner(config: Readonly<Config>, logger: Logger): CsrSigner | undefined {
  if (config.client.token !== undefined) {
    logger.info({ scheduler: config.client.address }, 'mesh identities: CSRs signed by the scheduler');
    return schedulerSigner({ address: config.client.address, token: config.client.token });
  }
  return tryLocalSigner(config, logger);
}

function tryLocalSigner(config: Readonly<Config>, logger: Logger): CsrSigner | undefined {
  try {
    return localCaSigner({ dataDir: config.dataDir, namespace: config.agent.namespace });
  } catch (err) {
    if (!isWeftError(err, 'WEFT_ERR_CA_MISSING')) throw err;
    logger.warn({ code: err.code }, `no local CA (${err.message}): local services get no mesh identity until one exists`);
    return undefined;
  }
}
