/**
 * The proxy's own registration: service `weft-proxy`, ID `weft-proxy-<host>`,
 * Address/Port = the metrics listener (Prometheus finds proxies through
 * consul_sd or weft's HTTP SD by this name), Meta `weft_host` and
 * `weft_mesh_port`, and an HTTP check on `/healthz`, so a dead or draining
 * proxy turns critical without a heartbeat loop in the proxy.
 *
 * Registration never blocks start-up: a proxy started while Consul is down
 * must route from its cache at once. It retries with backoff until Consul
 * takes it; `close()` deregisters (best effort, bounded) on shutdown.
 */
import type { RegisterOptions } from 'consul/lib/agent/service.js';
import { backoffDelayMs } from '../../base/backoff.js';
import type { DiscoveryClient } from '../../discovery/index.js';
import type { Logger } from '../../base/log.js';
import { VERSION } from '../../base/version.js';
import { PROXY_META, PROXY_SERVICE, WEFT_TAG } from '../../base/contracts/meta.js';

/** What the registration says about this proxy. */
export interface ProxyRegistrationSpec {
  /** Node name (Meta weft_host). */
  readonly host: string;
  /** Metrics listener address and port: the service Address/Port. */
  readonly address: string;
  readonly port: number;
  /** Inbound mTLS port, for operators reading the catalog. */
  readonly meshPort: number;
  /** HTTP check interval. */
  readonly checkIntervalMs?: number | undefined;
}

/** The service ID of a host's proxy. */
export function proxyServiceId(host: string): string {
  return `${PROXY_SERVICE}-${host}`;
}

/** The agent/service/register body (pure: what goes on the wire). */
export function proxyRegistration(spec: ProxyRegistrationSpec): RegisterOptions & { id: string } {
  const interval = spec.checkIntervalMs ?? 10_000;
  return {
    id: proxyServiceId(spec.host),
    name: PROXY_SERVICE,
    address: spec.address,
    port: spec.port,
    tags: [WEFT_TAG],
    meta: { [PROXY_META.host]: spec.host, [PROXY_META.meshPort]: String(spec.meshPort), [PROXY_META.version]: VERSION },
    check: {
      name: `${PROXY_SERVICE} /healthz`,
      http: `http://${spec.address.includes(':') ? `[${spec.address}]` : spec.address}:${spec.port}/healthz`,
      interval: `${interval}ms`,
      timeout: `${Math.min(2000, interval)}ms`,
      deregistercriticalserviceafter: '1m',
      // Passing from the start: the listener is up before we register, and a
      // critical first state would hide a healthy proxy from Prometheus for an interval.
      status: 'passing',
    },
  };
}

/** Registers in the background until it succeeds; deregisters on close. */
export class ProxyRegistration {
  readonly #client: DiscoveryClient;
  readonly #spec: ProxyRegistrationSpec;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #registered = false;
  #closed = false;
  #attempt = 0;

  constructor(client: DiscoveryClient, spec: ProxyRegistrationSpec, logger: Logger) {
    this.#client = client;
    this.#spec = spec;
    this.#logger = logger;
  }

  /** True once Consul accepted the registration. */
  get registered(): boolean {
    return this.#registered;
  }

  /** Tries now, then keeps retrying (250 ms doubling to 30 s) until it succeeds or close(). */
  start(): void {
    void this.#try();
  }

  async #try(): Promise<void> {
    this.#timer = undefined;
    if (this.#closed) return;
    try {
      const body = proxyRegistration(this.#spec);
      await this.#client.call('agent.service.register', (c) => c.agent.service.register(body));
      this.#registered = true;
      this.#logger.info({ id: body.id, port: this.#spec.port }, 'registered weft-proxy in Consul');
    } catch (err) {
      this.#attempt++;
      const delay = backoffDelayMs(this.#attempt, { baseMs: 250, maxMs: 30_000, jitter: 'equal' });
      if (this.#attempt === 1) this.#logger.warn({ err }, 'weft-proxy registration failed: retrying in the background');
      if (!this.#closed) {
        this.#timer = setTimeout(() => void this.#try(), delay);
        this.#timer.unref();
      }
    }
  }

  /** Stops retrying and deregisters, waiting at most `timeoutMs`. */
  async close(timeoutMs = 2_000): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (!this.#registered) return;
    const id = proxyServiceId(this.#spec.host);
    const deregister = this.#client.call('agent.service.deregister', (c) => c.agent.service.deregister(id)).then(
      () => this.#logger.info({ id }, 'deregistered weft-proxy'),
      (err: unknown) => this.#logger.warn({ err, id }, 'weft-proxy deregistration failed'),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([deregister, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
}
