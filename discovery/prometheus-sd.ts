/**
 * Prometheus HTTP service discovery that mirrors `consul_sd_configs`.
 *
 * Debian's Prometheus (2.42+ds) is built without Consul SD ("Disable Consul SD
 * until its Debian package is back in shape", debian/changelog), but it has
 * `http_sd_configs`. So weft serves the same target groups, with the same
 * `__meta_consul_*` labels Prometheus' own Consul SD would attach, read from
 * Consul through the `consul` client. One relabelling config then works for an
 * upstream Prometheus (consul_sd) and a Debian one (http_sd).
 */
import type { DiscoveryClient } from './client.js';

/** One HTTP SD target group, as Prometheus expects it. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

export interface SdFilter {
  /** Only these services (default: all). */
  services?: string[];
  /** Only instances carrying all of these tags. */
  tags?: string[];
}

interface HealthEntry {
  Node: { Node: string; Address: string; Datacenter?: string; Meta?: Record<string, string> | null; TaggedAddresses?: Record<string, string> | null };
  Service: { ID: string; Service: string; Address: string; Port: number; Tags: string[] | null; Meta: Record<string, string> | null };
  Checks: Array<{ Status: string }>;
}

/** Reads the catalog and returns one target group per instance, labelled like consul_sd. */
export async function prometheusTargetGroups(client: DiscoveryClient, filter: SdFilter = {}): Promise<TargetGroup[]> {
  const services = filter.services ?? Object.keys(await client.call('catalog services', (c) => c.catalog.service.list()));
  const groups: TargetGroup[] = [];
  for (const service of [...services].sort()) {
    const entries = (await client.call(`health service ${service}`, (c) => c.health.service({ service }))) as HealthEntry[];
    for (const entry of entries) {
      const tags = entry.Service.Tags ?? [];
      if (filter.tags && !filter.tags.every((t) => tags.includes(t))) continue;
      groups.push(toGroup(entry));
    }
  }
  return groups;
}

function toGroup(e: HealthEntry): TargetGroup {
  const tags = e.Service.Tags ?? [];
  const address = e.Service.Address !== '' ? e.Service.Address : e.Node.Address;
  const labels: Record<string, string> = {
    __meta_consul_address: e.Node.Address,
    __meta_consul_dc: e.Node.Datacenter ?? '',
    __meta_consul_health: aggregatedStatus(e.Checks),
    __meta_consul_node: e.Node.Node,
    __meta_consul_service: e.Service.Service,
    __meta_consul_service_address: e.Service.Address,
    __meta_consul_service_id: e.Service.ID,
    __meta_consul_service_port: String(e.Service.Port),
    // Prometheus wraps the list in separators so `,tag,` regexes match whole tags.
    __meta_consul_tags: tags.length === 0 ? '' : `,${tags.join(',')},`,
  };
  for (const [k, v] of Object.entries(e.Node.Meta ?? {})) labels[`__meta_consul_metadata_${sanitize(k)}`] = v;
  for (const [k, v] of Object.entries(e.Service.Meta ?? {})) labels[`__meta_consul_service_metadata_${sanitize(k)}`] = v;
  for (const [k, v] of Object.entries(e.Node.TaggedAddresses ?? {})) labels[`__meta_consul_tagged_address_${sanitize(k)}`] = v;
  return { targets: [`${address}:${e.Service.Port}`], labels };
}

/** Consul's aggregated status: any critical wins, then warning, else passing. */
export function aggregatedStatus(checks: Array<{ Status: string }>): 'passing' | 'warning' | 'critical' {
  if (checks.some((c) => c.Status === 'critical')) return 'critical';
  if (checks.some((c) => c.Status === 'warning')) return 'warning';
  return 'passing';
}

/** Prometheus label names allow [a-zA-Z0-9_] only. */
function sanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** The route's path: under /v1/weft/ so it can never clash with Consul's own API. */
export const PROMETHEUS_SD_PATH = '/v1/weft/prometheus-sd';

/**
 * Parses the route's query: `service` and `tag`, each repeatable, so one URL can
 * say `?service=weft-proxy` or `?tag=weft`, like consul_sd's `services` and `tags`.
 */
export function sdFilterFromQuery(query: Record<string, string | string[] | undefined>): SdFilter {
  const list = (v: string | string[] | undefined): string[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);
  const filter: SdFilter = {};
  const services = list(query['service']);
  const tags = list(query['tag']);
  if (services) filter.services = services;
  if (tags) filter.tags = tags;
  return filter;
}
