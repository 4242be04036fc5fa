/** GitLab: claim set, `sub` format and the facts every capability needs about GitLab tokens. */
import { type ClaimSchema, type ClaimType, type IssuerPreset, type VerifierProfile } from './claim-types.ts';
import { AmbientTokenError, variableToken, type AmbientSource } from './ambient.ts';

// ---------------------------------------------------------------------------------------------
// GitLab claim set (issuer.md §2). Declarative: the issuer builds tokens from it and the verifier
// derives its type checks from it. Order is GitLab's output order.
// ---------------------------------------------------------------------------------------------

/** JSON shape of a claim value, exactly as GitLab emits it. */
export type GitlabClaimType =
  /** JSON string of decimal digits (GitLab IDs are strings). */
  | 'id'
  | 'string'
  /** the strings "true" / "false" */
  | 'boolean_string'
  /** JSON integer */
  | 'integer'
  /** one of `values` */
  | 'enum'
  /** 40 lowercase hex */
  | 'sha'
  | 'string_array'
  /** array of {"provider","extern_uid"} */
  | 'identities'
  /** object {"url","sha"} */
  | 'object';

/**
 * When a claim is present in a ci-oidc token. GitLab sometimes emits `null` instead; we omit.
 * - always: every id_tokens / V2 token
 * - user: the pipeline has a triggering user
 * - user_role: the user has a role in the project
 * - user_identities: the user opted in to pass identities
 * - groups_direct: enabled for the project and the user is a direct member of <= 200 groups
 * - environment: the job has `environment:` (deployment_tier/environment_action: when set)
 * - config_in_project: the pipeline config comes from the project's own repository
 * - policy_job: the job was injected by a security policy
 */
export type GitlabClaimPresence =
  | 'always'
  | 'user'
  | 'user_role'
  | 'user_identities'
  | 'groups_direct'
  | 'environment'
  | 'config_in_project'
  | 'policy_job';

export interface GitlabClaimSpec {
  readonly name: string;
  readonly type: GitlabClaimType;
  readonly values?: readonly string[];
  readonly presence: GitlabClaimPresence;
  /** Carried by the legacy `CI_JOB_JWT` v1 token. */
  readonly legacyV1: boolean;
  /** GitLab itself may send `null` here (ci-oidc never does). */
  readonly gitlabNullable?: boolean;
}

export const GITLAB_USER_ACCESS_LEVELS = ['guest', 'reporter', 'developer', 'maintainer', 'owner'] as const;
export const GITLAB_DEPLOYMENT_TIERS = ['production', 'staging', 'testing', 'development', 'other'] as const;
export const GITLAB_ENVIRONMENT_ACTIONS = ['start', 'prepare', 'stop', 'verify', 'access'] as const;
export const GITLAB_RUNNER_ENVIRONMENTS = ['gitlab-hosted', 'self-hosted'] as const;
export const GITLAB_PROJECT_VISIBILITIES = ['private', 'internal', 'public'] as const;
export const GITLAB_REF_TYPES = ['branch', 'tag'] as const;

