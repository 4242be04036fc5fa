/** CircleCI OIDC tokens: one issuer per organisation (issuer.md §10). */
import type { ClaimSchema, VerifierProfile } from './claim-types.ts';
import { AmbientTokenError, checkTokenShape, unverifiedAudience, type AmbientSource } from './ambient.ts';

export const CIRCLECI_CLAIM_TYPES: ClaimSchema = Object.freeze({
  'oidc.circleci.com/project-id': 'string',
  'oidc.circleci.com/vcs-origin': 'string',
  'oidc.circleci.com/vcs-ref': 'string',
  'oidc.circleci.com/context-ids': 'array',
  'oidc.circleci.com/ssh-rerun': 'boolean',
  'oidc.circleci.com/pipeline-id': 'string',
  'oidc.circleci.com/pipeline-definition-id': 'string',
  'oidc.circleci.com/workflow-id': 'string',
});

export const circleciVerifierProfile: VerifierProfile = Object.freeze({
  name: 'circleci',
  claimTypes: CIRCLECI_CLAIM_TYPES,
  // The issuer URL names the organisation, so the registration itself is the tenant.
  shared: false,
  tenantClaims: ['oidc.circleci.com/project-id'],
  requireJti: true,
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `https://oidc.circleci.com/org/<org-uuid>`, registered by that organisation. */
export function circleciIssuer(orgId: string): string {
  if (!UUID.test(orgId)) throw new Error(`invalid CircleCI organisation ID ${JSON.stringify(orgId)}: expected a lowercase UUID`);
  return `https://oidc.circleci.com/org/${orgId}`;
}

// Ambient token detection (issuer.md §10).

export const circleciAmbient: AmbientSource = {
  platform: 'circleci',
  detect: (env) => !!(env.CIRCLE_OIDC_TOKEN_V2 || env.CIRCLE_OIDC_TOKEN),
  async getToken(audience, io) {
    const name = io.env.CIRCLE_OIDC_TOKEN_V2 ? 'CIRCLE_OIDC_TOKEN_V2' : 'CIRCLE_OIDC_TOKEN';
    const preset = checkTokenShape(io.env[name]!, name);
    if (unverifiedAudience(preset).includes(audience)) return { token: preset, source: `env:${name}` };
    // The injected token's audience is the org UUID; another audience needs the CircleCI CLI.
    try {
      const out = await io.exec('circleci', ['run', 'oidc', 'get', '--claims', JSON.stringify({ aud: audience })]);
      return { token: checkTokenShape(out, 'circleci run oidc get'), source: 'circleci' };
    } catch (err) {
      throw new AmbientTokenError(
        'ambient_audience_unavailable',
        `circleci: ${name} is for audience ${JSON.stringify(unverifiedAudience(preset)[0] ?? '?')}, and \`circleci run oidc get\` failed (${(err as Error).message}); run inside a job with the circleci CLI, or configure the relying party for the org audience`,
      );
    }
  },
};
