/**
 * Records rendered in Consul's JSON shapes and casing (api/*.go structs), so
 * a client cannot tell the dev agent's answers from a real agent's.
 */
import { formatGoDuration } from '../../../base/duration.js';
import type { Store } from './store.js';
import type { CheckRecord, KvEntry, NodeRecord, ServiceRecord, SessionRecord } from './types.js';

/** A KV entry (DirEntry): Value base64 or null; Session only when locked. */
export function kvJson(e: KvEntry, withValue = true): Record<string, unknown> {
  const out: Record<string, unknown> = { LockIndex: e.lockIndex, Key: e.key, Flags: e.flags };
  out['Value'] = withValue && e.value !== null && e.value.length > 0 ? e.value.toString('base64') : null;
  if (e.session !== undefined) out['Session'] = e.session;
  out['CreateIndex'] = e.createIndex;
  out['ModifyIndex'] = e.modifyIndex;
  return out;
}

/** Each entry's kvJson as JSON text: entries are immutable (a write replaces the record), so it never goes stale. */
const kvText = new WeakMap<KvEntry, string>();

/**
 * An entry's kvJson, serialised, made once per entry: a recursive answer of
 * ten thousand entries is then a join of cached texts, not ten thousand
 * objects, base64 encodings and a serialisation, each time one entry changes.
 */
export function kvJsonText(e: KvEntry): string {
  let text = kvText.get(e);
  if (text === undefined) {
    text = JSON.stringify(kvJson(e));
    kvText.set(e, text);
  }
  return text;
}

/** A catalog node. */
export function nodeJson(n: NodeRecord): Record<string, unknown> {
  return {
    ID: n.id,
    Node: n.node,
    Address: n.address,
    Datacenter: n.datacenter,
    TaggedAddresses: n.taggedAddresses,
    Meta: n.meta,
    CreateIndex: n.createIndex,
    ModifyIndex: n.modifyIndex,
  };
}

/** A service as /v1/agent/services and /v1/agent/service/:id show it. */
export function agentServiceJson(s: ServiceRecord, datacenter: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (s.kind !== '') out['Kind'] = s.kind;
  Object.assign(out, { ID: s.id, Service: s.name, Tags: [...s.tags], Meta: s.meta, Port: s.port, Address: s.address });
  if (s.taggedAddresses !== undefined) out['TaggedAddresses'] = s.taggedAddresses;
  Object.assign(out, { Weights: s.weights, EnableTagOverride: s.enableTagOverride, Datacenter: datacenter });
  return out;
}

/** A service inside a health entry or a catalog node (structs.NodeService). */
export function nodeServiceJson(s: ServiceRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (s.kind !== '') out['Kind'] = s.kind;
  Object.assign(out, { ID: s.id, Service: s.name, Tags: [...s.tags], Address: s.address });
  if (s.taggedAddresses !== undefined) out['TaggedAddresses'] = s.taggedAddresses;
  Object.assign(out, {
    Meta: s.meta,
    Port: s.port,
    Weights: s.weights,
    EnableTagOverride: s.enableTagOverride,
    Proxy: { Mode: '', MeshGateway: {}, Expose: {} },
    Connect: {},
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  });
  return out;
}

/** A /v1/catalog/service/:service row (structs.ServiceNode): node fields plus Service* fields. */
export function catalogServiceJson(s: ServiceRecord, n: NodeRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ID: n.id,
    Node: n.node,
    Address: n.address,
    Datacenter: n.datacenter,
    TaggedAddresses: n.taggedAddresses,
    NodeMeta: n.meta,
    ServiceKind: s.kind,
    ServiceID: s.id,
    ServiceName: s.name,
    ServiceTags: [...s.tags],
    ServiceAddress: s.address,
  };
  if (s.taggedAddresses !== undefined) out['ServiceTaggedAddresses'] = s.taggedAddresses;
  Object.assign(out, {
    ServiceWeights: s.weights,
    ServiceMeta: s.meta,
    ServicePort: s.port,
    ServiceEnableTagOverride: s.enableTagOverride,
    ServiceProxy: { Mode: '', MeshGateway: {}, Expose: {} },
    ServiceConnect: {},
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  });
  return out;
}

/** A health check (structs.HealthCheck); ServiceTags come from the service as it is now. */
export function checkJson(store: Store, c: CheckRecord): Record<string, unknown> {
  const d = c.definition;
  const interval = d.intervalMs === undefined ? '' : formatGoDuration(d.intervalMs);
  const timeout = d.timeoutMs === undefined ? '' : formatGoDuration(d.timeoutMs);
  const definition: Record<string, unknown> = {};
  if (d.http !== undefined) Object.assign(definition, { HTTP: d.http, Method: d.method ?? '', Header: d.header ?? null });
  if (d.tlsSkipVerify === true) definition['TLSSkipVerify'] = true;
  if (d.tcp !== undefined) definition['TCP'] = d.tcp;
  if (d.kind === 'http' || d.kind === 'tcp') Object.assign(definition, { Interval: interval, Timeout: timeout || '0s' });
  if (d.ttlMs !== undefined) definition['TTL'] = formatGoDuration(d.ttlMs);
  if (d.deregisterCriticalServiceAfterMs !== undefined) {
    definition['DeregisterCriticalServiceAfter'] = formatGoDuration(d.deregisterCriticalServiceAfterMs);
  }
  const service = c.serviceId === '' ? undefined : store.service(c.node, c.serviceId);
  return {
    Node: c.node,
    CheckID: c.checkId,
    Name: c.name,
    Status: c.status,
    Notes: c.notes,
    Output: c.output,
    ServiceID: c.serviceId,
    ServiceName: c.serviceName,
    ServiceTags: service === undefined ? [] : [...service.tags],
    Type: c.type,
    Interval: interval,
    Timeout: timeout,
    ExposedPort: 0,
    Definition: definition,
    CreateIndex: c.createIndex,
    ModifyIndex: c.modifyIndex,
  };
}

/** A session (Checks is left out when only serfHealth is watched, as Consul 1.7+ does). */
export function sessionJson(s: SessionRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ID: s.id,
    Name: s.name,
    Node: s.node,
    LockDelay: Math.round(s.lockDelayMs * 1e6),
    Behavior: s.behavior,
    TTL: s.ttl,
  };
  if (!(s.nodeChecks.length === 1 && s.nodeChecks[0] === 'serfHealth') && s.nodeChecks.length > 0) {
    out['Checks'] = [...s.nodeChecks];
  }
  out['NodeChecks'] = s.nodeChecks.length === 0 ? null : [...s.nodeChecks];
  out['ServiceChecks'] = s.serviceChecks.length === 0 ? null : s.serviceChecks.map((id) => ({ ID: id, Namespace: '' }));
  out['CreateIndex'] = s.createIndex;
  out['ModifyIndex'] = s.modifyIndex;
  return out;
}
