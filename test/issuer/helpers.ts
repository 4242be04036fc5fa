import { randomBytes, type KeyObject } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { kekFromBytes, type Kek } from '../../src/jose/kek.ts';
import { generateSigningKey, type SigningAlg } from '../../src/jose/keys.ts';
import type { KeyringBackend, StoredKey } from '../../src/jose/keyring.ts';
import { createIssuerModule, type IssuerModule } from '../../src/issuer/module.ts';
import { parseConfig, type ConfigInput } from '../../src/server/config.ts';
import type { ServerContext } from '../../src/server/context.ts';
import { isCiOidcError } from '../../src/server/errors.ts';
import { createLogger } from '../../src/server/logger.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import type { Store } from '../../src/store/db.ts';
import type { IssuerConfigInput } from '../../src/issuer/config.ts';
import { openTestStore } from '../helpers/store.ts';

export const ISSUER = 'https://ci.example.com';

/** GitLab predefined variables for the F7 fixture job (issuer.md §13). */
export function f7Variables(): Record<string, string> {
  return {
    CI_PROJECT_ID: '20',
    CI_PROJECT_PATH: 'acme/platform/api',
    CI_PROJECT_NAMESPACE_ID: '72',
    CI_PROJECT_NAMESPACE: 'acme/platform',
    CI_PROJECT_VISIBILITY: 'private',
    CI_PIPELINE_ID: '574',
    CI_PIPELINE_SOURCE: 'push',
    CI_JOB_ID: '302',
    CI_JOB_NAME: 'deploy',
    CI_JOB_TIMEOUT: '300',
    CI_COMMIT_REF_NAME: 'main',
    CI_COMMIT_BRANCH: 'main',
    CI_COMMIT_REF_PROTECTED: 'true',
    CI_COMMIT_SHA: '714a629c0b401fdce83e847fc9589983fc6f46bc',
    CI_CONFIG_PATH: '.gitlab-ci.yml@acme/ci-templates',
    CI_OIDC_CONFIG_SOURCE: 'external_project_source',
    GITLAB_USER_ID: '1',
    GITLAB_USER_LOGIN: 'dev',
    GITLAB_USER_EMAIL: 'dev@example.com',
    CI_OIDC_USER_ACCESS_LEVEL: 'developer',
    CI_RUNNER_ID: '7',
    CI_SERVER_HOST: 'ci.example.com',
  };
}

/** A mutable clock: tests move time instead of sleeping. */
export function testClock(start = 1_750_405_794): { now: () => number; set(t: number): void; advance(s: number): void } {
  let t = start;
  return {
    now: () => t,
    set(v) {
      t = v;
    },
    advance(s) {
      t += s;
    },
  };
}

const keyCache = new Map<SigningAlg, Promise<KeyObject>[]>();

/**
 * Key generation for one keyring: distinct keys within the keyring, but shared across keyrings (each
 * test store is separate), so RSA generation does not dominate the suite.
 */
export function keySource(): (alg: SigningAlg) => Promise<{ alg: SigningAlg; privateKey: KeyObject }> {
  const used = new Map<SigningAlg, number>();
  return async (alg) => {
    const i = used.get(alg) ?? 0;
    used.set(alg, i + 1);
    const list = keyCache.get(alg) ?? [];
    keyCache.set(alg, list);
    while (list.length <= i) list.push(generateSigningKey(alg).then((m) => m.privateKey));
    return { alg, privateKey: await list[i]! };
  };
}

/** An in-memory keyring backend with the same compare-and-set semantics as the store. */
export function memoryBackend(): KeyringBackend & { rows: StoredKey[] } {
  const rows: StoredKey[] = [];
  return {
    rows,
    async list() {
      return rows.map((r) => ({ ...r }));
    },
    async insert(key) {
      if (rows.some((r) => r.kid === key.kid)) throw new Error('duplicate kid');
      rows.push({ ...key });
    },
    async update(kid, expected, patch) {
      const row = rows.find((r) => r.kid === kid && r.state === expected);
      if (!row) return false;
      Object.assign(row, patch);
      return true;
    },
  };
}

export interface IssuerHarness {
  module: IssuerModule;
  ctx: ServerContext;
  clock: ReturnType<typeof testClock>;
  app?: FastifyInstance;
  url?: string;
  close(): Promise<void>;
}

const SHARED_KEK = kekFromBytes(randomBytes(32));

export async function buildIssuer(options: {
  /** Default: a fresh SQLite store, closed with the harness. */
  store?: Store;
  issuer?: IssuerConfigInput;
  clock?: ReturnType<typeof testClock>;
  kek?: Kek;
  http?: boolean;
  env?: NodeJS.ProcessEnv;
  generateKey?: ReturnType<typeof keySource>;
}): Promise<IssuerHarness> {
  const clock = options.clock ?? testClock();
  const ownStore = options.store ? undefined : await openTestStore('sqlite');
  const store = options.store ?? ownStore!;
  // Over HTTP the issuer URL is the listening address (as with server.publicUrl unset).
  const config = parseConfig({ server: { logLevel: 'silent' }, issuer: { ...(options.http ? {} : { issuerUrl: ISSUER }), ...(options.issuer ?? {}) } } as ConfigInput);
  let listening: string | undefined;
  const ctx: ServerContext = {
    config,
    store,
    logger: createLogger({ level: 'silent' }),
    metrics: createMetrics({ defaultMetrics: false }),
    kek: options.kek ?? SHARED_KEK,
    clock: clock.now,
    publicUrl: () => listening ?? ISSUER,
  };
  const module = await createIssuerModule(ctx, { generateKey: options.generateKey ?? keySource(), env: options.env ?? {} });
  const harness: IssuerHarness = {
    module,
    ctx,
    clock,
    close: async () => {
      await module.close?.();
      await ownStore?.close();
    },
  };
  if (options.http) {
    const app = Fastify();
    // Same envelope as src/server/app.ts.
    app.setErrorHandler((error: FastifyError, _req, reply) => {
      if (isCiOidcError(error)) return reply.status(error.status).send({ error: error.code, message: error.message });
      const status = error.statusCode ?? 500;
      return reply.status(status).send({ error: status < 500 ? 'invalid_request' : 'internal_error', message: error.message });
    });
    await app.register(async (scope) => module.routes!(scope));
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    listening = url;
    harness.app = app;
    harness.url = url;
    const closeModule = harness.close;
    harness.close = async () => {
      await app.close();
      await closeModule();
    };
  }
  return harness;
}

export function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

export function decodeHeader(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