export const GITLAB_CLAIMS: readonly GitlabClaimSpec[] = [
  { name: 'namespace_id', type: 'id', presence: 'always', legacyV1: true },
  { name: 'namespace_path', type: 'string', presence: 'always', legacyV1: true },
  { name: 'project_id', type: 'id', presence: 'always', legacyV1: true },
  { name: 'project_path', type: 'string', presence: 'always', legacyV1: true },
  { name: 'user_id', type: 'id', presence: 'user', legacyV1: true },
  { name: 'user_login', type: 'string', presence: 'user', legacyV1: true },
  { name: 'user_email', type: 'string', presence: 'user', legacyV1: true },
  { name: 'user_access_level', type: 'enum', values: GITLAB_USER_ACCESS_LEVELS, presence: 'user_role', legacyV1: false, gitlabNullable: true },
  { name: 'user_identities', type: 'identities', presence: 'user_identities', legacyV1: false },
  { name: 'job_project_id', type: 'id', presence: 'always', legacyV1: false },
  { name: 'job_project_path', type: 'string', presence: 'always', legacyV1: false },
  { name: 'job_namespace_id', type: 'id', presence: 'always', legacyV1: false },
  { name: 'job_namespace_path', type: 'string', presence: 'always', legacyV1: false },
  { name: 'pipeline_id', type: 'id', presence: 'always', legacyV1: true },
  { name: 'pipeline_source', type: 'string', presence: 'always', legacyV1: true },
  { name: 'job_id', type: 'id', presence: 'always', legacyV1: true },
  { name: 'job_source', type: 'string', presence: 'always', legacyV1: false },
  { name: 'ref', type: 'string', presence: 'always', legacyV1: true },
  { name: 'ref_type', type: 'enum', values: GITLAB_REF_TYPES, presence: 'always', legacyV1: true },
  { name: 'ref_path', type: 'string', presence: 'always', legacyV1: false },
  { name: 'ref_protected', type: 'boolean_string', presence: 'always', legacyV1: true },
  { name: 'groups_direct', type: 'string_array', presence: 'groups_direct', legacyV1: false },
  { name: 'environment', type: 'string', presence: 'environment', legacyV1: true },
  { name: 'environment_protected', type: 'boolean_string', presence: 'environment', legacyV1: true },
  { name: 'deployment_tier', type: 'enum', values: GITLAB_DEPLOYMENT_TIERS, presence: 'environment', legacyV1: true },
  { name: 'environment_action', type: 'enum', values: GITLAB_ENVIRONMENT_ACTIONS, presence: 'environment', legacyV1: true },
  { name: 'job_config', type: 'object', presence: 'policy_job', legacyV1: false },
  { name: 'runner_id', type: 'integer', presence: 'always', legacyV1: false },
  { name: 'runner_environment', type: 'enum', values: GITLAB_RUNNER_ENVIRONMENTS, presence: 'always', legacyV1: false },
  { name: 'sha', type: 'sha', presence: 'always', legacyV1: false },
  { name: 'project_visibility', type: 'enum', values: GITLAB_PROJECT_VISIBILITIES, presence: 'always', legacyV1: false },
  { name: 'ci_config_ref_uri', type: 'string', presence: 'config_in_project', legacyV1: false, gitlabNullable: true },
  { name: 'ci_config_sha', type: 'sha', presence: 'config_in_project', legacyV1: false, gitlabNullable: true },
];

/** Registered JWT claims, written last so they overwrite everything (GitLab's assembly order). */
export const GITLAB_REGISTERED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti'] as const;

export const GITLAB_CLAIM_NAMES: readonly string[] = GITLAB_CLAIMS.map((c) => c.name);

/** Claims GitLab documents but ci-oidc never emits (internal to GitLab). */
export const GITLAB_NEVER_EMITTED_CLAIMS = ['target_audience'] as const;

/** `sub` (issuer.md §3): GitLab's default components, and what ci-oidc templates may use. */
export const GITLAB_SUB_DEFAULT_COMPONENTS = ['project_path', 'ref_type', 'ref'] as const;
export const GITLAB_SUB_COMPONENTS = [
  'project_path',
  'project_id',
  'namespace_path',
  'namespace_id',
  'job_project_path',
  'job_project_id',
  'ref_type',
  'ref',
  'ref_protected',
  'environment',
  'environment_protected',
  'deployment_tier',
] as const;
export type GitlabSubComponent = (typeof GITLAB_SUB_COMPONENTS)[number];
export const GITLAB_SUB_FIRST_COMPONENTS: readonly GitlabSubComponent[] = ['project_path', 'project_id', 'job_project_path', 'job_project_id'];
/** Legacy `CI_JOB_JWT` v1 subject. */
export const gitlabLegacyV1Sub = (jobId: string): string => `job_${jobId}`;

// ---------------------------------------------------------------------------------------------
// Verifier profile (verification.md §7.6, §7.1): claim JSON types derived from GITLAB_CLAIMS.
// ---------------------------------------------------------------------------------------------

function gitlabVerifierType(spec: GitlabClaimSpec): ClaimType {
  switch (spec.type) {
    case 'id':
      return 'id_string';
    case 'boolean_string':
      return 'boolean_string';
    case 'integer':
      return 'nonnegative_integer';
    case 'string_array':
      return 'string_array';
    case 'identities':
      return 'object_array';
    case 'object':
      return 'object';
    case 'enum':
      // Only ref_type is a closed set for relying parties; GitLab grows the other enums over time.
      if (spec.name === 'ref_type' && spec.values) return { enum: spec.values };
      return spec.gitlabNullable ? 'nullable_string' : 'string';
    default:
      return spec.gitlabNullable ? 'nullable_string' : 'string';
  }
}

