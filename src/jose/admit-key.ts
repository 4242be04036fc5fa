import { KeyObject } from 'node:crypto';
import { importJWK, type JWK } from 'jose';
import { isCanonicalBase64url } from './compact.ts';
import { ALG_SPECS, createSignatureVerifier, isVerifyAlg, keyFitsAlg, type SignatureVerifier, type VerifyAlg } from './verify-signature.ts';

/**
 * JWK admission (verification.md §6). Every key from discovery, a JWKS URL or a static set passes
 * here before it can verify anything; jose 6.2.17 on its own accepts `e=1` and ROCA moduli.
 */

export interface AdmittedKey {
  readonly kid: string | undefined;
  readonly kty: 'RSA' | 'EC' | 'OKP';
  readonly key: KeyObject;
  /** One pinned verifier per algorithm this key may verify (its own `alg`, or every allowed fit). */
  readonly verifiers: ReadonlyMap<VerifyAlg, SignatureVerifier>;
  /** Stable spelling of the public members; a refresh reuses the import when it is unchanged. */
  readonly fingerprint: string;
}

export type KeyDisposition = 'refused' | 'skipped';

export interface KeyRejection {
  readonly index: number;
  readonly kid: string | undefined;
  readonly disposition: KeyDisposition;
  readonly reason: string;
}

export interface AdmittedKeySet {
  readonly keys: readonly AdmittedKey[];
  readonly byKid: ReadonlyMap<string, AdmittedKey>;
  /** kids of keys that were refused or skipped, with the reason: a token naming one gets `key_rejected`. */
  readonly rejectedKids: ReadonlyMap<string, string>;
  readonly rejections: readonly KeyRejection[];
}

export class JwksShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwksShapeError';
  }
}

export const MAX_JWKS_KEYS = 50;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const EC_COORD_BYTES: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };
const EC_IMPORT_ALG: Record<string, VerifyAlg> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };

// ROCA (Nemec et al., CCS 2017): vulnerable Infineon moduli satisfy n mod p ∈ <65537> (mod p) for
// every small prime p below. A random modulus passes all 38 tests with negligible probability.
const ROCA_PRIMES = [3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167];
const ROCA_SUBGROUPS: readonly (readonly boolean[])[] = ROCA_PRIMES.map((p) => {
  const member: boolean[] = new Array<boolean>(p).fill(false);
  let x = 1;
  do {
    member[x] = true;
    x = (x * 65537) % p;
  } while (x !== 1);
  return member;
});

export function hasRocaFingerprint(modulus: bigint): boolean {
  for (let i = 0; i < ROCA_PRIMES.length; i++) {
    const p = ROCA_PRIMES[i] as number;
    if (!(ROCA_SUBGROUPS[i] as readonly boolean[])[Number(modulus % BigInt(p))]) return false;
  }
  return true;
}

