/**
 * Builds X.509 v3 certificates: the structure with forge's ASN.1 helpers, the
 * signature with node:crypto (forge cannot encode or sign EC keys). The builder
 * enforces nothing about policy on purpose: ca.ts and leaf.ts decide what a
 * certificate says, and tests use the builder directly to forge bad ones.
 */
import { type KeyObject, randomBytes } from 'node:crypto';
import { type Asn1, Class, OID, Type, bool, children, fromDer, int, node, octets, oid, seq, set, time, toDer, uint, utf8 } from './asn1.js';
import { signStructure, signatureAlgorithm, spkiNode, toPem } from './keys.js';

/** Distinguished name attributes weft writes (all as UTF8String). */
export interface DistinguishedName {
  readonly commonName: string;
  readonly organization?: string;
  readonly organizationalUnit?: string;
}

/** One extension, value already encoded as ASN.1. */
export interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Asn1;
}

/** Key usage bits (RFC 5280 4.2.1.3), by bit number. */
export const KEY_USAGE_BITS = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
export type KeyUsage = keyof typeof KEY_USAGE_BITS;

/** Extension constructors. Criticality follows RFC 5280 and the SPIFFE X.509-SVID spec. */
export const extension = {
  /** Always critical (RFC 5280 requires it on CA certificates; SPIFFE on leaves too). */
  basicConstraints(ca: boolean, pathLen?: number): Extension {
    const value: Asn1[] = ca ? [bool(true)] : [];
    if (ca && pathLen !== undefined) value.push(int(pathLen));
    return { oid: OID.basicConstraints, critical: true, value: seq(value) };
  },
  /** Always critical (SPIFFE X.509-SVID 4.3). */
  keyUsage(usages: readonly KeyUsage[]): Extension {
    // Bit n is (0x80 >> n) of the first byte; DER named bit strings drop trailing zero bits.
    const numbers: number[] = usages.map((u) => KEY_USAGE_BITS[u]);
    const byte = numbers.reduce((b, n) => b | (0x80 >> n), 0);
    const value = String.fromCharCode(7 - Math.max(...numbers), byte);
    return { oid: OID.keyUsage, critical: true, value: node(Class.UNIVERSAL, Type.BITSTRING, false, value) };
  },
  extKeyUsage(oids: readonly string[]): Extension {
    return { oid: OID.extKeyUsage, critical: false, value: seq(oids.map(oid)) };
  },
  /** Non-critical: every weft certificate also has a non-empty subject. */
  subjectAltName(names: { uris?: readonly string[]; dns?: readonly string[] }): Extension {
    const general = [
      ...(names.uris ?? []).map((u) => node(Class.CONTEXT_SPECIFIC, 6, false, ascii(u))),
      ...(names.dns ?? []).map((d) => node(Class.CONTEXT_SPECIFIC, 2, false, ascii(d))),
    ];
    return { oid: OID.subjectAltName, critical: false, value: seq(general) };
  },
  subjectKeyIdentifier(keyId: Buffer): Extension {
    return { oid: OID.subjectKeyIdentifier, critical: false, value: octets(keyId) };
  },
  authorityKeyIdentifier(keyId: Buffer): Extension {
    return { oid: OID.authorityKeyIdentifier, critical: false, value: seq([node(Class.CONTEXT_SPECIFIC, 0, false, keyId.toString('latin1'))]) };
  },
};

/** Everything a certificate says, plus the key that signs it. */
export interface CertificateSpec {
  /** Positive serial; random 127 bits when omitted. */
  readonly serial?: Buffer;
  readonly subject: DistinguishedName;
  /** The issuer's subject, exactly as encoded in the issuer's certificate (DER); omit for self-signed. */
  readonly issuerName?: Asn1;
  readonly publicKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly Extension[];
  readonly signer: KeyObject;
}

/** A built certificate. */
export interface BuiltCertificate {
  readonly der: Buffer;
  readonly pem: string;
  /** Uppercase hex, as X509Certificate#serialNumber prints it. */
  readonly serial: string;
  /** The encoded validity (whole seconds). */
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Encodes and signs a certificate. */
export function buildCertificate(spec: CertificateSpec): BuiltCertificate {
  const subject = distinguishedName(spec.subject);
  const serial = spec.serial ?? randomSerial();
  const tbs = seq([
    node(Class.CONTEXT_SPECIFIC, 0, true, [int(2)]), // version v3
    uint(serial),
    signatureAlgorithm(spec.signer),
    spec.issuerName ?? subject,
    seq([time(spec.notBefore), time(spec.notAfter)]),
    subject,
    spkiNode(spec.publicKey),
    node(Class.CONTEXT_SPECIFIC, 3, true, [seq(spec.extensions.map(encodeExtension))]),
  ]);
  const der = signStructure(tbs, spec.signer);
  const serialHex = serial.toString('hex').replace(/^(00)+(?=.)/, '').toUpperCase();
  return { der, pem: toPem('CERTIFICATE', der), serial: serialHex, notBefore: wholeSeconds(spec.notBefore), notAfter: wholeSeconds(spec.notAfter) };
}

/** The subject Name of a certificate, as an ASN.1 node to use verbatim as a child's issuer. */
export function subjectNameOf(certDer: Buffer): Asn1 {
  const cached = subjectCache.get(certDer);
  if (cached !== undefined) return cached;
  const tbs = children(children(fromDer(certDer), 'Certificate')[0], 'TBSCertificate');
  // With the explicit [0] version present, subject is the sixth field.
  const offset = tbs[0]?.tagClass === Class.CONTEXT_SPECIFIC ? 1 : 0;
  const subject = tbs[4 + offset];
  if (subject === undefined) throw new Error('certificate has no subject');
  subjectCache.set(certDer, subject);
  return subject;
}

// An issuer's name is read for every certificate it signs; nodes are only ever read.
const subjectCache = new WeakMap<Buffer, Asn1>();

/** Encodes a distinguished name, one attribute per RDN, O and OU before CN (conventional order). */
export function distinguishedName(dn: DistinguishedName): Asn1 {
  const attrs: Array<[string, string]> = [];
  if (dn.organization !== undefined) attrs.push([OID.organization, dn.organization]);
  if (dn.organizationalUnit !== undefined) attrs.push([OID.organizationalUnit, dn.organizationalUnit]);
  attrs.push([OID.commonName, dn.commonName]);
  return seq(attrs.map(([type, value]) => set([seq([oid(type), utf8(value)])])));
}

/** 16 random bytes with the top bit clear (positive) and a non-zero first byte (minimal DER). */
export function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f || 0x01;
  return serial;
}

function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** Encodes one Extension (also used inside a CSR's extensionRequest). */
export function encodeExtension(e: Extension): Asn1 {
  const fields = [oid(e.oid)];
  if (e.critical) fields.push(bool(true));
  fields.push(octets(toDer(e.value)));
  return seq(fields);
}

function ascii(value: string): string {
  if (!/^[\x21-\x7e]+$/.test(value)) throw new Error(`subjectAltName: not printable ASCII: ${JSON.stringify(value)}`);
  return value;
}
