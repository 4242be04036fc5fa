import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';
import { Keyring, type KeyRecord, type KeyringAction } from '../jose/keyring.ts';
import type { PublicSigningJwk, SigningAlg } from '../jose/keys.ts';
import type { CapabilityModule, ServerContext } from '../server/context.ts';
import type { Claims } from './claims.ts';
import { parseJobContext, expansionVariables, type Vars } from './context.ts';
import { discoveryDocument, publicJwks, type DiscoveryDocument } from './discovery.ts';
import type { IdTokenSpec } from './id-tokens.ts';
import { IssuerCore } from './issuer.ts';
import { keyringBackend } from './repository.ts';
import { registerIssuerRoutes } from './routes.ts';
import { IssuerService } from './service.ts';
import { rateLimiters } from '../store/rate-limit.ts';

export interface MintInput {
  /** GitLab predefined variables (+ CI_OIDC_* extras) describing the job. */
  variables: Vars;
  aud: string | string[];
  lifetime?: number;
  jwtClaims?: IdTokenSpec['jwtClaims'];
}

export interface IssuerModule extends CapabilityModule {
  readonly name: 'issuer';
  /** `iss` of our tokens, byte-equal to the discovery `issuer`. */
  readonly issuerUrl: string;
  readonly keyring: Keyring;
  readonly service: IssuerService;
  readonly core: IssuerCore;
  /** Mints one GitLab-profile ID token for a job context (tests, demo, other capabilities). */
  mint(input: MintInput): { token: string; claims: Claims };
  /** Signs any payload with the active key: the broker's access tokens. `typ` distinguishes token kinds. */
  signJwt(payload: Readonly<Record<string, unknown>>, options?: { typ?: string; alg?: SigningAlg }): { token: string; kid: string; alg: SigningAlg };
  /** The published JWKS (next, active, retired keys; public members only). */
  jwks(): { keys: PublicSigningJwk[] };
  discovery(): DiscoveryDocument;
  keys(): KeyRecord[];
  rotate(alg?: SigningAlg, options?: { emergency?: boolean }): Promise<KeyringAction[]>;
  /** Applies due rotation transitions now (the timer does this periodically). */
  tick(): Promise<KeyringAction[]>;
}

export interface IssuerModuleOptions {
  /** Tests and benchmarks inject key generation (RSA generation is slow). */
  generateKey?: ConstructorParameters<typeof Keyring>[0]['generateKey'];
  env?: NodeJS.ProcessEnv;
}

export async function createIssuerModule(ctx: ServerContext, options: IssuerModuleOptions = {}): Promise<IssuerModule> {
  const cfg = ctx.config.issuer;
  const issuerUrl = (): string => cfg.issuerUrl ?? ctx.publicUrl();
  const instanceUrl = (): string => cfg.instanceUrl ?? issuerUrl();
  const policy = {
    rotationPeriod: cfg.rotation.periodDays * 86400,
    prePublish: cfg.rotation.prePublishHours * 3600,
    retentionGrace: cfg.rotation.retentionGraceHours * 3600,
    // On-demand and id_tokens lifetimes are both capped by maxIdTokenLifetime.
    maxTokenLifetime: cfg.maxIdTokenLifetime,
  };
  const keyring = new Keyring({
    backend: keyringBackend(ctx.store.db),
    sealer: { seal: (pt, aad) => ctx.kek.seal(pt, aad), open: (sealed, aad) => ctx.kek.open(sealed, aad) },
    algs: cfg.algorithms,
    policy,
    clock: ctx.clock,
    generate: { rsaBits: cfg.rsaBits },
    ...(options.generateKey ? { generateKey: options.generateKey } : {}),
  });
  const applied = await keyring.tick();
  logActions(ctx, applied);
  const core = new IssuerCore(cfg, { issuerUrl, instanceUrl }, keyring, ctx.clock);
  const minted = new Counter({
    name: 'ci_oidc_issuer_tokens_minted_total',
    help: 'ID tokens minted by the issuer, by kind (job registration or on demand)',
    labelNames: ['kind'] as const,
    registers: [ctx.metrics.registry],
  });
  // Exact across replicas (one upsert per on-demand mint, a cold path): a per-job budget of a few tokens
  // a minute must not grow with the number of replicas, as a synced counter could for a fresh key.
  const limiters = rateLimiters(ctx.store, ctx.store.dialect === 'postgres' ? 'store' : 'memory');
  const onDemandLimit = limiters.create({ limit: cfg.onDemandRateLimit, windowSeconds: 60 });
  const service = new IssuerService(core, keyring, ctx.store.db, ctx.clock, ctx.logger, cfg.ciSystems, options.env ?? process.env, (kind, n) => minted.inc({ kind }, n), onDemandLimit);
  let timer: NodeJS.Timeout | undefined;

  const tick = async (): Promise<KeyringAction[]> => {
    const actions = await keyring.tick();
    logActions(ctx, actions);
    return actions;
  };

  return {
    name: 'issuer',
    get issuerUrl() {
      return issuerUrl();
    },
    keyring,
    service,
    core,
    mint(input) {
      const context = parseJobContext(input.variables);
      const issued = core.issueJob({
        context,
        job: {
          jobName: context.jobName,
          idTokensSource: 'job',
          jwtClaims: [],
          idTokens: [{ name: 'ID_TOKEN', aud: input.aud, jwtClaims: input.jwtClaims ?? [], where: 'mint', ...(input.lifetime !== undefined ? { lifetime: input.lifetime } : {}) }],
        },
        variables: expansionVariables(input.variables),
      });
      const token = issued.tokens.ID_TOKEN!;
      return { token, claims: JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Claims };
    },
    signJwt: (payload, opts) => core.signJwt(payload, opts),
    jwks: () => publicJwks(keyring.jwks().keys),
    discovery: () => discoveryDocument(issuerUrl(), cfg.algorithms, core.claimsSupported()),
    keys: () => keyring.list(),
    async rotate(alg = cfg.algorithms[0]!, opts = {}) {
      const actions = await keyring.rotate(alg, opts);
      logActions(ctx, actions);
      return actions;
    },
    tick,
    routes(app: FastifyInstance) {
      registerIssuerRoutes(app, {
        service,
        discovery: () => discoveryDocument(issuerUrl(), cfg.algorithms, core.claimsSupported()),
        jwks: () => publicJwks(keyring.jwks().keys),
      });
    },
    ready: () => cfg.algorithms.every((alg) => keyring.signer(alg) !== undefined),
    start() {
      timer = setInterval(() => {
        tick().catch((err: unknown) => ctx.logger.error({ err }, 'issuer key rotation check failed'));
        service.purge().catch((err: unknown) => ctx.logger.error({ err }, 'issuer job purge failed'));
      }, cfg.rotation.checkIntervalSeconds * 1000);
      timer.unref();
    },
    close() {
      if (timer) clearInterval(timer);
      limiters.close();
    },
  };
}

function logActions(ctx: ServerContext, actions: readonly KeyringAction[]): void {
  for (const a of actions) {
    const { type, reason } = a;
    ctx.logger.info({ action: type, reason, ...('kid' in a ? { kid: a.kid } : { alg: a.alg }) }, 'issuer signing key transition');
  }
}
