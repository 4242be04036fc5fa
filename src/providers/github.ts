/** GitHub Actions: claim types, `sub` rules and issuer variants (issuer.md §8, verification.md §7). */
import { decodeSubValue, type ClaimSchema, type IssuerPreset, type VerifierProfile } from './claim-types.ts';
import { requestUrlToken, type AmbientSource } from './ambient.ts';

/** All IDs and counters are JSON strings of digits (issuer.md §8.2). */
export const GITHUB_CLAIM_TYPES: ClaimSchema = Object.freeze({
  actor: 'string',
  actor_id: 'digit_string',
  repository: 'string',
  repository_id: 'digit_string',
  repository_owner: 'string',
  repository_owner_id: 'digit_string',
  repository_visibility: 'string',
  ref: 'string',
  ref_type: 'string',
  ref_protected: 'boolean_string',
  sha: 'string',
  head_ref: 'string',
  base_ref: 'string',
  environment: 'string',
  event_name: 'string',
  workflow: 'string',
  workflow_ref: 'string',
  workflow_sha: 'string',
  job_workflow_ref: 'string',
  job_workflow_sha: 'string',
  run_id: 'digit_string',
  run_number: 'digit_string',
  run_attempt: 'digit_string',
  runner_environment: 'string',
  enterprise: 'string',
  enterprise_id: 'digit_string',
  check_run_id: 'string',
});

/** Immutable owner/repository IDs first: they defeat account resurrection (policy.md §8). */
export const GITHUB_TENANT_CLAIMS = ['repository_owner_id', 'repository_id', 'repository_owner', 'repository'] as const;

/**
 * `sub` consistency (verification.md §7.1): `repo:O/R` must name `repository` (ASCII case-insensitive);
 * later pairs whose key is a known claim must equal it; the bare `pull_request` marker is allowed.
 * Checking stops, without failing, at the first part it cannot interpret (custom `include_claim_keys`).
 */
export function checkGithubSub(sub: string, claims: Readonly<Record<string, unknown>>): string | null {
  const parts = sub.split(':');
  let i = 0;
  while (i < parts.length) {
    const key = parts[i] as string;
    if (key === 'pull_request') {
      i++;
      continue;
    }
    if (i + 1 >= parts.length) break;
    const value = decodeSubValue(parts[i + 1] as string);
    if (key === 'repo' || key === 'repository') {
      const repo = claims.repository;
      if (typeof repo !== 'string' || asciiLower(repo) !== asciiLower(value)) return 'sub repo does not equal the repository claim';
    } else if (Object.hasOwn(GITHUB_CLAIM_TYPES, key)) {
      if (claims[key] !== value) return `sub component ${key} does not equal the ${key} claim`;
    } else {
      break;
    }
    i += 2;
  }
  return null;
}

/** ASCII-only case folding: Unicode folding would let e.g. the Kelvin sign match `k`. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

export const githubVerifierProfile: VerifierProfile = Object.freeze({
  name: 'github',
  claimTypes: GITHUB_CLAIM_TYPES,
  shared: true,
  tenantClaims: GITHUB_TENANT_CLAIMS,
  requireJti: true,
  checkSub: checkGithubSub,
});

export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';
export const GITHUB_ACTIONS_PRESET: IssuerPreset = Object.freeze({ id: 'github-actions', issuer: GITHUB_ACTIONS_ISSUER, profile: 'github' });

const SLUG = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,98}[A-Za-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;

function assertSlug(kind: string, value: string): void {
  if (!SLUG.test(value)) throw new Error(`invalid GitHub ${kind} ${JSON.stringify(value)}: letters, digits and inner hyphens only`);
}

/** GHEC with `include_enterprise_slug`: each enterprise is its own exact issuer (issuer.md §8.4). */
export function githubEnterpriseSlugIssuer(slug: string): string {
  assertSlug('enterprise slug', slug);
  return `${GITHUB_ACTIONS_ISSUER}/${slug}`;
}

