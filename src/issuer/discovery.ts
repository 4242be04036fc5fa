import type { PublicSigningJwk, SigningAlg } from '../jose/keys.ts';

export const DISCOVERY_PATH = '/.well-known/openid-configuration';
export const JWKS_PATH = '/oauth/discovery/keys';
export const JWKS_ALIAS_PATH = '/-/jwks';
export const DISCOVERY_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'public, max-age=3600, must-revalidate',
  'access-control-allow-origin': '*',
} as const;

export interface DiscoveryDocument {
  issuer: string;
  jwks_uri: string;
  response_types_supported: ['id_token'];
  subject_types_supported: ['public'];
  id_token_signing_alg_values_supported: SigningAlg[];
  scopes_supported: ['openid'];
  claims_supported: string[];
}

export function discoveryDocument(issuerUrl: string, algs: readonly SigningAlg[], claimsSupported: readonly string[]): DiscoveryDocument {
  return {
    issuer: issuerUrl,
    jwks_uri: `${issuerUrl}${JWKS_PATH}`,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [...algs],
    scopes_supported: ['openid'],
    claims_supported: [...claimsSupported],
  };
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Only public members; a private member reaching this point is a bug, so fail closed. */
export function publicJwks(keys: readonly PublicSigningJwk[]): { keys: PublicSigningJwk[] } {
  for (const k of keys) {
    if (PRIVATE_MEMBERS.some((m) => m in k)) throw new Error(`refusing to publish private key material for kid ${k.kid}`);
  }
  return { keys: keys.map((k) => ({ ...k })) };
}
