/** Per-platform ambient token sources, in issuer.md §10 order. */
import { AmbientTokenError, checkTokenShape, requestUrlToken, unverifiedAudience, type AmbientSource } from './ambient.ts';

/** GitHub Actions, Forgejo Actions and ci-oidc's GitHub-compatible mode share the request-URL flow. */
export const githubAmbient: AmbientSource = {
  platform: 'github-actions',
  detect: (env) => !!env.ACTIONS_ID_TOKEN_REQUEST_URL && !!env.ACTIONS_ID_TOKEN_REQUEST_TOKEN,
  getToken: (audience, io) =>
    requestUrlToken(io.env.ACTIONS_ID_TOKEN_REQUEST_URL!, io.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN!, audience, io, 'github-actions'),
};

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

export const buildkiteAmbient: AmbientSource = {
  platform: 'buildkite',
  detect: (env) => !!env.BUILDKITE_AGENT_ACCESS_TOKEN && !!env.BUILDKITE_JOB_ID,
  async getToken(audience, io) {
    let out: string;
    try {
      out = await io.exec('buildkite-agent', ['oidc', 'request-token', '--audience', audience]);
    } catch (err) {
      throw new AmbientTokenError('ambient_request_failed', `buildkite: \`buildkite-agent oidc request-token\` failed: ${(err as Error).message}`);
    }
    return { token: checkTokenShape(out, 'buildkite-agent'), source: 'buildkite' };
  },
};

export const circleciAmbient: AmbientSource = {
  platform: 'circleci',
  detect: (env) => !!(env.CIRCLE_OIDC_TOKEN_V2 || env.CIRCLE_OIDC_TOKEN),
  async getToken(audience, io) {
    const name = io.env.CIRCLE_OIDC_TOKEN_V2 ? 'CIRCLE_OIDC_TOKEN_V2' : 'CIRCLE_OIDC_TOKEN';
    const preset = checkTokenShape(io.env[name]!, name);
    if (unverifiedAudience(preset).includes(audience)) return { token: preset, source: `env:${name}` };
    // The injected token's audience is the org UUID; another audience needs the CircleCI CLI.
    try {
      const out = await io.exec('circleci', ['run', 'oidc', 'get', '--claims', JSON.stringify({ aud: audience })]);
      return { token: checkTokenShape(out, 'circleci run oidc get'), source: 'circleci' };
    } catch (err) {
      throw new AmbientTokenError(
        'ambient_audience_unavailable',
        `circleci: ${name} is for audience ${JSON.stringify(unverifiedAudience(preset)[0] ?? '?')}, and \`circleci run oidc get\` failed (${(err as Error).message}); run inside a job with the circleci CLI, or configure the relying party for the org audience`,
      );
    }
  },
};

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

export function variableToken(name: string, value: string, audience: string): { token: string; source: string; warning?: string } {
  const token = checkTokenShape(value, `$${name}`);
  const aud = unverifiedAudience(token);
  const warning = aud.length > 0 && !aud.includes(audience) ? `$${name} is for audience ${JSON.stringify(aud.join(','))}, not ${JSON.stringify(audience)}: the audience is fixed in the CI config` : undefined;
  return { token, source: `env:${name}`, ...(warning ? { warning } : {}) };
}

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

export const AMBIENT_SOURCES: readonly AmbientSource[] = [githubAmbient, buildkiteAmbient, circleciAmbient, gitlabAmbient, ciOidcAmbient];
