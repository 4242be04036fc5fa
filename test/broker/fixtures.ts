import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { createBrokerModule, type BrokerModule, type BrokerModuleDeps } from '../../src/broker/module.ts';
import { createJwsSigner, type JwsSigner } from '../../src/jose/jws.ts';
import { generateSigningKey, type PublicSigningJwk } from '../../src/jose/keys.ts';
import type { Kek } from '../../src/jose/kek.ts';
import { parseConfig, type ConfigInput } from '../../src/server/config.ts';
import type { ServerContext } from '../../src/server/context.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import type { Store } from '../../src/store/db.ts';
import { createVerifier, type Verifier } from '../../src/verifier/verifier.ts';

export const GITLAB = 'https://gitlab.com';

/** A local issuer posing as gitlab.com: its static JWKS is registered for `https://gitlab.com`. */
export interface TestIssuer {
  issuer: string;
  jwks: { keys: PublicSigningJwk[] };
  signer: JwsSigner;
  mint(overrides?: Record<string, unknown>, options?: { omit?: string[] }): string;
  claims(overrides?: Record<string, unknown>): Record<string, unknown>;
}

export async function createTestIssuer(issuer = GITLAB, clock: () => number = () => Math.floor(Date.now() / 1000)): Promise<TestIssuer> {
  const key = await generateSigningKey('RS256');
  const signer = createJwsSigner({ alg: 'RS256', kid: key.kid, privateKey: key.privateKey });
  const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => {
    const now = clock();
    const ns = (overrides.namespace_path as string | undefined) ?? 'mygroup';
    const path = (overrides.project_path as string | undefined) ?? `${ns}/myproject`;
    const ref = (overrides.ref as string | undefined) ?? 'main';
    const refType = (overrides.ref_type as string | undefined) ?? 'branch';
    const host = new URL(issuer).host;
    return {
      namespace_id: '72',
      namespace_path: ns,
      project_id: '20',
      project_path: path,
      user_id: '1',
      user_login: 'alice',
      user_email: 'alice@example.com',
      user_access_level: 'maintainer',
      pipeline_id: '9001',
      pipeline_source: 'push',
      job_id: '123456',
      ref,
      ref_type: refType,
      ref_path: refType === 'tag' ? `refs/tags/${ref}` : `refs/heads/${ref}`,
      ref_protected: 'true',
      runner_id: 7,
      runner_environment: 'gitlab-hosted',
      sha: '0123456789abcdef0123456789abcdef01234567',
      project_visibility: 'private',
      ci_config_ref_uri: `${host}/${path}//.gitlab-ci.yml@refs/heads/${ref}`,
      ci_config_sha: '0123456789abcdef0123456789abcdef01234567',
      jti: randomUUID(),
      iss: issuer,
      iat: now,
      nbf: now - 5,
      exp: now + 300,
      sub: `project_path:${path}:ref_type:${refType}:ref:${ref}`,
      aud: 'pypi',
      ...overrides,
    };
  };
  return {
    issuer,
    jwks: { keys: [key.publicJwk] },
    signer,
    claims,
    mint(overrides = {}, options = {}) {
      const c = claims(overrides);
      for (const k of options.omit ?? []) delete c[k];
      return signer.sign(c);
    },
  };
}

export function testVerifier(issuers: TestIssuer[], clock: () => number): Verifier {
  return createVerifier({
    issuers: issuers.map((i) => ({ id: new URL(i.issuer).host, issuer: i.issuer, profile: 'gitlab' as const, keys: { staticJwks: i.jwks } })),
    clock,
  });
}

export interface TestBroker {
  app: FastifyInstance;
  url: string;
  module: BrokerModule;
  ctx: ServerContext;
  close(): Promise<void>;
}

/** A fastify server on 127.0.0.1:0 with only the broker module, over the given store. */
export async function startBroker(store: Store, deps: BrokerModuleDeps, config: ConfigInput = {}, clock: () => number = () => Math.floor(Date.now() / 1000)): Promise<TestBroker> {
  const cfg = parseConfig({ ...config, server: { host: '127.0.0.1', port: 0, logLevel: 'silent', ...(config.server ?? {}) } });
  const app = Fastify({ logger: false });
  let url = 'http://127.0.0.1';
  const ctx: ServerContext = {
    config: cfg,
    store,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics({ defaultMetrics: false }),
    kek: {} as Kek,
    clock,
    publicUrl: () => url,
  };
  const module = createBrokerModule(ctx, deps);
  await app.register(async (scope) => module.routes!(scope));
  app.get('/metrics', async (_r, reply) => reply.header('content-type', ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return {
    app,
    url,
    module,
    ctx,
    async close() {
      await app.close();
      await module.close?.();
    },
  };
}

/** The real policy engine over the test store, seeing the verifier's registrations. */
export async function realPolicy(store: Store, verifier: Verifier) {
  const { createPolicyEngine } = await import('../../src/policy/index.ts');
  return createPolicyEngine({
    store,
    registrations: verifier.registrations().map((r) => ({ id: r.id, issuer: r.issuer, profile: r.profile, shared: r.shared, instanceHost: r.instanceHost, ...(r.tenant ? { tenant: r.tenant } : {}) })),
  });
}

/** The trusted publisher most broker tests use: GitLab project mygroup/myproject may upload sampleproject. */
export const SAMPLE_PUBLISHER = { provider: 'gitlab', registration: 'gitlab.com', owner: 'mygroup', project: 'myproject', workflow: '.gitlab-ci.yml' } as const;

/** A broker over `store` trusting a test gitlab.com with the sample publisher registered. */
export async function startPublisherBroker(store: Store, config: ConfigInput = {}): Promise<{ broker: TestBroker; gitlab: TestIssuer }> {
  const gitlab = await createTestIssuer();
  const verifier = testVerifier([gitlab], () => Math.floor(Date.now() / 1000));
  const policy = await realPolicy(store, verifier);
  await policy.createPublisher({ ...SAMPLE_PUBLISHER }, { projects: ['sampleproject'] });
  return { broker: await startBroker(store, { verifier, policy }, config), gitlab };
}
