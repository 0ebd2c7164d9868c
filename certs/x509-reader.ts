/**
 * Reads the fields Node's X509Certificate does not expose (key usage bits,
 * criticality, basic constraints path length, key identifiers) by decoding
 * the DER with forge's ASN.1 codec. This is display and policy input only:
 * whether a chain is trustworthy is decided by Node's TLS stack and
 * X509Certificate, never here.
 */
import { X509Certificate } from 'node:crypto';
import { WeftError } from '../base/errors.js';
import { type Asn1, Class, OID, Type, buf, children, content, fromDer, readOid } from './asn1.js';
import { KEY_USAGE_BITS, type KeyUsage } from './x509-builder.js';

/** Extensions of one certificate, decoded. */
export interface CertificateFields {
  readonly signatureAlgorithm: string;
  readonly extensions: ReadonlyArray<{ oid: string; critical: boolean }>;
  readonly basicConstraints?: { ca: boolean; pathLen?: number; critical: boolean };
  readonly keyUsage?: { usages: KeyUsage[]; critical: boolean };
  readonly extKeyUsage?: string[];
  readonly sanUris: string[];
  readonly sanDns: string[];
  readonly subjectKeyId?: string;
  readonly authorityKeyId?: string;
}

/** Decodes the extensions of a DER certificate; throws WEFT_ERR_CERT_INVALID when it does not parse. */
export function readCertificateFields(der: Buffer): CertificateFields {
  try {
    return decode(der);
  } catch (cause) {
    throw new WeftError('WEFT_ERR_CERT_INVALID', `certificate does not decode: ${(cause as Error).message}`, { key: 'certificate', cause });
  }
}

function decode(der: Buffer): CertificateFields {
  const [tbsNode, algNode] = children(fromDer(der), 'Certificate');
  const tbs = children(tbsNode, 'TBSCertificate');
  const signatureAlgorithm = readOid(children(algNode, 'signatureAlgorithm')[0]!);
  const extsWrapper = tbs.find((n) => n.tagClass === Class.CONTEXT_SPECIFIC && n.type === 3);
  const list = extsWrapper === undefined ? [] : children(children(extsWrapper, 'extensions')[0], 'Extensions');
  const out: {
    -readonly [K in keyof CertificateFields]: CertificateFields[K];
  } = { signatureAlgorithm, extensions: [], sanUris: [], sanDns: [] };
  const exts: Array<{ oid: string; critical: boolean }> = [];
  for (const e of list) {
    const fields = children(e, 'Extension');
    const id = readOid(fields[0]!);
    const critical = fields.length === 3 && content(fields[1], 'critical')[0] !== 0;
    const value = fromDer(content(fields[fields.length - 1], 'extnValue'));
    exts.push({ oid: id, critical });
    switch (id) {
      case OID.basicConstraints: {
        const bc = children(value, 'basicConstraints');
        const ca = bc[0]?.type === Type.BOOLEAN && content(bc[0], 'cA')[0] !== 0;
        const lenNode = bc.find((n) => n.type === Type.INTEGER);
        out.basicConstraints = lenNode === undefined ? { ca, critical } : { ca, critical, pathLen: content(lenNode, 'pathLen').readUIntBE(0, content(lenNode, 'pathLen').length) };
        break;
      }
      case OID.keyUsage:
        out.keyUsage = { usages: keyUsages(content(value, 'keyUsage')), critical };
        break;
      case OID.extKeyUsage:
        out.extKeyUsage = children(value, 'extKeyUsage').map(readOid);
        break;
      case OID.subjectAltName:
        for (const name of children(value, 'subjectAltName')) {
          if (name.tagClass !== Class.CONTEXT_SPECIFIC) continue;
          if (name.type === 6) out.sanUris.push(text(name));
          if (name.type === 2) out.sanDns.push(text(name));
        }
        break;
      case OID.subjectKeyIdentifier:
        out.subjectKeyId = content(value, 'subjectKeyIdentifier').toString('hex');
        break;
      case OID.authorityKeyIdentifier: {
        const keyId = children(value, 'authorityKeyIdentifier').find((n) => n.tagClass === Class.CONTEXT_SPECIFIC && n.type === 0);
        if (keyId !== undefined) out.authorityKeyId = content(keyId, 'keyIdentifier').toString('hex');
        break;
      }
    }
  }
  out.extensions = exts;
  return out;
}

function keyUsages(raw: Buffer): KeyUsage[] {
  const byte0 = raw[1] ?? 0;
  const byte1 = raw[2] ?? 0;
  return (Object.entries(KEY_USAGE_BITS) as Array<[KeyUsage, number]>)
    .filter(([, n]) => (n < 8 ? byte0 & (0x80 >> n) : byte1 & (0x80 >> (n - 8))) !== 0)
    .map(([name]) => name);
}

function text(value: Asn1): string {
  return buf(value.value as string).toString('latin1');
}

/** Splits a PEM file into certificates (X509Certificate), in file order; WEFT_ERR_CERT_INVALID when none or one is bad. */
export function certificatesFromPem(pem: string, what = 'certificate'): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new WeftError('WEFT_ERR_CERT_INVALID', `${what}: no PEM CERTIFICATE block found`, { key: what });
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (cause) {
      throw new WeftError('WEFT_ERR_CERT_INVALID', `${what}: PEM block ${i + 1} is not a certificate: ${(cause as Error).message}`, { key: what, cause });
    }
  });
}

/** notBefore/notAfter as Dates (Node 20's X509Certificate only has strings like "Nov 24 11:16:30 2026 GMT"). */
export function validityOf(cert: X509Certificate): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}
