/** Buildkite agent OIDC tokens: claim types and the shared issuer (issuer.md §10). */
import type { ClaimSchema, IssuerPreset, VerifierProfile } from './claim-types.ts';
import { AmbientTokenError, checkTokenShape, type AmbientSource } from './ambient.ts';

export const BUILDKITE_ISSUER = 'https://agent.buildkite.com';

export const BUILDKITE_CLAIM_TYPES: ClaimSchema = Object.freeze({
  organization_slug: 'string',
  organization_id: 'string',
  pipeline_slug: 'string',
  pipeline_id: 'string',
  build_number: 'integer',
  build_branch: 'string',
  build_tag: 'nullable_string',
  build_commit: 'string',
  build_source: 'string',
  step_key: 'nullable_string',
  job_id: 'string',
  agent_id: 'string',
  runner_environment: 'string',
});

/**
 * One issuer shared by every Buildkite organisation: policies pin the organisation (policy.md §8.1).
 * Pipeline slugs repeat across organisations, so they bind no tenant on their own.
 */
export const BUILDKITE_TENANT_CLAIMS = ['organization_id', 'organization_slug'] as const;

/** A `sub` literal binds the tenant when it starts with `organization:<org>:`. */
export function buildkiteSubTenantStrength(literal: string): number {
  return /^organization:[^:]+:/.test(literal) ? 2 : 0;
}

export const buildkiteVerifierProfile: VerifierProfile = Object.freeze({
  name: 'buildkite',
  claimTypes: BUILDKITE_CLAIM_TYPES,
  shared: true,
  tenantClaims: BUILDKITE_TENANT_CLAIMS,
  // The public 2022 sample has no jti; such tokens can never pass single-use endpoints.
  requireJti: false,
});

export const BUILDKITE_PRESET: IssuerPreset = Object.freeze({ id: 'buildkite', issuer: BUILDKITE_ISSUER, profile: 'buildkite' });

// Ambient token detection (issuer.md §10).

export const buildkiteAmbient: AmbientSource = {
  platform: 'buildkite',
  detect: (env) => !!env.BUILDKITE_AGENT_ACCESS_TOKEN && !!env.BUILDKITE_JOB_ID,
  async getToken(audience, io) {
    let out: string;
    try {
      out = await io.exec('buildkite-agent', ['oidc', 'request-token', '--audience', audience]);
    } catch (err) {
      throw new AmbientTokenError('ambient_request_failed', `buildkite: \`buildkite-agent oidc request-token\` failed: ${(err as Error).message}`);
    }
    return { token: checkTokenShape(out, 'buildkite-agent'), source: 'buildkite' };
  },
};
