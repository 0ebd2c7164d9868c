/**
 * Node TLS options for mesh hops: TLS 1.3 only, mutual authentication against
 * the trust bundle alone (never the public web roots), and the SPIFFE check of
 * verify.ts on both sides. Certificates swap in place with setSecureContext,
 * so renewals and root rotations never drop an open connection.
 */
import type { Server as HttpsServer } from 'node:https';
import { type ConnectionOptions, type SecureContextOptions, type Server as TlsServer, type TLSSocket, type TlsOptions, createSecureContext } from 'node:tls';
import type { SpiffeId } from './spiffe-id.js';
import { spiffeIdOf } from './verify.js';

/** What a workload presents and trusts. */
export interface MeshIdentity {
  /** PKCS#8 PEM private key. */
  readonly keyPem: string;
  /** Leaf PEM followed by its chain (intermediate, cross-signed roots). */
  readonly certChainPem: string;
  /** Trusted roots (the bundle), PEM. */
  readonly bundlePem: string;
}

/** Context options only: what setSecureContext accepts. */
export function secureContextOptions(identity: MeshIdentity): SecureContextOptions {
  return { key: identity.keyPem, cert: identity.certChainPem, ca: identity.bundlePem, minVersion: 'TLSv1.3' };
}

/** Server options: a client certificate is required and verified by OpenSSL against the bundle. */
export function meshServerOptions(identity: MeshIdentity): TlsOptions {
  return { ...secureContextOptions(identity), requestCert: true, rejectUnauthorized: true };
}

/**
 * Client options. The server's host name means nothing in the mesh, so the
 * host check is replaced by the SPIFFE check; `expect` pins the service the
 * client meant to reach.
 */
export function meshClientOptions(identity: MeshIdentity, opts: { trustDomain: string; expect?: (id: SpiffeId) => boolean }): ConnectionOptions {
  return {
    // Built once: with PEM options instead, every tls.connect re-parses the key,
    // chain and CA store, which costs more CPU than the handshake's own crypto.
    secureContext: createSecureContext(secureContextOptions(identity)),
    minVersion: 'TLSv1.3',
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => {
      try {
        const id = spiffeIdOf(cert, { trustDomain: opts.trustDomain });
        if (opts.expect !== undefined && !opts.expect(id)) return new Error(`server identity ${id.uri} is not the one expected`);
        return undefined;
      } catch (err) {
        return err as Error;
      }
    },
  };
}

const identities = new WeakMap<TLSSocket, SpiffeId>();

/** The verified SPIFFE ID of a socket accepted by a guarded server. */
export function peerIdentity(socket: TLSSocket): SpiffeId | undefined {
  return identities.get(socket);
}

/**
 * Makes a TLS (or HTTPS) server drop every connection whose client leaf fails
 * `spiffeIdOf` before any 'secureConnection' listener sees it. Listener order
 * cannot do this: destroying the socket in a first listener still lets the
 * others run (an HTTPS server's HTTP parser among them). So the gate sits in
 * `emit` itself, and holds for listeners added before or after it.
 */
export function requirePeerIdentity(
  server: TlsServer | HttpsServer,
  opts: { trustDomain: string; onReject?: (socket: TLSSocket, err: Error) => void },
): void {
  const emit = server.emit;
  const gated = function (this: TlsServer, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'secureConnection' && !admit(args[0] as TLSSocket, opts)) return false;
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  };
  server.emit = gated as typeof server.emit;
}

function admit(socket: TLSSocket, opts: { trustDomain: string; onReject?: (socket: TLSSocket, err: Error) => void }): boolean {
  try {
    if (!socket.authorized) throw new Error(`peer not authorized: ${String(socket.authorizationError)}`);
    identities.set(socket, spiffeIdOf(socket.getPeerX509Certificate(), { trustDomain: opts.trustDomain }));
    return true;
  } catch (err) {
    opts.onReject?.(socket, err as Error);
    socket.destroy();
    return false;
  }
}

/** Installs a new identity (renewed leaf, new bundle) for future handshakes; open connections keep going. */
export function swapServerIdentity(server: TlsServer | HttpsServer, identity: MeshIdentity): void {
  server.setSecureContext(secureContextOptions(identity));
}
