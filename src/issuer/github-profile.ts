import { refPath, type Claims } from './claims.ts';
import type { JobContext } from './context.ts';
import { escapeSubValue } from './sub.ts';

/**
 * The optional `github` claim profile (issuer.md §9.4): the same facts under GitHub Actions claim
 * names, for relying parties that key on them. `iss` stays ours, so such a token can never pass as
 * one from GitHub.
 */
export function githubProfileClaims(ctx: JobContext): Claims {
  const out: Claims = {
    repository: ctx.projectPath,
    repository_id: ctx.projectId,
    repository_owner: ctx.namespacePath,
    repository_owner_id: ctx.namespaceId,
  };
  if (ctx.user) {
    out.actor = ctx.user.login;
    out.actor_id = ctx.user.id;
  }
  out.ref = refPath(ctx);
  out.ref_type = ctx.refType;
  out.ref_protected = ctx.refProtected ? 'true' : 'false';
  out.sha = ctx.sha;
  if (ctx.environment) out.environment = ctx.environment.name;
  out.event_name = ctx.pipelineSource;
  out.run_id = ctx.pipelineId;
  out.runner_environment = ctx.runnerEnvironment;
  // Only when the pipeline config lives in the project itself, as with ci_config_ref_uri.
  if (ctx.configInProject) {
    const workflowRef = `${ctx.projectPath}/${ctx.configPath}@${refPath(ctx)}`;
    out.workflow_ref = workflowRef;
    out.workflow_sha = ctx.sha;
    out.job_workflow_ref = workflowRef;
    out.job_workflow_sha = ctx.sha;
  }
  return out;
}

export const GITHUB_PROFILE_CLAIM_NAMES = [
  'repository', 'repository_id', 'repository_owner', 'repository_owner_id', 'actor', 'actor_id', 'event_name', 'run_id',
  'workflow_ref', 'workflow_sha', 'job_workflow_ref', 'job_workflow_sha',
] as const;

/** GitHub's default `sub` (issuer.md §8.3): environment, else pull request, else the ref. */
export function githubDefaultSub(ctx: JobContext): string {
  const repo = `repo:${escapeSubValue(ctx.projectPath)}`;
  if (ctx.environment) return `${repo}:environment:${escapeSubValue(ctx.environment.name)}`;
  if (ctx.pipelineSource === 'merge_request_event') return `${repo}:pull_request`;
  return `${repo}:ref:${escapeSubValue(refPath(ctx))}`;
}
