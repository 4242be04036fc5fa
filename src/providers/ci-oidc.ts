/** Our own issuer: GitLab-compatible claims, `sub` values escaped with %3A / %25 (issuer.md §3). */
import { decodeSubValue, type VerifierProfile } from './claim-types.ts';
import { checkGitlabStyleSub, GITLAB_CERTIFICATE_TEMPLATE, GITLAB_TENANT_CLAIMS, GITLAB_VERIFIER_CLAIM_TYPES } from './gitlab.ts';

export const ciOidcVerifierProfile: VerifierProfile = Object.freeze({
  name: 'ci-oidc',
  claimTypes: GITLAB_VERIFIER_CLAIM_TYPES,
  shared: true,
  tenantClaims: GITLAB_TENANT_CLAIMS,
  requireJti: true,
  checkSub: (sub: string, claims: Readonly<Record<string, unknown>>) => checkGitlabStyleSub(sub, claims, decodeSubValue),
});

/** Registration id of our own issuer inside the verifier. */
export const CI_OIDC_REGISTRATION_ID = 'ci-oidc';


/**
 * Signing-CA certificate template for our own issuer (signing-ca.md §8): GitLab-shaped. `url` has no
 * built-in default: the CA sets it to the issuer URL unless the issuer entry gives one. The config digests
 * use `index` so that a job whose config lives in another project (no `ci_config_sha`) still gets a
 * certificate without `.10`/`.19`; the SAN still requires `ci_config_ref_uri`.
 */
export const CI_OIDC_CERTIFICATE_METADATA_NAME = 'ci-oidc';

export const CI_OIDC_CERTIFICATE_TEMPLATE = Object.freeze({
  defaultTemplateValues: Object.freeze({ environment: '' }),
  extensionTemplates: Object.freeze({
    ...GITLAB_CERTIFICATE_TEMPLATE.extensionTemplates,
    'build-signer-digest': '{{ index . "ci_config_sha" }}',
    'build-config-digest': '{{ index . "ci_config_sha" }}',
  }),
  subjectAlternativeNameTemplate: GITLAB_CERTIFICATE_TEMPLATE.subjectAlternativeNameTemplate,
});
