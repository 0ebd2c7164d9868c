/**
 * Certificates for the host's local services, handed to the host proxy per
 * base/contracts/host-proxy.ts:
 *
 *   local services (from the registrar) ─▶ per new service: P-256 key here ─▶ CSR ─▶ CsrSigner
 *        ─▶ <dataDir>/proxy/identities/<service>/{key,cert,bundle}.pem ─▶ LeafRenewer (60-90% of life)
 *   and  <dataDir>/proxy/local.json: every service with its outbound port (stable across restarts)
 *
 * Keys never leave the host; only CSRs go to the signer. A service that stops
 * running here keeps its files and port for a while (it may come back), but its
 * renewer stops. Once no task on the host uses it (none registered, none still
 * draining) and no allocation document of the host names it, for `retireGraceMs`
 * without a break, its entry leaves local.json (the proxy closes the listener)
 * and then its identity folder is deleted. The grace covers a stop-first update
 * or a `docker stop` + `docker run` on the same host: the service comes back
 * before it ends, on the same port, and the listener never flaps.
 * A service the signer refuses (or a signer that does not answer) is logged
 * with its code and retried with backoff; the other services are unaffected.
 */
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type IssuedLeaf, LeafRenewer, obtainIdentity, readIdentityFiles, RENEW_FROM, spiffeId, spiffeIdOf, writeIdentityFiles } from '../certs/index.js';
import { writeFileAtomicSync } from '../base/atomic-write.js';
import { HOST_PROXY_DIR, HOST_PROXY_IDENTITIES_DIR, HOST_PROXY_LOCAL_FILE, type HostProxyLocal } from '../base/contracts/host-proxy.js';
import { isServiceName } from '../base/contracts/names.js';
import { type Backoff, backoffDelayMs } from '../base/backoff.js';
import { type Random, systemRandom } from '../base/clock.js';
import { isWeftError, WeftError } from '../base/errors.js';
import type { Logger } from '../base/log.js';

/**
 * Retries of failed issuances: from 5 s doubling to 5 min, equal jitter (the
 * agents of a fleet whose scheduler restarts do not all come back at once,
 * and none sooner than half the ceiling).
 */
const RETRY_BACKOFF: Backoff = { baseMs: 5_000, maxMs: 5 * 60_000, jitter: 'equal' };

/**
 * How long a service stays in local.json (and its identity on disk) after the
 * last use of it on this host ended: longer than a stop-first update takes to
 * write the new allocation (the scheduler's next cycle, seconds), short next to
 * the life of a purged job's leftovers.
 */
export const RETIRE_GRACE_MS = 30_000;

/**
 * The port to whatever signs CSRs: the scheduler's API in a cluster; a local
 * CA directory on a single machine (src/wiring/agent-local-signer.ts).
 */
export interface CsrSigner {
  /** Signs a CSR for `service`'s SPIFFE ID; throws WEFT_ERR_CSR_* or WEFT_ERR_CSR_SIGNER. */
  sign(csrPem: string, service: string): Promise<IssuedLeaf>;
  /** The trust bundle (root certificates, PEM). */
  bundlePem(): Promise<string>;
  /** The CA's trust domain (async: the scheduler signer asks the API for it). */
  trustDomain(): Promise<string>;
}

export interface IdentityManagerOptions {
  dataDir: string;
  host: string;
  namespace: string;
  signer: CsrSigner;
  outboundPortBase: number;
  logger: Logger;
  /** Draws the retry delays; seeded in tests. */
  random?: Random;
  /** A service unused this long is removed from local.json and its identity deleted (default RETIRE_GRACE_MS). */
  retireGraceMs?: number;
}

/** Keeps identities and local.json in step with the services running here. */
export class IdentityManager {
  private readonly opts: IdentityManagerOptions;
  private readonly renewers = new Map<string, LeafRenewer>();
  private doc: HostProxyLocal;
  private chain: Promise<void> = Promise.resolve();
  private wanted: string[] = [];
  /** Every service still used on the host; undefined until the agent knows (no removal before). */
  private inUse: readonly string[] | undefined;
  /** Service -> since when nothing on the host uses it (ms since the epoch). */
  private readonly unusedSince = new Map<string, number>();
  private retireTimer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  /** Consecutive rounds in which an issuance failed. */
  private failedRounds = 0;
  private stopped = false;

