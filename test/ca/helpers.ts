import 'reflect-metadata';
import { createHash, generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { createCaModule, type CaModule, type CaModuleDeps } from '../../src/ca/module.ts';
import { kekFromBytes } from '../../src/jose/kek.ts';
import { parseConfig } from '../../src/server/config.ts';
import type { ServerContext } from '../../src/server/context.ts';
import { createLogger } from '../../src/server/logger.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';
import { GITLAB_F2 } from '../helpers/fixtures.ts';

/** issuer.md fixtures, re-signed with test keys (F2 gitlab.com-shaped, F5 GitHub, F7 our issuer, F1 self-managed). */
export const F1 = {
  namespace_id: '72',
  namespace_path: 'my-group',
  project_id: '20',
  project_path: 'my-group/my-project',
  user_id: '1',
  user_login: 'sample-user',
  user_email: 'sample-user@example.com',
  pipeline_id: '574',
  pipeline_source: 'push',
  job_id: '302',
  ref: 'feature-branch-1',
  ref_type: 'branch',
  ref_path: 'refs/heads/feature-branch-1',
  ref_protected: 'false',
  environment: 'test-environment2',
  environment_protected: 'false',
  deployment_tier: 'testing',
  environment_action: 'start',
  job_source: 'push',
  runner_id: 1,
  runner_environment: 'self-hosted',
  sha: '714a629c0b401fdce83e847fc9589983fc6f46bc',
  project_visibility: 'public',
  ci_config_ref_uri: 'gitlab.example.com/my-group/my-project//.gitlab-ci.yml@refs/heads/main',
  ci_config_sha: '714a629c0b401fdce83e847fc9589983fc6f46bc',
  jti: '235b3a54-b797-45c7-ae9a-f72d7bc6ef5b',
  iss: 'https://gitlab.example.com',
  sub: 'project_path:my-group/my-project:ref_type:branch:ref:feature-branch-1',
};

export const F2 = { ...GITLAB_F2 };

export const F5 = {
  actor: 'GrantBirki',
  actor_id: '23362539',
  base_ref: 'main',
  enterprise: 'github',
  enterprise_id: '11468',
  event_name: 'pull_request',
  head_ref: 'release-setup',
  iss: 'https://token.actions.githubusercontent.com',
  job_workflow_ref: 'github/actions-oidc-debugger/.github/workflows/action-test.yml@refs/pull/27/merge',
  job_workflow_sha: '7f93a73b8273af5d35fcd70661704c1cadc57054',
  jti: '4a576b35-ff09-41c5-af2c-ca62dd89b76a',
  ref: 'refs/pull/27/merge',
  ref_protected: 'false',
  ref_type: 'branch',
  repository: 'github/actions-oidc-debugger',
  repository_id: '487920697',
  repository_owner: 'github',
  repository_owner_id: '9919',
  repository_visibility: 'public',
  run_attempt: '1',
  run_id: '16055869479',
  run_number: '33',
  runner_environment: 'github-hosted',
  sha: '7f93a73b8273af5d35fcd70661704c1cadc57054',
  sub: 'repo:github/actions-oidc-debugger:pull_request',
  workflow: 'Test Debugger Action',
  workflow_ref: 'github/actions-oidc-debugger/.github/workflows/action-test.yml@refs/pull/27/merge',
  workflow_sha: '7f93a73b8273af5d35fcd70661704c1cadc57054',
};

export const F7 = {
  namespace_id: '72',
  namespace_path: 'acme/platform',
  project_id: '20',
  project_path: 'acme/platform/api',
  user_id: '1',
  user_login: 'dev',
  user_email: 'dev@example.com',
  user_access_level: 'developer',
  job_project_id: '20',
  job_project_path: 'acme/platform/api',
  job_namespace_id: '72',
  job_namespace_path: 'acme/platform',
  pipeline_id: '574',
  pipeline_source: 'push',
  job_id: '302',
  job_source: 'push',
  ref: 'main',
  ref_type: 'branch',
  ref_path: 'refs/heads/main',
  ref_protected: 'true',
  runner_id: 7,
  runner_environment: 'self-hosted',
  sha: '714a629c0b401fdce83e847fc9589983fc6f46bc',
  project_visibility: 'private',
  ci_config_ref_uri: 'ci.example.com/acme/platform/api//.gitlab-ci.yml@refs/heads/main',
  cost_center: 'cc-1234',
  jti: '9f0c3e0e-4c1b-4a4e-9d55-3c1f2b7a6e10',
  iss: 'https://ci.example.com',
  sub: 'project_id:20:ref_type:branch:ref:main',
};

export interface TestIssuerKey {
  privateKey: KeyObject;
  kid: string;
  jwks: { keys: unknown[] };
}

/** An RS256 signing key with its static JWKS (one per issuer under test). */
export function issuerKey(): TestIssuerKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = createHash('sha256').update(JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n })).digest('base64url');
  return { privateKey, kid, jwks: { keys: [{ ...jwk, kid, use: 'sig', alg: 'RS256' }] } };
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Signs claims as a compact RS256 JWS with fresh times and `aud: sigstore` unless given. */
export function mint(key: TestIssuerKey, claims: Record<string, unknown>, opts: { now?: number; ttl?: number; header?: Record<string, unknown> } = {}): string {
  const now = opts.now ?? nowSeconds();
  const payload = { aud: 'sigstore', iat: now, nbf: now - 5, exp: now + (opts.ttl ?? 3600), ...claims };
  const header = opts.header ?? { alg: 'RS256', typ: 'JWT', kid: key.kid };
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  return `${input}.${cryptoSign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`;
}

