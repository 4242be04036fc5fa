import { createPrivateKey, createPublicKey, generateKeyPair as nodeGenerateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, type JWK } from 'jose';

const generateKeyPair = promisify(nodeGenerateKeyPair);

/** Asymmetric JWS algorithms the issuer may sign with. `none` and HS* can never be expressed. */
export const SIGNING_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

export function isSigningAlg(value: unknown): value is SigningAlg {
  return typeof value === 'string' && (SIGNING_ALGS as readonly string[]).includes(value);
}

export interface PublicSigningJwk {
  kty: 'RSA' | 'EC' | 'OKP';
  kid: string;
  use: 'sig';
  alg: SigningAlg;
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
}

export interface SigningKeyMaterial {
  alg: SigningAlg;
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: PublicSigningJwk;
}

export interface GenerateOptions {
  /** RSA modulus size; GitLab uses 2048, 3072 is allowed. */
  rsaBits?: 2048 | 3072;
}

export async function generateSigningKey(alg: SigningAlg, options: GenerateOptions = {}): Promise<SigningKeyMaterial> {
  let pair: { privateKey: KeyObject; publicKey: KeyObject };
  switch (alg) {
    case 'RS256': {
      const bits = options.rsaBits ?? 2048;
      if (bits !== 2048 && bits !== 3072) throw new Error(`unsupported RSA size ${String(bits)}: use 2048 or 3072`);
      pair = await generateKeyPair('rsa', { modulusLength: bits, publicExponent: 0x10001 });
      break;
    }
    case 'ES256':
      pair = await generateKeyPair('ec', { namedCurve: 'P-256' });
      break;
    case 'EdDSA':
      pair = await generateKeyPair('ed25519');
      break;
  }
  return materialFromPrivateKey(alg, pair.privateKey);
}

/** Checks that a key fits the algorithm (type, curve, RSA size). Throws with the reason. */
export function assertKeyFitsAlg(alg: SigningAlg, key: KeyObject): void {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (alg === 'RS256') {
    if (type !== 'rsa') throw new Error(`RS256 needs an RSA key, got ${String(type)}`);
    const bits = details.modulusLength ?? 0;
    if (bits < 2048 || bits > 8192) throw new Error(`RS256 key has ${String(bits)} bits; use 2048 or 3072`);
  } else if (alg === 'ES256') {
    if (type !== 'ec' || details.namedCurve !== 'prime256v1') throw new Error('ES256 needs a P-256 EC key');
  } else if (type !== 'ed25519') {
    throw new Error('EdDSA needs an Ed25519 key');
  }
}

export async function materialFromPrivateKey(alg: SigningAlg, privateKey: KeyObject): Promise<SigningKeyMaterial> {
  assertKeyFitsAlg(alg, privateKey);
  const publicKey = createPublicKey(privateKey);
  const publicJwk = await publicJwkFor(alg, publicKey);
  return { alg, kid: publicJwk.kid, privateKey, publicKey, publicJwk };
}

/** The JWKS entry for a public key: only public members, `kid` = RFC 7638 SHA-256 thumbprint. */
export async function publicJwkFor(alg: SigningAlg, publicKey: KeyObject): Promise<PublicSigningJwk> {
  const raw = publicKey.export({ format: 'jwk' }) as JWK;
  let members: Omit<PublicSigningJwk, 'kid' | 'use' | 'alg'>;
  if (raw.kty === 'RSA' && raw.n && raw.e) members = { kty: 'RSA', n: raw.n, e: raw.e };
  else if (raw.kty === 'EC' && raw.crv && raw.x && raw.y) members = { kty: 'EC', crv: raw.crv, x: raw.x, y: raw.y };
  else if (raw.kty === 'OKP' && raw.crv && raw.x) members = { kty: 'OKP', crv: raw.crv, x: raw.x };
  else throw new Error(`cannot export a public JWK for key type ${String(raw.kty)}`);
  const kid = await calculateJwkThumbprint(members as JWK, 'sha256');
  // Member order follows GitLab's JWKS (kty, kid, then key members, use, alg).
  const { kty, ...rest } = members;
  return { kty, kid, ...rest, use: 'sig', alg };
}

export function exportPrivateKeyDer(privateKey: KeyObject): Buffer {
  return privateKey.export({ format: 'der', type: 'pkcs8' });
}

export function importPrivateKeyDer(der: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
}

export function importPrivateKeyPem(pem: string): KeyObject {
  return createPrivateKey({ key: pem, format: 'pem' });
}
