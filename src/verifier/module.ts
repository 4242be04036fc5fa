import { readFileSync } from 'node:fs';
import { BUILDKITE_PRESET } from '../providers/buildkite.ts';
import { CI_OIDC_REGISTRATION_ID } from '../providers/ci-oidc.ts';
import { GITHUB_ACTIONS_PRESET } from '../providers/github.ts';
import { GITLAB_COM_PRESET } from '../providers/gitlab.ts';
import type { IssuerPreset } from '../providers/claim-types.ts';
import type { VerifyAlg } from '../jose/verify-signature.ts';
import type { CapabilityModule, ServerContext } from '../server/context.ts';
import { ConfigError } from '../server/errors.ts';
import { toRegistrationInput, type IssuerRegistrationConfig, type VerifierConfig } from './config.ts';
import { createSqlReplayStore, type ReplayStore } from './replay.ts';
import { createStoredIssuers, type StoredIssuers } from './stored-issuers.ts';
import type { IssuerRegistrationInput, JwksDocument, KeySourceInput } from './types.ts';
import { createVerifier, type Verifier } from './verifier.ts';

/** What the verifier needs from our own issuer; passed in so the verifier never imports the issuer. */
export interface OwnIssuerKeys {
  /** Read lazily: with port 0 it is known only once the server listens. */
  readonly issuerUrl: string;
  jwks(): JwksDocument | Promise<JwksDocument>;
  readonly algorithms?: readonly VerifyAlg[];
  /** The host our issuer writes into `ci_config_ref_uri` (with its port, unlike a registration's default). */
  readonly instanceHost?: string;
}

export interface VerifierModuleOptions {
  ownIssuer?: OwnIssuerKeys;
}

export interface VerifierModule extends CapabilityModule {
  /** Built on first use, so our issuer URL is final by then. */
  readonly verifier: Verifier;
  readonly replayStore: ReplayStore;
  /** Registrations made through the admin API: stored, applied here, re-read from the store on a timer. */
  readonly issuers: StoredIssuers;
}

function presetRegistration(p: IssuerPreset): IssuerRegistrationInput {
  return { id: p.id, issuer: p.issuer, profile: p.profile, keys: 'discovery' };
}

function readFile(path: string, what: string, id: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`verifier issuer ${JSON.stringify(id)}: cannot read ${what} ${path}: ${(err as Error).message}`]);
  }
}

/** Turns one config entry into a registration, reading static JWKS and CA files. */
export function registrationFromConfig(c: IssuerRegistrationConfig): IssuerRegistrationInput {
  let keys: KeySourceInput;
  if (c.keys === 'discovery') keys = 'discovery';
  else if ('jwksUri' in c.keys) keys = { jwksUri: c.keys.jwksUri };
  else if ('staticJwks' in c.keys) keys = { staticJwks: c.keys.staticJwks };
  else {
    const text = readFile(c.keys.staticJwksFile, 'static JWKS file', c.id);
    try {
      keys = { staticJwks: JSON.parse(text) as JwksDocument };
    } catch {
      throw new ConfigError([`verifier issuer ${JSON.stringify(c.id)}: ${c.keys.staticJwksFile} is not JSON; it must hold a JWKS {"keys":[...]}`]);
    }
  }
  const caCertPem = c.caCertPem ?? (c.caCertFile ? readFile(c.caCertFile, 'CA certificate file', c.id) : undefined);
  return toRegistrationInput(c, keys, caCertPem);
}

/** Presets, configured issuers and (optionally) our own issuer, in that order; explicit entries replace presets. */
export function registrationsFromConfig(cfg: VerifierConfig, ownIssuer?: OwnIssuerKeys): IssuerRegistrationInput[] {
  const explicit = cfg.issuers.map(registrationFromConfig);
  const taken = new Set(explicit.flatMap((r) => [r.id, `${r.issuer}|${r.tenant ?? ''}`]));
  const presets: IssuerPreset[] = [];
  if (cfg.presets.gitlabCom) presets.push(GITLAB_COM_PRESET);
  if (cfg.presets.githubActions) presets.push(GITHUB_ACTIONS_PRESET);
  if (cfg.presets.buildkite) presets.push(BUILDKITE_PRESET);
  const out = presets.filter((p) => !taken.has(p.id) && !taken.has(`${p.issuer}|`)).map(presetRegistration);
  out.push(...explicit);
  if (ownIssuer && cfg.trustOwnIssuer) {
    out.push({
      id: CI_OIDC_REGISTRATION_ID,
      issuer: ownIssuer.issuerUrl,
      profile: 'ci-oidc',
      keys: { keySource: () => ownIssuer.jwks() },
      algorithms: [...(ownIssuer.algorithms ?? ['RS256', 'ES256', 'EdDSA'])],
      ...(ownIssuer.instanceHost ? { instanceHost: ownIssuer.instanceHost } : {}),
    });
  }
  return out;
}

