/**
 * `weft proxy` assembled: the one place where proxy/ meets certs/ and
 * discovery/ (ARCHITECTURE.md, "Layout and boundaries").
 *
 *   identities  <dataDir>/proxy/identities/<service>/  -> IdentityStore -> OutboundTls, InboundTls, cert expiry gauge
 *   local.json  <dataDir>/proxy/local.json             -> outbound listeners (one loopback port per calling service)
 *   keys        <dataDir>/proxy/signing-keys.json      -> intentions and splits admitted only when the scheduler signed them
 *   Consul      health watches per destination          -> RouteSource (outbound; disk cache routes.json)
 *               KV weft/splits/<service>                 -> RouteSource splits
 *               KV weft/intentions/                     -> IntentionSource (inbound; disk cache inbound.json)
 *               health watches per local service        -> LocalServices (Meta weft_host == this node; inbound.json)
 *   :15090      /metrics, /healthz                      -> `weft-proxy` registration (HTTP check)
 *
 * Files are polled every `proxy.reloadIntervalMs`: a renewal or a new local
 * service is picked up without a restart. Inbound starts once the host has a
 * first identity (it cannot terminate TLS without one); outbound once
 * local.json lists a first caller. Both start from their disk caches (loaded
 * before their listeners accept), so a proxy restarted while Consul is down
 * keeps routing, authorizing and forwarding with the last known state.
 */
import type { Registry } from 'prom-client';
import { createDiscoveryClient, type DiscoveryClient, type WatchOptions } from '../../discovery/index.js';
import { checkParserInternals, collectAllGarbage, InboundCache, inboundCachePath, InboundProxy, type OutboundListener, OutboundProxy, ProxyMetrics } from '../../proxy/index.js';
import type { Config } from '../config/load.js';
import type { HostProxyLocal } from '../../base/contracts/host-proxy.js';
import type { Logger } from '../../base/log.js';
import { enableProcessMetrics, registry as processRegistry } from '../../base/metrics.js';
import { IdentityStore, identitiesDir } from './proxy-identities.js';
import { type WatchedIntentions, watchIntentions } from './proxy-intentions.js';
import { LocalConfigFile, localConfigPath } from './proxy-local-config.js';
import { ConsulLocalServices } from './proxy-local-services.js';
import { type MetricsServer, startMetricsServer } from './proxy-metrics-server.js';
import { ProxyRegistration } from './proxy-registration.js';
import { consulActivator, consulRouteSource } from './proxy-routes.js';
import { ProxySignedState, proxyKeysPath } from './proxy-signed-state.js';
import { type ReloadableInboundTls, storeInboundTls, storeOutboundTls } from './proxy-tls.js';

/** What the process needs besides its configuration. */
export interface ProxyProcessOptions {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  /** Defaults to the process registry (with Node's process metrics). */
  readonly registry?: Registry | undefined;
  /** Blocking-query knobs (tests shorten them). */
  readonly watch?: WatchOptions | undefined;
}

/** A running `weft proxy`. */
export class ProxyProcess {
  readonly metrics: ProxyMetrics;
  readonly #o: ProxyProcessOptions;
  readonly #client: DiscoveryClient;
  readonly #store: IdentityStore;
  readonly #inboundTls: ReloadableInboundTls;
  readonly #local: LocalConfigFile;
  readonly #inboundCache: InboundCache;
  readonly #intentions: WatchedIntentions;
  readonly #signed: ProxySignedState;
  readonly #locals: ConsulLocalServices;
  readonly #host: string;
  #metricsServer: MetricsServer | undefined;
  #registration: ProxyRegistration | undefined;
  #inbound: InboundProxy | undefined;
  #outbound: OutboundProxy | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reloading: Promise<void> = Promise.resolve();
  #expirySet = new Set<string>();
  #closing: Promise<void> | undefined;

