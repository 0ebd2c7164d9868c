/**
 * The local agent: what /v1/agent/* does. It owns this node's services and
 * checks, turns registrations into store records (keeping a re-registered
 * check's status, as Consul does, so periodic re-registration never flaps
 * health), feeds executed checks to the runner, and writes their results back.
 * A status change commits a new index; an output-only change does not (Consul
 * defers those too), so a chatty HTTP check does not wake every watcher.
 */
import type { Logger } from '../../base/log.js';
import { type CheckLimits, type CheckSource, parseCheck, scriptAllowed } from './checks/definition.js';
import { CheckRunner } from './checks/runner.js';
import { badRequest, notFound, serverError } from './http-error.js';
import { bool, type JsonObject, obj, objList, str, strList, strMap, uint } from './json-body.js';
import type { Store, WriteTx } from './state/store.js';
import { type CheckRecord, type CheckStatus, nodeKey, type ServiceAddress, type ServiceRecord } from './state/types.js';

/** Node identity and limits the agent runs with. */
export interface AgentConfig extends CheckLimits {
  readonly nodeName: string;
  readonly nodeId: string;
  readonly datacenter: string;
  /** The address other nodes would use; the catalog's Node.Address. */
  readonly advertiseAddress: string;
  /** This node's Meta (Consul's `-node-meta`), already validated (validateNodeMeta). */
  readonly nodeMeta?: Readonly<Record<string, string>>;
}

/** Consul's node Meta limits (structs.ValidateNodeMetadata). */
const NODE_META_MAX_PAIRS = 64;
const NODE_META_KEY_MAX = 128;
const NODE_META_VALUE_MAX = 512;

/**
 * Checks node Meta the way Consul checks `-node-meta`: at most 64 pairs, keys of
 * [A-Za-z0-9_-] up to 128 characters and not starting `consul-` (reserved),
 * values up to 512 characters. Returns the reason, or undefined when valid.
 */
export function nodeMetaProblem(meta: Readonly<Record<string, string>>): string | undefined {
  const entries = Object.entries(meta);
  if (entries.length > NODE_META_MAX_PAIRS) return `Node metadata cannot contain more than ${NODE_META_MAX_PAIRS} key/value pairs`;
  for (const [key, value] of entries) {
    let why: string | undefined;
    if (key === '') why = 'Key cannot be blank';
    else if (!/^[A-Za-z0-9_-]+$/.test(key)) why = 'Key contains invalid characters';
    else if (key.length > NODE_META_KEY_MAX) why = `Key is too long (limit: ${NODE_META_KEY_MAX} characters)`;
    else if (key.startsWith('consul-')) why = "Key prefix 'consul-' is reserved for internal use";
    else if (value.length > NODE_META_VALUE_MAX) why = `Value is too long (limit: ${NODE_META_VALUE_MAX} characters)`;
    if (why !== undefined) return `Couldn't load metadata pair ('${key}', '${value}'): ${why}`;
  }
  return undefined;
}

/** Consul's check ID prefix for service maintenance. */
export const SERVICE_MAINT_PREFIX = '_service_maintenance:';
/** Consul's node maintenance check ID. */
export const NODE_MAINT_CHECK = '_node_maintenance';
/** The node check every Consul node has; sessions watch it by default. */
export const SERF_CHECK = 'serfHealth';

const DEFAULT_SERVICE_MAINT_REASON =
  'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.';
const DEFAULT_NODE_MAINT_REASON = 'Maintenance mode is enabled for this node, but no reason was provided. This is a default message.';

/** This node's services and checks, and the checks it runs. */
export class LocalAgent {
  readonly runner: CheckRunner;
  /** Check ID -> when it turned critical (ms epoch); the reaper reads it. */
  readonly criticalSince = new Map<string, number>();
  private nodeMeta: Readonly<Record<string, string>>;

  constructor(
    readonly store: Store,
    readonly config: AgentConfig,
    private readonly logger: Logger,
  ) {
    this.runner = new CheckRunner(
      { result: (id, status, output) => this.setCheckResult(id, status, output), ttlExpired: (id) => this.ttlExpired(id) },
      logger,
    );
    this.nodeMeta = { ...config.nodeMeta };
  }

  get node(): string {
    return this.config.nodeName;
  }

