/**
 * The ambient token sources in issuer.md §10 order; each lives in its provider's file. A new provider
 * with a token source adds it here.
 */
import { buildkiteAmbient } from './buildkite.ts';
import { ciOidcAmbient } from './ci-oidc.ts';
import { circleciAmbient } from './circleci.ts';
import { githubAmbient } from './github.ts';
import { gitlabAmbient } from './gitlab.ts';
import type { AmbientSource } from './ambient.ts';

export { audienceVariableName } from './gitlab.ts';

export const AMBIENT_SOURCES: readonly AmbientSource[] = [githubAmbient, buildkiteAmbient, circleciAmbient, gitlabAmbient, ciOidcAmbient];

/** What to add when a platform is recognised but its token signal is missing. */
export function missingTokenHint(env: NodeJS.ProcessEnv): string | undefined {
  if (env.FORGEJO_ACTIONS === 'true' || env.GITEA_ACTIONS === 'true') {
    return 'this looks like Forgejo Actions without an ID token: add `enable-openid-connect: true` to the job';
  }
  if (env.GITHUB_ACTIONS === 'true') {
    return 'this looks like GitHub Actions without an ID token: add `permissions: id-token: write` to the job (or workflow); reusable workflows outside the organisation need the caller to grant it';
  }
  if (env.GITLAB_CI === 'true') {
    return 'this looks like GitLab CI: declare the token in the job, e.g. `id_tokens: { PYPI_ID_TOKEN: { aud: pypi } }`, or pass --token-env NAME';
  }
  if (env.BUILDKITE === 'true') return 'this looks like Buildkite without agent access: run on an agent with `buildkite-agent` on PATH';
  if (env.CIRCLECI === 'true') {
    return 'this looks like CircleCI without an OIDC token: use a context, or enable "Pass secrets to builds from forked pull requests" for forked PRs';
  }
  return undefined;
}
