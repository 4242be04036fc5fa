import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';
import { CI_OIDC_CERTIFICATE_METADATA_NAME, CI_OIDC_CERTIFICATE_TEMPLATE } from '../providers/ci-oidc.ts';
import { GITHUB_CERTIFICATE_METADATA_NAME, GITHUB_CERTIFICATE_TEMPLATE, GITHUB_LEGACY_CERTIFICATE_PRINCIPAL } from '../providers/github.ts';
import { GITLAB_CERTIFICATE_METADATA_NAME, GITLAB_CERTIFICATE_TEMPLATE, GITLAB_LEGACY_CERTIFICATE_PRINCIPAL } from '../providers/gitlab.ts';
import type { CapabilityModule, ServerContext } from '../server/context.ts';
import { ConfigError } from '../server/errors.ts';
import { createVerifier } from '../verifier/verifier.ts';
import type { JwksDocument } from '../verifier/types.ts';
import { AuthorizationConfigError, compileAuthorizations, type Authorizer } from './authorization.ts';
import { CaAuthenticator, type TokenVerifier, type VerifierFactory } from './authenticate.ts';
import { loadCaKeysFromPem, loadOrCreateCaKeys, rotateIntermediate, type CaKeyMaterial, type GeneratedCaOptions } from './ca-keys.ts';
import type { CaConfig } from './config.ts';
import { explainToken, type ExplainReport } from './explain.ts';
import {
  compileBuiltinMetadata,
  compileIssuerConfig,
  IssuerConfigError,
  parseIssuerConfigText,
  type CaIssuer,
  type CaIssuerConfig,
  type CiIssuerMetadata,
  type CompiledMetadata,
} from './issuer-config.ts';
import { registerCaRoutes } from './routes.ts';
import { CaService, type LegacyPrincipal } from './service.ts';

/** Our own issuer, as the CA needs it: its URL and its current public keys (no network). */
export interface OwnIssuer {
  issuerUrl: string;
  jwks(): JwksDocument | Promise<JwksDocument>;
}

export interface CaModuleDeps {
  ownIssuer?: OwnIssuer;
  /** Builds verifiers for the CA's issuer registrations (default: src/verifier `createVerifier`). */
  makeVerifier?: VerifierFactory;
  /** Per-issuer authorization policy evaluator for `Authorization` trees (ours). */
  authorize?: (issuer: CaIssuer, claims: Readonly<Record<string, unknown>>) => boolean;
}

export interface CaModule extends CapabilityModule {
  readonly service: CaService;
  readonly issuerConfig: CaIssuerConfig;
  keys(): CaKeyMaterial;
  rotateIntermediate(): Promise<CaKeyMaterial>;
  explain(token: string): Promise<ExplainReport>;
}

/** The providers' built-in certificate templates, by Fulcio metadata name. */
export function builtinMetadata(): Map<string, CompiledMetadata> {
  const entries: Array<[string, CiIssuerMetadata]> = [
    [GITLAB_CERTIFICATE_METADATA_NAME, GITLAB_CERTIFICATE_TEMPLATE],
    [GITHUB_CERTIFICATE_METADATA_NAME, GITHUB_CERTIFICATE_TEMPLATE],
    [CI_OIDC_CERTIFICATE_METADATA_NAME, CI_OIDC_CERTIFICATE_TEMPLATE],
  ];
  return new Map(entries.map(([name, meta]) => [name, compileBuiltinMetadata(name, meta)]));
}

/** Fulcio's legacy `gitlab-pipeline` / `github-workflow` principals from the provider files. */
export function legacyPrincipals(): Record<'gitlab-pipeline' | 'github-workflow', LegacyPrincipal> {
  const make = (name: string, p: typeof GITLAB_LEGACY_CERTIFICATE_PRINCIPAL | typeof GITHUB_LEGACY_CERTIFICATE_PRINCIPAL): LegacyPrincipal => ({
    requiredClaims: p.requiredClaims,
    optionalClaims: p.optionalClaims,
    metadata: compileBuiltinMetadata(`legacy ${name}`, p.template as CiIssuerMetadata),
    check: (claims) => p.check(claims),
  });
  return {
    'gitlab-pipeline': make('gitlab-pipeline', GITLAB_LEGACY_CERTIFICATE_PRINCIPAL),
    'github-workflow': make('github-workflow', GITHUB_LEGACY_CERTIFICATE_PRINCIPAL),
  };
}

