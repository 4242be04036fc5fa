import { AmbientTokenError, defaultAmbientIo, variableToken, type AmbientIo, type AmbientToken } from '../providers/ambient.ts';
import { AMBIENT_SOURCES, missingTokenHint } from '../providers/ambient-sources.ts';

export interface AmbientRequest {
  audience: string;
  /** An explicit token always wins. */
  token?: string | undefined;
  /** Read the token from this variable (wins over detection). */
  tokenEnv?: string | undefined;
}

/** Finds an ID token for `audience` the way PyPI's `id` tool does, across CI platforms (issuer.md §10). */
export async function getAmbientToken(request: AmbientRequest, io: AmbientIo = defaultAmbientIo()): Promise<AmbientToken> {
  if (!request.audience || request.audience.length > 1024) {
    throw new AmbientTokenError('audience_invalid', 'an audience (1 to 1024 characters) is required: pass --audience');
  }
  if (request.token) return variableToken('--token', request.token, request.audience);
  if (request.tokenEnv) {
    const value = io.env[request.tokenEnv];
    if (!value) throw new AmbientTokenError('ambient_token_missing', `--token-env ${request.tokenEnv}: the variable is empty or not set`);
    return variableToken(request.tokenEnv, value, request.audience);
  }
  for (const source of AMBIENT_SOURCES) {
    if (source.detect(io.env)) return source.getToken(request.audience, io);
  }
  const hint = missingTokenHint(io.env);
  throw new AmbientTokenError(
    'ambient_token_missing',
    `no ID token found in this environment${hint ? `; ${hint}` : ': run inside a CI job with OIDC enabled, or pass --token / --token-env'}`,
  );
}
