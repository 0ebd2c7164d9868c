/**
 * Cluster routes: health, nodes, drain, agent tokens, splits, intentions,
 * secrets, and the agent routes (allocation secrets, CSR signing, roots).
 *
 * Splits and intentions are validated with the proxy's own rules
 * (proxy/balance/split.ts, proxy/inbound/intentions.ts): src/wiring is the
 * one place allowed to assemble subsystems, so what the API accepts is exactly
 * what every proxy will load.
 *
 * CSR rule: an agent token for host H may claim the SPIFFE IDs of services
 * that allocations on H register (`weft.service` of `weft/allocs/H/*`), in
 * namespace `agent.namespace`; the operator token may claim any service.
 *
 * Splits and intentions are written signed (scheduler-signing.ts): proxies
 * act only on what the scheduler's key signed for that key path. Reads list
 * only what verifies, which is what the proxies enforce; anything else is
 * logged as refused. The signing keys are served to agents with their host
 * token (`GET /v1/signing/keys`); `POST /v1/signing/rotate` (operator) adds a
 * key and re-signs intentions and splits at once (the leader's sweep does
 * the allocations).
 */
import { bundlePem, type CertificateAuthority, createCsrSigner, type CsrSigner, loadCa } from '../../certs/index.js';
import { INTENTIONS_PREFIX, parseIntentionDocument, parseIntentionKey, SPLIT_KV_PREFIX, splitKey, validateSplit } from '../../proxy/index.js';
import { deleteKey, getEntry, listEntries, putJSON } from '../../discovery/index.js';
import { type Allocation, ALLOCS_PREFIX, allocKey } from '../../base/contracts/alloc.js';
import type { IntentionView, NodeView, SplitView } from '../../base/contracts/scheduler-api.js';
import { WeftError } from '../../base/errors.js';
import { VERSION } from '../../base/version.js';
import { readiness } from '../../scheduler/index.js';
import { currentAllocs, currentNodes, type SchedulerContext } from './scheduler-context.js';
import type { Handlers } from './scheduler-api.js';
import { drainKey } from './scheduler-store.js';
import { agentToken } from './scheduler-token.js';
import { LABEL } from '../../base/contracts/labels.js';
import { verifierOf, verify } from '../../base/signing.js';
import { resignDocuments, type SignedPrefix, signedReader, SigningKeyStore } from './scheduler-signing.js';

/** Intentions and splits, as the re-signing sweep checks a document found unsigned. */
export const MESH_SIGNED_PREFIXES: readonly SignedPrefix[] = [
  {
    prefix: INTENTIONS_PREFIX,
    validate: (key, doc) => {
      parseIntentionKey(key);
      parseIntentionDocument(key, doc);
    },
  },
  { prefix: SPLIT_KV_PREFIX, validate: (key, doc) => validateSplit(key.slice(SPLIT_KV_PREFIX.length), JSON.parse(doc)) },
];

type ClusterHandlers = Omit<Handlers, 'listJobs' | 'submitJob' | 'planJob' | 'getJob' | 'stopJob' | 'scaleJob' | 'jobStatus' | 'jobVersions' | 'revertJob' | 'jobAutoscale' | 'stats'>;

/**
 * The cluster route handlers. `signing` is the scheduler's key store (opened,
 * and created on a first start, from the data directory when not given).
 */
