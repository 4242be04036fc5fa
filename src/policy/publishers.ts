/**
 * Trusted publishers (trusted-publishing.md §2, §5–§8): normalization of configuration, selection of
 * the most specific row, and the check sequence. Provider-specific checks live in
 * src/providers/gitlab.ts and src/providers/github.ts; this module is generic over them.
 */
import {
  checkGitlabConstraints,
  checkGitlabPublisher,
  gitlabPublisherLookup,
  normalizeGitlabPublisher,
} from '../providers/gitlab.ts';
import {
  checkGithubConstraints,
  checkGithubPublisher,
  GITHUB_ACTIONS_ISSUER,
  githubPublisherLookup,
  normalizeGithubPublisher,
} from '../providers/github.ts';
import { asciiLower, compileGlob } from './glob.ts';
import type { PolicyRegistration, PublisherCheckTrace, PublisherConstraints, PublisherInput, PublisherProvider, StoredPublisher } from './types.ts';

export interface PublisherKey {
  owner: string;
  project: string;
  workflow: string;
  ownerId?: string;
}

export const PENDING_EXPIRY_SECONDS = 30 * 86_400;
export const MAX_PENDING_PER_USER = 3;

/** Which publisher provider serves a registration, or null when trusted publishing does not support it. */
export function publisherProviderFor(registration: PolicyRegistration): PublisherProvider | null {
  if (registration.profile === 'gitlab' || registration.profile === 'ci-oidc') return 'gitlab';
  if (registration.profile === 'github' && registration.issuer === GITHUB_ACTIONS_ISSUER) return 'github';
  return null;
}

const hostCache = new Map<string, string>();