/** GHE.com data residency, optionally with an enterprise slug. */
export function gheComIssuer(subdomain: string, slug?: string): string {
  assertSlug('GHE.com subdomain', subdomain);
  const base = `https://token.actions.${subdomain}.ghe.com`;
  if (slug === undefined) return base;
  assertSlug('enterprise slug', slug);
  return `${base}/${slug}`;
}

/** GitHub Enterprise Server. */
export function ghesIssuer(hostname: string): string {
  if (!HOSTNAME.test(hostname)) throw new Error(`invalid GHES hostname ${JSON.stringify(hostname)}`);
  return `https://${hostname}/_services/token`;
}


// ---------------------------------------------------------------------------------------------
// Signing-CA certificate templates (signing-ca.md §8). Fulcio's `github-workflow` ci-provider
// metadata from `config/identity/config.yaml`, and its legacy principal
// (`pkg/identity/github/principal.go`). Structural shape: the CA's `CiIssuerMetadata`.
// ---------------------------------------------------------------------------------------------

export const GITHUB_CERTIFICATE_METADATA_NAME = 'github-workflow';

export const GITHUB_CERTIFICATE_TEMPLATE = Object.freeze({
  defaultTemplateValues: Object.freeze({ url: 'https://github.com', environment: '' }),
  extensionTemplates: Object.freeze({
    'github-workflow-trigger': 'event_name',
    'github-workflow-sha': 'sha',
    'github-workflow-name': 'workflow',
    'github-workflow-repository': 'repository',
    'github-workflow-ref': 'ref',
    'build-signer-uri': '{{ .url }}/{{ .job_workflow_ref }}',
    'build-signer-digest': 'job_workflow_sha',
    'runner-environment': 'runner_environment',
    'source-repository-uri': '{{ .url }}/{{ .repository }}',
    'source-repository-digest': 'sha',
    'source-repository-ref': 'ref',
    'source-repository-identifier': 'repository_id',
    'source-repository-owner-uri': '{{ .url }}/{{ .repository_owner }}',
    'source-repository-owner-identifier': 'repository_owner_id',
    'build-config-uri': '{{ .url }}/{{ .workflow_ref }}',
    'build-config-digest': 'workflow_sha',
    'build-trigger': 'event_name',
    'run-invocation-uri': '{{ .url }}/{{ .repository }}/actions/runs/{{ .run_id }}/attempts/{{ .run_attempt }}',
    'source-repository-visibility-at-signing': 'repository_visibility',
    'deployment-environment': 'environment',
  }),
  subjectAlternativeNameTemplate: '{{ .url }}/{{ .job_workflow_ref }}',
});

/** Fulcio's legacy `github-workflow` issuer type: every claim below is required; `environment` is never emitted. */
export const GITHUB_LEGACY_CERTIFICATE_PRINCIPAL = Object.freeze({
  requiredClaims: Object.freeze([
    'job_workflow_ref',
    'sha',
    'event_name',
    'repository',
    'workflow',
    'ref',
    'job_workflow_sha',
    'runner_environment',
    'repository_id',
    'repository_owner',
    'repository_owner_id',
    'repository_visibility',
    'workflow_ref',
    'workflow_sha',
    'run_id',
    'run_attempt',
  ]),
  optionalClaims: Object.freeze([] as string[]),
  template: Object.freeze({
    defaultTemplateValues: Object.freeze({ url: 'https://github.com' }),
    extensionTemplates: Object.freeze(
      Object.fromEntries(Object.entries(GITHUB_CERTIFICATE_TEMPLATE.extensionTemplates).filter(([k]) => k !== 'deployment-environment')),
    ),
    subjectAlternativeNameTemplate: '{{ .url }}/{{ .job_workflow_ref }}',
  }),
  check(_claims: Readonly<Record<string, unknown>>): string | null {
    return null;
  },
});


// ---------------------------------------------------------------------------------------------
// Policy: claim kinds, tenant binding, ID pins (policy.md §4, §8) and trusted-publisher checks
// (trusted-publishing.md §2.2, §6.5; Warehouse `oidc/models/github.py`). Structural shapes:
// src/policy/profile.ts consumes them.
// ---------------------------------------------------------------------------------------------