  /** Replaces this node's Meta (a reload) and writes the node when it changed. */
  setNodeMeta(meta: Readonly<Record<string, string>>): void {
    this.nodeMeta = { ...meta };
    this.ensureLocalNode();
  }

  /** Writes this node, its serfHealth check and the `consul` service (no new index when unchanged). */
  ensureLocalNode(): void {
    const { nodeName: node, nodeId, datacenter, advertiseAddress: address } = this.config;
    const s = this.store;
    const n = s.nodes.get(node);
    const tagged = { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address };
    // Consul's node Meta: the -node-meta pairs plus the network segment it always adds.
    const meta: Record<string, string> = { ...this.nodeMeta, 'consul-network-segment': '' };
    s.write((tx) => {
      if (n === undefined || n.id !== nodeId || n.address !== address || n.datacenter !== datacenter || !sameMeta(n.meta, meta)) {
        tx.put('nodes', node, {
          id: nodeId,
          node,
          address,
          datacenter,
          taggedAddresses: tagged,
          meta,
          createIndex: n?.createIndex ?? tx.index,
          modifyIndex: tx.index,
        });
      }
      if (s.check(node, SERF_CHECK) === undefined) {
        tx.put('checks', nodeKey(node, SERF_CHECK), apiCheck(tx, node, SERF_CHECK, 'Serf Health Status', 'passing', '', 'Agent alive and reachable'));
      }
      if (s.service(node, 'consul') === undefined) {
        tx.put('services', nodeKey(node, 'consul'), {
          node,
          id: 'consul',
          name: 'consul',
          kind: '',
          tags: [],
          address: '',
          port: 8300,
          meta: { raft_version: '3', serf_protocol_current: '2', serf_protocol_max: '5', serf_protocol_min: '1', version: '1.17.0' },
          weights: { Passing: 1, Warning: 1 },
          enableTagOverride: false,
          local: false,
          createIndex: tx.index,
          modifyIndex: tx.index,
        });
      }
    });
  }

  /** Starts the runner for every local check (after loading persisted state). */
  startChecks(): void {
    const now = Date.now();
    for (const c of this.store.checksOfNode(this.node)) {
      if (!c.local) continue;
      const script = c.definition.script;
      if (script !== undefined && !scriptAllowed(this.config, script.source)) {
        // Consul purges a persisted check it can no longer add.
        this.logger.warn({ checkId: c.checkId }, 'dev-consul: removed a persisted script check: script checks are not enabled for its source');
        this.store.write((tx) => this.dropCheck(tx, c.checkId));
        continue;
      }
      if (c.status === 'critical') this.criticalSince.set(c.checkId, now);
      this.runner.start(c);
    }
  }

  /** PUT /v1/agent/service/register (`source` 'local' for a config file's services). */
  registerService(body: JsonObject, replaceExistingChecks: boolean, source: CheckSource = 'remote'): void {
    const name = str(body, 'Name');
    if (name === '') throw badRequest('Missing service name');
    const id = str(body, 'ID') || name;
    const weights = obj(body, 'Weights');
    const rawChecks = [...(obj(body, 'Check') === undefined ? [] : [obj(body, 'Check')!]), ...objList(body, 'Checks')];
    const parsed = rawChecks.map((c) => parseCheck(c, this.config, source));
    const tagged = parseTaggedAddresses(obj(body, 'TaggedAddresses'));
    const node = this.node;
    const before = this.store.service(node, id);
    const starts: CheckRecord[] = [];

    this.store.write((tx) => {
      const service: ServiceRecord = {
        node,
        id,
        name,
        kind: str(body, 'Kind'),
        tags: strList(body, 'Tags'),
        address: str(body, 'Address'),
        port: uint(body, 'Port'),
        meta: strMap(body, 'Meta'),
        weights: weights === undefined ? { Passing: 1, Warning: 1 } : { Passing: uint(weights, 'Passing', 1), Warning: uint(weights, 'Warning', 1) },
        enableTagOverride: bool(body, 'EnableTagOverride'),
        ...(tagged === undefined ? {} : { taggedAddresses: tagged }),
        local: true,
        createIndex: before?.createIndex ?? tx.index,
        modifyIndex: tx.index,
      };
      tx.put('services', nodeKey(node, id), service);
      const keep = new Set<string>();
      parsed.forEach((p, i) => {
        const checkId = p.checkId ?? (parsed.length > 1 ? `service:${id}:${i + 1}` : `service:${id}`);
        keep.add(checkId);
        starts.push(this.putCheck(tx, { ...p, checkId, name: p.name ?? `Service '${name}' check` }, service));
      });
      if (replaceExistingChecks) {
        for (const c of this.store.checksOfNode(node)) {
          if (c.serviceId === id && !keep.has(c.checkId) && !c.checkId.startsWith(SERVICE_MAINT_PREFIX)) this.dropCheck(tx, c.checkId);
        }
      }
    });
    for (const c of starts) this.runner.start(c);
    this.logger.debug({ service: name, id }, 'service registered');
  }

