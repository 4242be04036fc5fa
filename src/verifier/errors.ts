import { CiOidcError } from '../server/errors.ts';

/** The stable rejection codes of verification.md §11. */
export const VERIFICATION_ERROR_CODES = [
  'token_too_large',
  'token_malformed',
  'duplicate_member',
  'header_invalid',
  'alg_not_allowed',
  'crit_unsupported',
  'typ_invalid',
  'issuer_unknown',
  'key_not_found',
  'key_ambiguous',
  'key_rejected',
  'jwks_unavailable',
  'signature_invalid',
  'claim_type_invalid',
  'aud_missing',
  'aud_mismatch',
  'aud_multi_valued',
  'expired',
  'not_yet_valid',
  'iat_in_future',
  'lifetime_too_long',
  'jti_missing',
  'sub_inconsistent',
  'replayed',
] as const;

export type VerificationErrorCode = (typeof VERIFICATION_ERROR_CODES)[number];

/** Caller-safe messages: each names the problem and what to do about it. Details go to the operator log. */
const MESSAGES: Record<VerificationErrorCode, string> = {
  token_too_large: 'The token is larger than the accepted maximum: send the raw CI ID token, not a bundle of tokens.',
  token_malformed: 'The token is not a well-formed compact JWS (three canonical base64url segments): send the ID token exactly as issued.',
  duplicate_member: 'The token repeats a JSON member name: tokens with duplicate members are never accepted.',
  header_invalid: 'The token header is invalid or carries members that are never accepted (jwk, jku, x5u, x5c, JWE members): use an ID token from a registered issuer.',
  alg_not_allowed: "The token's signing algorithm is not allowed for this issuer: ask the operator to allow it, or issue RS256 tokens.",
  crit_unsupported: 'The token header has crit or b64 members, which are not supported: issue plain JWS ID tokens.',
  typ_invalid: 'The token type (typ) is not an ID token: send an OIDC ID token, not another kind of JWT.',
  issuer_unknown: 'The token issuer (iss) is not registered here: the operator must register this exact issuer URL.',
  key_not_found: "No key of the issuer matches the token's kid and algorithm: the issuer may have rotated keys; retry with a fresh token.",
  key_ambiguous: 'The token has no kid and the issuer publishes several keys of that type: issue tokens with a kid.',
  key_rejected: 'The key that signed this token was refused (weak, unfit or malformed): the issuer must publish a compliant signing key.',
  jwks_unavailable: "The issuer's keys could not be loaded: check the issuer's discovery and JWKS endpoints, then retry.",
  signature_invalid: 'The token signature is invalid: the token was altered or not signed by the issuer.',
  claim_type_invalid: 'A token claim is missing or has the wrong JSON type: send the ID token exactly as issued.',
  aud_missing: 'The token has no audience (aud): request the ID token with this service as its audience.',
  aud_mismatch: 'The token audience (aud) is not accepted here: request the ID token with this service as its audience.',
  aud_multi_valued: 'The token carries several audiences: request an ID token with exactly one audience, this service.',
  expired: 'The token has expired: request a fresh ID token.',
  not_yet_valid: 'The token is not valid yet (nbf in the future): check the issuer clock, or retry shortly.',
  iat_in_future: 'The token was issued in the future (iat): check the issuer clock.',
  lifetime_too_long: "The token's lifetime (exp - iat) exceeds the maximum accepted: issue shorter-lived ID tokens.",
  jti_missing: 'The token has no jti, which is required here: use an issuer that sets a unique jti.',
  sub_inconsistent: 'The token subject (sub) disagrees with its component claims: the token is not accepted.',
  replayed: 'This token was already used: request a fresh ID token for each exchange.',
};

/** 400 for syntax and size, 401 for everything else; never a 5xx (verification.md §11). */
export function statusFor(code: VerificationErrorCode): number {
  return code === 'token_too_large' || code === 'token_malformed' ? 400 : 401;
}

export class VerificationError extends CiOidcError {
  declare readonly code: VerificationErrorCode;

  constructor(code: VerificationErrorCode, detail?: string, options: { cause?: unknown } = {}) {
    super(code, MESSAGES[code], { status: statusFor(code), ...(detail === undefined ? {} : { detail }), ...options });
    this.name = 'VerificationError';
  }
}

export function isVerificationError(value: unknown): value is VerificationError {
  return value instanceof VerificationError;
}
