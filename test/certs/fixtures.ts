/**
 * Shared pieces of the certs tests: CAs and identities, a guarded mesh TLS
 * server on 127.0.0.1 that greets each accepted peer with its SPIFFE ID, a
 * client attempt that reports what happened, and a builder for deliberately
 * bad leaves (the CA itself refuses to make them).
 */
import type { KeyObject } from 'node:crypto';
import tls from 'node:tls';
import { OID } from '../../certs/asn1.js';
import { bundlePem } from '../../certs/bundle.js';
import { type CaOptions, CertificateAuthority } from '../../certs/ca.js';
import { chainPem } from '../../certs/identity.js';
import { generateKeyPair, keyIdentifier, privateKeyPem } from '../../certs/keys.js';
import { type MeshIdentity, meshClientOptions, meshServerOptions, peerIdentity, requirePeerIdentity } from '../../certs/mtls.js';
import { pemToDer } from '../../certs/rotation.js';
import { spiffeId } from '../../certs/spiffe-id.js';
import { spiffeIdOf } from '../../certs/verify.js';
import { buildCertificate, extension, subjectNameOf } from '../../certs/x509-builder.js';

export const TD = 'weft.test';

/** A CA for tests (P-256 root, optional intermediate). */
export function makeCa(opts: Partial<CaOptions> = {}): CertificateAuthority {
  return CertificateAuthority.create({ trustDomain: TD, ...opts });
}

/** An identity issued directly by `ca` (CSR flow is tested on its own). */
export function makeIdentity(ca: CertificateAuthority, service: string, bundle: string = bundlePem(ca.bundle())): MeshIdentity & { privateKey: KeyObject; publicKey: KeyObject } {
  const pair = generateKeyPair();
  const leaf = ca.issue(pair.publicKey, spiffeId(ca.trustDomain, 'default', service));
  return { keyPem: privateKeyPem(pair.privateKey), certChainPem: chainPem(leaf), bundlePem: bundle, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

/** The key and certificate that sign leaves for `ca` (intermediate or root), for forging bad leaves. */
export function caSigner(ca: CertificateAuthority): { key: KeyObject; certDer: Buffer } {
  const pem = ca.state.intermediatePem ?? ca.state.roots.find((r) => r.id === ca.state.activeRootId)!.certPem;
  return { key: ca.keys.intermediate ?? ca.keys.root, certDer: pemToDer(pem) };
}

/** A leaf with arbitrary URI SANs / validity / issuer, bypassing the CA's policy. */
export function forgeLeaf(
  issuer: { key: KeyObject; certDer: Buffer },
  opts: { uris: string[]; notBefore?: Date; notAfter?: Date; ca?: boolean; bundle: string; chain?: string },
): MeshIdentity {
  const pair = generateKeyPair();
  const now = Date.now();
  const cert = buildCertificate({
    subject: { commonName: 'forged' },
    issuerName: subjectNameOf(issuer.certDer),
    publicKey: pair.publicKey,
    signer: issuer.key,
    notBefore: opts.notBefore ?? new Date(now - 60_000),
    notAfter: opts.notAfter ?? new Date(now + 3600_000),
    extensions: [
      extension.basicConstraints(opts.ca ?? false),
      extension.keyUsage(opts.ca === true ? ['digitalSignature', 'keyCertSign'] : ['digitalSignature']),
      extension.extKeyUsage([OID.serverAuth, OID.clientAuth]),
      extension.subjectKeyIdentifier(keyIdentifier(pair.publicKey)),
      extension.authorityKeyIdentifier(keyIdentifier(issuer.key)),
      extension.subjectAltName({ uris: opts.uris, dns: ['forged'] }),
    ],
  });
  return { keyPem: privateKeyPem(pair.privateKey), certChainPem: cert.pem + (opts.chain ?? ''), bundlePem: opts.bundle };
}

/** What a mesh server saw. */
export interface ServerLog {
  accepted: string[];
  rejected: string[];
}

/** A guarded mesh server: greets each accepted peer with `hello <its SPIFFE ID>` and closes. */
export async function startMeshServer(
  t: { teardown(fn: () => unknown): void },
  identity: MeshIdentity,
  opts: { trustDomain?: string; host?: string } = {},
): Promise<{ server: tls.Server; port: number; host: string; log: ServerLog }> {
  const log: ServerLog = { accepted: [], rejected: [] };
  const server = tls.createServer(meshServerOptions(identity), (socket) => {
    const id = peerIdentity(socket)!;
    log.accepted.push(id.uri);
    socket.end(`hello ${id.uri}\n`);
  });
  requirePeerIdentity(server, { trustDomain: opts.trustDomain ?? TD, onReject: (_s, err) => log.rejected.push(err.message) });
  server.on('tlsClientError', (err) => log.rejected.push(`tls: ${err.message}`));
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { server, port: (server.address() as { port: number }).port, host, log };
}

/** The outcome of one client attempt. */
export interface Attempt {
  /** The greeting received (empty when the server refused us). */
  greeting: string;
  /** The server's SPIFFE ID as the client verified it, if the handshake completed on our side. */
  serverId?: string;
  error?: string;
}

/** Connects with mesh client options (or raw options), reads until close, never throws. */
export function attempt(port: number, options: tls.ConnectionOptions, host = '127.0.0.1'): Promise<Attempt> {
  return new Promise((resolve) => {
    const result: Attempt = { greeting: '' };
    const socket = tls.connect({ ...options, host, port });
    socket.setTimeout(5000, () => socket.destroy(new Error('test timeout')));
    socket.on('secureConnect', () => {
      try {
        result.serverId = spiffeIdOf(socket.getPeerX509Certificate()).uri;
      } catch {
        // left undefined: the test asserts on it
      }
    });
    socket.on('data', (d: Buffer) => {
      result.greeting += d.toString();
    });
    socket.on('error', (err) => {
      result.error = err.message;
    });
    socket.on('close', () => resolve(result));
  });
}

/** Client options for an identity in the test trust domain. */
export function client(identity: MeshIdentity): tls.ConnectionOptions {
  return meshClientOptions(identity, { trustDomain: TD });
}

/**
 * OpenSSL's verdict on a client, from a probe server that reports instead of
 * refusing (rejectUnauthorized: false). The guarded server hangs up without a
 * reason; this says which check of the chain failed.
 */
export function opensslVerdict(serverIdentity: MeshIdentity, options: tls.ConnectionOptions): Promise<{ authorized: boolean; error: string | null }> {
  return new Promise((resolve) => {
    const probe = tls.createServer({ ...meshServerOptions(serverIdentity), rejectUnauthorized: false }, (s) => {
      resolve({ authorized: s.authorized, error: s.authorizationError === null ? null : String(s.authorizationError) });
      s.destroy();
    });
    probe.listen(0, '127.0.0.1', () => {
      void attempt((probe.address() as { port: number }).port, options).then(() => probe.close());
    });
  });
}
