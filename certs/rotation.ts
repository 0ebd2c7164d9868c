/**
 * Root rotation as pure state transitions (state + keys + now in, new state
 * out), so the timing rules are testable with an injected clock:
 *
 *   rotate:  new root R2 (and intermediate), R2 cross-signed by R1, R1 marked
 *            to retire at now + 2 x leaf TTL. Both roots are in the bundle.
 *   prune:   roots whose retirement time has passed leave the bundle.
 *
 * Why 2 x leaf TTL: every leaf signed under R1 was issued before the rotation,
 * so it expires within one TTL (and is renewed by 90% of it); the second TTL
 * is margin for hosts that were down or slow to renew.
 */
import type { KeyObject } from 'node:crypto';
import { generateKeyPair } from './keys.js';
import { type Signer, caKeyId, crossSignedRoot, intermediateCertificate, rootCertificate } from './profiles.js';

/** One root in the CA's history. Public data only. */
export interface RootRecord {
  readonly id: string;
  readonly certPem: string;
  /** This root signed by the root it replaced; served in chains while that root is still trusted. */
  readonly crossSignedPem?: string;
  /** ISO time after which this (superseded) root leaves the trust bundle. */
  readonly retireAt?: string;
}

/** Everything about the CA that may be stored without 0600 or published. */
export interface CaState {
  readonly version: 1;
  readonly trustDomain: string;
  readonly activeRootId: string;
  /** Oldest first; the active root is last. */
  readonly roots: readonly RootRecord[];
  /** The active intermediate (signed by the active root), when the CA uses one. */
  readonly intermediatePem?: string;
}

/** The CA's private keys: only the active root's and intermediate's are ever kept. */
export interface CaKeys {
  readonly root: KeyObject;
  readonly intermediate?: KeyObject;
}

/** Lifetimes a rotation needs. */
export interface Lifetimes {
  readonly leafTtlMs: number;
  readonly rootTtlMs: number;
  readonly intermediateTtlMs: number;
}

/** A fresh CA: one root, optionally one intermediate. */
export function initialState(opts: Lifetimes & { trustDomain: string; intermediate: boolean; now: number }): { state: CaState; keys: CaKeys } {
  const rootPair = generateKeyPair('ec-p256');
  const root = rootCertificate({ trustDomain: opts.trustDomain, publicKey: rootPair.publicKey, privateKey: rootPair.privateKey, now: opts.now, ttlMs: opts.rootTtlMs });
  const id = caKeyId(rootPair.publicKey);
  const base: CaState = { version: 1, trustDomain: opts.trustDomain, activeRootId: id, roots: [{ id, certPem: root.pem }] };
  if (!opts.intermediate) return { state: base, keys: { root: rootPair.privateKey } };
  const inter = newIntermediate(opts.trustDomain, { certPem: root.pem, certDer: root.der, key: rootPair.privateKey }, opts);
  return { state: { ...base, intermediatePem: inter.pem }, keys: { root: rootPair.privateKey, intermediate: inter.key } };
}

/** Rotates to a new root, cross-signed by the current one. Returns the new state and keys; old keys are dropped. */
export function rotateRoot(current: { state: CaState; keys: CaKeys }, opts: Lifetimes & { now: number }): { state: CaState; keys: CaKeys; retireAt: Date } {
  const { state, keys } = current;
  const oldRoot = activeRoot(state);
  const oldSigner: Signer = { certPem: oldRoot.certPem, certDer: pemToDer(oldRoot.certPem), key: keys.root };
  const pair = generateKeyPair('ec-p256');
  const root = rootCertificate({ trustDomain: state.trustDomain, publicKey: pair.publicKey, privateKey: pair.privateKey, now: opts.now, ttlMs: opts.rootTtlMs });
  const cross = crossSignedRoot({ trustDomain: state.trustDomain, newRoot: { publicKey: pair.publicKey }, oldRoot: oldSigner, now: opts.now });
  const retireAt = new Date(opts.now + 2 * opts.leafTtlMs);
  const id = caKeyId(pair.publicKey);
  const roots: RootRecord[] = state.roots.map((r) => (r.id === oldRoot.id ? { ...r, retireAt: retireAt.toISOString() } : r));
  roots.push({ id, certPem: root.pem, crossSignedPem: cross.pem });
  const next: CaState = { version: 1, trustDomain: state.trustDomain, activeRootId: id, roots };
  if (keys.intermediate === undefined) return { state: next, keys: { root: pair.privateKey }, retireAt };
  const inter = newIntermediate(state.trustDomain, { certPem: root.pem, certDer: root.der, key: pair.privateKey }, { ...opts });
  return { state: { ...next, intermediatePem: inter.pem }, keys: { root: pair.privateKey, intermediate: inter.key }, retireAt };
}

/** Drops superseded roots whose retirement time has passed. The active root is never dropped. */
export function pruneRoots(state: CaState, now: number): { state: CaState; dropped: string[] } {
  const dropped = state.roots.filter((r) => r.id !== state.activeRootId && r.retireAt !== undefined && Date.parse(r.retireAt) <= now).map((r) => r.id);
  if (dropped.length === 0) return { state, dropped };
  const roots = state.roots.filter((r) => !dropped.includes(r.id));
  return { state: { ...state, roots }, dropped };
}

/** When the next superseded root is due to leave the bundle, if any. */
export function nextRetirement(state: CaState): Date | undefined {
  const times = state.roots.filter((r) => r.retireAt !== undefined).map((r) => Date.parse(r.retireAt!));
  return times.length === 0 ? undefined : new Date(Math.min(...times));
}

/** The active root record. */
export function activeRoot(state: CaState): RootRecord {
  const root = state.roots.find((r) => r.id === state.activeRootId);
  if (root === undefined) throw new Error(`CA state names active root ${state.activeRootId} but does not hold it`);
  return root;
}

/**
 * Certificates served after a leaf: the intermediate, then the chain of
 * cross-signed roots back to the oldest root still in the bundle, so a peer
 * trusting any root of the bundle can build a path.
 */
export function chainPems(state: CaState): string[] {
  const out: string[] = state.intermediatePem === undefined ? [] : [state.intermediatePem];
  for (let i = state.roots.length - 1; i > 0; i--) {
    const cross = state.roots[i]!.crossSignedPem;
    if (cross === undefined) break;
    out.push(cross);
  }
  return out;
}

function newIntermediate(trustDomain: string, issuer: Signer, opts: Lifetimes & { now: number }): { pem: string; key: KeyObject } {
  const pair = generateKeyPair('ec-p256');
  const cert = intermediateCertificate({ trustDomain, publicKey: pair.publicKey, issuer, now: opts.now, ttlMs: opts.intermediateTtlMs });
  return { pem: cert.pem, key: pair.privateKey };
}

/** DER bytes of the first PEM block. */
export function pemToDer(pem: string): Buffer {
  const body = /-----BEGIN [A-Z ]+-----([\s\S]+?)-----END [A-Z ]+-----/.exec(pem);
  if (body === null) throw new Error('no PEM block');
  return Buffer.from(body[1]!.replace(/\s+/g, ''), 'base64');
}
