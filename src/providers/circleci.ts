/** CircleCI OIDC tokens: one issuer per organisation (issuer.md §10). */
import type { ClaimSchema, VerifierProfile } from './claim-types.ts';

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
