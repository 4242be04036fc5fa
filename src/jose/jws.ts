import { sign as cryptoSign, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import { assertKeyFitsAlg, isSigningAlg, type SigningAlg } from './keys.ts';

/**
 * Compact JWS signing directly on node:crypto. The hot path is one JSON.stringify, one base64url
 * encode and one crypto.sign: the header is serialised once per `typ`, the KeyObject is cached.
 */
export interface JwsSigner {
  readonly alg: SigningAlg;
  readonly kid: string;
  sign(payload: Readonly<Record<string, unknown>>, options?: { typ?: string }): string;
  /** Signs an already-serialised JSON object (the caller guarantees it is one). */
  signJson(payloadJson: string, options?: { typ?: string }): string;
}

const HASH: Record<SigningAlg, string | null> = { RS256: 'sha256', ES256: 'sha256', EdDSA: null };
const TYP_PATTERN = /^[A-Za-z0-9.+/_-]{1,64}$/;

export function encodeHeader(header: Readonly<Record<string, unknown>>): string {
  return Buffer.from(JSON.stringify(header), 'utf8').toString('base64url');
}

export function createJwsSigner(params: { alg: SigningAlg; kid: string; privateKey: KeyObject }): JwsSigner {
  const { alg, kid, privateKey } = params;
  if (!isSigningAlg(alg)) throw new Error(`unsupported JWS algorithm ${String(alg)}: only RS256, ES256 and EdDSA are ever used`);
  if (privateKey.type !== 'private') throw new Error('a JWS signer needs a private key');
  assertKeyFitsAlg(alg, privateKey);
  const hash = HASH[alg];
  const key: KeyObject | SignKeyObjectInput = alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey;
  // GitLab's header member order: kid, typ, alg.
  const headers = new Map<string, string>([['JWT', encodeHeader({ kid, typ: 'JWT', alg })]]);
  const headerFor = (typ: string): string => {
    let h = headers.get(typ);
    if (h === undefined) {
      if (!TYP_PATTERN.test(typ)) throw new Error(`invalid JWS typ ${JSON.stringify(typ)}`);
      h = encodeHeader({ kid, typ, alg });
      if (headers.size < 32) headers.set(typ, h);
    }
    return h;
  };
  const signJson = (json: string, typ = 'JWT'): string => {
    const input = `${headerFor(typ)}.${Buffer.from(json, 'utf8').toString('base64url')}`;
    const signature = cryptoSign(hash, Buffer.from(input, 'latin1'), key);
    return `${input}.${signature.toString('base64url')}`;
  };
  return {
    alg,
    kid,
    sign(payload, options) {
      return signJson(JSON.stringify(payload), options?.typ);
    },
    signJson(payloadJson, options) {
      return signJson(payloadJson, options?.typ);
    },
  };
}
