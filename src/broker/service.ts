import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { PolicyEngine, RoleDecision, StoredRole } from '../policy/index.ts';
import type { Clock } from '../server/clock.ts';
import type { Logger } from '../server/logger.ts';
import type { Database } from '../store/schema.ts';
import type { BrokerConfig } from './config.ts';
import { looksLikeCredential } from './credential.ts';
import { findActiveCredential, revokeCredentialByToken, type CredentialScope } from './credentials.ts';
import { ExchangeError, MESSAGES } from './errors.ts';
import { runExchange, type Endpoint, type ExchangeDeps, type ExchangeResult } from './exchange.ts';
import { computeTtl, grantFlag, grantNumber, grantStrings, intersectScopes, selectTargets } from './grants.ts';
import type { BrokerMetrics } from './metrics.ts';
import type { AudienceMode, Grant, JwtSignerPort, ReplayPort, TokenVerifierPort, VerifiedToken, VerifyExpectation } from './ports.ts';
import type { RateLimiter } from '../store/rate-limit.ts';
import type { FastMintWriter } from './sqlite-writer.ts';
import { TT_ACCESS_TOKEN, TT_JWT, type TokenExchangeRequest } from './wire/oauth.ts';
import type { StsRequest, StsSuccess } from './wire/sts.ts';
import type { VaultAuth } from './wire/vault.ts';

export interface BrokerServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  metrics: BrokerMetrics;
  config: BrokerConfig;
  verifier: TokenVerifierPort;
  replay: ReplayPort;
  policy: PolicyEngine;
  signer?: JwtSignerPort | undefined;
  limits: { client: RateLimiter; issuer: RateLimiter };
  fastWriter?: FastMintWriter | undefined;
  pgSingleStatement?: boolean;
  /** Our public base URL: the `iss` reported by introspection. */
  publicUrl(): string;
}

export interface RequestMeta {
  clientIp: string;
  requestId: string;
}

export interface TokenExchangeResponse {
  access_token: string;
  issued_token_type: string;
  token_type: string;
  expires_in: number;
  scope?: string;
}

export type BrokerService = ReturnType<typeof createBrokerService>;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Claims copied into a PyPI credential's metadata when present. */
const PYPI_METADATA_CLAIMS = ['ref_path', 'sha', 'ref', 'environment'] as const;

const POLICY_KIND: Record<string, ExchangeError['kind']> = {
  'role-not-found': 'role_not_found',
  'policy-store-unavailable': 'internal',
  'audience-mismatch': 'invalid_target',
};