export const GITHUB_POLICY = Object.freeze({
  idClaims: ['repository_id', 'repository_owner_id', 'actor_id', 'run_id'] as readonly string[],
  boolClaims: ['ref_protected'] as readonly string[],
  intClaims: [] as readonly string[],
  pathClaims: ['repository', 'repository_owner'] as readonly string[],
  stringClaims: [...Object.keys(GITHUB_CLAIM_TYPES).filter((k) => !['repository_id', 'repository_owner_id', 'actor_id', 'run_id', 'ref_protected', 'repository', 'repository_owner'].includes(k)), 'sub', 'iss', 'jti'],
  tenantExact: Object.freeze({ repository_id: 3, repository: 3, repository_owner_id: 2, repository_owner: 2 }) as Readonly<Record<string, number>>,
  tenantPrefix: ['repository'] as readonly string[],
  /** `repo:<owner>/` binds the owner; `repo:<owner>/<repo>:` (or the exact value) the repository. */
  subTenantStrength(literal: string, exact: boolean): number {
    const m = /^repo:([^:/]+)\/([^:]*)(:|$)/.exec(literal);
    if (!m) return 0;
    if (m[2] && (m[3] === ':' || exact)) return 3;
    return 1;
  },
  pins: Object.freeze({ owner: 'repository_owner_id', project: 'repository_id' }),
  pinOwnerWhenBound: ['repository_owner', 'repository', 'sub'] as readonly string[],
  pinProjectWhenBound: ['repository', 'sub'] as readonly string[],
  /** GitHub writes `:` inside a value as `%3A` (issuer.md §8.3). */
  subEscaped: true,
  subLeadingComponent: 'repo',
});

// --- Trusted publishers (GitHub) ---

const GITHUB_OWNER_RE = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
const GITHUB_REPO_RE = /^[A-Za-z0-9._-]{1,100}$/;
// eslint-disable-next-line no-control-regex
const GH_CONTROL = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const GH_NON_ASCII = /[^\u0000-\u007f]/;

/** Validates and normalizes a GitHub publisher's fields (trusted-publishing.md §2.2). */
export function normalizeGithubPublisher(input: { owner: string; project: string; workflow: string; environment?: string; ownerId?: string }): {
  owner: string;
  project: string;
  workflow: string;
  environment: string;
} {
  const owner = String(input.owner ?? '');
  const project = String(input.project ?? '');
  if (!GITHUB_OWNER_RE.test(owner)) throw new Error(`owner ${JSON.stringify(owner)} is not a valid GitHub login`);
  if (!GITHUB_REPO_RE.test(project) || project === '.' || project === '..') throw new Error(`repository ${JSON.stringify(project)} is not a valid GitHub repository name`);
  if (input.ownerId === undefined || !/^[1-9][0-9]{0,19}$/.test(String(input.ownerId))) {
    throw new Error('repository_owner_id is required for GitHub publishers: resolve it with GET https://api.github.com/users/<owner> (field "id")');
  }
  const workflow = String(input.workflow ?? '').trim();
  if (workflow.includes('/')) throw new Error('the workflow is a file name only (it always lives under .github/workflows/): drop the directory');
  if (!/^[^/]+\.ya?ml$/.test(workflow) || GH_CONTROL.test(workflow) || GH_NON_ASCII.test(workflow)) throw new Error('the workflow file name must end in .yml or .yaml');
  const env = String(input.environment ?? '').trim();
  if (GH_CONTROL.test(env) || GH_NON_ASCII.test(env) || env.length > 255) throw new Error('environment must be printable ASCII, at most 255 characters');
  return { owner, project, workflow, environment: env.toLowerCase() };
}

/**
 * Workflow file name from `job_workflow_ref` (Warehouse `_extract_workflow_filename`: the first run of
 * non-`/` characters ending in `.yml`/`.yaml` that is followed by `@`). String operations only.
 */
