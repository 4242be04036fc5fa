/**
 * PyPI trusted-publishing wire format (trusted-publishing.md §1, §5, §10): request parsing with
 * pydantic-StrictStr semantics, the 422 error envelope and Warehouse's codes and descriptions.
 */
export type PypiCode =
  | 'invalid-payload'
  | 'not-enabled'
  | 'invalid-token'
  | 'invalid-pending-publisher'
  | 'invalid-publisher'
  | 'invalid-reuse-token'
  | 'rate-limited';

export class PypiError extends Error {
  constructor(
    readonly code: PypiCode,
    readonly description: string,
    readonly status = code === 'rate-limited' ? 429 : 422,
  ) {
    super(description);
    this.name = 'PypiError';
  }
}

export function pypiErrorBody(code: PypiCode, description: string): { message: string; errors: { code: string; description: string }[] } {
  return { message: 'Token request failed', errors: [{ code, description }] };
}

const typeName = (v: unknown): string => (v === null ? 'none' : Array.isArray(v) ? 'list' : typeof v === 'number' ? (Number.isInteger(v) ? 'int' : 'float') : typeof v === 'boolean' ? 'bool' : typeof v === 'object' ? 'dict' : typeof v);

/**
 * `{"token": "<string>"}`; extra members ignored. The description mirrors pydantic's text without
 * echoing the input value (it may be a token).
 */
export function parseMintTokenBody(raw: string | undefined): string {
  let body: unknown;
  try {
    body = JSON.parse(raw ?? '');
  } catch {
    throw new PypiError('invalid-payload', '1 validation error for TokenPayload\n  Invalid JSON [type=json_invalid]');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new PypiError('invalid-payload', `1 validation error for TokenPayload\n  Input should be an object [type=model_type, input_type=${typeName(body)}]`);
  }
  const token = (body as Record<string, unknown>).token;
  if (token === undefined) throw new PypiError('invalid-payload', '1 validation error for TokenPayload\ntoken\n  Field required [type=missing]');
  if (typeof token !== 'string') {
    throw new PypiError('invalid-payload', `1 validation error for TokenPayload\ntoken\n  Input should be a valid string [type=string_type, input_type=${typeName(token)}]`);
  }
  return token;
}

/** Exchange-failure kind → PyPI code and Warehouse's description text. */
export function pypiErrorFor(kind: string, detail?: { provider?: string; description?: string }): PypiError {
  switch (kind) {
    case 'rate_limited':
      return new PypiError('rate-limited', 'too many requests; retry after a minute');
    case 'bad_request':
      return new PypiError('invalid-payload', detail?.description ?? 'malformed request');
    case 'token_malformed':
      return new PypiError('invalid-payload', 'malformed JWT');
    case 'issuer_unknown':
      return new PypiError('invalid-payload', 'unknown trusted publishing issuer');
    case 'not_enabled':
      return new PypiError('not-enabled', `${detail?.provider ?? 'Trusted publishing'} trusted publishing functionality not enabled`);
    case 'pending_exists':
      return new PypiError('invalid-pending-publisher', 'valid token, but project already exists');
    case 'replayed':
      return new PypiError('invalid-reuse-token', 'invalid token: already used');
    case 'denied':
    case 'role_not_found':
    case 'invalid_target':
      return new PypiError('invalid-publisher', `valid token, but no corresponding publisher (${detail?.description ?? 'Publisher with matching claims was not found'})`);
    case 'internal':
      return new PypiError('invalid-payload', 'the server could not complete the request; retry later', 503);
    default:
      return new PypiError('invalid-token', 'malformed or invalid token');
  }
}
