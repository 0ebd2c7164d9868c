/**
 * Key pairs and signatures, all through node:crypto. Leaves use ECDSA P-256 as
 * Consul and Linkerd do; RSA-2048 exists only so the benchmark can compare.
 */
import { createHash, generateKeyPairSync, type KeyObject, createPublicKey, sign, verify } from 'node:crypto';
import { type Asn1, OID, bits, children, fromDer, nul, oid, readBits, seq, toDer } from './asn1.js';

/** Key types weft can generate. */
export type KeyType = 'ec-p256' | 'rsa-2048';

/** A generated key pair. */
export interface KeyPair {
  readonly type: KeyType;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Generates a key pair in this process: private keys are made where they are used. */
export function generateKeyPair(type: KeyType = 'ec-p256'): KeyPair {
  const pair =
    type === 'ec-p256'
      ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      : generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  return { type, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

/** `ec-p256`, `ec-secp384r1`, `rsa-1024`, ...: what a key is, for policy checks and messages. */
export function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') return details.namedCurve === 'prime256v1' ? 'ec-p256' : `ec-${details.namedCurve ?? 'unknown'}`;
  if (key.asymmetricKeyType === 'rsa') return `rsa-${details.modulusLength ?? 0}`;
  return String(key.asymmetricKeyType ?? 'unknown');
}

// Keys are immutable, so what is derived from one is cached with it; the CA's
// signing key is hit on every issuance.
const spkiCache = new WeakMap<KeyObject, Buffer>();
const keyIdCache = new WeakMap<KeyObject, Buffer>();

/** The SubjectPublicKeyInfo of a key, as DER. */
export function spkiDer(key: KeyObject): Buffer {
  let der = spkiCache.get(key);
  if (der === undefined) {
    const pub = key.type === 'private' ? createPublicKey(key) : key;
    der = pub.export({ type: 'spki', format: 'der' });
    spkiCache.set(key, der);
  }
  return der;
}

/** The SubjectPublicKeyInfo as an ASN.1 node, ready to embed in a TBSCertificate or CSR. */
export function spkiNode(key: KeyObject): Asn1 {
  return fromDer(spkiDer(key));
}

/**
 * Key identifier per RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey
 * bits. Used for SKI/AKI so OpenSSL can match issuers quickly.
 */
export function keyIdentifier(key: KeyObject): Buffer {
  let id = keyIdCache.get(key);
  if (id === undefined) {
    const spki = children(fromDer(spkiDer(key)), 'SubjectPublicKeyInfo');
    id = createHash('sha1').update(readBits(spki[1], 'subjectPublicKey')).digest();
    keyIdCache.set(key, id);
  }
  return id;
}

/** The AlgorithmIdentifier a key signs with (SHA-256 always). */
export function signatureAlgorithm(signer: KeyObject): Asn1 {
  if (signer.asymmetricKeyType === 'ec') return seq([oid(OID.ecdsaWithSha256)]);
  if (signer.asymmetricKeyType === 'rsa') return seq([oid(OID.sha256WithRsa), nul()]);
  throw new Error(`cannot sign with a ${describeKey(signer)} key`);
}

/** Signs DER bytes; ECDSA signatures come out DER-encoded, as X.509 wants. */
export function signDer(signer: KeyObject, data: Buffer): Buffer {
  return sign('sha256', data, signer);
}

/** Verifies a SHA-256 signature made by `signDer` (or any X.509 signer using SHA-256). */
export function verifyDer(publicKey: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    return verify('sha256', data, publicKey, signature);
  } catch {
    return false; // malformed signature bytes are just a bad signature
  }
}

/** Wraps signed DER bytes as `SEQUENCE { tbs, algorithm, BIT STRING signature }` (certificates and CSRs alike). */
export function signStructure(tbs: Asn1, signer: KeyObject): Buffer {
  const tbsDer = toDer(tbs);
  const algorithmDer = toDer(signatureAlgorithm(signer));
  const signatureDer = toDer(bits(signDer(signer, tbsDer)));
  const length = tbsDer.length + algorithmDer.length + signatureDer.length;
  return Buffer.concat([derSequenceHeader(length), tbsDer, algorithmDer, signatureDer]);
}

function derSequenceHeader(length: number): Buffer {
  if (length < 0x80) return Buffer.from([0x30, length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x30, 0x80 | bytes.length, ...bytes]);
}

/** PEM armour for DER bytes. */
export function toPem(label: 'CERTIFICATE' | 'CERTIFICATE REQUEST', der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Private key PEM (PKCS#8). Callers write it only to 0600 files, never to logs or KV. */
export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}
