import { createHash, randomUUID } from 'node:crypto';

/** Vault JWT auth login (policy.md §12.2): request shape, auth response and Vault's error texts. */
export class VaultError extends Error {
  constructor(
    readonly text: string,
    readonly status = 400,
  ) {
    super(text);
    this.name = 'VaultError';
  }
}

export const MOUNT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function parseVaultLogin(raw: string | undefined): { role: string | undefined; jwt: string } {
  let body: unknown;
  try {
    body = JSON.parse(raw === undefined || raw === '' ? '{}' : raw);
  } catch {
    throw new VaultError('failed to parse JSON input: invalid character in request body');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new VaultError('failed to parse JSON input: expected an object');
  const b = body as Record<string, unknown>;
  if (b.role !== undefined && typeof b.role !== 'string') throw new VaultError('error converting input role: expected a string');
  if (typeof b.jwt !== 'string' || b.jwt.length === 0) throw new VaultError('missing token');
  return { role: b.role === undefined || b.role === '' ? undefined : (b.role as string), jwt: b.jwt };
}

export interface VaultAuth {
  clientToken: string;
  accessor: string;
  policies: string[];
  metadata: Record<string, string>;
  leaseDuration: number;
  entityKey: string;
}

/** Deterministic, UUID-shaped entity id per (registration, sub), as Vault keeps one entity per alias. */
function entityId(key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function vaultLoginResponse(a: VaultAuth): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: null,
    wrap_info: null,
    warnings: null,
    auth: {
      client_token: a.clientToken,
      accessor: a.accessor,
      policies: a.policies,
      token_policies: a.policies,
      metadata: a.metadata,
      lease_duration: a.leaseDuration,
      renewable: false,
      entity_id: entityId(a.entityKey),
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    },
  };
}

export function vaultErrorFor(kind: string, code: string, roleName: string | undefined): VaultError {
  switch (kind) {
    case 'rate_limited':
      return new VaultError('request path "auth/login": rate limit quota exceeded', 429);
    case 'role_not_found':
      return new VaultError(`role ${JSON.stringify(roleName ?? '')} could not be found`);
    case 'bad_request':
      return new VaultError(code === 'missing_role' ? 'missing role' : `invalid request: ${code}`);
    case 'denied':
      if (code === 'audience_unbound') return new VaultError('audience claim found in JWT but no audiences bound to the role');
      return new VaultError(`error validating claims: ${code}`);
    case 'invalid_target':
      return new VaultError(`error validating token: invalid audience (aud) claim: ${code}`);
    case 'replayed':
      return new VaultError('error validating token: token already used');
    case 'internal':
      return new VaultError('internal error', 503);
    default:
      return new VaultError(`error validating token: ${code}`);
  }
}