export function extractGithubWorkflowFilename(jobWorkflowRef: string): string | null {
  if (GH_CONTROL.test(jobWorkflowRef)) return null;
  // Leftmost-longest match of [^/]+\.(yml|yaml)(?=@): the first `/`-free segment holding a match,
  // from its start to its last qualifying `@`.
  for (const seg of jobWorkflowRef.split('/')) {
    for (let at = seg.lastIndexOf('@'); at > 0; at = seg.lastIndexOf('@', at - 1)) {
      const cand = seg.slice(0, at);
      if ((cand.endsWith('.yml') && cand.length > 4) || (cand.endsWith('.yaml') && cand.length > 5)) return cand;
    }
  }
  return null;
}

export const GITHUB_PUBLISHER_REQUIRED_CLAIMS = ['sub', 'repository', 'repository_owner', 'repository_owner_id', 'job_workflow_ref', 'jti', 'ref', 'sha'] as const;

export interface GithubPublisherRow {
  owner: string;
  project: string;
  workflow: string;
  environment: string;
  ownerId: string;
}

export function githubPublisherLookup(claims: Readonly<Record<string, unknown>>): { owner: string; project: string; workflow: string; ownerId: string } | { error: string } {
  for (const name of GITHUB_PUBLISHER_REQUIRED_CLAIMS) {
    if (claims[name] === undefined || claims[name] === null) return { error: `Missing claim '${name}'` };
  }
  for (const name of GITHUB_PUBLISHER_REQUIRED_CLAIMS) {
    if (typeof claims[name] !== 'string') return { error: `Check failed for required claim '${name}'` };
  }
  const repository = claims.repository as string;
  if (GH_NON_ASCII.test(repository) || GH_CONTROL.test(repository)) return { error: "Check failed for required claim 'repository'" };
  const slash = repository.indexOf('/');
  if (slash <= 0) return { error: 'Publisher with matching claims was not found' };
  const workflow = extractGithubWorkflowFilename(claims.job_workflow_ref as string);
  if (workflow === null) return { error: 'Could not job extract workflow filename from OIDC claims' };
  return { owner: repository.slice(0, slash), project: repository.slice(slash + 1), workflow, ownerId: claims.repository_owner_id as string };
}

const GH_UPPER = /[A-Z]/;
const ghLower = (s: string): string => (GH_UPPER.test(s) ? s.replace(/[A-Z]/g, (c) => c.toLowerCase()) : s);

/** Warehouse's GitHub checks in order (the `jti` check is the broker's replay store). */
export function checkGithubPublisher(pub: GithubPublisherRow, claims: Readonly<Record<string, unknown>>): { check: string; message: string; detail: string } | null {
  const repository = `${pub.owner}/${pub.project}`;
  const sub = claims.sub as string;
  const parts = sub.split(':');
  if (!sub || parts.length < 2 || !parts[0] || !parts[1] || ghLower(`${parts[0]}:${parts[1]}`) !== ghLower(`repo:${repository}`)) {
    return { check: 'sub', message: "Check failed for required claim 'sub'", detail: `sub ${JSON.stringify(sub)} does not start with repo:${repository}` };
  }
  const claimRepo = claims.repository as string;
  if (!claimRepo || ghLower(claimRepo) !== ghLower(repository)) return { check: 'repository', message: "Check failed for required claim 'repository'", detail: `repository ${JSON.stringify(claimRepo)} is not ${repository}` };
  if (claims.repository_owner !== pub.owner) return { check: 'repository_owner', message: "Check failed for required claim 'repository_owner'", detail: `repository_owner is not ${pub.owner} (exact)` };
  if (claims.repository_owner_id !== pub.ownerId) return { check: 'repository_owner_id', message: "Check failed for required claim 'repository_owner_id'", detail: 'repository_owner_id differs from the configured owner id (resurrected or renamed account?)' };
  const jwr = claims.job_workflow_ref as string;
  if (!jwr) return { check: 'job_workflow_ref', message: 'The job_workflow_ref claim is empty', detail: 'job_workflow_ref is empty' };
  const ref = claims.ref as string;
  const sha = claims.sha as string;
  if (!ref && !sha) return { check: 'job_workflow_ref', message: 'The ref and sha claims are empty', detail: 'ref and sha are both empty' };
  // Ours: owner/repo compared case-insensitively (like `repository`), the rest exactly.
  const base = `${repository}/.github/workflows/${pub.workflow}`;
  const expected = [ref, sha].filter((r) => !!r).map((r) => `${base}@${r}`);
  const prefixLen = repository.length;
  const ok = expected.some((e) => jwr.length === e.length && ghLower(jwr.slice(0, prefixLen)) === ghLower(e.slice(0, prefixLen)) && jwr.slice(prefixLen) === e.slice(prefixLen));
  if (!ok) {
    return {
      check: 'job_workflow_ref',
      message: "Check failed for required claim 'job_workflow_ref'",
      detail: `The job_workflow_ref claim does not match, expecting one of ['${[...expected].sort().join("', '")}'], got '${jwr}'`,
    };
  }
  if (pub.environment !== '') {
    const env = claims.environment;
    if (typeof env !== 'string' || env === '' || ghLower(env) !== pub.environment) {
      return { check: 'environment', message: "Check failed for optional claim 'environment'", detail: `environment ${JSON.stringify(env ?? null)} is not ${JSON.stringify(pub.environment)} (case-insensitive)` };
    }
  }
  return null;
}

