/**
 * Ambient token detection (issuer.md §10): how a CLI running inside a CI job obtains an ID token for an
 * audience, per platform. The order of `AMBIENT_SOURCES` is the spec's order; the first source whose
 * signal is present answers.
 */
import { execFile } from 'node:child_process';

export interface AmbientIo {
  env: NodeJS.ProcessEnv;
  /** HTTP for the request-URL flows (GitHub-style, ci-oidc on-demand). */
  fetch: typeof fetch;
  /** Runs a platform helper (buildkite-agent, circleci) and returns its stdout. */
  exec(file: string, args: string[]): Promise<string>;
}

export interface AmbientToken {
  token: string;
  /** Where it came from, for messages: `github-actions`, `env:PYPI_ID_TOKEN`, … */
  source: string;
  /** Set when the token was taken as found and its audience could not be chosen. */
  warning?: string;
}

export interface AmbientSource {
  readonly platform: string;
  /** True when this platform's signal is in the environment. */
  detect(env: NodeJS.ProcessEnv): boolean;
  getToken(audience: string, io: AmbientIo): Promise<AmbientToken>;
}

export class AmbientTokenError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'AmbientTokenError';
    this.code = code;
  }
}

export const defaultAmbientIo = (): AmbientIo => ({
  env: process.env,
  fetch: globalThis.fetch,
  exec: (file, args) =>
    new Promise((resolve, reject) => {
      execFile(file, args, { timeout: 30_000, maxBuffer: 64 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    }),
});

/** Bounded, validated token text: compact JWS characters only, at most 20,000 characters. */
export function checkTokenShape(token: string, source: string): string {
  const trimmed = token.trim();
  if (trimmed.length === 0 || trimmed.length > 20_000 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(trimmed)) {
    throw new AmbientTokenError('ambient_token_malformed', `${source} did not hold a compact JWT; check that it is an ID token`);
  }
  return trimmed;
}

/** The unverified `aud` of a token, to warn when a fixed-audience token does not match. */
export function unverifiedAudience(token: string): string[] {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { aud?: unknown };
    if (typeof payload.aud === 'string') return [payload.aud];
    if (Array.isArray(payload.aud)) return payload.aud.filter((a): a is string => typeof a === 'string');
  } catch {
    // not decodable: the caller's verifier will say why
  }
  return [];
}

/**
 * The GitHub Actions request-URL flow (issuer.md §8.1), also used by Forgejo Actions and by our issuer's
 * GitHub-compatible mode: `GET <url>&audience=<aud>` with the bearer request token, answer `{"value": jwt}`.
 */
export async function requestUrlToken(url: string, bearer: string, audience: string, io: AmbientIo, source: string): Promise<AmbientToken> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new AmbientTokenError('ambient_request_url_invalid', `${source}: the token request URL is not a URL`);
  }
  target.searchParams.set('audience', audience);
  let res: Response;
  try {
    res = await io.fetch(target, { headers: { authorization: `bearer ${bearer}`, accept: 'application/json' }, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw new AmbientTokenError('ambient_request_failed', `${source}: could not reach the token endpoint ${target.origin}: ${(err as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) {
    const hint = res.status === 403 ? ' (on-demand tokens may not be enabled for this job, or the audience is not allowed)' : '';
    throw new AmbientTokenError('ambient_request_refused', `${source}: the token endpoint answered HTTP ${res.status}${hint}`);
  }
  let value: unknown;
  try {
    value = (JSON.parse(text.slice(0, 64 * 1024)) as { value?: unknown }).value;
  } catch {
    value = undefined;
  }
  if (typeof value !== 'string') throw new AmbientTokenError('ambient_request_failed', `${source}: the token endpoint's answer had no "value"`);
  return { token: checkTokenShape(value, source), source };
}

/** A token read from a variable: shape-checked, with a warning when its audience is not the one asked for. */
export function variableToken(name: string, value: string, audience: string): { token: string; source: string; warning?: string } {
  const token = checkTokenShape(value, `$${name}`);
  const aud = unverifiedAudience(token);
  const warning = aud.length > 0 && !aud.includes(audience) ? `$${name} is for audience ${JSON.stringify(aud.join(','))}, not ${JSON.stringify(audience)}: the audience is fixed in the CI config` : undefined;
  return { token, source: `env:${name}`, ...(warning ? { warning } : {}) };
}
