/**
 * The proxy's TLS ports (proxy/ports.ts OutboundTls, InboundTls) over certs/
 * and the host's IdentityStore. Both read the store on every new connection
 * or handshake, so a renewal written to disk applies to the next connection:
 *
 *   outbound  client options cached per (caller, destination) for one store
 *             generation; `generation()` tells the pools to start new Agents
 *   inbound   SNI -> the service's SecureContext (rebuilt by the store when its
 *             files change); the default context (client CA list) is swapped
 *             with setSecureContext when the union of bundles changes
 */
import type { ConnectionOptions, Server as TlsServer } from 'node:tls';
import { meshClientOptions, peerIdentity, requirePeerIdentity } from '../../certs/runtime.js';
import type { InboundTls, OutboundTls } from '../../proxy/index.js';
import type { IdentityStore } from './proxy-identities.js';

/** OutboundTls: the caller's identity as client certificate, the destination's SPIFFE ID required of the server. */
export function storeOutboundTls(store: IdentityStore, trustDomain: string): OutboundTls {
  const cache = new Map<string, ConnectionOptions>();
  let cachedAt = store.generation;
  return {
    trustDomain,
    generation: () => store.generation,
    clientOptions(caller, destination) {
      if (cachedAt !== store.generation) {
        cache.clear();
        cachedAt = store.generation;
      }
      const key = `${caller}\0${destination}`;
      let options = cache.get(key);
      if (options === undefined) {
        const loaded = store.get(caller);
        if (loaded === undefined) return undefined;
        options = meshClientOptions(loaded.identity, { trustDomain, expect: (id) => id.service === destination });
        cache.set(key, options);
      }
      return options;
    },
  };
}

/** InboundTls plus the hook the wiring calls after the store changed. */
export interface ReloadableInboundTls extends InboundTls {
  /** Applies a new client CA list to the guarded server (setSecureContext) when the bundles changed. */
  reload(): void;
}

/** InboundTls: one listener for every local service, SNI picks the certificate. */
export function storeInboundTls(store: IdentityStore, trustDomain: string): ReloadableInboundTls {
  const servers: TlsServer[] = [];
  let bundle = store.bundlePem();
  const base = (): { ca: string; requestCert: true; rejectUnauthorized: true; minVersion: 'TLSv1.3' } => ({
    ca: bundle,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  return {
    trustDomain,
    serverOptions: base,
    contextFor: (service) => store.get(service)?.context,
    guard(server, onReject) {
      servers.push(server);
      requirePeerIdentity(server, { trustDomain, onReject });
    },
    peerOf(socket) {
      const id = peerIdentity(socket);
      return id === undefined ? undefined : { uri: id.uri, namespace: id.namespace, service: id.service };
    },
    reload() {
      const next = store.bundlePem();
      if (next === bundle || next === '') return;
      bundle = next;
      // New handshakes only: open connections keep going (certs/README.md, Renewal).
      for (const server of servers) server.setSecureContext(base());
    },
  };
}
