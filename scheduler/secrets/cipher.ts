/**
 * Secrets at rest: AES-256-GCM with node:crypto under a 32-byte key that only
 * the scheduler holds (key.ts). A fresh 96-bit IV per write; the secret's name
 * is the additional authenticated data, so a ciphertext copied under another
 * name does not decrypt. Only the sealed document ever reaches KV.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { WeftError } from '../../base/errors.js';

/** `weft/secrets/<name>`: what KV holds for one secret. */
export const SealedSecretSchema = Type.Object(
  {
    v: Type.Literal(1),
    alg: Type.Literal('AES-256-GCM'),
    /** base64 of the 12-byte IV, the 16-byte tag and the ciphertext. */
    iv: Type.String(),
    tag: Type.String(),
    data: Type.String(),
    /** ISO 8601. */
    updatedAt: Type.String(),
  },
  { additionalProperties: false },
);
export type SealedSecret = Static<typeof SealedSecretSchema>;

/** The key length AES-256 needs. */
export const KEY_BYTES = 32;

/** Encrypts one secret value. */
export function seal(key: Buffer, name: string, value: string, now = new Date()): SealedSecret {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(name, 'utf8'));
  const data = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return { v: 1, alg: 'AES-256-GCM', iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64'), updatedAt: now.toISOString() };
}

/** Decrypts one secret; WEFT_ERR_SECRET_KEY when the key, the name or the bytes do not match (never the value in the message). */
export function open(key: Buffer, name: string, sealed: SealedSecret): string {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(name, 'utf8'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw new WeftError('WEFT_ERR_SECRET_KEY', `secret ${name}: does not decrypt with this scheduler's key (wrong key, or the stored document was altered)`, {
      key: name,
      cause,
    });
  }
}
