import { compileRole } from '../../src/policy/role.ts';
import { selectRole, type LoadedRole } from '../../src/policy/decide.ts';
import type { AudienceMode, PolicyRegistration, RoleDecision } from '../../src/policy/types.ts';
import { GITLAB_F2 } from '../helpers/fixtures.ts';

export const GITLAB: PolicyRegistration = { id: 'gitlab.com', issuer: 'https://gitlab.com', profile: 'gitlab', shared: true };
export const GITHUB: PolicyRegistration = { id: 'github-actions', issuer: 'https://token.actions.githubusercontent.com', profile: 'github', shared: true };
export const SELF: PolicyRegistration = { id: 'gl.example', issuer: 'https://gitlab.example.com', profile: 'gitlab', shared: false };
export const CIOIDC: PolicyRegistration = { id: 'ci-oidc', issuer: 'https://ci.example.com', profile: 'ci-oidc', shared: false };

/** issuer.md F2 (gitlab.com-shaped), aud "pypi". */
export const F2 = Object.freeze({ ...GITLAB_F2, iat: 1750405794, nbf: 1750405789, exp: 1750409394, aud: 'pypi' }) as Readonly<Record<string, unknown>>;

/** issuer.md F4 (GitHub docs example). */
export const F4 = Object.freeze({
  jti: 'example-id',
  sub: 'repo:octo-org/octo-repo:environment:prod',
  environment: 'prod',
  aud: 'https://github.com/octo-org',
  ref: 'refs/heads/main',
  sha: 'example-sha',
  repository: 'octo-org/octo-repo',
  repository_owner: 'octo-org',
  actor_id: '12',
  repository_visibility: 'private',
  repository_id: '74',
  repository_owner_id: '65',
  run_id: '1',
  run_number: '10',
  run_attempt: '2',
  runner_environment: 'github-hosted',
  actor: 'octocat',
  workflow: 'example-workflow',
  head_ref: '',
  base_ref: '',
  event_name: 'workflow_dispatch',
  ref_type: 'branch',
  job_workflow_ref: 'octo-org/octo-repo/.github/workflows/oidc.yml@refs/heads/main',
  iss: 'https://token.actions.githubusercontent.com',
  nbf: 1632492967,
  exp: 1632493867,
  iat: 1632493567,
}) as Readonly<Record<string, unknown>>;

export function load(doc: Record<string, unknown>, registration: PolicyRegistration = GITLAB, pins: { owner?: string; project?: string } = {}): LoadedRole {
  const compiled = compileRole({ audiences: ['pypi'], issuer: registration.id, ...doc }, registration);
  return { id: String(doc.name), tenant: 'default', compiled, pins: { owner: pins.owner ?? null, project: pins.project ?? null }, createdAt: 0, updatedAt: 0 };
}

/** Evaluates one role as a named role against claims. */
export function decide(doc: Record<string, unknown>, claims: Readonly<Record<string, unknown>>, registration: PolicyRegistration = GITLAB, mode: AudienceMode = 'single'): RoleDecision {
  return selectRole({ registration, claims, candidates: [load({ name: 'r', ...doc }, registration)], named: true, mode }).decision;
}

/** The `when` tree's result: 'allow', or the candidate's deny reason. */
export function outcome(when: unknown, claims: Readonly<Record<string, unknown>>, registration: PolicyRegistration = SELF): string {
  const d = decide({ when }, { aud: 'pypi', namespace_id: '1', project_id: '2', ...claims }, registration);
  return d.decision === 'allow' ? 'allow' : (d.cause ?? d.reason);
}
