/** Any other OIDC issuer: registered claims only, no provider-specific types or `sub` grammar. */
import type { VerifierProfile } from './claim-types.ts';

export const genericVerifierProfile: VerifierProfile = Object.freeze({
  name: 'generic',
  claimTypes: Object.freeze({}),
  shared: false,
  tenantClaims: [],
  requireJti: true,
});