function bytesToBigInt(bytes: Buffer): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`);
}

class Reject extends Error {
  constructor(
    readonly disposition: KeyDisposition,
    reason: string,
  ) {
    super(reason);
  }
}

function b64Member(jwk: Record<string, unknown>, name: string): Buffer {
  const v = jwk[name];
  if (typeof v !== 'string' || v.length === 0 || !isCanonicalBase64url(v)) {
    throw new Reject('refused', `member "${name}" is missing or not canonical base64url`);
  }
  return Buffer.from(v, 'base64url');
}

function checkRsa(jwk: Record<string, unknown>): void {
  const n = b64Member(jwk, 'n');
  const e = b64Member(jwk, 'e');
  let start = 0;
  while (start < n.length && n[start] === 0) start++;
  const modulus = bytesToBigInt(n.subarray(start));
  const bits = modulus.toString(2).length;
  if (modulus === 0n || bits < 2048) throw new Reject('refused', `RSA modulus of ${bits} bits is below the 2048-bit minimum`);
  if (bits > 8192) throw new Reject('refused', `RSA modulus of ${bits} bits is above the 8192-bit maximum`);
  const exponent = bytesToBigInt(e);
  if (exponent < 65537n || exponent >= 1n << 256n || (exponent & 1n) === 0n) {
    throw new Reject('refused', 'RSA public exponent must be odd with 65537 <= e < 2^256');
  }
  if (hasRocaFingerprint(modulus)) throw new Reject('refused', 'RSA modulus has the ROCA fingerprint (CVE-2017-15361)');
}

function checkEc(jwk: Record<string, unknown>): string {
  const crv = jwk.crv;
  if (typeof crv !== 'string' || !(crv in EC_COORD_BYTES)) throw new Reject('refused', `EC curve ${JSON.stringify(crv)} is not P-256, P-384 or P-521`);
  const size = EC_COORD_BYTES[crv] as number;
  if (b64Member(jwk, 'x').length !== size || b64Member(jwk, 'y').length !== size) {
    throw new Reject('refused', `EC coordinates must be ${size} bytes for ${crv}`);
  }
  return crv;
}

function checkOkp(jwk: Record<string, unknown>): void {
  if (jwk.crv !== 'Ed25519') throw new Reject('refused', `OKP curve ${JSON.stringify(jwk.crv)} is not Ed25519`);
  if (b64Member(jwk, 'x').length !== 32) throw new Reject('refused', 'Ed25519 public key must be 32 bytes');
}

function algMatchesKey(alg: VerifyAlg, kty: string, crv: unknown): boolean {
  const spec = ALG_SPECS[alg];
  return spec.kty === kty && (spec.crv === undefined || spec.crv === crv);
}

const FINGERPRINT_MEMBERS = ['kty', 'kid', 'alg', 'use', 'key_ops', 'crv', 'n', 'e', 'x', 'y'] as const;

function fingerprintOf(jwk: Record<string, unknown>): string {
  return JSON.stringify(FINGERPRINT_MEMBERS.map((m) => jwk[m] ?? null));
}

/**
 * Admits one JWK for the given allow-list. Returns the key, or throws a `Reject` naming why.
 * `reuse` maps fingerprints of previously admitted keys, so an unchanged key is not imported again.
 */
async function admitOne(
  raw: unknown,
  allowed: readonly VerifyAlg[],
  reuse: ReadonlyMap<string, AdmittedKey> | undefined,
): Promise<AdmittedKey> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Reject('refused', 'key is not a JSON object');
  const jwk = raw as Record<string, unknown>;
  const kty = jwk.kty;
  if (kty === 'oct') throw new Reject('refused', 'symmetric (kty "oct") keys are never accepted');
  if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') throw new Reject('skipped', `unsupported kty ${JSON.stringify(kty)}`);
  for (const m of PRIVATE_MEMBERS) {
    if (m in jwk) throw new Reject('refused', `private key member "${m}" present: a JWKS must hold public keys only`);
  }
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length === 0 || jwk.kid.length > 256)) {
    throw new Reject('refused', 'kid must be a string of 1 to 256 characters');
  }
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new Reject('skipped', `use ${JSON.stringify(jwk.use)} is not "sig"`);
  if (jwk.key_ops !== undefined) {
    if (!Array.isArray(jwk.key_ops) || !jwk.key_ops.every((op) => typeof op === 'string')) throw new Reject('refused', 'key_ops must be an array of strings');
    if (!jwk.key_ops.includes('verify')) throw new Reject('skipped', 'key_ops does not include "verify"');
  }
  let ownAlg: VerifyAlg | undefined;
  if (jwk.alg !== undefined) {
    if (!isVerifyAlg(jwk.alg)) throw new Reject('refused', `alg ${JSON.stringify(jwk.alg)} is not an accepted signature algorithm`);
    if (!allowed.includes(jwk.alg)) throw new Reject('refused', `alg ${jwk.alg} is not in this issuer's allowed algorithms`);
    if (!algMatchesKey(jwk.alg, kty, jwk.crv)) throw new Reject('refused', `alg ${jwk.alg} does not match kty ${kty}${jwk.crv === undefined ? '' : ` / crv ${String(jwk.crv)}`}`);
    ownAlg = jwk.alg;
  }
  let importAlg: VerifyAlg;
  if (kty === 'RSA') {
    checkRsa(jwk);
    importAlg = ownAlg ?? 'RS256';
  } else if (kty === 'EC') {
    importAlg = ownAlg ?? (EC_IMPORT_ALG[checkEc(jwk)] as VerifyAlg);
    if (ownAlg !== undefined) checkEc(jwk);
  } else {
    checkOkp(jwk);
    importAlg = 'EdDSA';
  }
  const algs = ownAlg !== undefined ? [ownAlg] : allowed.filter((a) => algMatchesKey(a, kty, jwk.crv));
  if (algs.length === 0) throw new Reject('refused', `no allowed algorithm fits this ${kty} key`);

  const fingerprint = fingerprintOf(jwk);
  const previous = reuse?.get(fingerprint);
  if (previous !== undefined) return previous;

  const publicJwk: JWK = { kty };
  for (const m of ['crv', 'n', 'e', 'x', 'y'] as const) if (typeof jwk[m] === 'string') publicJwk[m] = jwk[m] as string;
  let key: KeyObject;
  try {
    const imported = await importJWK(publicJwk, importAlg, { extractable: true });
    if (imported instanceof Uint8Array) throw new Error('symmetric key');
    key = KeyObject.from(imported);
  } catch (err) {
    // WebCrypto refuses points off the curve and the identity here.
    throw new Reject('refused', `key import failed: ${(err as Error).message}`);
  }
  const verifiers = new Map<VerifyAlg, SignatureVerifier>();
  for (const alg of algs) if (keyFitsAlg(key, alg)) verifiers.set(alg, createSignatureVerifier(key, alg));
  if (verifiers.size === 0) throw new Reject('refused', 'the imported key fits none of the allowed algorithms');
  return { kid: jwk.kid as string | undefined, kty, key, verifiers, fingerprint };
}

