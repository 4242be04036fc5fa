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
  /**
   * For many tokens sharing a payload prefix (one job's static claims): the header and the prefix are
   * encoded once; each token encodes only its suffix. `prefixJson + suffixJson` must be one JSON object.
   */
  template(prefixJson: string): JwsTemplate;
}

export interface JwsTemplate {
  readonly kid: string;
  sign(suffixJson: string): string;
}

const HASH: Record<SigningAlg, string | null> = { RS256: 'sha256', ES256: 'sha256', EdDSA: null };
const TYP_PATTERN = /^[A-Za-z0-9.+/_-]{1,64}$/;

// Two scratch buffers for template signing. `sign` is synchronous and no view of them escapes it.
const scratch: Buffer[] = [Buffer.allocUnsafeSlow(8192), Buffer.allocUnsafeSlow(8192)];

function scratchFor(which: 0 | 1, size: number): Buffer {
  let buf = scratch[which] as Buffer;
  if (buf.length < size) scratch[which] = buf = Buffer.allocUnsafeSlow(Math.max(size, buf.length * 2));
  return buf;
}

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
  const template = (prefixJson: string): JwsTemplate => {
    // base64url works in 3-byte groups: encode the largest whole-group part of the prefix once and
    // carry the 0-2 leftover bytes into each token's suffix.
    const bytes = Buffer.from(prefixJson, 'utf8');
    const cut = bytes.length - (bytes.length % 3);
    const carry = Buffer.from(bytes.subarray(cut));
    const head = `${headerFor('JWT')}.${bytes.subarray(0, cut).toString('base64url')}`;
    return {
      kid,
      sign(suffixJson) {
        // Per token: the suffix bytes and the signing input are written into scratch memory rather
        // than fresh Buffers (minting is allocation-bound after the signature itself).
        const tailBytes = scratchFor(0, carry.length + suffixJson.length * 3);
        carry.copy(tailBytes, 0);
        const n = carry.length + tailBytes.write(suffixJson, carry.length, 'utf8');
        const tail = tailBytes.toString('base64url', 0, n);
        const input = scratchFor(1, head.length + tail.length);
        input.write(head, 0, 'latin1');
        input.write(tail, head.length, 'latin1');
        const signature = cryptoSign(hash, input.subarray(0, head.length + tail.length), key);
        return `${head}${tail}.${signature.toString('base64url')}`;
      },
    };
  };
  return {
    alg,
    kid,
    template,
    sign(payload, options) {
      return signJson(JSON.stringify(payload), options?.typ);
    },
    signJson(payloadJson, options) {
      return signJson(payloadJson, options?.typ);
    },
  };
}
