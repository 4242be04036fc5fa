import { CiOidcError } from '../server/errors.ts';

/**
 * Why an exchange failed, independent of the wire format. Each endpoint maps a kind to its own
 * envelope (PyPI 422, RFC 6749 400, Vault 400, AWS 400/403); `code` is the stable reason recorded in the
 * audit log and returned where the protocol has room for it.
 */
export type FailureKind =
  | 'bad_request' // the request itself is malformed (body shape, missing parameter)
  | 'rate_limited'
  | 'token_malformed' // the token cannot be decoded at all
  | 'issuer_unknown'
  | 'token_invalid' // signature, key, claims, audience
  | 'token_expired'
  | 'idp_unavailable' // keys could not be fetched (transient)
  | 'not_enabled' // an admin switch
  | 'denied' // policy or publisher checks said no
  | 'role_not_found'
  | 'invalid_target' // requested audience/resource/role not acceptable
  | 'pending_exists'
  | 'replayed'
  | 'internal'; // our fault: store unavailable, signer missing; never the caller's

export class ExchangeError extends CiOidcError {
  readonly kind: FailureKind;
  /** Caller-safe protocol text where a protocol carries one (PyPI descriptions). */
  readonly description: string | undefined;

  constructor(kind: FailureKind, code: string, message: string, options: { detail?: string; cause?: unknown; description?: string } = {}) {
    super(code, message, { status: kind === 'internal' ? 503 : kind === 'rate_limited' ? 429 : 400, detail: options.detail, cause: options.cause });
    this.name = 'ExchangeError';
    this.kind = kind;
    this.description = options.description;
  }
}

export function isExchangeError(value: unknown): value is ExchangeError {
  return value instanceof ExchangeError;
}

/** Verifier codes (verification.md §11) grouped by what a compatibility endpoint must say. */
const MALFORMED = new Set(['token_too_large', 'token_malformed', 'duplicate_member', 'header_invalid']);
const EXPIRED = new Set(['expired']);
const UNAVAILABLE = new Set(['jwks_unavailable']);

export function kindForVerifierCode(code: string): FailureKind {
  if (MALFORMED.has(code)) return 'token_malformed';
  if (code === 'issuer_unknown') return 'issuer_unknown';
  if (EXPIRED.has(code)) return 'token_expired';
  if (UNAVAILABLE.has(code)) return 'idp_unavailable';
  if (code === 'replayed') return 'replayed';
  return 'token_invalid';
}

export const MESSAGES: Record<FailureKind, string> = {
  bad_request: 'the request is malformed; send the parameters this endpoint documents',
  rate_limited: 'too many requests from this client or issuer; retry after a minute',
  token_malformed: 'the token is not a well-formed compact JWS; send the raw ID token from the CI job',
  issuer_unknown: 'the token issuer is not registered with this broker; ask the operator to register it',
  token_invalid: 'the token failed verification; mint a fresh ID token with the right audience',
  token_expired: 'the token has expired; mint a fresh ID token in the job',
  idp_unavailable: "the issuer's signing keys could not be retrieved; retry later",
  not_enabled: 'this exchange is disabled by the operator',
  denied: 'no role or publisher allows this token; check the role conditions with `ci-oidc policy explain`',
  role_not_found: 'the requested role does not exist; check the role name',
  invalid_target: 'the requested audience, resource or role is not acceptable for this token',
  pending_exists: 'valid token, but project already exists',
  replayed: 'the token was already exchanged; each ID token can be used once here, mint a new one',
  internal: 'the broker could not complete the exchange; retry later',
};
