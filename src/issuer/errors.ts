import { CiOidcError } from '../server/errors.ts';

/** Issuer error codes; every one is stable and documented in docs/issuer.md. */
export type IssuerErrorCode =
  | 'job_context_invalid'
  | 'id_token_config_error'
  | 'id_token_signing_unavailable'
  | 'claim_reserved'
  | 'claim_immutable'
  | 'claim_invalid'
  | 'claim_type_changed'
  | 'claims_too_many'
  | 'claims_too_large'
  | 'sub_template_invalid'
  | 'sub_template_locked'
  | 'reclaimed_path'
  | 'settings_id_mismatch'
  | 'job_not_found'
  | 'job_exists'
  | 'job_token_invalid'
  | 'ci_system_unauthorized'
  | 'ci_system_forbidden'
  | 'on_demand_disabled'
  | 'aud_required'
  | 'aud_invalid'
  | 'aud_not_allowed'
  | 'lifetime_invalid'
  | 'rate_limited'
  | 'request_invalid';

export function issuerError(code: IssuerErrorCode, message: string, status = 400, detail?: string): CiOidcError {
  return new CiOidcError(code, message, detail === undefined ? { status } : { status, detail });
}