  constructor(opts: IdentityManagerOptions) {
    this.opts = opts;
    this.doc = this.readLocal() ?? { host: opts.host, generation: 0, services: [] };
  }

  /** `<dataDir>/proxy`. */
  get proxyDir(): string {
    return join(this.opts.dataDir, HOST_PROXY_DIR);
  }

  /** The document last written. */
  local(): HostProxyLocal {
    return this.doc;
  }

  /**
   * Ensures an identity and an outbound port for each of `services` (those
   * registered here); stops renewing the others. `inUse`, once given, is every
   * service the host still uses (registered, draining, named by an allocation
   * document): a service in neither list for `retireGraceMs` is removed from
   * local.json and its identity deleted. Without it (the agent still starting)
   * nothing is removed. Serialised.
   */
  update(services: readonly string[], inUse?: readonly string[]): Promise<void> {
    const wanted = [...new Set(services)].sort();
    this.wanted = wanted;
    if (inUse !== undefined) this.inUse = [...inUse];
    this.chain = this.chain.then(() => this.apply(wanted)).catch((err) => this.opts.logger.error({ err }, 'could not update local identities'));
    return this.chain;
  }

  /** Stops every renewer (the files stay for the proxy). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.retry = undefined;
    clearTimeout(this.retireTimer);
    this.retireTimer = undefined;
    for (const r of this.renewers.values()) r.stop();
    this.renewers.clear();
  }

  private async apply(wanted: string[]): Promise<void> {
    const missing = wanted.filter((s) => !this.renewers.has(s));
    const results = await Promise.allSettled(missing.map((s) => this.issue(s)));
    const retryInMs = results.some((r) => r.status === 'rejected') ? backoffDelayMs(this.failedRounds + 1, RETRY_BACKOFF, this.opts.random ?? systemRandom) : undefined;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      // The signer's own code (WEFT_ERR_CSR_IDENTITY: not allocated here) says more than the wrapper's.
      const cause = (r.reason as { cause?: unknown }).cause;
      const code = isWeftError(cause) ? cause.code : isWeftError(r.reason) ? r.reason.code : 'WEFT_ERR_CSR_SIGNER';
      this.opts.logger.error({ code, service: missing[i], retryInMs }, (r.reason as Error).message);
    });
    this.scheduleRetry(retryInMs);
    for (const [service, renewer] of this.renewers) {
      if (!wanted.includes(service)) {
        renewer.stop();
        this.renewers.delete(service);
      }
    }
    const known = new Map(this.doc.services.map((s) => [s.service, s.outboundPort]));
    const retired = this.dueForRemoval(wanted);
    let changed = false;
    for (const service of retired) changed = known.delete(service) || changed;
    const used = new Set(known.values());
    let next = this.opts.outboundPortBase;
    for (const service of wanted) {
      if (known.has(service)) continue;
      while (used.has(next)) next++;
      known.set(service, next);
      used.add(next);
      changed = true;
    }
    if (changed || this.doc.host !== this.opts.host) {
      const before = new Map(this.doc.services.map((s) => [s.service, s.outboundPort]));
      this.doc = {
        host: this.opts.host,
        generation: this.doc.generation + 1,
        services: [...known].map(([service, outboundPort]) => ({ service, outboundPort })).sort((a, b) => a.outboundPort - b.outboundPort),
      };
      this.writeLocal(this.doc);
      for (const service of retired) if (before.has(service)) this.opts.logger.info({ service, outboundPort: before.get(service) }, 'service no longer used on this host: outbound listener removed from local.json');
    }
    // After local.json: the proxy drops the listener, then the identity it presented.
    for (const service of retired) {
      rmSync(join(this.proxyDir, HOST_PROXY_IDENTITIES_DIR, service), { recursive: true, force: true });
      this.unusedSince.delete(service);
      this.opts.logger.info({ service }, 'service no longer used on this host: mesh identity deleted');
    }
  }

  /**
   * The services to remove now: listed in local.json or holding an identity
   * folder, unused (neither `wanted` nor in use) for retireGraceMs. Starts the
   * clock of newly unused ones, stops it for those in use again, and arms a
   * timer for the next one due.
   */
  private dueForRemoval(wanted: readonly string[]): string[] {
    clearTimeout(this.retireTimer);
    this.retireTimer = undefined;
    if (this.inUse === undefined || this.stopped) return [];
    const keep = new Set([...wanted, ...this.inUse]);
    const present = new Set([...this.doc.services.map((s) => s.service), ...this.identityFolders()]);
    for (const service of [...this.unusedSince.keys()]) if (keep.has(service) || !present.has(service)) this.unusedSince.delete(service);
    const now = Date.now();
    const grace = this.opts.retireGraceMs ?? RETIRE_GRACE_MS;
    const due: string[] = [];
    let nextAt: number | undefined;
    for (const service of present) {
      if (keep.has(service)) continue;
      const since = this.unusedSince.get(service) ?? now;
      this.unusedSince.set(service, since);
      if (now - since >= grace) due.push(service);
      else nextAt = Math.min(nextAt ?? Number.POSITIVE_INFINITY, since + grace);
    }
    if (nextAt !== undefined) {
      this.retireTimer = setTimeout(() => void this.update(this.wanted), Math.max(0, nextAt - now));
      this.retireTimer.unref();
    }
    return due.sort();
  }

