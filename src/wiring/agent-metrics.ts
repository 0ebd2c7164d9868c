/**
 * `weft agent`'s metrics (`weft_agent_*`) and its admin listener: `/metrics`
 * (these plus Node's process metrics, base/metrics.ts) and `/healthz`, the
 * same listener as the proxy's (proxy-metrics-server.ts). The agent registers
 * its port as the `weft-agent` service Port, so Prometheus finds every agent
 * through Consul (consul_sd or weft's HTTP SD) as it finds proxies.
 *
 * Every figure is read from the agent's parts at scrape time (`collect()`):
 * the parts keep plain fields, and nothing runs between scrapes. The families
 * live on a registry of their own per agent (tests run several agents in one
 * process), merged with the process registry for the listener.
 */
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import { enableProcessMetrics, registry as processRegistry } from '../../base/metrics.js';
import { REFUSAL_REASONS } from '../../base/signing.js';

/** What the agent's metrics read; each function is called at scrape time. */
export interface AgentMetricSources {
  /** The allocations the runner manages, with the state last reported for each. */
  allocations(): Iterable<{ state: string }>;
  /** Instances the registrar has registered in Consul now. */
  registered(): number;
  /** The heartbeat: when it last reached Consul (ms since the epoch), and how often it failed. */
  heartbeat(): { lastSuccessMs: number | undefined; failures: number };
  /** Restarts of the supervised proxy; undefined when the agent supervises none. */
  proxyRestarts(): number | undefined;
  /** Allocation documents refused by the signature check, by reason (each value once). */
  signedStateRefused(): ReadonlyMap<string, number>;
  /** `<dataDir>/proxy/identities`: one folder per local service, holding cert.pem. */
  identitiesDir: string | undefined;
}

/** The allocation states, always all exported (0 when none). */
const ALLOC_STATES = ['pending', 'running', 'failed', 'stopped'] as const;

/**
 * Builds the `weft_agent_*` families on a fresh registry, merged with the
 * process registry (Node's process metrics, enabled here once per process).
 */
export function agentMetricsRegistry(sources: AgentMetricSources): Registry {
  enableProcessMetrics();
  const own = new Registry();
  const registers = [own];
  new Gauge({
    name: 'weft_agent_allocations',
    help: 'Allocations this agent runs, by the state it last reported: pending, running, failed, stopped.',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = new Map<string, number>(ALLOC_STATES.map((s) => [s, 0]));
      for (const a of sources.allocations()) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'weft_agent_tasks_registered',
    help: 'Service instances (containers, processes) this agent has registered in Consul.',
    registers,
    collect() {
      this.set(sources.registered());
    },
  });
  new Gauge({
    name: 'weft_agent_heartbeat_last_success_timestamp_seconds',
    help: 'When the weft-agent heartbeat last reached Consul (Unix seconds); 0 before the first.',
    registers,
    collect() {
      const at = sources.heartbeat().lastSuccessMs;
      this.set(at === undefined ? 0 : at / 1000);
    },
  });
  new Counter({
    name: 'weft_agent_heartbeat_failures_total',
    help: 'Heartbeats Consul did not take (Consul unreachable, or the check gone).',
    registers,
    collect() {
      this.reset();
      this.inc(sources.heartbeat().failures);
    },
  });
  new Counter({
    name: 'weft_agent_proxy_restarts_total',
    help: 'Times the supervised weft proxy was found dead and restarted (0 when the agent supervises no proxy).',
    registers,
    collect() {
      this.reset();
      const n = sources.proxyRestarts();
      if (n !== undefined) this.inc(n);
    },
  });
  new Counter({
    name: 'weft_agent_signed_state_refused_total',
    help: "Allocation documents this agent refused because they do not verify against the scheduler's signing keys, by reason (unsigned, malformed, unknown-key, retired-key, bad-signature, rollback); each refused value counted once. Nothing runs for them.",
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const reason of REFUSAL_REASONS) this.inc({ reason }, 0);
      for (const [reason, n] of sources.signedStateRefused()) this.inc({ reason }, n);
    },
  });
  const dir = sources.identitiesDir;
  // Read from the identity files at each scrape (a host holds a handful of services): what the proxy will present.
  new Gauge({
    name: 'weft_agent_certificate_expiry_timestamp_seconds',
    help: 'Expiry (notAfter, Unix seconds) of the leaf certificate the agent holds for each local service.',
    labelNames: ['service'],
    registers,
    collect() {
      this.reset();
      for (const leaf of dir === undefined ? [] : readLeaves(dir)) this.set({ service: leaf.service }, leaf.notAfter / 1000);
    },
  });
  new Gauge({
    name: 'weft_agent_certificate_not_before_timestamp_seconds',
    help: 'Start of validity (notBefore, Unix seconds) of the leaf certificate the agent holds for each local service; with the expiry, its lifetime.',
    labelNames: ['service'],
    registers,
    collect() {
      this.reset();
      for (const leaf of dir === undefined ? [] : readLeaves(dir)) this.set({ service: leaf.service }, leaf.notBefore / 1000);
    },
  });
  return Registry.merge([processRegistry, own]);
}

/** The leaves under `dir` (one folder per service with cert.pem); unreadable ones are skipped. */
function readLeaves(dir: string): Array<{ service: string; notBefore: number; notAfter: number }> {
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
  const out: Array<{ service: string; notBefore: number; notAfter: number }> = [];
  for (const service of names.sort()) {
    try {
      const cert = new X509Certificate(readFileSync(join(dir, service, 'cert.pem')));
      out.push({ service, notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) });
    } catch {
      // being written, or removed meanwhile: the next scrape sees it
    }
  }
  return out;
}