/** JSON types the verifier enforces for GitLab-profile tokens (wrong type → claim_type_invalid). */
export const GITLAB_VERIFIER_CLAIM_TYPES: ClaimSchema = Object.freeze(Object.fromEntries(GITLAB_CLAIMS.map((c) => [c.name, gitlabVerifierType(c)])));

/** Tenant claims on a shared GitLab issuer, immutable IDs first (policy.md §8). */
export const GITLAB_TENANT_CLAIMS = ['namespace_id', 'project_id', 'namespace_path', 'project_path'] as const;

/**
 * `sub` consistency: `name:value` pairs whose name is a known component must equal that claim.
 * GitLab does not escape values (`decode` is identity); ci-oidc escapes `%3A`/`%25`.
 */
export function checkGitlabStyleSub(sub: string, claims: Readonly<Record<string, unknown>>, decode?: (v: string) => string): string | null {
  // Walks the colon-separated parts in place (hot path: without `decode`, nothing is allocated).
  let start = 0;
  for (;;) {
    const nameEnd = sub.indexOf(':', start);
    if (nameEnd === -1) return 'sub does not split into name:value pairs';
    const valueEnd = sub.indexOf(':', nameEnd + 1);
    const name = componentAt(sub, start, nameEnd);
    if (name !== undefined) {
      const end = valueEnd === -1 ? sub.length : valueEnd;
      const claim = claims[name];
      const equal = decode
        ? claim === decode(sub.slice(nameEnd + 1, end))
        : typeof claim === 'string' && claim.length === end - nameEnd - 1 && sub.startsWith(claim, nameEnd + 1);
      if (!equal) return `sub component ${name} does not equal the ${name} claim`;
    }
    if (valueEnd === -1) return null;
    start = valueEnd + 1;
  }
}

/** The component name spelled exactly by `sub[start, end)`, if it is one. */
function componentAt(sub: string, start: number, end: number): string | undefined {
  for (const name of GITLAB_SUB_COMPONENTS) {
    if (name.length === end - start && sub.startsWith(name, start)) return name;
  }
  return undefined;
}

export const gitlabVerifierProfile: VerifierProfile = Object.freeze({
  name: 'gitlab',
  claimTypes: GITLAB_VERIFIER_CLAIM_TYPES,
  shared: true,
  tenantClaims: GITLAB_TENANT_CLAIMS,
  requireJti: true,
  checkSub: (sub: string, claims: Readonly<Record<string, unknown>>) => checkGitlabStyleSub(sub, claims),
});

/** gitlab.com: the only GitLab issuer registered by default; self-managed instances are added by exact URL. */
export const GITLAB_COM_PRESET: IssuerPreset = Object.freeze({ id: 'gitlab.com', issuer: 'https://gitlab.com', profile: 'gitlab' });


// ---------------------------------------------------------------------------------------------
// Signing-CA certificate templates (signing-ca.md §8). Fulcio's `gitlab-pipeline` ci-provider
// metadata from `config/identity/config.yaml`, byte for byte, and its legacy principal
// (`pkg/identity/gitlabcom/principal.go`). Structural shape: the CA's `CiIssuerMetadata`.
// ---------------------------------------------------------------------------------------------

/** Metadata name Fulcio uses for GitLab (`ci-provider: gitlab-pipeline`). */
export const GITLAB_CERTIFICATE_METADATA_NAME = 'gitlab-pipeline';