  /** PUT /v1/agent/service/deregister/:id — the service and all its checks. */
  deregisterService(id: string): void {
    const node = this.node;
    const service = this.store.service(node, id);
    if (service === undefined || !service.local) {
      throw notFound(`Unknown service ID ${JSON.stringify(id)}. Ensure that the service ID is passed, not the service name.`);
    }
    this.store.write((tx) => {
      for (const c of this.store.checksOfNode(node)) if (c.serviceId === id) this.dropCheck(tx, c.checkId);
      tx.put('services', nodeKey(node, id), undefined);
    });
    this.logger.debug({ id }, 'service deregistered');
  }

  /** PUT /v1/agent/check/register (`source` 'local' for a config file's checks). */
  registerCheck(body: JsonObject, source: CheckSource = 'remote'): void {
    if (str(body, 'Name') === '') throw badRequest('Missing check name');
    const p = parseCheck(body, this.config, source);
    let service: ServiceRecord | undefined;
    if (p.serviceId !== undefined) {
      service = this.store.service(this.node, p.serviceId);
      if (service === undefined) throw badRequest(`ServiceID ${JSON.stringify(p.serviceId)} does not exist`);
    }
    const check = this.store.write((tx) => this.putCheck(tx, { ...p, checkId: p.checkId ?? p.name! }, service));
    this.runner.start(check);
  }

  /** PUT /v1/agent/check/deregister/:id. */
  deregisterCheck(checkId: string): void {
    this.localCheck(checkId);
    this.store.write((tx) => this.dropCheck(tx, checkId));
  }

  /** PUT /v1/agent/check/{pass,warn,fail}/:id and /update/:id: only TTL checks, which restart their clock. */
  updateTtl(checkId: string, status: CheckStatus, output: string): void {
    const check = this.localCheck(checkId);
    if (check.definition.kind !== 'ttl') throw serverError(`CheckID ${JSON.stringify(checkId)} does not have associated TTL`);
    this.setCheckResult(checkId, status, truncateOutput(output, check.definition.outputMaxSize));
    this.runner.touchTtl(checkId);
  }

  /** PUT /v1/agent/service/maintenance/:id. */
  serviceMaintenance(id: string, enable: boolean, reason: string): void {
    const service = this.store.service(this.node, id);
    if (service === undefined || !service.local) throw notFound(`Unknown service ID ${JSON.stringify(id)}`);
    const checkId = SERVICE_MAINT_PREFIX + id;
    this.maintenance(checkId, enable, 'Service Maintenance Mode', reason || DEFAULT_SERVICE_MAINT_REASON, service);
  }

  /** PUT /v1/agent/maintenance. */
  nodeMaintenance(enable: boolean, reason: string): void {
    this.maintenance(NODE_MAINT_CHECK, enable, 'Node Maintenance Mode', reason || DEFAULT_NODE_MAINT_REASON, undefined);
  }

  /** Writes a check result: a new index only when the status changes. */
  setCheckResult(checkId: string, status: CheckStatus, output: string): void {
    const key = nodeKey(this.node, checkId);
    const c = this.store.checks.get(key);
    if (c === undefined) return;
    if (status === 'critical') {
      if (!this.criticalSince.has(checkId)) this.criticalSince.set(checkId, Date.now());
    } else this.criticalSince.delete(checkId);
    if (c.status !== status) {
      this.store.write((tx) => tx.put('checks', key, { ...c, status, output, modifyIndex: tx.index }));
      this.logger.debug({ checkId, status }, 'check status changed');
    } else if (c.output !== output) this.store.putQuietly('checks', key, { ...c, output });
  }