export function instanceHost(registration: PolicyRegistration): string {
  if (registration.instanceHost) return registration.instanceHost;
  let host = hostCache.get(registration.issuer);
  if (host === undefined) {
    try {
      host = new URL(registration.issuer).host;
    } catch {
      host = registration.issuer.replace(/^https:\/\//, '');
    }
    if (hostCache.size > 1000) hostCache.clear();
    hostCache.set(registration.issuer, host);
  }
  return host;
}

const constraintKeys = ['require_protected_ref', 'ref_type', 'ref_pattern', 'require_protected_environment', 'runner_environment', 'deny_pipeline_sources', 'require_same_job_project'];

export function normalizeConstraints(c: unknown): PublisherConstraints {
  if (c === undefined || c === null) return {};
  if (typeof c !== 'object' || Array.isArray(c)) throw new Error('constraints must be an object');
  const src = c as Record<string, unknown>;
  for (const k of Object.keys(src)) if (!constraintKeys.includes(k)) throw new Error(`unknown constraint "${k}"`);
  const out: PublisherConstraints = {};
  for (const b of ['require_protected_ref', 'require_protected_environment', 'require_same_job_project'] as const) {
    if (src[b] !== undefined) {
      if (typeof src[b] !== 'boolean') throw new Error(`${b} must be a boolean`);
      if (src[b]) out[b] = true;
    }
  }
  if (src.ref_type !== undefined) {
    if (src.ref_type !== 'branch' && src.ref_type !== 'tag') throw new Error('ref_type must be "branch" or "tag"');
    out.ref_type = src.ref_type;
  }
  if (src.ref_pattern !== undefined) {
    if (typeof src.ref_pattern !== 'string') throw new Error('ref_pattern must be a string');
    compileGlob(src.ref_pattern, 'native');
    out.ref_pattern = src.ref_pattern;
  }
  if (src.runner_environment !== undefined) {
    if (typeof src.runner_environment !== 'string' || !/^(gitlab-hosted|github-hosted|self-hosted)$/.test(src.runner_environment)) throw new Error('runner_environment must be gitlab-hosted, github-hosted or self-hosted');
    out.runner_environment = src.runner_environment;
  }
  if (src.deny_pipeline_sources !== undefined) {
    const l = src.deny_pipeline_sources;
    if (!Array.isArray(l) || l.length > 32 || l.some((s) => typeof s !== 'string' || !/^[a-z_]{1,64}$/.test(s))) throw new Error('deny_pipeline_sources must be a list of pipeline source names');
    if (l.length) out.deny_pipeline_sources = [...l] as string[];
  }
  return out;
}

/** Validates a publisher configuration for its registration. Throws Error with an operator message. */
export function normalizePublisherInput(input: PublisherInput, registration: PolicyRegistration): { owner: string; project: string; workflow: string; environment: string; constraints: PublisherConstraints; ownerId: string | null; projectId: string | null } {
  const provider = publisherProviderFor(registration);
  if (provider === null) throw new Error(`registration ${registration.id} cannot host trusted publishers: only GitLab registrations and ${GITHUB_ACTIONS_ISSUER} are supported`);
  if (provider !== input.provider) throw new Error(`registration ${registration.id} is a ${provider} issuer, not ${input.provider}`);
  const idOk = (v: unknown) => v === undefined || (typeof v === 'string' && /^[1-9][0-9]{0,19}$/.test(v));
  if (!idOk(input.ownerId) || !idOk(input.projectId)) throw new Error('IDs must be digit strings without sign or leading zero');
  const base =
    provider === 'gitlab'
      ? normalizeGitlabPublisher({ owner: input.owner, project: input.project, workflow: input.workflow, environment: input.environment ?? '' })
      : normalizeGithubPublisher({ owner: input.owner, project: input.project, workflow: input.workflow, environment: input.environment ?? '', ownerId: input.ownerId });
  return { ...base, constraints: normalizeConstraints(input.constraints), ownerId: input.ownerId ?? null, projectId: input.projectId ?? null };
}

/** Lookup key from the token, or the caller-safe reason. */
export function publisherLookupKey(provider: PublisherProvider, claims: Readonly<Record<string, unknown>>): PublisherKey | { error: string } {
  return provider === 'gitlab' ? gitlabPublisherLookup(claims) : githubPublisherLookup(claims);
}

export function indexKey(registration: string, owner: string, project: string): string {
  return `${registration}\u0000${asciiLower(owner)}\u0000${asciiLower(project)}`;
}

/** Most specific row (§6.2 step 4): environment-specific first, then the environment-less one. */
export function pickPublisher<T extends StoredPublisher>(provider: PublisherProvider, rows: readonly T[], key: PublisherKey, claims: Readonly<Record<string, unknown>>): T | undefined {
  const sameWorkflow = rows.filter((r) => r.workflow === key.workflow && (provider === 'gitlab' || (r.owner === key.owner && r.pins.ownerId === key.ownerId)));
  const env = claims.environment;
  if (typeof env === 'string' && env !== '') {
    const want = provider === 'github' ? asciiLower(env) : env;
    const specific = sameWorkflow.find((r) => r.environment === want);
    if (specific) return specific;
  }
  return sameWorkflow.find((r) => r.environment === '');
}

const refGlobCache = new Map<string, ReturnType<typeof compileGlob>>();
function matchRefPattern(pattern: string, ref: string): boolean {
  let g = refGlobCache.get(pattern);
  if (!g) {
    g = compileGlob(pattern, 'native');
    if (refGlobCache.size > 1000) refGlobCache.clear();
    refGlobCache.set(pattern, g);
  }
  return g.match(ref);
}

export interface CheckOutcome {
  ok: boolean;
  /** Caller-safe description (PyPI text, never configured values). */
  message?: string;
  /** Operator detail. */
  detail?: string;
  reason?: 'id-mismatch' | 'predicate-false' | 'claim-missing';
  /** Pins to record (first use). */
  toRecord: { owner?: string; project?: string };
  trace: PublisherCheckTrace[];
}

function checkFailed(trace: PublisherCheckTrace[], check: string, message: string, detail: string, reason: CheckOutcome['reason'] = 'predicate-false'): CheckOutcome {
  trace.push({ check, result: false, why: detail });
  return { ok: false, message, detail, reason, toRecord: {}, trace };
}

/** The check sequence of §6.3 (GitLab) or Warehouse's GitHub checks, then ID pins (§6.4) and constraints (§7). */
export function runPublisherChecks(pub: StoredPublisher, registration: PolicyRegistration, claims: Readonly<Record<string, unknown>>, now: number): CheckOutcome {
  const trace: PublisherCheckTrace[] = [];
  const fail = checkFailed;
  const row = { owner: pub.owner, project: pub.project, workflow: pub.workflow, environment: pub.environment };
  const failure = pub.provider === 'gitlab' ? checkGitlabPublisher(row, claims, instanceHost(registration)) : checkGithubPublisher({ owner: pub.owner, project: pub.project, workflow: pub.workflow, environment: pub.environment, ownerId: pub.pins.ownerId ?? '' }, claims);
  if (failure) return fail(trace, failure.check, failure.message, failure.detail);
  trace.push({ check: pub.provider === 'gitlab' ? 'sub, project_path, ci_config_ref_uri, environment' : 'sub, repository, repository_owner, repository_owner_id, job_workflow_ref, environment', result: true, why: 'all PyPI checks passed' });

  const gitlab = pub.provider === 'gitlab';
  const toRecord: { owner?: string; project?: string } = {};
  const ownerFail = checkPublisherPin(gitlab ? 'namespace_id' : 'repository_owner_id', pub.pins.ownerId ?? null, pub.firstUseDeadline, claims, now, trace, (v) => (toRecord.owner = v));
  if (ownerFail) return fail(trace, ownerFail.claim, `Check failed for required claim '${ownerFail.claim}'`, ownerFail.detail, 'id-mismatch');
  const projectFail = checkPublisherPin(gitlab ? 'project_id' : 'repository_id', pub.pins.projectId ?? null, pub.firstUseDeadline, claims, now, trace, (v) => (toRecord.project = v));
  if (projectFail) return fail(trace, projectFail.claim, `Check failed for required claim '${projectFail.claim}'`, projectFail.detail, 'id-mismatch');

  const cf = pub.provider === 'gitlab' ? checkGitlabConstraints(pub.constraints, claims, matchRefPattern) : checkGithubConstraints(pub.constraints, claims, matchRefPattern);
  if (cf) return fail(trace, cf.check, cf.message, cf.detail);
  if (Object.keys(pub.constraints).length) trace.push({ check: 'constraints', result: true, why: 'optional constraints hold' });
  return { ok: true, toRecord, trace };
}

const ID_RE = /^[1-9][0-9]{0,19}$/;

/** One ID pin (trusted-publishing.md §6.4): null when it holds or is recorded now, else the failure. */
function checkPublisherPin(
  claim: string,
  pinned: string | null,
  deadline: number | null,
  claims: Readonly<Record<string, unknown>>,
  now: number,
  trace: PublisherCheckTrace[],
  record: (v: string) => void,
): { claim: string; detail: string } | null {
  const v = claims[claim];
  if (typeof v !== 'string' || !ID_RE.test(v)) return { claim, detail: `${claim} is missing or not an ID: pins cannot be checked` };
  if (pinned === null) {
    if (deadline !== null && now > deadline) return { claim, detail: 'the first-use deadline passed before the publisher was used: recreate it or enter the IDs' };
    record(v);
    trace.push({ check: claim, result: true, why: 'not pinned yet: recorded on this first use' });
    return null;
  }
  if (v !== pinned) return { claim, detail: `${claim} ${v} differs from the pinned ${pinned} (account or namespace resurrection?)` };
  trace.push({ check: claim, result: true, why: 'pin matches' });
  return null;
}

/** PyPI's `ultranormalize_name`: case, separators and confusable characters folded. */
export function ultranormalizeName(name: string): string {
  return name
    .toLowerCase()
    .replace(/[-_.]+/g, '')
    .replace(/o/g, '0')
    .replace(/[li]/g, '1');
}

export function validatePackageName(name: string): string | null {
  if (typeof name !== 'string' || !/^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$/.test(name) || name.length > 200) {
    return 'project_name must be a valid package name: letters, digits and ._- only, starting and ending with a letter or digit';
  }
  return null;
}
