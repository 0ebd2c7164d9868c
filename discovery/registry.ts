/**
 * Service instances in Consul, per the architecture's contract: ID
 * `<host>-<instance>`, Address/Port of the instance, the weft_* Meta (weights
 * travel in Meta because node-consul 2.x cannot send Weights), the `weft` tag,
 * and checks built from the decoded labels. Reading goes the other way: a
 * /v1/health/service entry back into a typed Instance.
 */
import type { CheckOptions } from 'consul/lib/agent/check.js';
import type { RegisterOptions } from 'consul/lib/agent/service.js';
import { invalid, WeftError } from '../base/errors.js';
import { type Logger, silentLogger } from '../base/log.js';
import type { DiscoveryClient } from './client.js';
import { formatDuration } from '../base/duration.js';
import type { Registration } from '../base/contracts/labels.js';
import { SERVICE_META as META, WEFT_TAG, weightFromMeta } from '../base/contracts/meta.js';

/** Consul reaps a critical instance after this long (its own minimum is 1m). */
export const DEFAULT_DEREGISTER_CRITICAL_AFTER_MS = 60_000;

/** One running instance, as the agent knows it. */
export interface InstanceSpec {
  /** The host's name (node name): the first half of the ID. */
  host: string;
  /** The address the host's instances are reached at. */
  hostAddress: string;
  /** The instance's name on that host (allocation or container): the second half of the ID. */
  instance: string;
  /** The host proxy's inbound mTLS port. */
  meshPort: number;
  registration: Registration;
  /** Safety net for a dead agent: Consul removes an instance critical this long. */
  deregisterCriticalAfterMs?: number;
}

/** An instance as read back from Consul. */
export interface Instance {
  /** `<host>-<instance>`. */
  id: string;
  service: string;
  host: string;
  address: string;
  port: number;
  /** Absent for registrations made outside weft. */
  version: string | undefined;
  weight: number;
  /** Absent for registrations made outside weft: they cannot be reached over mTLS. */
  meshPort: number | undefined;
  tags: string[];
  /** Every check (service and node) is passing. */
  healthy: boolean;
}

/** The contract's service ID. */
export function serviceId(host: string, instance: string): string {
  return `${host}-${instance}`;
}

/** The agent/service/register body for an instance (pure: what goes on the wire). */
export function buildServiceRegistration(spec: InstanceSpec): RegisterOptions {
  const r = spec.registration;
  const id = serviceId(spec.host, spec.instance);
  return {
    id,
    name: r.service,
    address: spec.hostAddress,
    port: r.port,
    tags: [WEFT_TAG, ...r.tags.filter((t) => t !== WEFT_TAG)],
    meta: {
      [META.host]: spec.host,
      [META.instance]: spec.instance,
      [META.version]: r.version,
      [META.weight]: String(r.weight),
      [META.meshPort]: String(spec.meshPort),
    },
    checks: buildChecks(spec, id),
  };
}

function buildChecks(spec: InstanceSpec, id: string): CheckOptions[] {
  const c = spec.registration.check;
  const host = bracket(spec.hostAddress);
  const common = {
    interval: formatDuration(c.intervalMs),
    timeout: formatDuration(c.timeoutMs),
    successbeforepassing: c.successes,
    failuresbeforecritical: c.failures,
    deregistercriticalserviceafter: formatDuration(spec.deregisterCriticalAfterMs ?? DEFAULT_DEREGISTER_CRITICAL_AFTER_MS),
  };
  const checks: CheckOptions[] = [];
  if (c.http !== undefined) {
    const url = 'url' in c.http ? c.http.url : `${c.http.tls ? 'https' : 'http'}://${host}:${spec.registration.port}${c.http.path}`;
    checks.push({ checkid: `service:${id}:http`, name: `${spec.registration.service} HTTP ${url}`, http: url, ...common });
  }
  if (c.tcp !== undefined) {
    const target = `${c.tcp.host === undefined ? host : bracket(c.tcp.host)}:${c.tcp.port}`;
    checks.push({ checkid: `service:${id}:tcp`, name: `${spec.registration.service} TCP ${target}`, tcp: target, ...common });
  }
  return checks;
}