  /** Stops the runner. */
  close(): void {
    this.runner.stopAll();
  }

  private ttlExpired(checkId: string): void {
    const c = this.store.check(this.node, checkId);
    if (c === undefined) return;
    const last = c.output;
    this.setCheckResult(checkId, 'critical', last === '' ? 'TTL expired' : `TTL expired (last output before timeout follows): ${last}`);
  }

  private maintenance(checkId: string, enable: boolean, name: string, reason: string, service: ServiceRecord | undefined): void {
    const node = this.node;
    if (!enable) {
      if (this.store.check(node, checkId) !== undefined) this.store.write((tx) => this.dropCheck(tx, checkId));
      return;
    }
    if (this.store.check(node, checkId) !== undefined) return; // Consul keeps the first reason
    this.store.write((tx) =>
      tx.put('checks', nodeKey(node, checkId), {
        ...apiCheck(tx, node, checkId, name, 'critical', reason, ''),
        serviceId: service?.id ?? '',
        serviceName: service?.name ?? '',
        type: 'maintenance',
        local: true,
      }),
    );
  }

  private localCheck(checkId: string): CheckRecord {
    const c = this.store.check(this.node, checkId);
    if (c === undefined || !c.local) {
      throw notFound(`Unknown check ID ${JSON.stringify(checkId)}. Ensure that the check ID is passed, not the check name.`);
    }
    return c;
  }

  private putCheck(tx: WriteTx, p: ReturnType<typeof parseCheck> & { checkId: string }, service: ServiceRecord | undefined): CheckRecord {
    const key = nodeKey(this.node, p.checkId);
    const before = this.store.checks.get(key);
    // Re-registering keeps the current verdict unless the request sets one.
    const keep = before !== undefined && before.type === p.type && p.status === undefined;
    const status = keep ? before.status : (p.status ?? 'critical');
    const check: CheckRecord = {
      node: this.node,
      checkId: p.checkId,
      name: p.name ?? p.checkId,
      status,
      notes: p.notes,
      output: keep ? before.output : '',
      serviceId: service?.id ?? '',
      serviceName: service?.name ?? '',
      type: p.type,
      definition: p.definition,
      local: true,
      createIndex: before?.createIndex ?? tx.index,
      modifyIndex: tx.index,
    };
    tx.put('checks', key, check);
    if (status === 'critical') {
      if (!this.criticalSince.has(p.checkId)) this.criticalSince.set(p.checkId, Date.now());
    } else this.criticalSince.delete(p.checkId);
    return check;
  }

  private dropCheck(tx: WriteTx, checkId: string): void {
    this.runner.stop(checkId);
    this.criticalSince.delete(checkId);
    tx.put('checks', nodeKey(this.node, checkId), undefined);
  }
}

/** A check that is only set through the API (no definition to run). */
function apiCheck(tx: WriteTx, node: string, checkId: string, name: string, status: CheckStatus, notes: string, output: string): CheckRecord {
  return {
    node,
    checkId,
    name,
    status,
    notes,
    output,
    serviceId: '',
    serviceName: '',
    type: '',
    definition: { kind: 'none', successBeforePassing: 0, failuresBeforeCritical: 0, failuresBeforeWarning: 0 },
    local: false,
    createIndex: tx.index,
    modifyIndex: tx.index,
  };
}

function sameMeta(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

/** Consul caps check output (default 4 KiB) and says how much it kept. */
export function truncateOutput(output: string, max = 4096): string {
  const bytes = Buffer.from(output, 'utf8');
  if (bytes.length <= max) return output;
  return `${bytes.subarray(0, max).toString('utf8')} ... (captured ${max} of ${bytes.length} bytes)`;
}

function parseTaggedAddresses(raw: JsonObject | undefined): Record<string, ServiceAddress> | undefined {
  if (raw === undefined) return undefined;
  const out: Record<string, ServiceAddress> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest(`Request decode failed: TaggedAddresses.${k} must be an object`);
    out[k] = { Address: str(v as JsonObject, 'Address'), Port: uint(v as JsonObject, 'Port') };
  }
  return out;
}
