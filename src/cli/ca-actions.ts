/**
 * The bodies of `weft ca init|rotate|publish` and `weft cert issue|inspect`
 * (src/cli/ca.ts declares the commands). A separate module, loaded only when
 * one of these commands runs, so that other commands (`weft proxy` above all)
 * never load the CA's code: node-forge's ASN.1, CSR signing, the Consul client.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Consul from 'consul';
import { bundlePem, caDir, caExists, CertificateAuthority, certificatesFromPem, createCsrSigner, describeKey, loadCa, obtainIdentity, publishBundle, readCertificateFields, saveCa, spiffeId, spiffeIdOf, subjectAltNames, validityOf, writeIdentityFiles } from '../../certs/index.js';
import { parseConsulAddress } from '../../discovery/index.js';
import type { Config } from '../config/load.js';
import { WeftError, invalid, isWeftError } from '../../base/errors.js';

/** How long `ca init/rotate/publish` wait for Consul before calling it unreachable. */
const PUBLISH_TIMEOUT_MS = 5000;

/** Where the commands write: stdout/stderr by default; tests pass their own. */
export interface CaCliIo {
  out(line: string): void;
  warn(line: string): void;
}

/** `weft ca init`. */
export async function caInit(config: Readonly<Config>, opts: { publish: boolean }, io: CaCliIo): Promise<void> {
  if (caExists(config.dataDir)) {
    throw new WeftError('WEFT_ERR_CA_EXISTS', `a CA already exists in ${caDir(config.dataDir)}; use \`weft ca rotate\` to replace its root`, { key: 'dataDir', value: config.dataDir });
  }
  const authority = CertificateAuthority.create({ trustDomain: config.ca.trustDomain, intermediate: config.ca.intermediate, leafTtlMs: leafTtlMs(config) });
  saveCa(config.dataDir, authority);
  io.out(`created CA for trust domain ${authority.trustDomain} in ${caDir(config.dataDir)} (root ${authority.state.activeRootId}${config.ca.intermediate ? ', with intermediate' : ''})`);
  if (opts.publish) await publishOrWarn(config, authority, io);
}

/** `weft ca rotate`. */
export async function caRotate(config: Readonly<Config>, opts: { publish: boolean }, io: CaCliIo): Promise<void> {
  const authority = loadCa(config.dataDir, { leafTtlMs: leafTtlMs(config) });
  authority.prune();
  const { rootId, retireAt } = authority.rotate();
  saveCa(config.dataDir, authority);
  io.out(`rotated to root ${rootId}; the previous root stays trusted until ${retireAt.toISOString()} (run \`weft ca publish\` after that to drop it)`);
  if (opts.publish) await publishOrWarn(config, authority, io);
}

/** `weft ca publish`. */
export async function caPublish(config: Readonly<Config>, io: CaCliIo): Promise<void> {
  const authority = loadCa(config.dataDir, { leafTtlMs: leafTtlMs(config) });
  const dropped = authority.prune();
  if (dropped.length > 0) {
    saveCa(config.dataDir, authority);
    io.out(`dropped retired root(s) ${dropped.join(', ')}`);
  }
  await publish(config, authority, io);
}

/** `weft cert issue`. */
export async function certIssue(config: Readonly<Config>, opts: { service: string; out: string; namespace: string; ttlHours?: string }, io: CaCliIo): Promise<void> {
  const authority = loadCa(config.dataDir, { leafTtlMs: leafTtlMs(config) });
  if (authority.prune().length > 0) saveCa(config.dataDir, authority);
  const id = spiffeId(authority.trustDomain, opts.namespace, opts.service);
  const ttlMs = opts.ttlHours === undefined ? undefined : parseTtlHours(opts.ttlHours);
  // The operator may claim any identity: this runs where the CA key is.
  const signer = createCsrSigner({ ca: withTtl(authority, ttlMs), perSecond: 0 });
  const identity = await obtainIdentity(id, (csr) => signer.sign(csr, () => true), bundlePem(authority.bundle()));
  const paths = writeIdentityFiles(resolve(opts.out), identity);
  io.out(`issued ${identity.leaf.spiffeId}, valid until ${identity.leaf.notAfter.toISOString()}`);
  io.out(`  key    ${paths.key} (0600)\n  cert   ${paths.cert}\n  bundle ${paths.bundle}`);
}

/** `weft cert inspect`. */
export function certInspect(file: string, opts: { json?: boolean }, io: CaCliIo): void {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new WeftError('WEFT_ERR_CERT_INVALID', `${file}: ${(cause as Error).message}`, { key: 'file', value: file, cause });
  }
  const report = inspect(pem, file);
  io.out(opts.json === true ? JSON.stringify(report, null, 2) : formatReport(report));
}

