/**
 * Thin, typed helpers over node-forge's ASN.1 codec. weft uses forge only to
 * encode and decode DER structures; keys, signatures and chain verification
 * belong to node:crypto and Node's TLS stack (forge cannot handle EC keys, and
 * its chain checks have had CVEs).
 *
 * forge speaks "binary strings" (one char per byte); weft speaks Buffers. The
 * conversions live here so no other file juggles the two.
 */
import forge from 'node-forge';

const { asn1 } = forge;
export type Asn1 = forge.asn1.Asn1;
export const Class = asn1.Class;
export const Type = asn1.Type;

/** OIDs weft writes or reads. */
export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;

/** Builds a universal or context-specific node. */
export function node(tagClass: forge.asn1.Class, type: number, constructed: boolean, value: string | Asn1[]): Asn1 {
  return asn1.create(tagClass, type, constructed, value);
}

export const seq = (value: Asn1[]): Asn1 => node(Class.UNIVERSAL, Type.SEQUENCE, true, value);
export const set = (value: Asn1[]): Asn1 => node(Class.UNIVERSAL, Type.SET, true, value);
export const oid = (dotted: string): Asn1 => node(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(dotted).getBytes());
export const octets = (bytes: Buffer): Asn1 => node(Class.UNIVERSAL, Type.OCTETSTRING, false, bin(bytes));
export const bool = (value: boolean): Asn1 => node(Class.UNIVERSAL, Type.BOOLEAN, false, String.fromCharCode(value ? 0xff : 0));
export const utf8 = (text: string): Asn1 => node(Class.UNIVERSAL, Type.UTF8, false, forge.util.encodeUtf8(text));
export const nul = (): Asn1 => node(Class.UNIVERSAL, Type.NULL, false, '');

/** A non-negative INTEGER from big-endian bytes (adds the sign byte DER needs). */
export function uint(bytes: Buffer): Asn1 {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  let body = bytes.subarray(start);
  if ((body[0]! & 0x80) !== 0) body = Buffer.concat([Buffer.from([0]), body]);
  return node(Class.UNIVERSAL, Type.INTEGER, false, bin(body));
}

/** A small INTEGER (versions, path lengths). */
export const int = (n: number): Asn1 => node(Class.UNIVERSAL, Type.INTEGER, false, asn1.integerToDer(n).getBytes());

/** A BIT STRING with no unused bits. */
export const bits = (bytes: Buffer): Asn1 => node(Class.UNIVERSAL, Type.BITSTRING, false, `\u0000${bin(bytes)}`);

/** X.509 Time: UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
export function time(date: Date): Asn1 {
  const whole = new Date(Math.floor(date.getTime() / 1000) * 1000);
  return whole.getUTCFullYear() < 2050
    ? node(Class.UNIVERSAL, Type.UTCTIME, false, asn1.dateToUtcTime(whole))
    : node(Class.UNIVERSAL, Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(whole));
}

/** Encodes a node to DER. */
export function toDer(value: Asn1): Buffer {
  return buf(asn1.toDer(value).getBytes());
}

type FromDer = (bytes: string, options: { strict: boolean; parseAllBytes: boolean; decodeBitStrings: boolean }) => Asn1;

/**
 * Decodes DER strictly: no trailing bytes, and BIT STRINGs left as bytes (forge
 * otherwise guesses whether their content is nested ASN.1).
 */
export function fromDer(der: Buffer): Asn1 {
  // The published types only declare the boolean overload of fromDer.
  return (asn1.fromDer as unknown as FromDer)(bin(der), { strict: true, parseAllBytes: true, decodeBitStrings: false });
}

/** The dotted OID of an OBJECT IDENTIFIER node. */
export function readOid(value: Asn1): string {
  expectTag(value, Type.OID);
  return asn1.derToOid(value.value as string);
}

/** Children of a constructed node, or a thrown Error naming what was expected. */
export function children(value: Asn1 | undefined, what: string): Asn1[] {
  if (value === undefined || !Array.isArray(value.value)) throw new Error(`${what}: expected a constructed value`);
  return value.value;
}

/** The raw content bytes of a primitive node. */
export function content(value: Asn1 | undefined, what: string): Buffer {
  if (value === undefined || typeof value.value !== 'string') throw new Error(`${what}: expected a primitive value`);
  return buf(value.value);
}

/** The bytes of a BIT STRING with no unused bits. */
export function readBits(value: Asn1 | undefined, what: string): Buffer {
  if (value?.type !== Type.BITSTRING || value.tagClass !== Class.UNIVERSAL) throw new Error(`${what}: expected a BIT STRING`);
  const raw = content(value, what);
  if (raw.length === 0 || raw[0] !== 0) throw new Error(`${what}: BIT STRING with unused bits`);
  return raw.subarray(1);
}

function expectTag(value: Asn1, type: number): void {
  if (value.tagClass !== Class.UNIVERSAL || value.type !== type) throw new Error(`expected ASN.1 type ${type}, got ${value.type}`);
}

/**
 * The exact DER bytes of each element inside a SEQUENCE. Signatures cover the
 * bytes as sent, so the signed part is sliced out instead of re-encoded (a
 * re-encoding could differ from what the signer hashed).
 */
export function rawElements(der: Buffer): Buffer[] {
  const outer = readTlv(der, 0);
  if (der[0] !== 0x30 || outer.end !== der.length) throw new Error('expected one DER SEQUENCE');
  const out: Buffer[] = [];
  let at = outer.contentStart;
  while (at < outer.end) {
    const el = readTlv(der, at);
    out.push(der.subarray(at, el.end));
    at = el.end;
  }
  return out;
}

function readTlv(der: Buffer, at: number): { contentStart: number; end: number } {
  if (at + 2 > der.length) throw new Error('truncated DER');
  if ((der[at]! & 0x1f) === 0x1f) throw new Error('multi-byte DER tags are not used here');
  const first = der[at + 1]!;
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[at + 2 + i]!;
    header += n;
  }
  const end = at + header + length;
  if (end > der.length) throw new Error('truncated DER');
  return { contentStart: at + header, end };
}

/** Buffer -> forge binary string. */
export function bin(bytes: Buffer): string {
  return bytes.toString('latin1');
}

/** forge binary string -> Buffer. */
export function buf(binary: string): Buffer {
  return Buffer.from(binary, 'latin1');
}
