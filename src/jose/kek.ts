import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The key-encryption key that seals private keys at rest (issuer signing keys, CA keys).
 * Sealed blobs are `v1.<kekId>.<iv>.<tag>.<ciphertext>` (base64url), AES-256-GCM, with the row's
 * identity as additional data so a sealed key cannot be moved to another row.
 */
export interface Kek {
  /** First 8 bytes of SHA-256(key), hex: tells which KEK sealed a blob without revealing it. */
  readonly id: string;
  seal(plaintext: Uint8Array, context: string): string;
  open(sealed: string, context: string): Buffer;
}

export class KekError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'KekError';
    this.code = code;
  }
}

const VERSION = 'v1';

export function kekFromBytes(key: Uint8Array): Kek {
  if (key.length !== 32) {
    throw new KekError('kek_invalid', `the key-encryption key must be 32 bytes (got ${key.length}); generate one with: openssl rand -base64 32`);
  }
  const keyBuf = Buffer.from(key);
  const id = createHash('sha256').update(keyBuf).digest('hex').slice(0, 16);
  return {
    id,
    seal(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', keyBuf, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [VERSION, id, iv.toString('base64url'), tag.toString('base64url'), ct.toString('base64url')].join('.');
    },
    open(sealed, context) {
      const parts = sealed.split('.');
      if (parts.length !== 5 || parts[0] !== VERSION) {
        throw new KekError('sealed_malformed', 'a sealed key in the store is malformed; restore it from backup');
      }
      const [, blobKekId, ivB64, tagB64, ctB64] = parts as [string, string, string, string, string];
      if (blobKekId !== id) {
        throw new KekError(
          'kek_mismatch',
          `a key in the store was sealed with key-encryption key ${blobKekId}, but the configured one is ${id}; set CI_OIDC_KEK (or kek.file) to the key used when the store was created`,
        );
      }
      const decipher = createDecipheriv('aes-256-gcm', keyBuf, Buffer.from(ivB64, 'base64url'));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(Buffer.from(tagB64, 'base64url'));
      try {
        return Buffer.concat([decipher.update(Buffer.from(ctB64, 'base64url')), decipher.final()]);
      } catch {
        throw new KekError('sealed_tampered', 'a sealed key in the store failed authentication (tampered, or moved between rows); restore it from backup');
      }
    },
  };
}

/** Accepts 32 bytes as base64, base64url or 64 hex characters. */
export function parseKekText(text: string): Kek {
  const trimmed = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  return kekFromBytes(bytes);
}

export interface KekSource {
  /** CI_OIDC_KEK: the key itself. */
  envValue?: string | undefined;
  /** A file holding the key (kek.file or CI_OIDC_KEK_FILE). */
  file?: string | undefined;
  /** Where a laptop default is generated when neither is given. */
  defaultFile?: string | undefined;
}

/**
 * Resolves the KEK: the environment first, then a configured file, then (for a laptop) a file generated
 * once in the data directory with mode 0600. `generated` tells the caller to warn the operator.
 */
export function loadKek(source: KekSource): { kek: Kek; origin: 'env' | 'file' | 'generated' | 'default-file' } {
  if (source.envValue) return { kek: parseKekText(source.envValue), origin: 'env' };
  if (source.file) {
    if (!existsSync(source.file)) {
      throw new KekError('kek_file_missing', `kek.file ${source.file} does not exist; create it with: openssl rand -base64 32 > ${source.file}`);
    }
    return { kek: parseKekText(readFileSync(source.file, 'utf8')), origin: 'file' };
  }
  if (!source.defaultFile) {
    throw new KekError('kek_missing', 'no key-encryption key: set CI_OIDC_KEK or kek.file');
  }
  if (existsSync(source.defaultFile)) return { kek: parseKekText(readFileSync(source.defaultFile, 'utf8')), origin: 'default-file' };
  mkdirSync(dirname(source.defaultFile), { recursive: true });
  const key = randomBytes(32);
  writeFileSync(source.defaultFile, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(source.defaultFile, 0o600);
  return { kek: kekFromBytes(key), origin: 'generated' };
}