/** Our example configuration: gitlab.com, GitHub Actions, and our own issuer (challenge `sub`). */
export function defaultIssuerDocument(ownIssuerUrl?: string): Record<string, unknown> {
  const oidc: Record<string, unknown> = {
    'https://gitlab.com': { IssuerURL: 'https://gitlab.com', ClientID: 'sigstore', Type: 'ci-provider', CIProvider: GITLAB_CERTIFICATE_METADATA_NAME },
    'https://token.actions.githubusercontent.com': {
      IssuerURL: 'https://token.actions.githubusercontent.com',
      ClientID: 'sigstore',
      Type: 'ci-provider',
      CIProvider: GITHUB_CERTIFICATE_METADATA_NAME,
    },
  };
  if (ownIssuerUrl) oidc[ownIssuerUrl] = { IssuerURL: ownIssuerUrl, ClientID: 'sigstore', Type: 'ci-provider', CIProvider: CI_OIDC_CERTIFICATE_METADATA_NAME };
  return {
    OIDCIssuers: oidc,
    MetaIssuers: {
      'https://token.actions.githubusercontent.com/*': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: GITHUB_CERTIFICATE_METADATA_NAME },
    },
  };
}

/** Loads the Fulcio-format issuer document named by the config (file, inline, or the default). */
export function loadIssuerConfig(config: CaConfig, ownIssuerUrl?: string): CaIssuerConfig {
  const builtins = builtinMetadata();
  try {
    let cfg: CaIssuerConfig;
    if (config.issuerConfigFile) {
      let text: string;
      try {
        text = readFileSync(config.issuerConfigFile, 'utf8');
      } catch {
        throw new ConfigError([`ca.issuerConfigFile: cannot read ${config.issuerConfigFile}; fix the path or remove the key to use the default issuers`]);
      }
      cfg = parseIssuerConfigText(text, builtins, config.issuerConfigFile);
    } else {
      cfg = compileIssuerConfig(config.issuerConfig ?? defaultIssuerDocument(config.includeOwnIssuer ? ownIssuerUrl : undefined), builtins);
    }
    if (ownIssuerUrl && config.includeOwnIssuer && !cfg.oidcIssuers.has(ownIssuerUrl)) {
      const extra = compileIssuerConfig(defaultIssuerDocument(ownIssuerUrl), builtins).oidcIssuers.get(ownIssuerUrl)!;
      (cfg.oidcIssuers as Map<string, CaIssuer>).set(ownIssuerUrl, extra);
    }
    return cfg;
  } catch (err) {
    if (err instanceof IssuerConfigError) throw new ConfigError(err.issues.map((i) => `ca issuer config: ${i}`));
    throw err;
  }
}

function configuredAuthorizations(cfg: CaIssuerConfig): Authorizer | undefined {
  try {
    return compileAuthorizations(cfg);
  } catch (err) {
    if (err instanceof AuthorizationConfigError) throw new ConfigError(err.issues.map((i) => `ca issuer config: ${i}`));
    throw err;
  }
}