export function createVerifierModule(ctx: ServerContext, options: VerifierModuleOptions = {}): VerifierModule {
  const cfg = ctx.config.verifier;
  const logger = ctx.logger.child({ module: 'verifier' });
  // Validate the configured registrations now, so a bad entry stops start-up with its reason.
  createVerifier({ issuers: registrationsFromConfig(cfg), clock: ctx.clock });
  const replayStore = createSqlReplayStore(ctx.store.db, { clock: ctx.clock });
  let instance: Verifier | undefined;
  const build = (withOwnIssuer: boolean): Verifier =>
    createVerifier({
      issuers: registrationsFromConfig(cfg, withOwnIssuer ? options.ownIssuer : undefined),
      clock: ctx.clock,
      logger,
      replayStore,
      kidMissCooldown: cfg.kidMissCooldown,
      fetchRateLimits: cfg.fetchRateLimits,
      maxTokenLength: cfg.maxTokenLength,
    });
  const get = (): Verifier => {
    if (instance) return instance;
    try {
      instance = build(true);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      // Our issuer URL is only final once the server listens; if it cannot be registered, its tokens
      // fail closed (issuer_unknown) instead of every verification failing.
      logger.error({ issues: err.issues }, 'cannot trust our own issuer in the verifier: fix issuer.issuerUrl / server.publicUrl');
      instance = build(false);
    }
    return instance;
  };
  const verifier: Verifier = {
    verify: (token, expect) => get().verify(token, expect),
    claimReplay: (result) => get().claimReplay(result),
    warmUp: () => get().warmUp(),
    registrations: () => get().registrations(),
    addRegistration: (input) => get().addRegistration(input),
    removeRegistration: (id) => get().removeRegistration(id),
    isConfigRegistration: (id) => get().isConfigRegistration(id),
    keyStatus: () => get().keyStatus(),
    idle: () => get().idle(),
    close: async () => {
      await instance?.close();
    },
  };
  const issuers = createStoredIssuers({ db: ctx.store.db, verifier: get, clock: ctx.clock, logger, allowInsecureLoopback: cfg.adminIssuersAllowInsecureLoopback });
  let purgeTimer: NodeJS.Timeout | undefined;
  let syncTimer: NodeJS.Timeout | undefined;
  return {
    name: 'verifier',
    verifier,
    replayStore,
    issuers,
    async start() {
      // Stored registrations before the warm-up, so their keys load with the rest.
      await issuers.sync().catch((err: unknown) => logger.warn({ err }, 'cannot read stored issuer registrations; retrying on the refresh interval'));
      syncTimer = setInterval(() => {
        issuers.sync().catch((err: unknown) => logger.warn({ err }, 'stored issuer registration refresh failed'));
      }, cfg.registrationRefreshSeconds * 1000);
      syncTimer.unref();
      // Warm the caches in the background; failures are logged per registration and retried on use.
      void get()
        .warmUp()
        .then((status) => {
          for (const s of status) if (s.keys === 0) logger.warn({ registration: s.registration, err: s.lastError }, 'no keys loaded yet for issuer registration');
        })
        .catch((err: unknown) => logger.warn({ err }, 'verifier warm-up failed'));
      purgeTimer = setInterval(() => {
        replayStore.purge(ctx.clock()).catch((err: unknown) => logger.warn({ err }, 'replay purge failed'));
      }, cfg.replayPurgeIntervalSeconds * 1000);
      purgeTimer.unref();
    },
    async close() {
      if (purgeTimer) clearInterval(purgeTimer);
      if (syncTimer) clearInterval(syncTimer);
      await issuers.close();
      await verifier.close();
    },
  };
}
