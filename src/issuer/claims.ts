import { GITLAB_CLAIMS, type GitlabClaimSpec } from '../providers/gitlab.ts';
import type { JobContext } from './context.ts';

export type ClaimValue = string | number | boolean | readonly string[] | readonly unknown[] | Readonly<Record<string, unknown>>;
export type Claims = Record<string, ClaimValue>;

export interface ProfileOptions {
  /** Host written into `ci_config_ref_uri` (the instance FQDN, never derived from an overridden `iss`). */
  instanceHost: string;
  /** The project enabled `groups_direct`. */
  groupsDirect: boolean;
}

const GROUPS_DIRECT_MAX = 200;
const boolString = (b: boolean): string => (b ? 'true' : 'false');

export function refPath(ctx: Pick<JobContext, 'ref' | 'refType'>): string {
  return `${ctx.refType === 'tag' ? 'refs/tags/' : 'refs/heads/'}${ctx.ref}`;
}

/** `<host>/<project full path>//<config path>@<ref_path>` (issuer.md §6.1). */
export function ciConfigRefUri(ctx: JobContext, instanceHost: string): string {
  return `${instanceHost}/${ctx.projectPath}//${ctx.configPath}@${refPath(ctx)}`;
}

type Getter = (ctx: JobContext, opts: ProfileOptions) => ClaimValue | undefined;

const GETTERS: Record<string, Getter> = {
  namespace_id: (c) => c.namespaceId,
  namespace_path: (c) => c.namespacePath,
  project_id: (c) => c.projectId,
  project_path: (c) => c.projectPath,
  user_id: (c) => c.user?.id,
  user_login: (c) => c.user?.login,
  user_email: (c) => c.user?.email,
  user_access_level: (c) => c.user?.accessLevel,
  user_identities: (c) => (c.user?.identities ? c.user.identities.map((i) => ({ provider: i.provider, extern_uid: i.extern_uid })) : undefined),
  job_project_id: (c) => c.jobProjectId,
  job_project_path: (c) => c.jobProjectPath,
  job_namespace_id: (c) => c.jobNamespaceId,
  job_namespace_path: (c) => c.jobNamespacePath,
  pipeline_id: (c) => c.pipelineId,
  pipeline_source: (c) => c.pipelineSource,
  job_id: (c) => c.jobId,
  job_source: (c) => c.jobSource,
  ref: (c) => c.ref,
  ref_type: (c) => c.refType,
  ref_path: (c) => refPath(c),
  ref_protected: (c) => boolString(c.refProtected),
  groups_direct: (c, o) => (o.groupsDirect && c.groupsDirect && c.groupsDirect.length <= GROUPS_DIRECT_MAX ? [...c.groupsDirect] : undefined),
  environment: (c) => c.environment?.name,
  environment_protected: (c) => (c.environment ? boolString(c.environment.protected) : undefined),
  deployment_tier: (c) => c.environment?.tier,
  environment_action: (c) => c.environment?.action,
  job_config: (c) => (c.jobConfig ? { url: c.jobConfig.url, sha: c.jobConfig.sha } : undefined),
  runner_id: (c) => c.runnerId,
  runner_environment: (c) => c.runnerEnvironment,
  sha: (c) => c.sha,
  project_visibility: (c) => c.projectVisibility,
  ci_config_ref_uri: (c, o) => (c.configInProject ? ciConfigRefUri(c, o.instanceHost) : undefined),
  ci_config_sha: (c) => (c.configInProject ? c.sha : undefined),
};

for (const spec of GITLAB_CLAIMS) {
  if (!GETTERS[spec.name]) throw new Error(`issuer has no value source for GitLab claim ${spec.name}`);
}

/**
 * The GitLab-profile claims of a job, in GitLab's order. A claim without a value is left out,
 * never null (R7). `legacyV1` restricts the set to the `CI_JOB_JWT` v1 claims.
 */
export function gitlabProfileClaims(ctx: JobContext, opts: ProfileOptions, variant: 'id_token' | 'legacy_v1' = 'id_token'): Claims {
  const out: Claims = {};
  const specs: readonly GitlabClaimSpec[] = variant === 'legacy_v1' ? GITLAB_CLAIMS.filter((s) => s.legacyV1) : GITLAB_CLAIMS;
  for (const spec of specs) {
    const value = GETTERS[spec.name]!(ctx, opts);
    if (value !== undefined && value !== null) out[spec.name] = value;
  }
  return out;
}