/** Builds the signing CA: issuer config, CA keys (generated or PEM), verifier, service and Fulcio routes. */
export async function createCaModule(ctx: ServerContext, deps: CaModuleDeps = {}): Promise<CaModule> {
  const config = ctx.config.ca;
  const ownIssuerUrl = deps.ownIssuer?.issuerUrl;
  const issuerConfig = loadIssuerConfig(config, ownIssuerUrl);
  const authorize = deps.authorize ?? configuredAuthorizations(issuerConfig);
  const verifiers: TokenVerifier[] = [];
  const makeVerifier: VerifierFactory =
    deps.makeVerifier ??
    ((issuers) => {
      const v = createVerifier({ issuers, clock: ctx.clock, logger: ctx.logger });
      verifiers.push(v);
      return v;
    });
  const authenticator = new CaAuthenticator({
    config: issuerConfig,
    makeVerifier,
    ...(deps.ownIssuer ? { localKeySources: new Map([[deps.ownIssuer.issuerUrl, () => deps.ownIssuer!.jwks()]]) } : {}),
    allowInsecureLoopback: config.allowInsecureLoopback,
  });

  const generated: GeneratedCaOptions = {
    db: ctx.store.db,
    kek: ctx.kek,
    clock: ctx.clock,
    algorithm: config.keys.algorithm,
    organization: config.keys.organization,
    commonName: config.keys.commonName,
    rootValiditySeconds: config.keys.rootValidityDays * 86400,
    intermediateValiditySeconds: config.keys.intermediateValidityDays * 86400,
    rotateBeforeSeconds: config.keys.rotateBeforeDays * 86400,
  };
  let keys: CaKeyMaterial =
    config.keys.source === 'pem'
      ? loadCaKeysFromPem({ rootCertificateFile: config.keys.rootCertificateFile!, chainFile: config.keys.chainFile!, keyFile: config.keys.keyFile!, clock: ctx.clock })
      : await loadOrCreateCaKeys(generated);
  ctx.logger.info({ source: keys.source, intermediate: keys.activeIntermediateId }, 'signing CA keys loaded');

  const service = new CaService({
    authenticator,
    keys: () => keys,
    metadata: issuerConfig.metadata,
    legacy: legacyPrincipals(),
    clock: ctx.clock,
    clientSigningAlgorithms: config.clientSigningAlgorithms,
    lenientClaims: config.lenientClaims,
    ...(authorize ? { authorize } : {}),
    ...(ownIssuerUrl ? { urlDefaults: new Map([[ownIssuerUrl, ownIssuerUrl]]) } : {}),
  });

  const issued = new Counter({
    name: 'ci_oidc_ca_certificates_total',
    help: 'Signing certificates issued or refused, by outcome and reason code',
    labelNames: ['outcome', 'code'] as const,
    registers: [ctx.metrics.registry],
  });

  return {
    name: 'ca',
    service,
    issuerConfig,
    keys: () => keys,
    async rotateIntermediate() {
      if (config.keys.source === 'pem') throw new ConfigError(['ca.keys.source is pem: rotate the intermediate by replacing chainFile and keyFile, then restart']);
      keys = await rotateIntermediate(generated);
      ctx.logger.info({ intermediate: keys.activeIntermediateId }, 'signing CA intermediate rotated');
      return keys;
    },
    explain: (token: string) => explainToken(service, authenticator, token),
    routes(app: FastifyInstance) {
      registerCaRoutes(app, {
        service,
        keys: () => keys,
        issuerConfig,
        onIssued: () => issued.inc({ outcome: 'issued', code: 'ok' }),
        onRejected: (err) => issued.inc({ outcome: 'refused', code: err.code }),
      });
    },
    // Ready while the active intermediate can still sign a full-lifetime leaf.
    ready: () => keys.issuing.notAfter > ctx.clock() + 600,
    async close() {
      await Promise.all(verifiers.map((v) => v.close?.()));
    },
  };
}

/** `ci-oidc ca explain` without a server: issuer match, verification and templates; no CA keys needed. */
export function createCaExplainer(options: { config: CaConfig; clock: ServerContext['clock']; logger?: ServerContext['logger']; ownIssuer?: OwnIssuer; makeVerifier?: VerifierFactory }): {
  explain(token: string): Promise<ExplainReport>;
  close(): Promise<void>;
} {
  const issuerConfig = loadIssuerConfig(options.config, options.ownIssuer?.issuerUrl);
  const verifiers: TokenVerifier[] = [];
  const makeVerifier: VerifierFactory =
    options.makeVerifier ??
    ((issuers) => {
      const v = createVerifier({ issuers, clock: options.clock, ...(options.logger ? { logger: options.logger } : {}) });
      verifiers.push(v);
      return v;
    });
  const authenticator = new CaAuthenticator({
    config: issuerConfig,
    makeVerifier,
    ...(options.ownIssuer ? { localKeySources: new Map([[options.ownIssuer.issuerUrl, () => options.ownIssuer!.jwks()]]) } : {}),
    allowInsecureLoopback: options.config.allowInsecureLoopback,
  });
  const authorize = configuredAuthorizations(issuerConfig);
  const service = new CaService({
    authenticator,
    ...(authorize ? { authorize } : {}),
    keys: () => {
      throw new Error('explain never issues certificates');
    },
    metadata: issuerConfig.metadata,
    legacy: legacyPrincipals(),
    clock: options.clock,
    clientSigningAlgorithms: options.config.clientSigningAlgorithms,
    lenientClaims: options.config.lenientClaims,
    ...(options.ownIssuer ? { urlDefaults: new Map([[options.ownIssuer.issuerUrl, options.ownIssuer.issuerUrl]]) } : {}),
  });
  return {
    explain: (token) => explainToken(service, authenticator, token),
    close: async () => {
      await Promise.all(verifiers.map((v) => v.close?.()));
    },
  };
}