export const KEYS = {
  gitlab: issuerKey(),
  github: issuerKey(),
  acme: issuerKey(),
  ours: issuerKey(),
  legacy: issuerKey(),
  other: issuerKey(),
};

export const LEGACY_GITLAB = 'https://gitlab.legacy.test';
export const LEGACY_GITHUB = 'https://github.legacy.test';
export const ACME = 'https://gitlab.acme.example';
export const OURS = 'https://ci.example.com';

/** A Fulcio-format document with static keys for every test issuer. */
export function testIssuerDocument(): Record<string, unknown> {
  return {
    OIDCIssuers: {
      'https://gitlab.com': { IssuerURL: 'https://gitlab.com', ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline', StaticJWKS: KEYS.gitlab.jwks },
      'https://token.actions.githubusercontent.com': {
        IssuerURL: 'https://token.actions.githubusercontent.com',
        ClientID: 'sigstore',
        Type: 'ci-provider',
        CIProvider: 'github-workflow',
        StaticJWKS: KEYS.github.jwks,
      },
      [ACME]: { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline', DefaultTemplateValues: { url: ACME }, StaticJWKS: KEYS.acme.jwks },
      [LEGACY_GITLAB]: { ClientID: 'sigstore', Type: 'gitlab-pipeline', StaticJWKS: KEYS.legacy.jwks },
      [LEGACY_GITHUB]: { ClientID: 'sigstore', Type: 'github-workflow', StaticJWKS: KEYS.legacy.jwks },
    },
    MetaIssuers: {
      'https://token.actions.githubusercontent.com/*': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'github-workflow', StaticJWKS: KEYS.github.jwks },
    },
  };
}

export interface RunningCa {
  url: string;
  module: CaModule;
  app: FastifyInstance;
  store: TestStore;
  ctx: ServerContext;
  close(): Promise<void>;
}

/** The CA module on a real Fastify server at 127.0.0.1:0, with a fresh SQLite store. */
export async function startCa(
  options: { ca?: Record<string, unknown>; deps?: CaModuleDeps; clock?: () => number; store?: TestStore; logLines?: string[] } = {},
): Promise<RunningCa> {
  const store = options.store ?? (await openTestStore('sqlite'));
  const config = parseConfig({ server: { logLevel: 'silent' }, ca: { issuerConfig: testIssuerDocument(), ...(options.ca ?? {}) } });
  const logger = createLogger({ level: 'silent' });
  const ctx: ServerContext = {
    config,
    store,
    logger,
    metrics: createMetrics({ defaultMetrics: false }),
    kek: kekFromBytes(randomBytes(32)),
    clock: options.clock ?? nowSeconds,
    publicUrl: () => 'http://127.0.0.1',
  };
  const module = await createCaModule(ctx, {
    ownIssuer: { issuerUrl: OURS, jwks: () => KEYS.ours.jwks },
    ...(options.deps ?? {}),
  });
  const lines = options.logLines;
  const app = lines
    ? (Fastify({ loggerInstance: createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } }) }) as unknown as FastifyInstance)
    : Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  await app.register(async (scope) => module.routes!(scope));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return {
    url,
    module,
    app,
    store,
    ctx,
    async close() {
      await app.close();
      await module.close?.();
      if (!options.store) await store.close();
    },
  };
}

/** A v2 signingCert body for `token` with an ephemeral key (P-256 unless given) and a PoP over `sub`. */
export function signingRequest(token: string, opts: { key?: { privateKey: KeyObject; publicKey: KeyObject }; challenge?: string; hash?: string | null } = {}) {
  const key = opts.key ?? generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string };
  const challenge = opts.challenge ?? payload.sub;
  const hash = opts.hash === undefined ? 'sha256' : opts.hash;
  return {
    key,
    body: {
      credentials: { oidcIdentityToken: token },
      publicKeyRequest: {
        publicKey: { algorithm: 'ECDSA', content: key.publicKey.export({ type: 'spki', format: 'pem' }) },
        proofOfPossession: cryptoSign(hash, Buffer.from(challenge), key.privateKey).toString('base64'),
      },
    },
  };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}
