/**
 * The host in Consul: one `weft-agent` service per host (ID `weft-agent-<host>`)
 * whose Meta carries the capacity and attributes the scheduler places by, and
 * whose TTL check is the node heartbeat: the agent passes it every third of
 * the TTL, so a dead agent's host turns critical within one TTL and the
 * scheduler stops placing there. Meta keys: `weft_host`, `weft_cpu`
 * (millicores), `weft_memory` (MiB), `weft_driver`, `weft_version`,
 * `weft_attr_<name>` per attribute, and `weft_volumes` (the host volumes'
 * names, comma-separated, when there are any: sticky host-volume groups are
 * placed only where it lists theirs).
 */
import { cpus, totalmem } from 'node:os';
import type { DiscoveryClient } from '../discovery/index.js';
import { formatDuration } from '../base/duration.js';
import type { Logger } from '../base/log.js';
import { VERSION } from '../base/version.js';
import { AGENT_SERVICE, ATTR_META_PREFIX, NODE_META, WEFT_TAG } from '../base/contracts/meta.js';


export interface NodeOptions {
  client: DiscoveryClient;
  host: string;
  address: string;
  /** Millicores; 0 = detect. */
  cpu: number;
  /** MiB; 0 = detect. */
  memory: number;
  attributes: Readonly<Record<string, string>>;
  /** Names of the host volumes this host offers (agent.hostVolumes). */
  hostVolumes?: readonly string[];
  driver: string;
  ttlMs: number;
  logger: Logger;
  /** The agent's /metrics port: the registration's Port, so Prometheus finds the agent through Consul. */
  metricsPort?: number | undefined;
}

/** The service ID of a host's agent. */
export function agentServiceId(host: string): string {
  return `${AGENT_SERVICE}-${host}`;
}

/** Capacity with detection applied. */
export function detectCapacity(cpu: number, memory: number): { cpu: number; memory: number } {
  return { cpu: cpu > 0 ? cpu : cpus().length * 1000, memory: memory > 0 ? memory : Math.floor(totalmem() / 1024 / 1024) };
}

/** Registers the host and keeps its heartbeat passing until stop(). */
export class NodeHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private readonly opts: NodeOptions;
  /** When a heartbeat last reached Consul (ms since the epoch); undefined before the first. */
  lastBeatMs: number | undefined;
  /** Heartbeats Consul did not take. */
  failures = 0;

  constructor(opts: NodeOptions) {
    this.opts = opts;
  }

  get checkId(): string {
    return `service:${agentServiceId(this.opts.host)}:ttl`;
  }

  async start(): Promise<void> {
    const { client, host } = this.opts;
    const capacity = detectCapacity(this.opts.cpu, this.opts.memory);
    const meta: Record<string, string> = {
      [NODE_META.host]: host,
      [NODE_META.cpu]: String(capacity.cpu),
      [NODE_META.memory]: String(capacity.memory),
      [NODE_META.driver]: this.opts.driver,
      [NODE_META.version]: VERSION,
    };
    for (const [k, v] of Object.entries(this.opts.attributes)) meta[`${ATTR_META_PREFIX}${k}`] = v;
    const volumes = [...(this.opts.hostVolumes ?? [])].sort();
    if (volumes.length > 0) meta[NODE_META.volumes] = volumes.join(',');
    await client.call('agent.service.register', (c) =>
      c.agent.service.register({
        id: agentServiceId(host),
        name: AGENT_SERVICE,
        address: this.opts.address,
        ...(this.opts.metricsPort === undefined ? {} : { port: this.opts.metricsPort }),
        tags: [WEFT_TAG],
        meta,
        checks: [{ checkid: this.checkId, name: `${AGENT_SERVICE} heartbeat ${host}`, ttl: formatDuration(this.opts.ttlMs), timeout: '1s', deregistercriticalserviceafter: '72h' }],
      }),
    );
    await this.beat();
    this.timer = setInterval(() => void this.beat(), Math.max(100, Math.floor(this.opts.ttlMs / 3)));
    this.timer.unref();
    this.opts.logger.info({ host, ...capacity, attributes: this.opts.attributes }, 'registered weft-agent');
  }

  /** Stops beating. `deregister` removes the host (a clean shutdown); otherwise it goes critical after the TTL. */
  async stop(opts: { deregister?: boolean } = {}): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (opts.deregister) await this.opts.client.call('agent.service.deregister', (c) => c.agent.service.deregister(agentServiceId(this.opts.host)));
  }

  private async beat(): Promise<void> {
    try {
      await this.opts.client.call('agent.check.pass', (c) => c.agent.check.pass({ id: this.checkId, note: `alive ${new Date().toISOString()}` }));
      this.lastBeatMs = Date.now();
    } catch (err) {
      this.failures++;
      this.opts.logger.warn({ err }, 'heartbeat failed; retrying at the next beat');
    }
  }
}
