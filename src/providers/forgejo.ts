/** Forgejo Actions: GitHub-style claims under `<instance>/api/actions` (issuer.md §10). */
import type { VerifierProfile } from './claim-types.ts';
import { GITHUB_CLAIM_TYPES, GITHUB_TENANT_CLAIMS } from './github.ts';

export const forgejoVerifierProfile: VerifierProfile = Object.freeze({
  name: 'forgejo',
  claimTypes: GITHUB_CLAIM_TYPES,
  shared: true,
  tenantClaims: GITHUB_TENANT_CLAIMS,
  requireJti: true,
  // No sub check: newer repositories embed IDs (`repo:owner-<id>/repo-<id>:…`, Forgejo #12355).
});

/** A Forgejo instance's issuer: the instance URL (no trailing slash) plus `/api/actions`. */
export function forgejoIssuer(instanceUrl: string): string {
  const url = new URL(instanceUrl);
  if (url.protocol !== 'https:' || url.username || url.password || url.search || url.hash) {
    throw new Error(`invalid Forgejo instance URL ${JSON.stringify(instanceUrl)}: https, no credentials, query or fragment`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}/api/actions`;
}
