import type { AdmittedKey, AdmittedKeySet } from '../jose/admit-key.ts';
import { CompactJwsError, parseCompactJws, withSigningBytes, type CompactJws } from '../jose/compact.ts';
import type { SignatureVerifier, VerifyAlg } from '../jose/verify-signature.ts';
import { VerificationError } from './errors.ts';
import { checkTyp, HeaderCache, type CheckedHeader } from './header.ts';

/**
 * The JWS layer of the pipeline (verification.md §3 steps 1–4, 7–9), shared by `verify()` and by the
 * Wycheproof runner so every vector goes through the production path.
 */

export function rethrowCompact(err: unknown): never {
  if (err instanceof CompactJwsError) throw new VerificationError(err.code, err.message);
  throw err;
}

/** Steps 1–4: shape and encoding, then the memoised header rules and the caller's typ rule. */
export function parseJws(token: unknown, headers: HeaderCache, maxTokenLength: number, expectTyp: string | undefined): { jws: CompactJws; checked: CheckedHeader } {
  let jws: CompactJws;
  try {
    jws = parseCompactJws(token, { maxTokenLength });
  } catch (err) {
    rethrowCompact(err);
  }
  const checked = headers.checkPrefix(jws.token, jws.d1);
  checkTyp(checked.typ, expectTyp);
  return { jws, checked };
}

export interface KeySelection {
  key?: AdmittedKey;
  verifier?: SignatureVerifier;
  code?: 'key_not_found' | 'key_ambiguous' | 'key_rejected';
  /** True when a refetch could help (an unknown kid, or no candidate at all). */
  miss: boolean;
}

/** Step 8 (§6): exact kid among this set's admitted keys that fit alg; without kid, exactly one candidate. */
export function selectKey(set: AdmittedKeySet, kid: string | undefined, alg: VerifyAlg): KeySelection {
  if (kid !== undefined) {
    const key = set.byKid.get(kid);
    if (key !== undefined) {
      const verifier = key.verifiers.get(alg);
      // A known kid whose key does not fit alg is not a rotation signal: no refetch.
      return verifier === undefined ? { code: 'key_not_found', miss: false } : { key, verifier, miss: false };
    }
    if (set.rejectedKids.has(kid)) return { code: 'key_rejected', miss: false };
    return { code: 'key_not_found', miss: true };
  }
  let found: AdmittedKey | undefined;
  let verifier: SignatureVerifier | undefined;
  for (const key of set.keys) {
    const v = key.verifiers.get(alg);
    if (v === undefined) continue;
    if (found !== undefined) return { code: 'key_ambiguous', miss: false };
    found = key;
    verifier = v;
  }
  return found === undefined ? { code: 'key_not_found', miss: true } : { key: found, verifier: verifier as SignatureVerifier, miss: false };
}

export function keySelectionError(sel: KeySelection, kid: string | undefined, alg: VerifyAlg, where: string): VerificationError {
  return new VerificationError(sel.code ?? 'key_not_found', `${kid === undefined ? 'no kid' : `kid ${JSON.stringify(kid)}`} with ${alg} for ${where}`);
}

/** Step 9: the signature over the exact `header.payload` bytes with the pinned verifier. */
export function checkSignature(verifier: SignatureVerifier, jws: CompactJws, where: string): void {
  if (!withSigningBytes(jws, verifier)) throw new VerificationError('signature_invalid', `signature check failed for ${where}`);
}

/**
 * Steps 1–4 and 7–9 against a fixed admitted key set: the payload stays opaque (no claim rules).
 * Used for JWS-level conformance (Wycheproof) and by callers that verify non-OIDC JWS.
 */
export function verifyJwsWithKeySet(
  token: unknown,
  set: AdmittedKeySet,
  algorithms: readonly VerifyAlg[],
  options: { headers?: HeaderCache; maxTokenLength?: number; typ?: string } = {},
): { header: Readonly<Record<string, unknown>>; alg: VerifyAlg; kid: string | undefined; payloadSegment: string } {
  const { jws, checked } = parseJws(token, options.headers ?? new HeaderCache(), options.maxTokenLength ?? 20000, options.typ);
  if (!algorithms.includes(checked.alg)) throw new VerificationError('alg_not_allowed', `alg ${checked.alg} is not allowed`);
  const sel = selectKey(set, checked.kid, checked.alg);
  if (sel.verifier === undefined) throw keySelectionError(sel, checked.kid, checked.alg, 'the key set');
  checkSignature(sel.verifier, jws, 'the key set');
  return { header: checked.header, alg: checked.alg, kid: checked.kid, payloadSegment: jws.token.slice(jws.d1 + 1, jws.d2) };
}