function bracket(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

/** Registers (or re-registers: Consul replaces by ID) an instance with the local agent; returns its ID. */
export async function registerInstance(client: DiscoveryClient, spec: InstanceSpec): Promise<string> {
  const body = buildServiceRegistration(spec);
  await client.call('agent.service.register', (c) => c.agent.service.register(body));
  client.logger.debug({ id: body.id, service: body.name }, 'registered instance');
  return body.id!;
}

/** Removes an instance (and its checks) from the local agent. */
export async function deregisterInstance(client: DiscoveryClient, id: string): Promise<void> {
  await client.call('agent.service.deregister', (c) => c.agent.service.deregister(id));
  client.logger.debug({ id }, 'deregistered instance');
}

/** The parts of a /v1/health/service entry weft reads. */
export interface HealthEntry {
  Node?: { Node?: string; Address?: string } | null;
  Service?: { ID?: string; Service?: string; Address?: string; Port?: number; Tags?: string[] | null; Meta?: Record<string, string> | null } | null;
  Checks?: Array<{ Status?: string }> | null;
}

/** Reads one health entry into an Instance; throws WEFT_ERR_INSTANCE_INVALID / WEFT_ERR_WEIGHT_INVALID on bad data. */
export function parseHealthEntry(entry: HealthEntry): Instance {
  const svc = entry.Service;
  const id = svc?.ID;
  if (svc === undefined || svc === null || typeof id !== 'string' || id === '' || typeof svc.Service !== 'string') {
    throw new WeftError('WEFT_ERR_INSTANCE_INVALID', 'health entry without Service.ID or Service.Service', { value: entry });
  }
  const meta = svc.Meta ?? {};
  const address = svc.Address !== undefined && svc.Address !== '' ? svc.Address : (entry.Node?.Address ?? '');
  if (address === '' || typeof svc.Port !== 'number' || svc.Port < 1 || svc.Port > 65535) {
    throw invalid('WEFT_ERR_INSTANCE_INVALID', `${id}: Address/Port`, `${address}:${svc.Port}`, 'must be an address and a port 1-65535');
  }
  return {
    id,
    service: svc.Service,
    host: meta[META.host] ?? entry.Node?.Node ?? '',
    address,
    port: svc.Port,
    version: meta[META.version] === '' ? undefined : meta[META.version],
    weight: weightFromMeta(meta, id),
    meshPort: meta[META.meshPort] === undefined ? undefined : metaInt(meta, META.meshPort, id, 1, 65535, 0, 'WEFT_ERR_INSTANCE_INVALID'),
    tags: [...(svc.Tags ?? [])],
    healthy: (entry.Checks ?? []).every((c) => c.Status === 'passing'),
  };
}

function metaInt(
  meta: Record<string, string>,
  key: string,
  id: string,
  min: number,
  max: number,
  fallback: number,
  code: 'WEFT_ERR_INSTANCE_INVALID',
): number {
  const raw = meta[key];
  if (raw === undefined || raw === '') return fallback;
  const n = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= min && n <= max)) throw invalid(code, `${id}: Meta.${key}`, raw, `must be an integer from ${min} to ${max}`);
  return n;
}

/**
 * Reads a health/service answer, skipping (and logging) entries that break the
 * contract: one bad registration must not hide the healthy others.
 */
export function parseHealthEntries(entries: readonly HealthEntry[], logger: Logger = silentLogger): Instance[] {
  const out: Instance[] = [];
  for (const entry of entries) {
    try {
      out.push(parseHealthEntry(entry));
    } catch (err) {
      logger.warn({ err }, 'skipping a Consul service entry');
    }
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** One-shot read of a service's instances (only passing ones unless `passing` is false). */
export async function listInstances(client: DiscoveryClient, service: string, opts: { passing?: boolean } = {}): Promise<Instance[]> {
  const entries = await client.call('health.service', (c) => c.health.service({ service, passing: opts.passing ?? true }));
  return parseHealthEntries((entries ?? []) as HealthEntry[], client.logger);
}