export const GITLAB_CERTIFICATE_TEMPLATE = Object.freeze({
  defaultTemplateValues: Object.freeze({ url: 'https://gitlab.com', environment: '' }),
  extensionTemplates: Object.freeze({
    'build-signer-uri': 'https://{{ .ci_config_ref_uri }}',
    'build-signer-digest': 'ci_config_sha',
    'runner-environment': 'runner_environment',
    'source-repository-uri': '{{ .url }}/{{ .project_path }}',
    'source-repository-digest': 'sha',
    'source-repository-ref': 'refs/{{if eq .ref_type "branch"}}heads/{{ else }}tags/{{end}}{{ .ref }}',
    'source-repository-identifier': 'project_id',
    'source-repository-owner-uri': '{{ .url }}/{{ .namespace_path }}',
    'source-repository-owner-identifier': 'namespace_id',
    'build-config-uri': 'https://{{ .ci_config_ref_uri }}',
    'build-config-digest': 'ci_config_sha',
    'build-trigger': 'pipeline_source',
    'run-invocation-uri': '{{ .url }}/{{ .project_path }}/-/jobs/{{ .job_id }}',
    'source-repository-visibility-at-signing': 'project_visibility',
    'deployment-environment': 'environment',
  }),
  subjectAlternativeNameTemplate: 'https://{{ .ci_config_ref_uri }}',
});

/**
 * Fulcio's legacy `gitlab-pipeline` issuer type: required claims, the ones it tolerates missing, and the
 * same URLs as the template (base URL hard-coded to gitlab.com; `environment` never emitted).
 */
export const GITLAB_LEGACY_CERTIFICATE_PRINCIPAL = Object.freeze({
  requiredClaims: Object.freeze([
    'project_path',
    'pipeline_source',
    'pipeline_id',
    'ci_config_ref_uri',
    'job_id',
    'ref',
    'ref_type',
    'namespace_path',
    'namespace_id',
    'project_id',
    'sha',
    'runner_environment',
    'runner_id',
  ]),
  optionalClaims: Object.freeze(['ci_config_sha', 'project_visibility']),
  template: Object.freeze({
    defaultTemplateValues: Object.freeze({ url: 'https://gitlab.com' }),
    extensionTemplates: Object.freeze(
      Object.fromEntries(Object.entries(GITLAB_CERTIFICATE_TEMPLATE.extensionTemplates).filter(([k]) => k !== 'deployment-environment')),
    ),
    subjectAlternativeNameTemplate: 'https://{{ .ci_config_ref_uri }}',
  }),
  /** Extra checks of the legacy principal; returns the Go error text or null. */
  check(claims: Readonly<Record<string, unknown>>): string | null {
    if (claims.ref_type !== 'branch' && claims.ref_type !== 'tag') return `unexpected ref_type: ${String(claims.ref_type)}`;
    if (typeof claims.runner_id !== 'number' || claims.runner_id === 0) return 'missing runner_id claim in ID token';
    return null;
  },
});


// ---------------------------------------------------------------------------------------------
// Policy: claim kinds, tenant binding, ID pins (policy.md §4, §8) and trusted-publisher checks
// (trusted-publishing.md §2.1, §6, §7). Structural shapes: src/policy/profile.ts consumes them.
// ---------------------------------------------------------------------------------------------

/** Path claims: compared ASCII case-insensitively; GitLab paths are unique case-insensitively. */
export const GITLAB_PATH_CLAIMS = ['project_path', 'namespace_path', 'job_project_path', 'job_namespace_path', 'groups_direct'] as const;