  /** The service folders under identities/ (the agent's own: a service name each). */
  private identityFolders(): string[] {
    try {
      return readdirSync(join(this.proxyDir, HOST_PROXY_IDENTITIES_DIR), { withFileTypes: true })
        .filter((d) => d.isDirectory() && isServiceName(d.name))
        .map((d) => d.name);
    } catch {
      return [];
    }
  }

  /** Issuances that failed are tried again later (the scheduler may be starting, or allocate the service soon). */
  private scheduleRetry(delayMs: number | undefined): void {
    clearTimeout(this.retry);
    this.retry = undefined;
    if (delayMs === undefined || this.stopped) {
      this.failedRounds = 0;
      return;
    }
    this.failedRounds++;
    this.retry = setTimeout(() => void this.update(this.wanted), delayMs);
    this.retry.unref();
  }

  private async issue(service: string): Promise<void> {
    const dir = join(this.proxyDir, HOST_PROXY_IDENTITIES_DIR, service);
    const install = async () => {
      const id = spiffeId(await this.opts.signer.trustDomain(), this.opts.namespace, service);
      const identity = await obtainIdentity(id, (csr) => this.opts.signer.sign(csr, service), await this.opts.signer.bundlePem());
      writeIdentityFiles(dir, identity);
      return { notBefore: identity.leaf.notBefore, notAfter: identity.leaf.notAfter };
    };
    try {
      const validity = this.reusable(dir, await this.opts.signer.trustDomain()) ?? (await install());
      const renewer = new LeafRenewer({
        current: validity,
        renew: install,
        onError: (err) => this.opts.logger.warn({ err, service }, 'certificate renewal failed; retrying with backoff'),
      });
      renewer.start();
      this.renewers.set(service, renewer);
      this.opts.logger.info({ service, notAfter: validity.notAfter.toISOString() }, 'mesh identity ready');
    } catch (err) {
      throw new WeftError('WEFT_ERR_CSR_SIGNER', `could not obtain a certificate for ${service}: ${(err as Error).message}`, { key: 'service', value: service, cause: err });
    }
  }

  /**
   * An identity left by a previous agent, when it is for this trust domain and
   * not yet due for renewal: an agent restart must not re-key every service.
   */
  private reusable(dir: string, trustDomain: string): { notBefore: Date; notAfter: Date } | undefined {
    try {
      readIdentityFiles(dir); // key present, 0600, readable
      const cert = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
      spiffeIdOf(cert, { trustDomain });
      const validity = { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
      const lifetime = validity.notAfter.getTime() - validity.notBefore.getTime();
      return Date.now() < validity.notBefore.getTime() + lifetime * RENEW_FROM ? validity : undefined;
    } catch {
      return undefined;
    }
  }

  private readLocal(): HostProxyLocal | undefined {
    try {
      return JSON.parse(readFileSync(join(this.proxyDir, HOST_PROXY_LOCAL_FILE), 'utf8')) as HostProxyLocal;
    } catch {
      return undefined;
    }
  }

  private writeLocal(doc: HostProxyLocal): void {
    mkdirSync(this.proxyDir, { recursive: true, mode: 0o700 });
    // The proxy polls this file: it must never see half of it.
    writeFileAtomicSync(join(this.proxyDir, HOST_PROXY_LOCAL_FILE), `${JSON.stringify(doc, null, 2)}\n`);
  }
}