function githubConstraintFailure(claim: string, detail: string): { check: string; message: string; detail: string } {
  return { check: claim, message: `Check failed for required claim '${claim}'`, detail };
}

/** Optional constraints (trusted-publishing.md §7) mapped onto GitHub claims. */
export function checkGithubConstraints(
  constraints: { require_protected_ref?: boolean; ref_type?: string; ref_pattern?: string; require_protected_environment?: boolean; runner_environment?: string; deny_pipeline_sources?: string[]; require_same_job_project?: boolean },
  claims: Readonly<Record<string, unknown>>,
  matchRefPattern: (pattern: string, ref: string) => boolean,
): { check: string; message: string; detail: string } | null {
  const fail = githubConstraintFailure;
  if (constraints.require_protected_ref && claims.ref_protected !== 'true') return fail('ref_protected', 'the ref is not protected');
  if (constraints.ref_type !== undefined && claims.ref_type !== constraints.ref_type) return fail('ref_type', `ref_type is not ${constraints.ref_type}`);
  if (constraints.ref_pattern !== undefined && (typeof claims.ref !== 'string' || !matchRefPattern(constraints.ref_pattern, claims.ref))) return fail('ref', `ref does not match ${constraints.ref_pattern}`);
  if (constraints.require_protected_environment) return fail('environment_protected', 'GitHub tokens carry no environment protection claim: remove require_protected_environment');
  if (constraints.runner_environment !== undefined && claims.runner_environment !== constraints.runner_environment) return fail('runner_environment', `runner_environment is not ${constraints.runner_environment}`);
  if (constraints.deny_pipeline_sources?.length && (typeof claims.event_name !== 'string' || constraints.deny_pipeline_sources.includes(claims.event_name))) {
    return fail('event_name', `event_name ${JSON.stringify(claims.event_name ?? null)} is denied`);
  }
  if (constraints.require_same_job_project) {
    const jwr = claims.job_workflow_ref;
    const repo = claims.repository;
    if (typeof jwr !== 'string' || typeof repo !== 'string' || !ghLower(jwr).startsWith(`${ghLower(repo)}/`)) return fail('job_workflow_ref', 'the executing workflow lives in another repository');
  }
  return null;
}

// Ambient token detection (issuer.md §10).

/** GitHub Actions, Forgejo Actions and ci-oidc's GitHub-compatible mode share the request-URL flow. */
export const githubAmbient: AmbientSource = {
  platform: 'github-actions',
  detect: (env) => !!env.ACTIONS_ID_TOKEN_REQUEST_URL && !!env.ACTIONS_ID_TOKEN_REQUEST_TOKEN,
  getToken: (audience, io) =>
    requestUrlToken(io.env.ACTIONS_ID_TOKEN_REQUEST_URL!, io.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN!, audience, io, 'github-actions'),
};
