/**
 * RFC 8693 token exchange over RFC 6749 §5 (policy.md §12.1), plus the RFC 7662 introspection and
 * RFC 7009 revocation request shapes.
 */
export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TT_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TT_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
export const TT_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

export type Form = Record<string, string[]>;

export class OAuthError extends Error {
  constructor(
    readonly error: 'invalid_request' | 'invalid_target' | 'unsupported_grant_type' | 'invalid_client' | 'invalid_scope' | 'server_error' | 'temporarily_unavailable',
    readonly description: string,
    readonly status = 400,
  ) {
    super(description);
    this.name = 'OAuthError';
  }
}

export interface TokenExchangeRequest {
  subjectToken: string;
  subjectTokenType: string;
  audiences: string[];
  resources: string[];
  /** `role:<name>` removed and returned separately. */
  roleName: string | undefined;
  scopes: string[];
  requestedTokenType: string;
}

const MAX_VALUES = 10;
const hasControl = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
};
const MAX_VALUE_CHARS = 512;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/;

/** Parses a URL-encoded body keeping repeated parameters (audience and resource repeat). */
export function parseForm(body: string): Form {
  const out: Form = Object.create(null) as Form;
  for (const [k, v] of new URLSearchParams(body)) {
    (out[k] ??= []).push(v);
  }
  return out;
}

/** A JSON body (as Google STS accepts) in the same shape: arrays stay arrays, scalars become one value. */
export function formFromJson(body: string): Form {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new OAuthError('invalid_request', 'body_not_json');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new OAuthError('invalid_request', 'body_not_object');
  const out: Form = Object.create(null) as Form;
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    const values = Array.isArray(v) ? v : [v];
    if (!values.every((x) => typeof x === 'string')) throw new OAuthError('invalid_request', `parameter_not_string:${k.slice(0, 40)}`);
    out[k] = values as string[];
  }
  return out;
}

function single(form: Form, name: string, required: boolean): string | undefined {
  const v = form[name];
  if (v === undefined || v.length === 0) {
    if (required) throw new OAuthError('invalid_request', `missing_parameter:${name}`);
    return undefined;
  }
  if (v.length > 1) throw new OAuthError('invalid_request', `repeated_parameter:${name}`);
  return v[0];
}

function many(form: Form, name: string): string[] {
  const v = form[name] ?? [];
  if (v.length > MAX_VALUES) throw new OAuthError('invalid_target', `too_many_values:${name}`);
  for (const x of v) if (x.length === 0 || x.length > MAX_VALUE_CHARS || hasControl(x)) throw new OAuthError('invalid_target', `invalid_value:${name}`);
  return [...new Set(v)];
}

export function parseTokenExchange(form: Form): TokenExchangeRequest {
  const grantType = single(form, 'grant_type', true);
  if (grantType !== GRANT_TOKEN_EXCHANGE) throw new OAuthError('unsupported_grant_type', 'unsupported_grant_type');
  if (form.actor_token !== undefined || form.actor_token_type !== undefined) throw new OAuthError('invalid_request', 'actor_token_unsupported');
  const subjectToken = single(form, 'subject_token', true)!;
  const subjectTokenType = single(form, 'subject_token_type', true)!;
  if (subjectTokenType !== TT_JWT && subjectTokenType !== TT_ID_TOKEN) throw new OAuthError('invalid_request', 'unsupported_subject_token_type');
  const requestedTokenType = single(form, 'requested_token_type', false) ?? TT_ACCESS_TOKEN;
  if (requestedTokenType !== TT_ACCESS_TOKEN && requestedTokenType !== TT_JWT) throw new OAuthError('invalid_request', 'unsupported_requested_token_type');
  const scopeText = single(form, 'scope', false) ?? '';
  if (scopeText.length > 2048) throw new OAuthError('invalid_scope', 'scope_too_long');
  const scopes: string[] = [];
  let roleName: string | undefined;
  for (const s of scopeText.split(' ').filter((x) => x.length > 0)) {
    if (!SCOPE_TOKEN.test(s)) throw new OAuthError('invalid_scope', 'invalid_scope_token');
    if (s.startsWith('role:')) {
      if (roleName !== undefined) throw new OAuthError('invalid_scope', 'several_roles_requested');
      roleName = s.slice('role:'.length);
    } else if (!scopes.includes(s)) {
      scopes.push(s);
    }
  }
  if (scopes.length > 32) throw new OAuthError('invalid_scope', 'too_many_scopes');
  return { subjectToken, subjectTokenType, audiences: many(form, 'audience'), resources: many(form, 'resource'), roleName, scopes, requestedTokenType };
}

export function oauthErrorFor(kind: string, code: string): OAuthError {
  switch (kind) {
    case 'rate_limited':
      return new OAuthError('invalid_request', 'rate_limited', 429);
    case 'invalid_target':
      return new OAuthError('invalid_target', code);
    case 'internal':
      return new OAuthError('temporarily_unavailable', code, 503);
    default:
      return new OAuthError('invalid_request', code);
  }
}