/**
 * Admits a JWKS document `{"keys":[...]}`. The set shape is all-or-nothing (`JwksShapeError`);
 * individual keys are refused or skipped with a reason, and a duplicated `kid` refuses every key
 * carrying it. An empty result is not an error here: the cache decides what an empty set means.
 */
export async function admitJwks(
  doc: unknown,
  allowed: readonly VerifyAlg[],
  options: { previous?: AdmittedKeySet; maxKeys?: number } = {},
): Promise<AdmittedKeySet> {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new JwksShapeError('the JWKS is not a JSON object');
  const list = (doc as Record<string, unknown>).keys;
  if (!Array.isArray(list)) throw new JwksShapeError('the JWKS has no "keys" array');
  const maxKeys = options.maxKeys ?? MAX_JWKS_KEYS;
  if (list.length > maxKeys) throw new JwksShapeError(`the JWKS has ${list.length} keys, more than the ${maxKeys} allowed`);

  const reuse = new Map<string, AdmittedKey>();
  for (const k of options.previous?.keys ?? []) reuse.set(k.fingerprint, k);

  const kidCounts = new Map<string, number>();
  for (const raw of list) {
    const kid = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>).kid : undefined;
    if (typeof kid === 'string') kidCounts.set(kid, (kidCounts.get(kid) ?? 0) + 1);
  }

  const keys: AdmittedKey[] = [];
  const byKid = new Map<string, AdmittedKey>();
  const rejectedKids = new Map<string, string>();
  const rejections: KeyRejection[] = [];
  for (let index = 0; index < list.length; index++) {
    const raw = list[index] as unknown;
    const rawKid = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>).kid : undefined;
    const kid = typeof rawKid === 'string' ? rawKid : undefined;
    try {
      if (kid !== undefined && (kidCounts.get(kid) ?? 0) > 1) throw new Reject('refused', `kid ${JSON.stringify(kid)} appears more than once in the set`);
      const admitted = await admitOne(raw, allowed, reuse);
      keys.push(admitted);
      if (admitted.kid !== undefined) byKid.set(admitted.kid, admitted);
    } catch (err) {
      if (!(err instanceof Reject)) throw err;
      rejections.push({ index, kid, disposition: err.disposition, reason: err.message });
      if (kid !== undefined) rejectedKids.set(kid, err.message);
    }
  }
  return { keys, byKid, rejectedKids, rejections };
}