  private constructor(o: ProxyProcessOptions, registry: Registry) {
    this.#o = o;
    const { config, logger } = o;
    this.#host = config.nodeName;
    this.#client = createDiscoveryClient(config, { logger: logger.child({ component: 'consul' }) });
    this.metrics = new ProxyMetrics(registry);
    this.#store = new IdentityStore(identitiesDir(config.dataDir), { logger });
    this.#inboundTls = storeInboundTls(this.#store, config.ca.trustDomain);
    this.#local = new LocalConfigFile(localConfigPath(config.dataDir), { logger });
    this.#inboundCache = new InboundCache(inboundCachePath(config.dataDir), { logger });
    const cache = this.#inboundCache;
    // The keys before anything from KV or the cache is admitted.
    this.#signed = new ProxySignedState(proxyKeysPath(config.dataDir), { logger, refusals: this.metrics.signedStateRefused });
    this.#signed.reload();
    this.#intentions = watchIntentions(this.#client, { defaultAction: config.proxy.intentions.defaultAction, logger, signed: this.#signed, watch: o.watch, cache });
    this.#locals = new ConsulLocalServices(this.#client, { host: this.#host, logger, watch: o.watch, cache });
  }

  /**
   * Starts everything; a bad local.json at start is WEFT_ERR_PROXY_LOCAL_INVALID
   * (there is no last good one to keep), a busy port the listen error, a
   * Node without the parser internals proxy/h1 needs WEFT_ERR_PROXY_PARSER_UNAVAILABLE.
   */
  static async start(o: ProxyProcessOptions): Promise<ProxyProcess> {
    // Before anything listens or registers: a Node whose internal parser changed stops here, coded.
    checkParserInternals();
    const registry = o.registry ?? processRegistry;
    if (o.registry === undefined) enableProcessMetrics();
    const proxy = new ProxyProcess(o, registry);
    try {
      proxy.#local.check({ strict: true });
      await proxy.#loadInboundCache();
      proxy.#store.refresh();
      proxy.#afterIdentityChange();
      const { proxy: p } = o.config;
      await proxy.#applyIdentities();
      await proxy.#applyLocal(proxy.#local.current);
      // Last: /healthz answering means both stacks already listen.
      proxy.#metricsServer = await startMetricsServer(registry, {
        bind: p.metrics.bind,
        port: p.metrics.port,
        logger: o.logger,
        maxConnections: p.maxConnections,
        onDrop: () => proxy.metrics.connectionsRefused.inc({ listener: 'metrics', reason: 'max_connections' }),
      });
      proxy.#registration = new ProxyRegistration(
        proxy.#client,
        { host: proxy.#host, address: p.metrics.bind, port: proxy.#metricsServer.address.port, meshPort: p.inbound.port },
        o.logger,
      );
      proxy.#registration.start();
    } catch (err) {
      await proxy.close(0);
      throw err;
    }
    proxy.#timer = setInterval(() => {
      proxy.#reloading = proxy.#reloading.then(() => proxy.#reload());
    }, o.config.proxy.reloadIntervalMs);
    proxy.#timer.unref();
    o.logger.info(
      { host: proxy.#host, inbound: proxy.#inbound?.address, outbound: proxy.#outbound?.listeners.map((l) => `${l.service}:${l.boundPort}`) },
      'weft proxy ready',
    );
    return proxy;
  }

  /**
   * The inbound's last known state, before any local service is watched and
   * before the inbound listener exists: intentions (unless Consul answered
   * meanwhile) and, through `setServices`, local instances.
   */
  async #loadInboundCache(): Promise<void> {
    if (!(await this.#inboundCache.load())) return;
    const restored = this.#intentions.restore();
    this.#o.logger.info(
      { path: this.#inboundCache.path, savedAt: this.#inboundCache.savedAt, intentions: restored, localServices: this.#inboundCache.localServices() },
      'inbound cache loaded',
    );
  }

  /** The outbound stack, once local.json listed a caller. */
  get outbound(): OutboundProxy | undefined {
    return this.#outbound;
  }

  /** The inbound stack, once the host has an identity. */
  get inbound(): InboundProxy | undefined {
    return this.#inbound;
  }

  async #reload(): Promise<void> {
    if (this.#closing !== undefined) return;
    try {
      this.#signed.reload();
      if (this.#store.refresh()) {
        this.#afterIdentityChange();
        await this.#applyIdentities();
      }
      const local = this.#local.check();
      if (local !== undefined) await this.#applyLocal(local);
    } catch (err) {
      this.#o.logger.error({ err }, 'proxy reload failed: keeping what runs');
    }
  }

  /** Expiry gauge and inbound client CAs follow the identities on disk. */
  #afterIdentityChange(): void {
    const services = new Set(this.#store.services());
    for (const service of this.#expirySet) if (!services.has(service)) this.metrics.certExpiry.remove({ service });
    for (const service of services) this.metrics.setCertificateExpiry(service, this.#store.get(service)!.notAfter);
    this.#expirySet = services;
    this.#inboundTls.reload();
    this.#locals.setServices([...services]);
  }

  async #applyIdentities(): Promise<void> {
    if (this.#inbound !== undefined || this.#store.services().length === 0 || this.#closing !== undefined) return;
    const { config, logger } = this.#o;
    this.#inbound = await InboundProxy.start({
      host: config.proxy.inbound.bind,
      port: config.proxy.inbound.port,
      tls: this.#inboundTls,
      intentions: this.#intentions.intentions,
      local: this.#locals.table,
      metrics: this.metrics,
      logger: logger.child({ component: 'inbound' }),
      limits: this.#listenerLimits(),
      collectGarbage: collectAllGarbage,
    });
  }

  async #applyLocal(local: HostProxyLocal | undefined): Promise<void> {
    if (local === undefined || this.#closing !== undefined) return;
    if (local.host !== this.#host) this.#o.logger.warn({ file: local.host, nodeName: this.#host }, 'local.json names another host than nodeName');
    const listeners: OutboundListener[] = local.services.map((s) => ({ service: s.service, port: s.outboundPort }));
    if (this.#outbound !== undefined) {
      await this.#outbound.setListeners(listeners);
      return;
    }
    if (listeners.length === 0) return;
    const { config, logger } = this.#o;
    const p = config.proxy;
    this.#outbound = await OutboundProxy.start(
      {
        listeners,
        host: p.outbound.bind,
        dataDir: config.dataDir,
        algorithm: p.algorithm,
        timeouts: { requestTimeoutMs: p.timeouts.requestMs, tryTimeoutMs: p.timeouts.tryMs === 0 ? undefined : p.timeouts.tryMs },
        shutdownGraceMs: p.shutdownGraceMs,
        activation: p.activation,
        logger: logger.child({ component: 'outbound' }),
      },
      {
        source: consulRouteSource(this.#client, this.#o.watch ?? {}, this.#signed),
        activator: consulActivator(this.#client, this.#host, logger.child({ component: 'activation' })),
        tls: storeOutboundTls(this.#store, config.ca.trustDomain),
        metrics: this.metrics,
        httpLimits: this.#listenerLimits(),
      },
    );
  }

  /** What the configuration sets of every listener's limits (the rest are proxy/http's defaults). */
  #listenerLimits(): { maxConnections: number; bodyIdleTimeoutMs: number; headersTimeoutMs: number; handshakeTimeoutMs: number } {
    const p = this.#o.config.proxy;
    return { maxConnections: p.maxConnections, bodyIdleTimeoutMs: p.timeouts.bodyIdleMs, headersTimeoutMs: p.timeouts.headMs, handshakeTimeoutMs: p.timeouts.handshakeMs };
  }

  /**
   * Graceful shutdown: /healthz says draining and the registration goes first
   * (so nothing new is sent here), then both stacks stop accepting and finish
   * in-flight requests within `graceMs`, then watches and Consul close.
   */
  close(graceMs: number = this.#o.config.proxy.shutdownGraceMs): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#reloading;
    this.#metricsServer?.setDraining();
    await this.#registration?.close();
    const started = performance.now();
    const [result] = await Promise.all([this.#inbound?.close(graceMs), this.#outbound?.close(graceMs)]);
    this.#o.logger.info({ ms: Math.round(performance.now() - started), cutInbound: result?.forced ?? 0 }, 'listeners drained');
    await Promise.all([this.#intentions.subscription.close(), this.#locals.close()]);
    await this.#inboundCache.flush();
    await this.#metricsServer?.close();
    this.#client.close();
  }
}