export function clusterHandlers(ctx: SchedulerContext, signing: SigningKeyStore = SigningKeyStore.open(ctx.config.dataDir).store): ClusterHandlers {
  let signer: { ca: CertificateAuthority; sign: CsrSigner } | undefined;
  const ca = (): { ca: CertificateAuthority; sign: CsrSigner } => {
    // Loaded on first use: a scheduler without a CA still serves everything else.
    if (signer === undefined) {
      const loaded = loadCa(ctx.config.dataDir, { leafTtlMs: ctx.config.ca.leafTtlHours * 3_600_000 });
      signer = { ca: loaded, sign: createCsrSigner({ ca: loaded, perSecond: ctx.config.ca.csrMaxPerSecond }) };
    }
    return signer;
  };
  /** The verified document text of each entry under `prefix`; refused ones are logged and left out. */
  const verifiedEntries = async (prefix: string): Promise<Array<{ key: string; doc: string }>> => {
    const verifier = verifierOf(signing.keySet());
    const out: Array<{ key: string; doc: string }> = [];
    for (const e of await listEntries(ctx.client, prefix)) {
      if (e.key.endsWith('/') && (e.value === null || e.value === '')) continue;
      const v = verify(verifier, e.key, e.value, Date.now());
      if (v.ok) out.push({ key: e.key, doc: v.doc });
      else ctx.logger.warn({ code: 'WEFT_ERR_SIGNED_STATE', key: e.key, reason: v.reason }, `not signed by this scheduler (${v.detail}): proxies refuse it; not listed`);
    }
    return out;
  };
  /** Signs `doc` for `key` (after the value it replaces) and writes it. */
  const putSigned = async (key: string, doc: unknown): Promise<void> => {
    const previous = await getEntry(ctx.client, key);
    await putJSON(ctx.client, key, signing.sign(key, JSON.stringify(doc), previous?.value));
  };

  return {
    async health() {
      const leaderAddress = ctx.leaderAddress();
      return { status: 'ok', leader: ctx.isLeader(), version: VERSION, ...(leaderAddress === undefined ? {} : { leaderAddress }) };
    },

    async listNodes() {
      const snap = ctx.observer.snapshot();
      const now = Date.now();
      const allocs = currentAllocs(snap, now).filter((a) => a.status !== 'failed' && a.status !== 'stopped');
      const nodes: NodeView[] = currentNodes(ctx, snap, now).map((n) => {
        const mine = allocs.filter((a) => a.node === n.name);
        return {
          name: n.name,
          address: n.address,
          readiness: readiness(n, now, ctx.config.scheduler.lostAfterMs),
          heartbeat: n.heartbeat,
          drain: n.drain,
          capacity: { cpu: n.capacity.cpu, memory: n.capacity.memory },
          allocated: { cpu: mine.reduce((s, a) => s + a.resources.cpu, 0), memory: mine.reduce((s, a) => s + a.resources.memory, 0) },
          attributes: { ...n.attributes },
          drivers: [...n.drivers],
          hostVolumes: [...n.hostVolumes],
          allocations: mine.length,
        };
      });
      return { nodes };
    },

    async drainNode(req) {
      const { node } = req.params as { node: string };
      const { enable } = req.body as { enable: boolean };
      const snap = ctx.observer.snapshot();
      if (!currentNodes(ctx, snap, Date.now()).some((n) => n.name === node)) throw new WeftError('WEFT_ERR_API_NOT_FOUND', `no node ${node}`, { key: 'node', value: node });
      if (enable) await putJSON(ctx.client, drainKey(node), { drain: true, since: new Date().toISOString() });
      else await deleteKey(ctx.client, drainKey(node));
      ctx.logger.info({ node, drain: enable }, 'node drain changed');
      return { node, drain: enable };
    },

    async nodeToken(req) {
      const { node } = req.params as { node: string };
      return { node, token: agentToken(ctx.token, node) };
    },

    async listSplits() {
      const splits: SplitView[] = [];
      for (const e of await verifiedEntries(SPLIT_KV_PREFIX)) {
        const service = e.key.slice(SPLIT_KV_PREFIX.length);
        try {
          splits.push({ service, weights: Object.fromEntries(validateSplit(service, JSON.parse(e.doc))) });
        } catch {
          ctx.logger.warn({ key: e.key }, 'invalid split in KV; not listed');
        }
      }
      return { splits };
    },

    async getSplit(req) {
      const { service } = req.params as { service: string };
      const entry = await getEntry(ctx.client, splitKey(service));
      if (entry === undefined) throw new WeftError('WEFT_ERR_API_NOT_FOUND', `no split for ${service}`, { key: 'service', value: service });
      const v = verify(verifierOf(signing.keySet()), entry.key, entry.value, Date.now());
      if (!v.ok) throw new WeftError('WEFT_ERR_SIGNED_STATE', `${entry.key} is not signed by this scheduler (${v.reason}: ${v.detail}); proxies refuse it`, { key: 'service', value: service });
      return { service, weights: Object.fromEntries(validateSplit(service, JSON.parse(v.doc))) };
    },

    async putSplit(req) {
      const { service } = req.params as { service: string };
      const { weights } = req.body as { weights: Record<string, number> };
      const split = validateSplit(service, weights);
      await putSigned(splitKey(service), Object.fromEntries(split));
      ctx.logger.info({ service, weights }, 'split set');
      return { service, weights: Object.fromEntries(split) };
    },

    async deleteSplit(req) {
      const { service } = req.params as { service: string };
      const existed = (await getEntry(ctx.client, splitKey(service))) !== undefined;
      if (existed) await deleteKey(ctx.client, splitKey(service));
      return { deleted: existed };
    },

    async listIntentions() {
      const intentions: IntentionView[] = [];
      for (const e of await verifiedEntries(INTENTIONS_PREFIX)) {
        try {
          const pair = parseIntentionKey(e.key);
          intentions.push({ ...pair, ...parseIntentionDocument(e.key, e.doc) });
        } catch {
          ctx.logger.warn({ key: e.key }, 'invalid intention in KV (proxies deny its pair); not listed');
        }
      }
      return { intentions };
    },

    async putIntention(req) {
      const { source, destination } = req.params as { source: string; destination: string };
      const key = `${INTENTIONS_PREFIX}${source}/${destination}`;
      parseIntentionKey(key);
      const doc = parseIntentionDocument(key, JSON.stringify(req.body));
      await putSigned(key, doc);
      ctx.logger.info({ source, destination, action: doc.action }, 'intention set');
      return { source, destination, ...doc };
    },

    async deleteIntention(req) {
      const { source, destination } = req.params as { source: string; destination: string };
      const key = `${INTENTIONS_PREFIX}${source}/${destination}`;
      const existed = (await getEntry(ctx.client, key)) !== undefined;
      if (existed) await deleteKey(ctx.client, key);
      return { deleted: existed };
    },

    async listSecrets() {
      return { secrets: await ctx.secrets.list() };
    },

    async putSecret(req) {
      const { name } = req.params as { name: string };
      const info = await ctx.secrets.set(name, (req.body as { value: string }).value);
      ctx.logger.info({ secret: name }, 'secret set'); // the name only, never the value
      return info;
    },

    async deleteSecret(req) {
      await ctx.secrets.remove((req.params as { name: string }).name);
      return { deleted: true };
    },

    async allocSecrets(req, caller) {
      const { host, alloc } = req.params as { host: string; alloc: string };
      // Only the host's own agent: secret values never leave through an operator route.
      if (caller?.kind !== 'agent' || caller.host !== host) {
        throw new WeftError('WEFT_ERR_API_FORBIDDEN', `only host ${host}'s agent token may read its allocations' secrets`, { key: 'authorization' });
      }
      const doc = await getAllocation(ctx, signing, host, alloc);
      if (doc === undefined) throw new WeftError('WEFT_ERR_API_NOT_FOUND', `no allocation ${alloc} on ${host}`, { key: 'alloc', value: alloc });
      const secrets = [];
      for (const s of doc.secrets ?? []) secrets.push({ name: s.name, value: await ctx.secrets.reveal(s.name) });
      return { secrets };
    },

    async signCsr(req, caller) {
      const { csr } = req.body as { csr: string };
      const { ca: authority, sign } = ca();
      let allowed: string[] | undefined;
      if (caller?.kind === 'agent') {
        const docs = await listEntries(ctx.client, `${ALLOCS_PREFIX}${caller.host}/`);
        const read = signedReader(signing, ALLOCS_PREFIX);
        allowed = docs.flatMap((e) => {
          // Only what the scheduler signed for this host: a document written into KV by hand names no service here.
          const v = read(e.key, e.value);
          if (!v.ok) return [];
          try {
            const s = (JSON.parse(v.doc) as Allocation).labels?.[LABEL.service];
            return s === undefined ? [] : [s];
          } catch {
            return [];
          }
        });
      }
      const namespace = ctx.config.agent.namespace;
      const leaf = sign.sign(csr, allowed === undefined ? (id) => id.trustDomain === authority.trustDomain : { allowedServices: allowed, namespace });
      return {
        spiffeId: leaf.spiffeId,
        certPem: leaf.certPem,
        chainPems: [...leaf.chainPems],
        notBefore: leaf.notBefore.toISOString(),
        notAfter: leaf.notAfter.toISOString(),
        bundlePem: bundlePem(authority.bundle()),
      };
    },

    async caRoots() {
      const { ca: authority } = ca();
      return { trustDomain: authority.trustDomain, bundlePem: bundlePem(authority.bundle()) };
    },

    async signingKeys() {
      return { keys: [...signing.keySet().keys] };
    },

    async rotateSigningKey(req) {
      const body = (req.body ?? {}) as { overlapHours?: number; publishSeconds?: number };
      const c = ctx.config.scheduler.signing;
      const publishMs = Math.round((body.publishSeconds ?? c.publishSeconds) * 1000);
      const rotated = signing.rotate(Math.round((body.overlapHours ?? c.overlapHours) * 3_600_000), publishMs);
      ctx.logger.info({ kid: rotated.kid, signsFrom: rotated.signsFrom, retiring: rotated.retiring }, 'signing key rotated');
      // A key that signs at once: intentions and splits (any instance writes them) re-signed now. Else, and for
      // allocations (fenced), the leader's sweep once the new key signs.
      const swept = publishMs === 0 ? await resignDocuments(ctx.client, signing, MESH_SIGNED_PREFIXES, ctx.logger) : { resigned: 0 };
      return { ...rotated, keys: [...signing.keySet().keys], resigned: swept.resigned };
    },
  };
}

/**
 * The allocation document `weft/allocs/<host>/<alloc>`, when this scheduler
 * signed it for that key: the secrets route reveals the secrets it names, so
 * a document written into KV by hand (or moved from another host) is none.
 */
async function getAllocation(ctx: SchedulerContext, signing: SigningKeyStore, host: string, alloc: string): Promise<Allocation | undefined> {
  const entry = await getEntry(ctx.client, allocKey(host, alloc));
  if (entry === undefined) return undefined;
  const v = signedReader(signing, ALLOCS_PREFIX)(entry.key, entry.value);
  if (!v.ok) {
    ctx.logger.warn({ code: 'WEFT_ERR_SIGNED_STATE', key: entry.key, reason: v.reason }, `allocation document refused (${v.detail}): no secrets for it`);
    return undefined;
  }
  try {
    return JSON.parse(v.doc) as Allocation;
  } catch (cause) {
    throw new WeftError('WEFT_ERR_KV_VALUE_INVALID', `${entry.key}: not JSON`, { key: entry.key, cause });
  }
}