export function createBrokerService(deps: BrokerServiceDeps) {
  const { config, policy } = deps;
  const exchangeDeps: ExchangeDeps = {
    db: deps.db,
    clock: deps.clock,
    logger: deps.logger,
    metrics: deps.metrics,
    verifier: deps.verifier,
    replay: deps.replay,
    signer: deps.signer,
    limits: deps.limits,
    fastWriter: deps.fastWriter,
    pgSingleStatement: deps.pgSingleStatement ?? false,
  };
  const exchange = (input: Parameters<typeof runExchange>[1]): Promise<ExchangeResult> => runExchange(exchangeDeps, input);
  const prefix = config.credentials.prefix;

  /** Audiences the verifier accepts before the policy engine checks the chosen role's own. */
  async function audiencesFor(roles: StoredRole[]): Promise<string[]> {
    const set = new Set<string>(config.audiences);
    for (const r of roles) for (const a of r.document.audiences) set.add(a);
    if (set.size === 0) throw new ExchangeError('denied', 'no-role-matched', MESSAGES.denied, { detail: 'no role defines an audience for this endpoint' });
    return [...set];
  }

  async function namedRole(name: string): Promise<StoredRole> {
    let role: StoredRole | undefined;
    try {
      role = await policy.getRole(name);
    } catch (err) {
      throw new ExchangeError('internal', 'policy-store-unavailable', MESSAGES.internal, { cause: err });
    }
    if (!role) throw new ExchangeError('role_not_found', 'role-not-found', MESSAGES.role_not_found, { detail: `role ${name}` });
    return role;
  }

  async function rolesOfType(type: string): Promise<StoredRole[]> {
    try {
      return (await policy.listRoles()).filter((r) => (r.document.grant?.type ?? 'oauth') === type);
    } catch (err) {
      throw new ExchangeError('internal', 'policy-store-unavailable', MESSAGES.internal, { cause: err });
    }
  }

  async function decideRole(v: VerifiedToken, opts: { roleName?: string; grantType: string; audienceMode: AudienceMode }): Promise<RoleDecision & { role: StoredRole }> {
    let d: RoleDecision;
    try {
      d = await policy.decideRole(
        { registrationId: v.registration.id, claims: v.claims },
        { ...(opts.roleName !== undefined ? { roleName: opts.roleName } : { grantType: opts.grantType }), audienceMode: opts.audienceMode === 'any-of' ? 'multi' : opts.audienceMode },
      );
    } catch (err) {
      throw new ExchangeError('internal', 'policy-store-unavailable', MESSAGES.internal, { cause: err });
    }
    if (d.decision !== 'allow' || !d.role) {
      const kind = POLICY_KIND[d.reason] ?? 'denied';
      throw new ExchangeError(kind, d.reason, MESSAGES[kind], { detail: `selected=${d.selected ?? '-'} candidates=${d.candidates.map((c) => `${c.name}:${c.reason}`).join(',')}` });
    }
    const type = d.role.document.grant?.type ?? 'oauth';
    if (type !== opts.grantType) {
      throw new ExchangeError('invalid_target', 'grant-type-mismatch', MESSAGES.invalid_target, { detail: `role ${d.role.document.name} grants ${type}, endpoint needs ${opts.grantType}` });
    }
    return d as RoleDecision & { role: StoredRole };
  }

  const ttlFor = (v: VerifiedToken, role: StoredRole, requested: number | undefined, boundDefault: boolean, extraCaps: (number | undefined)[] = []): number => {
    const g = role.document.grant;
    const caps = [grantNumber(g, 'maxTtl'), ...extraCaps].filter((x): x is number => x !== undefined);
    return computeTtl({
      requested,
      roleMaxTtl: caps.length > 0 ? Math.min(...caps) : undefined,
      defaultTtl: config.credentials.defaultTtl,
      deploymentMaxTtl: config.credentials.maxTtl,
      boundToTokenExpiry: grantFlag(g, 'boundToTokenExpiry') ?? boundDefault,
      tokenExp: Number(v.claims.exp),
      now: deps.clock(),
    });
  };

  // The PyPI decision depends on the configuration only: one function for the service rather than a
  // closure per request (each also costs a defineProperty under tsx's keepNames, ~1% of a mint).
  const pypiExpect: VerifyExpectation = { audiences: [config.pypi.audience], audienceMode: 'strict-string' };
  const pypiPrefix = config.pypi.prefix ?? prefix;
  const decidePypi = async (v: VerifiedToken): Promise<Grant> => {
    if (config.pypi.disabledProviders.includes(v.registration.profile) || config.pypi.disabledRegistrations.includes(v.registration.id)) {
      const provider = v.registration.profile === 'github' ? 'GitHub' : v.registration.profile === 'gitlab' ? 'GitLab' : v.registration.id;
      throw new ExchangeError('not_enabled', 'not-enabled', MESSAGES.not_enabled, { description: provider });
    }
    // PyPI profile: RS256 with a kid, whatever else the registration allows.
    if (v.alg !== 'RS256' || !v.kid) throw new ExchangeError('token_invalid', v.alg !== 'RS256' ? 'alg_not_allowed' : 'key_not_found', MESSAGES.token_invalid);
    let d;
    try {
      d = await policy.decidePublisher({ registrationId: v.registration.id, claims: v.claims });
    } catch (err) {
      throw new ExchangeError('internal', 'policy-store-unavailable', MESSAGES.internal, { cause: err });
    }
    if (d.decision !== 'allow') {
      const kind = d.code === 'invalid-pending-publisher' ? 'pending_exists' : d.code === 'invalid-payload' ? 'bad_request' : d.reason === 'policy-store-unavailable' ? 'internal' : 'denied';
      throw new ExchangeError(kind, d.reason, MESSAGES[kind], { description: d.description, detail: d.explain.operatorMessage });
    }
    let publisher = d.publisher;
    if (d.kind === 'pending' && d.pending) {
      try {
        publisher = (await policy.reifyPendingPublisher(d.pending.id, v.claims)).publisher;
      } catch (err) {
        throw new ExchangeError('pending_exists', 'pending-reify-failed', MESSAGES.pending_exists, { detail: err instanceof Error ? err.message : String(err) });
      }
    }
    if (!publisher || publisher.projects.length === 0) {
      throw new ExchangeError('denied', 'no-projects', MESSAGES.denied, { description: 'Publisher with matching claims was not found', detail: 'the publisher has no projects attached' });
    }
    const metadata: Record<string, string> = {};
    for (const k of PYPI_METADATA_CLAIMS) {
      const val = str(v.claims[k]);
      if (val !== undefined) metadata[k] = val;
    }
    const sha = str(v.claims.sha);
    return {
      role: `publisher:${publisher.id}`,
      singleUse: true,
      ttl: config.pypi.ttl,
      scope: { projects: [...publisher.projects] },
      metadata,
      format: 'opaque',
      detail: { publisher: publisher.id, kind: d.kind ?? 'normal', publisherUrl: `${v.registration.issuer}/${publisher.owner}/${publisher.project}${sha ? `/commit/${sha}` : ''}` },
    };
  };

  return {
    config,

    pypiAudience(): string {
      return config.pypi.audience;
    },

    /** PyPI mint-token (trusted-publishing.md §5). */
    async mintPypi(token: string, meta: RequestMeta): Promise<{ token: string; expires: number }> {
      const r = await exchange({ endpoint: 'pypi', token, clientIp: meta.clientIp, requestId: meta.requestId, prefix: pypiPrefix, expect: pypiExpect, decide: decidePypi });
      return { token: r.token, expires: r.expiresAt };
    },

    /** RFC 8693 (policy.md §12.1). */
    async tokenExchange(req: TokenExchangeRequest, meta: RequestMeta): Promise<TokenExchangeResponse> {
      const roles = req.roleName !== undefined ? [await namedRole(req.roleName)] : await rolesOfType('oauth');
      const wantJwt = req.requestedTokenType === TT_JWT;
      const r = await exchange({
        endpoint: 'oauth',
        token: req.subjectToken,
        ...meta,
        prefix,
        expect: { audiences: await audiencesFor(roles), audienceMode: 'single' },
        decide: async (v) => {
          const d = await decideRole(v, { roleName: req.roleName, grantType: 'oauth', audienceMode: 'single' });
          const g = d.role.document.grant;
          const scope: CredentialScope = {
            scopes: intersectScopes(grantStrings(g, 'scopes'), req.scopes),
            audience: selectTargets(g, [...req.audiences, ...req.resources]),
          };
          return {
            role: d.role.document.name,
            singleUse: grantFlag(g, 'singleUse', 'single_use') ?? true,
            ttl: ttlFor(v, d.role, undefined, true),
            scope,
            metadata: d.metadata ?? {},
            format: wantJwt || g?.tokenFormat === 'jwt' ? 'jwt' : 'opaque',
            detail: { selected: d.selected },
          };
        },
      });
      const out: TokenExchangeResponse = {
        access_token: r.token,
        issued_token_type: wantJwt ? TT_JWT : TT_ACCESS_TOKEN,
        token_type: wantJwt ? 'N_A' : 'Bearer',
        expires_in: r.expiresAt - r.issuedAt,
      };
      if (r.grant.scope.scopes && r.grant.scope.scopes.length > 0) out.scope = r.grant.scope.scopes.join(' ');
      return out;
    },

    /** Vault JWT auth login (policy.md §12.2). */
    async vaultLogin(mount: string, roleName: string | undefined, jwt: string, meta: RequestMeta): Promise<VaultAuth> {
      const name = roleName ?? config.vault.mounts[mount]?.defaultRole;
      if (name === undefined) throw new ExchangeError('bad_request', 'missing_role', MESSAGES.bad_request);
      const role = await namedRole(name);
      const g = role.document.grant;
      const audienceMode: AudienceMode = grantFlag(g, 'allowMultiAudienceTokens', 'allow_multi_audience_tokens') ? 'any-of' : 'single';
      const r = await exchange({
        endpoint: 'vault',
        token: jwt,
        ...meta,
        prefix,
        expect: { audiences: await audiencesFor([role]), audienceMode },
        decide: async (v) => {
          const d = await decideRole(v, { roleName: name, grantType: 'vault', audienceMode });
          const dg = d.role.document.grant;
          const policies = [...(grantStrings(dg, 'policies', 'token_policies') ?? [])];
          if (!(grantFlag(dg, 'token_no_default_policy') ?? false) && !policies.includes('default')) policies.unshift('default');
          return {
            role: d.role.document.name,
            singleUse: grantFlag(dg, 'singleUse', 'single_use') ?? false,
            ttl: ttlFor(v, d.role, grantNumber(dg, 'token_ttl', 'ttl'), true, [grantNumber(dg, 'token_max_ttl', 'max_ttl'), grantNumber(dg, 'token_explicit_max_ttl')]),
            scope: { policies },
            metadata: { ...(d.metadata ?? {}), role: d.role.document.name },
            format: 'opaque',
          };
        },
      });
      return {
        clientToken: r.token,
        accessor: r.credentialId,
        policies: r.grant.scope.policies ?? [],
        metadata: r.grant.metadata,
        leaseDuration: r.expiresAt - r.issuedAt,
        entityKey: `${r.verified.registration.id}\u0000${str(r.verified.claims.sub) ?? ''}`,
      };
    },

    /** AWS STS AssumeRoleWithWebIdentity (policy.md §12.3). */
    async stsAssume(req: StsRequest, meta: RequestMeta): Promise<StsSuccess> {
      const role = (await rolesOfType('aws')).find((r) => r.document.grant?.roleArn === req.roleArn);
      if (!role) throw new ExchangeError('role_not_found', 'role-not-found', MESSAGES.role_not_found, { detail: `no role grants ${req.roleArn}` });
      let sessionPolicy: string | undefined;
      if (req.policy !== undefined) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(req.policy);
        } catch {
          parsed = undefined;
        }
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
          throw new ExchangeError('bad_request', 'malformed_policy', 'the session policy is not a JSON policy document');
        }
        sessionPolicy = req.policy;
      }
      const r = await exchange({
        endpoint: 'sts',
        token: req.webIdentityToken,
        ...meta,
        prefix,
        aws: true,
        expect: { audiences: await audiencesFor([role]), audienceMode: 'single' },
        decide: async (v) => {
          const d = await decideRole(v, { roleName: role.document.name, grantType: 'aws', audienceMode: 'single' });
          const g = d.role.document.grant;
          const roleMax = grantNumber(g, 'maxTtl', 'maxSessionDuration') ?? 3600;
          if (req.durationSeconds !== undefined && req.durationSeconds > roleMax) {
            throw new ExchangeError('bad_request', 'duration_exceeds_role_max', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
          }
          const allowedArns = grantStrings(g, 'policyArns');
          if (allowedArns && req.policyArns.some((a) => !allowedArns.includes(a))) {
            throw new ExchangeError('denied', 'policy-arn-not-granted', MESSAGES.denied);
          }
          return {
            role: d.role.document.name,
            singleUse: grantFlag(g, 'singleUse', 'single_use') ?? false,
            ttl: computeTtl({
              requested: req.durationSeconds ?? 900,
              roleMaxTtl: roleMax,
              defaultTtl: 900,
              deploymentMaxTtl: config.credentials.maxTtl,
              boundToTokenExpiry: grantFlag(g, 'boundToTokenExpiry') ?? false,
              tokenExp: Number(v.claims.exp),
              now: deps.clock(),
            }),
            scope: {
              roleArn: req.roleArn,
              sessionName: req.roleSessionName,
              ...(req.policyArns.length > 0 ? { policyArns: req.policyArns } : {}),
              ...(sessionPolicy !== undefined ? { sessionPolicy } : {}),
            },
            metadata: d.metadata ?? {},
            format: 'opaque',
          };
        },
      });
      const account = /^arn:[^:]+:iam::([0-9]{12}):role\//.exec(req.roleArn)?.[1] ?? config.sts.accountId;
      const roleName = req.roleArn.split('/').pop() ?? 'role';
      const roleIdHash = createHash('sha256').update(req.roleArn).digest();
      let roleId = 'AROA';
      for (let i = 0; i < 17; i++) roleId += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[roleIdHash[i]! & 31];
      const aud = r.verified.claims.aud;
      return {
        accessKeyId: r.awsAccessKeyId!,
        secretAccessKey: r.awsSecretAccessKey!,
        sessionToken: r.token,
        expiration: r.expiresAt,
        subject: str(r.verified.claims.sub) ?? '',
        audience: typeof aud === 'string' ? aud : Array.isArray(aud) ? String(aud[0]) : '',
        provider: r.verified.registration.issuer,
        assumedRoleArn: `arn:aws:sts::${account}:assumed-role/${roleName}/${req.roleSessionName}`,
        assumedRoleId: `${roleId}:${req.roleSessionName}`,
        packedPolicySize: sessionPolicy !== undefined || req.policyArns.length > 0 ? Math.min(100, Math.ceil(((sessionPolicy?.length ?? 0) + req.policyArns.join('').length) / 20.48)) : undefined,
        sourceIdentity: undefined,
        requestId: meta.requestId,
      };
    },

    /** RFC 7662: `{active:false}` for anything unknown, expired, revoked or malformed. */
    async introspect(token: string): Promise<Record<string, unknown>> {
      const now = deps.clock();
      if (token.length === 0 || token.length > 20000) return { active: false };
      if (!token.includes('.') && !looksLikeCredential(token, [prefix, config.pypi.prefix ?? prefix])) return { active: false };
      const row = await findActiveCredential(deps.db, token, now);
      if (!row) return { active: false };
      const scope = JSON.parse(row.scope) as CredentialScope;
      const scopeText = [...(scope.scopes ?? []), ...(scope.projects ?? []).map((p) => `project:${p}`), ...(scope.policies ?? []).map((p) => `policy:${p}`)].join(' ');
      return {
        active: true,
        ...(scopeText ? { scope: scopeText } : {}),
        client_id: row.role,
        token_type: row.kind === 'jwt' ? 'at+jwt' : 'Bearer',
        exp: row.expires_at,
        iat: row.issued_at,
        nbf: row.issued_at,
        sub: row.sub,
        ...(scope.audience && scope.audience.length > 0 ? { aud: scope.audience.length === 1 ? scope.audience[0] : scope.audience } : {}),
        iss: deps.publicUrl(),
        jti: row.id,
        ci_oidc: { endpoint: row.endpoint, registration: row.registration, subject_issuer: row.iss, scope, metadata: JSON.parse(row.metadata) as unknown },
      };
    },

    /** RFC 7009 / PyPI DELETE: possession of the credential is the authority to revoke it. */
    async revoke(token: string, reason: string): Promise<string | null> {
      if (token.length === 0 || token.length > 20000) return null;
      return revokeCredentialByToken(deps.db, token, deps.clock(), reason);
    },
  };
}

export type { Endpoint };