export const GITLAB_POLICY = Object.freeze({
  idClaims: GITLAB_CLAIMS.filter((c) => c.type === 'id').map((c) => c.name),
  boolClaims: GITLAB_CLAIMS.filter((c) => c.type === 'boolean_string').map((c) => c.name),
  intClaims: GITLAB_CLAIMS.filter((c) => c.type === 'integer').map((c) => c.name),
  pathClaims: GITLAB_PATH_CLAIMS as readonly string[],
  stringClaims: [...GITLAB_CLAIMS.filter((c) => ['string', 'enum', 'sha'].includes(c.type)).map((c) => c.name), 'sub', 'iss', 'jti'],
  /** `eq`/`in` on these binds the tenant with this strength (policy.md §8.1, §10 specificity 1). */
  tenantExact: Object.freeze({ project_id: 3, project_path: 3, namespace_id: 2, namespace_path: 2 }) as Readonly<Record<string, number>>,
  /** A `prefix` ending in `/`, or a glob whose literal prefix is whole segments ending in `/`, binds these. */
  tenantPrefix: ['project_path', 'namespace_path'] as readonly string[],
  /**
   * Tenant strength of a `sub` literal (exact value or the literal prefix of a pattern):
   * `project_path:<ns>/` or `project_id:<id>:` (policy.md §8.1).
   */
  subTenantStrength(literal: string, exact: boolean): number {
    const id = /^project_id:[1-9][0-9]{0,19}(:|$)/.exec(literal);
    if (id && (id[1] === ':' || exact)) return 3;
    const path = /^project_path:([^:]+)(:|$)/.exec(literal);
    if (path && (path[2] === ':' || exact)) return 3;
    if (/^project_path:[^:/]+\//.test(literal)) return 1;
    return 0;
  },
  /** Immutable IDs pinned against resurrection (policy.md §8.2). */
  pins: Object.freeze({ owner: 'namespace_id', project: 'project_id' }),
  /** Path claims that, when bound, call for the owner / project pin. */
  pinOwnerWhenBound: ['namespace_path', 'project_path', 'sub'] as readonly string[],
  pinProjectWhenBound: ['project_path', 'sub'] as readonly string[],
  /** `sub` values are not escaped on GitLab (issuer.md §3). */
  subEscaped: false,
  /** Allowed `sub` component orders: exact-`sub` policies stop matching after a change (policy.md §9). */
  subLeadingComponent: 'project_path',
});

// --- Trusted publishers (GitLab) ---

const GITLAB_NAME_RUNS = /[._-]{2,}/;
const GITLAB_NAMESPACE_RE = /^[a-zA-Z0-9][a-zA-Z0-9\-_./+]*[a-zA-Z0-9]$/;
const GITLAB_PROJECT_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9]$/;
const GITLAB_ENVIRONMENT_RE = /^[a-zA-Z0-9\-_/${} ]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\u0000-\u007f]/;

function gitlabNameProblem(kind: string, value: string, re: RegExp): string | null {
  if (!re.test(value)) return `${kind} ${JSON.stringify(value)} is not a valid GitLab ${kind}: letters, digits and -_.${kind === 'namespace' ? '/+' : ''} only, starting and ending with a letter or digit`;
  if (/\.(git|atom)$/i.test(value)) return `${kind} must not end in .git or .atom`;
  if (GITLAB_NAME_RUNS.test(value)) return `${kind} must not contain runs of "._-" characters`;
  return null;
}

/** Validates and normalizes a GitLab publisher's fields (trusted-publishing.md §2.1). */
export function normalizeGitlabPublisher(input: { owner: string; project: string; workflow: string; environment?: string }): { owner: string; project: string; workflow: string; environment: string } {
  const owner = String(input.owner ?? '');
  const project = String(input.project ?? '');
  const problem = gitlabNameProblem('namespace', owner, GITLAB_NAMESPACE_RE) ?? gitlabNameProblem('project', project, GITLAB_PROJECT_RE);
  if (problem) throw new Error(problem);
  const workflow = String(input.workflow ?? '').replace(/\s/g, '');
  if (!/\.ya?ml$/.test(workflow)) throw new Error('workflow_filepath must end in .yml or .yaml');
  if (workflow.startsWith('/') || workflow.endsWith('/')) throw new Error('workflow_filepath must not start or end with "/": give the path from the repository root, e.g. ci/release.yml');
  if (CONTROL_CHARS.test(workflow) || NON_ASCII.test(workflow)) throw new Error('workflow_filepath must be printable ASCII');
  let environment = String(input.environment ?? '');
  if (environment.trim() === '') environment = '';
  else if (!GITLAB_ENVIRONMENT_RE.test(environment)) throw new Error('environment may contain letters, digits, spaces and -_/${} only');
  return { owner, project, workflow, environment };
}

/**
 * Workflow path from `ci_config_ref_uri` (trusted-publishing.md §6.2): after the first `//`, the
 * longest prefix that is followed by `@`, ends in `.yml`/`.yaml`, and has a non-`/` character before the
 * suffix plus at least one more character. String operations only (Warehouse's greedy regex, no backtracking).
 */
export function extractGitlabWorkflowPath(ciConfigRefUri: string): string | null {
  if (CONTROL_CHARS.test(ciConfigRefUri)) return null;
  const start = ciConfigRefUri.indexOf('//');
  if (start < 0) return null;
  const text = ciConfigRefUri.slice(start + 2);
  for (let at = text.lastIndexOf('@'); at > 0; at = text.lastIndexOf('@', at - 1)) {
    const p = text.slice(0, at);
    const suffix = p.endsWith('.yaml') ? 5 : p.endsWith('.yml') ? 4 : 0;
    if (suffix === 0) continue;
    const before = p.length - suffix;
    if (before >= 2 && p[before - 1] !== '/') return p;
  }
  return null;
}