/** What `weft cert inspect` reports. */
export interface CertReport {
  spiffeId: string | null;
  spiffeIdProblem?: string;
  subject: string;
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  status: 'valid' | 'expired' | 'not yet valid';
  sha256Fingerprint: string;
  keyType: string;
  ca: boolean;
  sans: Array<{ type: string; value: string }>;
  keyUsage: string[];
  extKeyUsage: string[];
  chain: Array<{ subject: string; issuer: string; ca: boolean }>;
}

/** Builds the inspect report for the first certificate of a PEM file. */
export function inspect(pem: string, what: string, now: number = Date.now()): CertReport {
  const [first, ...rest] = certificatesFromPem(pem, what);
  const cert = first!;
  const fields = readCertificateFields(cert.raw);
  const { notBefore, notAfter } = validityOf(cert);
  let spiffe: string | null = null;
  let problem: string | undefined;
  try {
    spiffe = spiffeIdOf(cert).uri;
  } catch (err) {
    problem = (err as Error).message;
  }
  const report: CertReport = {
    spiffeId: spiffe,
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    serial: cert.serialNumber,
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    status: now < notBefore.getTime() ? 'not yet valid' : now > notAfter.getTime() ? 'expired' : 'valid',
    sha256Fingerprint: cert.fingerprint256,
    keyType: describeKey(cert.publicKey),
    ca: cert.ca,
    sans: subjectAltNames(cert),
    keyUsage: fields.keyUsage?.usages ?? [],
    extKeyUsage: (fields.extKeyUsage ?? []).map((o) => EKU_NAMES[o] ?? o),
    chain: rest.map((c) => ({ subject: oneLine(c.subject), issuer: oneLine(c.issuer), ca: c.ca })),
  };
  if (problem !== undefined) report.spiffeIdProblem = problem;
  return report;
}

const EKU_NAMES: Record<string, string> = { '1.3.6.1.5.5.7.3.1': 'serverAuth', '1.3.6.1.5.5.7.3.2': 'clientAuth' };

function formatReport(r: CertReport): string {
  const lines = [
    `SPIFFE ID:    ${r.spiffeId ?? `(none: ${r.spiffeIdProblem})`}`,
    `SANs:         ${r.sans.map((s) => `${s.type}:${s.value}`).join(', ') || '(none)'}`,
    `subject:      ${r.subject}`,
    `issuer:       ${r.issuer}`,
    `validity:     ${r.notBefore} .. ${r.notAfter} (${r.status})`,
    `serial:       ${r.serial}`,
    `fingerprint:  SHA256 ${r.sha256Fingerprint}`,
    `key:          ${r.keyType}${r.ca ? ', CA certificate' : ''}`,
    `key usage:    ${r.keyUsage.join(', ') || '(none)'}${r.extKeyUsage.length > 0 ? `; extended: ${r.extKeyUsage.join(', ')}` : ''}`,
  ];
  for (const [i, c] of r.chain.entries()) lines.push(`chain[${i + 1}]:     ${c.subject} (issuer ${c.issuer}${c.ca ? ', CA' : ''})`);
  return lines.join('\n');
}

async function publishOrWarn(config: Readonly<Config>, authority: CertificateAuthority, io: CaCliIo): Promise<void> {
  try {
    await publish(config, authority, io);
  } catch (err) {
    if (!isWeftError(err)) throw err;
    io.warn(`weft: ${err.code}: the trust bundle was NOT published to Consul KV weft/ca/roots: ${err.message}`);
    io.warn('weft: the CA is saved locally; run `weft ca publish` once Consul is reachable');
  }
}

async function publish(config: Readonly<Config>, authority: CertificateAuthority, io: CaCliIo): Promise<void> {
  const { host, port, secure } = parseConsulAddress(config.consul.address);
  // node-consul passes `timeout` to its HTTP layer but does not declare it.
  const options: ConstructorParameters<typeof Consul>[0] & { timeout: number } = { host, port, secure, timeout: PUBLISH_TIMEOUT_MS };
  if (config.consul.token !== undefined) options.defaults = { token: config.consul.token };
  const consul = new Consul(options);
  try {
    const bundle = authority.bundle();
    await publishBundle(consul, bundle);
    io.out(`published the trust bundle (${bundle.roots.length} root${bundle.roots.length === 1 ? '' : 's'}) to Consul KV weft/ca/roots at ${config.consul.address}`);
  } finally {
    consul.destroy();
  }
}

function withTtl(authority: CertificateAuthority, ttlMs: number | undefined): Pick<CertificateAuthority, 'issue' | 'trustDomain'> {
  return { trustDomain: authority.trustDomain, issue: (key, id) => authority.issue(key, id, ttlMs) };
}

function leafTtlMs(config: Readonly<Config>): number {
  return Math.round(config.ca.leafTtlHours * 3600_000);
}

function parseTtlHours(raw: string): number {
  const hours = Number(raw);
  if (!(hours > 0) || !Number.isFinite(hours)) throw invalid('WEFT_ERR_CONFIG_INVALID', '--ttl-hours', raw, 'must be a positive number of hours');
  return Math.round(hours * 3600_000);
}

function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}
