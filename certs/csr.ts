/**
 * PKCS#10 certificate signing requests, for EC keys (which forge cannot parse
 * or sign). Hosts build CSRs here with their own keys; the signer parses them
 * here and checks the signature over the exact bytes received.
 */
import { type KeyObject, createPublicKey } from 'node:crypto';
import { WeftError } from '../base/errors.js';
import { type Asn1, Class, OID, children, content, fromDer, int, node, oid, rawElements, readBits, readOid, seq, set, toDer } from './asn1.js';
import { signStructure, spkiNode, toPem, verifyDer } from './keys.js';
import type { SpiffeId } from './spiffe-id.js';
import { distinguishedName, encodeExtension, extension } from './x509-builder.js';

/** Largest CSR accepted, before any parsing: real ones are well under 1 KiB. */
export const MAX_CSR_BYTES = 8192;

/** Builds a PEM CSR asking for `id`, signed by `privateKey` (proof of possession). */
export function createCsr(privateKey: KeyObject, id: SpiffeId): string {
  return buildCsr(privateKey, { commonName: id.service, uris: [id.uri] });
}

/** The unopinionated builder under createCsr (any URIs, any key node:crypto can sign with). */
export function buildCsr(privateKey: KeyObject, opts: { commonName: string; uris: readonly string[] }): string {
  const info = seq([
    int(0),
    distinguishedName({ commonName: opts.commonName }),
    spkiNode(privateKey),
    node(Class.CONTEXT_SPECIFIC, 0, true, [
      seq([oid(OID.extensionRequest), set([seq([encodeExtension(extension.subjectAltName({ uris: opts.uris }))])])]),
    ]),
  ]);
  return toPem('CERTIFICATE REQUEST', signStructure(info, privateKey));
}

/** A parsed CSR. The signature is already checked against its own public key. */
export interface ParsedCsr {
  readonly publicKey: KeyObject;
  readonly signatureAlgorithm: string;
  /** URI SANs requested in the extensionRequest attribute. */
  readonly uris: readonly string[];
  readonly signatureValid: boolean;
}

/**
 * Decodes a PEM CSR. Throws WEFT_ERR_CSR_INVALID on anything malformed; the
 * signature result is returned, not thrown, so the caller can check the key
 * type first and report the more useful error.
 */
export function parseCsr(pem: string): ParsedCsr {
  if (typeof pem !== 'string' || pem.length > MAX_CSR_BYTES * 2) throw invalid('CSR is missing or too large');
  const m = /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END (NEW )?CERTIFICATE REQUEST-----\s*$/.exec(pem);
  if (m === null) throw invalid('not a PEM CERTIFICATE REQUEST');
  const der = Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64');
  if (der.length === 0 || der.length > MAX_CSR_BYTES) throw invalid(`CSR is ${der.length} bytes`);
  try {
    return decode(der);
  } catch (cause) {
    if (cause instanceof WeftError) throw cause;
    throw invalid(`CSR does not decode: ${(cause as Error).message}`, cause);
  }
}

function decode(der: Buffer): ParsedCsr {
  const top = children(fromDer(der), 'CertificationRequest');
  if (top.length !== 3) throw new Error('CertificationRequest must have 3 fields');
  const info = children(top[0], 'CertificationRequestInfo');
  if (info.length < 3 || content(info[0], 'version').toString('hex') !== '00') throw new Error('CertificationRequestInfo: want version 0');
  const publicKey = createPublicKey({ key: toDer(info[2]!), format: 'der', type: 'spki' });
  const signatureAlgorithm = readOid(children(top[1], 'signatureAlgorithm')[0]!);
  const signature = readBits(top[2], 'signature');
  const uris = info[3] === undefined ? [] : requestedUris(info[3]);
  // Verify over the CertificationRequestInfo bytes exactly as received.
  const infoBytes = rawElements(der)[0]!;
  const expected = publicKey.asymmetricKeyType === 'ec' ? OID.ecdsaWithSha256 : OID.sha256WithRsa;
  const signatureValid = signatureAlgorithm === expected && verifyDer(publicKey, infoBytes, signature);
  return { publicKey, signatureAlgorithm, uris, signatureValid };
}

function requestedUris(attributes: Asn1): string[] {
  if (attributes.tagClass !== Class.CONTEXT_SPECIFIC || attributes.type !== 0) throw new Error('attributes: want [0]');
  const uris: string[] = [];
  for (const attr of children(attributes, 'attributes')) {
    const [type, values] = children(attr, 'Attribute');
    if (readOid(type!) !== OID.extensionRequest) continue;
    for (const exts of children(values, 'extensionRequest values')) {
      for (const ext of children(exts, 'Extensions')) {
        const fields = children(ext, 'Extension');
        if (readOid(fields[0]!) !== OID.subjectAltName) continue;
        const names = children(fromDer(content(fields[fields.length - 1], 'extnValue')), 'subjectAltName');
        for (const name of names) if (name.tagClass === Class.CONTEXT_SPECIFIC && name.type === 6) uris.push(content(name, 'URI').toString('latin1'));
      }
    }
  }
  return uris;
}

function invalid(reason: string, cause?: unknown): WeftError {
  return new WeftError('WEFT_ERR_CSR_INVALID', reason, cause === undefined ? { key: 'csr' } : { key: 'csr', cause });
}
