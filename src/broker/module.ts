import type { FastifyInstance } from 'fastify';
import { importPolicy, type ImportDialect, type PolicyEngine, type RoleGrant } from '../policy/index.ts';
import { CiOidcError } from '../server/errors.ts';
import type { CapabilityModule, ServerContext } from '../server/context.ts';
import type { Db } from '../store/db.ts';
import { createSqlReplayStore, replayKey } from '../verifier/replay.ts';
import { registerAdminRoutes } from './admin.ts';
import { purgeExpiredCredentials } from './credentials.ts';
import { rawBodies } from './http.ts';
import { createBrokerMetrics } from './metrics.ts';
import type { AdminPorts, JwtSignerPort, ReplayPort, TokenVerifierPort } from './ports.ts';
import { rateLimiters, type RateLimiter } from '../store/rate-limit.ts';
import { registerExchangeRoutes } from './routes.ts';
import { createBrokerService, type BrokerService } from './service.ts';
import { openFastMintWriter } from './sqlite-writer.ts';

export interface BrokerModuleDeps {
  /**
   * The verifier, or a getter for one (the verifier module builds its instance on first use, once our
   * issuer URL is final). When it lists its registrations, /admin/v1/issuers shows them.
   */
  verifier: ListingVerifier | (() => ListingVerifier);
  policy: PolicyEngine;
  /** The issuer's signer on our active key, for roles that ask for JWT access tokens. */
  signer?: JwtSignerPort;
  /** Overrides the SQL replay store (tests). */
  replay?: ReplayPort;
  admin?: AdminPorts;
  env?: NodeJS.ProcessEnv;
}

type ListingVerifier = TokenVerifierPort & { registrations?(): readonly { id: string; issuer: string }[] };

export interface BrokerModule extends CapabilityModule {
  readonly service: BrokerService;
}

/** The verifier's SQL replay store, run on whatever handle the exchange passes: its open transaction. */
export function sqlReplayPort(clock: () => number): ReplayPort {
  return {
    claim(key, expiresAt, db) {
      return createSqlReplayStore(db as unknown as Db, { clock }).claim(replayKey(key.registration, key.iss, key.jti), expiresAt, key.registration);
    },
  };
}

export function createBrokerModule(ctx: ServerContext, deps: BrokerModuleDeps): BrokerModule {
  const config = ctx.config.broker;
  const resolveVerifier = (): ListingVerifier => (typeof deps.verifier === 'function' ? deps.verifier() : deps.verifier);
  const verifier: ListingVerifier = {
    verify: (token, expect) => resolveVerifier().verify(token, expect),
    registrations: () => resolveVerifier().registrations?.() ?? [],
  };
  const env = deps.env ?? process.env;
  const db = ctx.store.db;
  const rl = config.rateLimit;
  const limiters = rateLimiters(ctx.store, rl.backend);
  const limiter = (limit: number): RateLimiter => limiters.create({ limit, windowSeconds: rl.windowSeconds });
  const envAdmin = env.CI_OIDC_ADMIN_TOKEN;
  if (config.adminToken === undefined && envAdmin !== undefined && envAdmin.length > 0 && envAdmin.length < 32) {
    ctx.logger.warn('CI_OIDC_ADMIN_TOKEN is shorter than 32 characters and is ignored: the admin API stays closed; generate one with `openssl rand -hex 32`');
  }
  const adminToken = (): string | undefined => {
    const t = config.adminToken ?? env.CI_OIDC_ADMIN_TOKEN;
    return t !== undefined && t.length >= 32 ? t : undefined;
  };
  // The hot path writes the verifier's replay table itself, so only with the default SQL replay port.
  const fastWriter = !deps.replay && ctx.store.dialect === 'sqlite' && config.sqliteFastPath ? openFastMintWriter(ctx.store.location) : undefined;
  const service = createBrokerService({
    db,
    clock: ctx.clock,
    logger: ctx.logger.child({ module: 'broker' }),
    metrics: createBrokerMetrics(ctx.metrics.registry),
    config,
    verifier,
    replay: deps.replay ?? sqlReplayPort(ctx.clock),
    policy: deps.policy,
    signer: deps.signer,
    limits: { client: limiter(rl.perClient), issuer: limiter(rl.perIssuer) },
    fastWriter,
    pgSingleStatement: !deps.replay && ctx.store.dialect === 'postgres',
    publicUrl: () => ctx.publicUrl(),
  });
  let timer: NodeJS.Timeout | undefined;
  return {
    name: 'broker',
    service,
    routes(app: FastifyInstance) {
      rawBodies(app);
      registerExchangeRoutes(app, service, {
        introspectionSecrets: () => {
          const a = adminToken();
          return [...(a ? [a] : []), ...config.introspectionTokens];
        },
      });
      registerAdminRoutes(app, { db, clock: ctx.clock, policy: deps.policy, verifier, ports: defaultAdminPorts(verifier, deps.admin), adminToken,
        knownAudiences: async () => [...new Set([config.pypi.audience, ...config.audiences, ...(await deps.policy.listRoles()).flatMap((r) => r.document.audiences)])],
      });
    },
    start() {
      if (timer) return;
      timer = setInterval(() => {
        purgeExpiredCredentials(db, ctx.clock(), config.credentials.purgeAfterSeconds).catch((err: unknown) => ctx.logger.warn({ err }, 'credential purge failed'));
      }, 3600_000);
      timer.unref();
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      fastWriter?.close();
      limiters.close();
    },
  };
}

/** Issuer listing from the verifier and role import through the policy importers, unless overridden. */
function defaultAdminPorts(verifier: ListingVerifier, overrides: AdminPorts | undefined): AdminPorts {
  const listRegistrations = (): readonly { id: string; issuer: string }[] => verifier.registrations?.() ?? [];
  return {
    issuers: { list: () => [...listRegistrations()] },
    async importRoles(format, source, options) {
      const registrationId = typeof options.registration === 'string' ? options.registration : undefined;
      if (!registrationId) throw new CiOidcError('registration_required', 'give options.registration: the issuer registration id the imported roles bind');
      const issuerUrl = listRegistrations().find((r) => r.id === registrationId)?.issuer;
      let result;
      try {
        result = importPolicy(format as ImportDialect, source, {
          registrationId,
          ...(issuerUrl ? { issuerUrl } : {}),
          ...(typeof options.name === 'string' ? { name: options.name } : {}),
          ...(typeof options.serviceAudience === 'string' ? { serviceAudience: options.serviceAudience } : {}),
          ...(options.extendedClaimKeys === true ? { extendedClaimKeys: true } : {}),
        });
      } catch (err) {
        throw new CiOidcError((err as { code?: string }).code ?? 'import_invalid', err instanceof Error ? err.message : String(err));
      }
      // AWS trust policies carry no grant: the caller names the role ARN (and other grant fields) here.
      const grant = options.grant && typeof options.grant === 'object' ? (options.grant as Record<string, unknown>) : undefined;
      const roles = grant ? result.roles.map((r) => ({ ...r, grant: { ...(r.grant ?? {}), ...grant } as RoleGrant })) : result.roles;
      return { roles, lints: result.lints };
    },
    ...overrides,
  };
}

/** Adapts the issuer module's signer (our active key) to the broker's JWT access-token port. */
export function issuerSignerPort(issuer: { readonly issuerUrl: string; signJwt(payload: Readonly<Record<string, unknown>>, options?: { typ?: string }): { token: string } }): JwtSignerPort {
  return {
    issuer: () => issuer.issuerUrl,
    sign: (payload, typ) => issuer.signJwt(payload, { typ }).token,
  };
}
