/** Our own issuer: GitLab-compatible claims, `sub` values escaped with %3A / %25 (issuer.md §3). */
import { decodeSubValue, type VerifierProfile } from './claim-types.ts';
import { checkGitlabStyleSub, GITLAB_CERTIFICATE_TEMPLATE, GITLAB_TENANT_CLAIMS, GITLAB_VERIFIER_CLAIM_TYPES } from './gitlab.ts';
import { AmbientTokenError, checkTokenShape, type AmbientSource } from './ambient.ts';

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

// Ambient token detection (issuer.md §10).

/** ci-oidc's on-demand API (issuer.md §9.1), for CI systems that run our issuer. */
export const ciOidcAmbient: AmbientSource = {
  platform: 'ci-oidc',
  detect: (env) => !!env.CI_JOB_TOKEN && !!env.CI_OIDC_ISSUER_URL,
  async getToken(audience, io) {
    const base = io.env.CI_OIDC_ISSUER_URL!.replace(/\/+$/, '');
    let res: Response;
    try {
      res = await io.fetch(`${base}/api/v1/job/id_tokens`, {
        method: 'POST',
        headers: { 'job-token': io.env.CI_JOB_TOKEN!, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ aud: audience }),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw new AmbientTokenError('ambient_request_failed', `ci-oidc: could not reach ${base}: ${(err as Error).message}`);
    }
    const body = (await res.json().catch(() => ({}))) as { token?: unknown; error?: unknown; message?: unknown };
    if (!res.ok || typeof body.token !== 'string') {
      const why = typeof body.message === 'string' ? `: ${body.message}` : '';
      throw new AmbientTokenError('ambient_request_refused', `ci-oidc: the job API answered HTTP ${res.status}${why}`);
    }
    return { token: checkTokenShape(body.token, 'ci-oidc job API'), source: 'ci-oidc' };
  },
};
