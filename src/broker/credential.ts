import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { randomBytesPooled } from './random.ts';

/**
 * Opaque credential format (trusted-publishing.md §10): `<prefix>` + base64url(32 random bytes) + `_` +
 * 8-hex CRC32 of everything before the `_`. The checksum lets secret scanners and our own endpoints
 * reject typos and truncations without a store lookup. Only the SHA-256 hash is ever stored.
 */
export const DEFAULT_PREFIX = 'cioidc_';
export const PREFIX_PATTERN = /^[a-z][a-z0-9]{1,15}[_-]$/;
const SECRET_BYTES = 32;
const SECRET_CHARS = 43; // base64url of 32 bytes, unpadded
const MAX_CREDENTIAL_CHARS = 128;

export interface MintedSecret {
  /** The bearer value handed to the caller once. */
  token: string;
  /** Hex SHA-256 of `token`; the only form that is stored. */
  hash: string;
}

export function hashCredential(token: string): string {
  // One-shot: a Hash object per call costs about twice as much (every mint and every lookup hashes).
  return hash('sha256', token, 'hex');
}

function checksum(text: string): string {
  return crc32(Buffer.from(text, 'latin1')).toString(16).padStart(8, '0');
}

export function assertPrefix(prefix: string): void {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new Error(
      `credential prefix ${JSON.stringify(prefix)} is invalid: use 2-16 lowercase letters or digits ending in '_' or '-' (e.g. cioidc_ or pypi-)`,
    );
  }
}

export function mintSecret(prefix: string = DEFAULT_PREFIX): MintedSecret {
  const body = prefix + randomBytesPooled(SECRET_BYTES).toString('base64url');
  const token = `${body}_${checksum(body)}`;
  return { token, hash: hashCredential(token) };
}

/**
 * True when `token` has our shape under one of `prefixes` and its checksum holds. Constant-time on the
 * checksum comparison; the shape checks reveal nothing secret.
 */
export function looksLikeCredential(token: string, prefixes: readonly string[]): boolean {
  if (typeof token !== 'string' || token.length > MAX_CREDENTIAL_CHARS) return false;
  const prefix = prefixes.find((p) => token.startsWith(p));
  if (prefix === undefined) return false;
  const expectedLength = prefix.length + SECRET_CHARS + 1 + 8;
  if (token.length !== expectedLength) return false;
  const body = token.slice(0, prefix.length + SECRET_CHARS);
  const secret = body.slice(prefix.length);
  if (!/^[A-Za-z0-9_-]+$/.test(secret) || token[body.length] !== '_') return false;
  const given = Buffer.from(token.slice(body.length + 1), 'latin1');
  const want = Buffer.from(checksum(body), 'latin1');
  return given.length === want.length && timingSafeEqual(given, want);
}

/**
 * Public identifier for a credential (audit, revocation, Vault accessor); carries no secret. Time-ordered
 * (10 hex digits of seconds, then 80 random bits), so primary-key inserts append instead of splitting
 * random B-tree pages.
 */
export function newCredentialId(now: number = Math.floor(Date.now() / 1000)): string {
  return `cred_${Math.max(0, Math.floor(now)).toString(16).padStart(10, '0')}${randomBytesPooled(10).toString('hex')}`;
}

const AWS_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** AWS-shaped temporary access key id: `ASIA` + 16 base32 characters, as STS returns. */
export function newAwsAccessKeyId(): string {
  const bytes = randomBytes(16);
  let out = 'ASIA';
  for (const b of bytes) out += AWS_ALPHABET[b & 31];
  return out;
}

/** AWS-shaped secret access key: 40 characters of base64. */
export function newAwsSecretAccessKey(): string {
  return randomBytes(30).toString('base64');
}