/** Claims the GitLab publisher requires, in the order their absence is reported (trusted-publishing.md §6.1). */
export const GITLAB_PUBLISHER_REQUIRED_CLAIMS = ['sub', 'project_path', 'ci_config_ref_uri', 'jti', 'ref_path', 'sha'] as const;

export interface GitlabPublisherRow {
  owner: string;
  project: string;
  workflow: string;
  environment: string;
}

/** Lookup key from the token (§6.2) or the caller-safe failure text. */
export function gitlabPublisherLookup(claims: Readonly<Record<string, unknown>>): { owner: string; project: string; workflow: string } | { error: string } {
  for (const name of GITLAB_PUBLISHER_REQUIRED_CLAIMS) {
    if (claims[name] === undefined || claims[name] === null) return { error: `Missing claim '${name}'` };
  }
  for (const name of GITLAB_PUBLISHER_REQUIRED_CLAIMS) {
    if (typeof claims[name] !== 'string') return { error: `Check failed for required claim '${name}'` };
  }
  const path = claims.project_path as string;
  if (NON_ASCII.test(path) || CONTROL_CHARS.test(path)) return { error: "Check failed for required claim 'project_path'" };
  const slash = path.lastIndexOf('/');
  if (slash <= 0 || slash === path.length - 1) return { error: 'Publisher with matching claims was not found' };
  const workflow = extractGitlabWorkflowPath(claims.ci_config_ref_uri as string);
  if (workflow === null) return { error: 'Could not extract workflow filename from OIDC claims' };
  return { owner: path.slice(0, slash), project: path.slice(slash + 1), workflow };
}

const HAS_UPPER = /[A-Z]/;
const asciiLower = (s: string): string => (HAS_UPPER.test(s) ? s.replace(/[A-Z]/g, (c) => c.toLowerCase()) : s);

/** One failed check: `check` is the claim, `message` the caller text, `detail` the operator text. */
export interface PublisherCheckFailure {
  check: string;
  message: string;
  detail: string;
}

/**
 * The checks of trusted-publishing.md §6.3 in order (the `jti` check is the broker's replay store).
 * `host` is the registration's instance host.
 */
export function checkGitlabPublisher(pub: GitlabPublisherRow, claims: Readonly<Record<string, unknown>>, host: string): PublisherCheckFailure | null {
  const expectedPath = `${pub.owner}/${pub.project}`;
  const sub = claims.sub as string;
  const parts = sub.split(':');
  if (parts.length < 2 || !parts[0] || !parts[1] || asciiLower(`${parts[0]}:${parts[1]}`) !== asciiLower(`project_path:${expectedPath}`)) {
    return { check: 'sub', message: "Check failed for required claim 'sub'", detail: `sub ${JSON.stringify(sub)} does not start with project_path:${expectedPath} (case-insensitive)` };
  }
  const projectPath = claims.project_path as string;
  if (!projectPath || asciiLower(projectPath) !== asciiLower(expectedPath)) {
    return { check: 'project_path', message: "Check failed for required claim 'project_path'", detail: `project_path ${JSON.stringify(projectPath)} is not ${expectedPath}` };
  }
  const uri = claims.ci_config_ref_uri as string;
  if (!uri) return { check: 'ci_config_ref_uri', message: 'The ci_config_ref_uri claim is empty', detail: 'ci_config_ref_uri is empty' };
  const refPath = claims.ref_path as string;
  const sha = claims.sha as string;
  if (!refPath || !sha) return { check: 'ci_config_ref_uri', message: 'The ref_path and sha claims are empty', detail: 'ref_path or sha is empty' };
  const sep = uri.indexOf('//');
  const left = sep < 0 ? uri : uri.slice(0, sep);
  const right = sep < 0 ? '' : uri.slice(sep + 2);
  const expectedLeft = `${host}/${expectedPath}`;
  const rights = [`${pub.workflow}@${refPath}`, `${pub.workflow}@${sha}`];
  if (CONTROL_CHARS.test(uri) || asciiLower(left) !== asciiLower(expectedLeft) || !rights.includes(right)) {
    const expected = rights.map((r) => `${expectedLeft}//${r}`).sort();
    return {
      check: 'ci_config_ref_uri',
      message: "Check failed for required claim 'ci_config_ref_uri'",
      detail: `The ci_config_ref_uri claim does not match, expecting one of ['${expected.join("', '")}'], got '${uri}'`,
    };
  }
  if (pub.environment !== '') {
    const env = claims.environment;
    if (typeof env !== 'string' || env === '' || env !== pub.environment) {
      return { check: 'environment', message: "Check failed for optional claim 'environment'", detail: `environment ${JSON.stringify(env ?? null)} is not the configured ${JSON.stringify(pub.environment)} (exact, case-sensitive)` };
    }
  }
  return null;
}

function constraintFailure(claim: string, detail: string): PublisherCheckFailure {
  return { check: claim, message: `Check failed for required claim '${claim}'`, detail };
}

/** Optional constraints (trusted-publishing.md §7), checked after `environment`. */
export function checkGitlabConstraints(
  constraints: {
    require_protected_ref?: boolean;
    ref_type?: string;
    ref_pattern?: string;
    require_protected_environment?: boolean;
    runner_environment?: string;
    deny_pipeline_sources?: string[];
    require_same_job_project?: boolean;
  },
  claims: Readonly<Record<string, unknown>>,
  matchRefPattern: (pattern: string, ref: string) => boolean,
): PublisherCheckFailure | null {
  const fail = constraintFailure;
  if (constraints.require_protected_ref && claims.ref_protected !== 'true') return fail('ref_protected', 'the ref is not protected');
  if (constraints.ref_type !== undefined && claims.ref_type !== constraints.ref_type) return fail('ref_type', `ref_type is not ${constraints.ref_type}`);
  if (constraints.ref_pattern !== undefined && (typeof claims.ref !== 'string' || !matchRefPattern(constraints.ref_pattern, claims.ref))) return fail('ref', `ref does not match ${constraints.ref_pattern}`);
  if (constraints.require_protected_environment && claims.environment_protected !== 'true') return fail('environment_protected', 'the environment is not protected');
  if (constraints.runner_environment !== undefined && claims.runner_environment !== constraints.runner_environment) return fail('runner_environment', `runner_environment is not ${constraints.runner_environment}`);
  if (constraints.deny_pipeline_sources?.length && (typeof claims.pipeline_source !== 'string' || constraints.deny_pipeline_sources.includes(claims.pipeline_source))) {
    return fail('pipeline_source', `pipeline_source ${JSON.stringify(claims.pipeline_source ?? null)} is denied`);
  }
  if (constraints.require_same_job_project) {
    const jp = claims.job_project_path;
    const pp = claims.project_path;
    if (typeof jp !== 'string' || typeof pp !== 'string' || asciiLower(jp) !== asciiLower(pp)) return fail('job_project_path', 'job_project_path differs from project_path (fork merge-request pipeline)');
  }
  return null;
}

// Ambient token detection (issuer.md §10).

/** PyPI's `id` tool: the audience upper-cased, every non-alphanumeric as `_`, then `_ID_TOKEN`. */
export function audienceVariableName(audience: string): string {
  return `${audience.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_ID_TOKEN`;
}

const FALLBACK_VARIABLES = ['CI_OIDC_TOKEN', 'ID_TOKEN', 'SIGSTORE_ID_TOKEN'];

/** GitLab `id_tokens` (and ours): the audience is fixed in YAML, so we find the variable and warn on a mismatch. */
export const gitlabAmbient: AmbientSource = {
  platform: 'gitlab',
  detect: (env) => [audienceVariableNameFromEnv(env), ...FALLBACK_VARIABLES].some((n) => n !== undefined && !!env[n]),
  async getToken(audience, io) {
    for (const name of [audienceVariableName(audience), ...FALLBACK_VARIABLES]) {
      const value = io.env[name];
      if (!value) continue;
      return variableToken(name, value, audience);
    }
    throw new AmbientTokenError('ambient_token_missing', `no ${audienceVariableName(audience)} or ${FALLBACK_VARIABLES.join('/')} variable`);
  },
};

function audienceVariableNameFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  return Object.keys(env).find((k) => k.endsWith('_ID_TOKEN') && !!env[k]);
}
