import { randomUUID } from 'node:crypto';
import type { JwsTemplate } from '../jose/jws.ts';
import type { ActiveSigner } from '../jose/keyring.ts';
import type { SigningAlg } from '../jose/keys.ts';
import { GITLAB_CLAIM_NAMES, GITLAB_REGISTERED_CLAIMS, GITLAB_SUB_DEFAULT_COMPONENTS, gitlabLegacyV1Sub } from '../providers/gitlab.ts';
import type { Clock } from '../server/clock.ts';
import { CiOidcError } from '../server/errors.ts';
import { gitlabProfileClaims, type ClaimValue, type Claims } from './claims.ts';
import { GITHUB_PROFILE_CLAIM_NAMES, githubDefaultSub, githubProfileClaims } from './github-profile.ts';
import type { IssuerConfig } from './config.ts';
import type { JobContext } from './context.ts';
import { resolveCustomClaims, type ClaimDefinition, type ClaimLevel } from './custom-claims.ts';
import { issuerError } from './errors.ts';
import { hasControlChars } from './text.ts';
import { expandClaimValue, expandVariables } from './expand.ts';
import { MAX_AUDIENCE_LENGTH, MAX_AUDIENCES, MIN_LIFETIME, type IdTokenSpec, type JobTokenConfig } from './id-tokens.ts';
import { declaredClaimNames, effectiveSettings, type EffectiveSettings } from './settings.ts';
import { renderSub } from './sub.ts';

export interface IssuerUrls {
  /** `iss`, byte-equal to the discovery `issuer`. */
  issuerUrl(): string;
  /** The CI instance URL (legacy V2 `aud`, GitHub-mode default audience). */
  instanceUrl(): string;
}

export interface JobIssueInput {
  context: JobContext;
  job: JobTokenConfig;
  /** Variables visible to expansion (predefined ones win over the job's own). */
  variables: ReadonlyMap<string, string>;
}

export interface IssuedJobTokens {
  /** Token name -> compact JWT. */
  tokens: Record<string, string>;
  /** Every audience the job's id_tokens declare, after expansion. */
  audiences: string[];
  settings: EffectiveSettings;
  onDemand: boolean;
  /** Lifetime that bounds every token of this job (for the job token's expiry). */
  jobLifetime: number;
  /** The job-level `jwt_claims`, expanded: on-demand tokens carry them too. */
  jobClaims: ClaimDefinition[];
}

export interface MintedToken {
  token: string;
  claims: Claims;
  expiresAt: number;
}

const REGISTERED = new Set<string>(GITLAB_REGISTERED_CLAIMS);

/** Where signers come from (the keyring); `ci-oidc lint` validates without one. */
export interface SignerSource {
  signer(alg: SigningAlg): ActiveSigner | undefined;
}

export function normaliseAudience(aud: string | readonly string[], where: string, code: 'id_token_config_error' | 'aud_invalid' = 'id_token_config_error'): string | string[] {
  const list = typeof aud === 'string' ? [aud] : [...aud];
  if (list.length === 0) throw issuerError(code, `${where}: aud must not be empty`);
  if (list.length > MAX_AUDIENCES) throw issuerError(code, `${where}: at most ${String(MAX_AUDIENCES)} audiences`);
  for (const a of list) {
    if (typeof a !== 'string' || a.length === 0) throw issuerError(code, `${where}: an audience is empty after variable expansion; the job fails before its script: set the variable or fix aud`);
    if (a.length > MAX_AUDIENCE_LENGTH) throw issuerError(code, `${where}: an audience is longer than ${String(MAX_AUDIENCE_LENGTH)} characters`);
    if (hasControlChars(a)) throw issuerError(code, `${where}: an audience contains control characters`);
  }
  if (new Set(list).size !== list.length) throw issuerError(code, `${where}: audiences must not repeat`);
  return typeof aud === 'string' ? list[0]! : list;
}

/**
 * Mints GitLab-profile ID tokens. Stateless apart from the keyring; persistence (jobs, paths) is the
 * caller's. Assembly order (issuer.md §2): custom claims, then the profile, then registered claims.
 */
interface PreparedJob {
  alg: SigningAlg;
  /** Header and static claims pre-encoded for the signing key (re-made after a rotation). */
  template?: JwsTemplate;
  /** The profile and custom claims as JSON, without the closing brace. */
  staticJson: string;
  subJson: string;
}

export class IssuerCore {
  private readonly preparedJobs = new WeakMap<JobContext, PreparedJob>();
  private issJson: [string, string] = ['', '""'];
  /** The per-second part of the suffix (`iss` to `exp`), rebuilt when the second, lifetime or issuer changes. */
  private timeJson = { iss: '', iat: -1, life: -1, json: '' };
  /** JSON of the last string audience (most mints reuse one). */
  private audJson: [string, string] = ['', '""'];

  constructor(
    private readonly cfg: IssuerConfig,
    private readonly urls: IssuerUrls,
    private readonly keyring: SignerSource,
    private readonly clock: Clock,
  ) {}

  get config(): IssuerConfig {
    return this.cfg;
  }

  issuerUrl(): string {
    return this.urls.issuerUrl();
  }

  instanceHost(ctx?: JobContext): string {
    if (this.cfg.instanceHost) {
      if (ctx?.serverHost && ctx.serverHost !== this.cfg.instanceHost.toLowerCase()) {
        throw issuerError('job_context_invalid', `job context variable CI_SERVER_HOST is ${ctx.serverHost}, but issuer.instanceHost is ${this.cfg.instanceHost}; fix the CI system or the config`);
      }
      return this.cfg.instanceHost.toLowerCase();
    }
    return ctx?.serverHost ?? new URL(this.urls.instanceUrl()).host;
  }

  settingsFor(ctx: JobContext): EffectiveSettings {
    return effectiveSettings(this.cfg, ctx.jobProjectPath, ctx.jobProjectId);
  }

  claimsSupported(): string[] {
    const github = this.cfg.claimProfile === 'github' || [...Object.values(this.cfg.groups), ...Object.values(this.cfg.projects)].some((l) => l.claimProfile === 'github');
    return [...new Set([...GITLAB_REGISTERED_CLAIMS, ...GITLAB_CLAIM_NAMES, ...(github ? GITHUB_PROFILE_CLAIM_NAMES : []), ...declaredClaimNames(this.cfg)])];
  }

  /** exp - iat: requested (or job timeout, or the default), clamped to the job timeout and the instance maximum. */
  lifetime(ctx: JobContext, requested?: number, fallback = this.cfg.defaultLifetime): number {
    const cap = Math.min(ctx.jobTimeout ?? Number.MAX_SAFE_INTEGER, this.cfg.maxIdTokenLifetime);
    const wanted = requested ?? ctx.jobTimeout ?? fallback;
    if (!Number.isSafeInteger(wanted) || wanted < MIN_LIFETIME) {
      throw issuerError('lifetime_invalid', `lifetime must be a whole number of seconds, at least ${String(MIN_LIFETIME)}`);
    }
    return Math.max(MIN_LIFETIME, Math.min(wanted, cap));
  }

  /** Validates and signs every `id_tokens` entry of a job: all or nothing. */
  issueJob(input: JobIssueInput): IssuedJobTokens {
    return this.processJob(input, false);
  }

  /** Every check `issueJob` makes (settings, sub, custom claims, audiences, lifetimes) without signing. */
  validateJob(input: JobIssueInput): { names: string[]; audiences: string[] } {
    const r = this.processJob(input, true);
    return { names: Object.keys(r.tokens), audiences: r.audiences };
  }

  private processJob(input: JobIssueInput, dryRun: boolean): IssuedJobTokens {
    const { context: ctx, job, variables } = input;
    const settings = this.settingsFor(ctx);
    const { profile, sub } = this.profile(ctx, settings);
    const jobLevel = this.jobClaimLevel(job.jwtClaims, `job ${job.jobName}`, variables);
    const tokens: Record<string, string> = {};
    const audiences = new Set<string>();
    const prepared = job.idTokens.map((spec) => {
      const aud = this.expandAudience(spec, variables);
      for (const a of typeof aud === 'string' ? [aud] : aud) audiences.add(a);
      const levels: ClaimLevel[] = [...settings.claimLevels, jobLevel, this.jobClaimLevel(spec.jwtClaims, `${spec.where} jwt_claims`, variables)];
      const custom = this.resolveCustom(levels, spec.where);
      return { spec, aud, custom, lifetime: this.lifetime(ctx, spec.lifetime) };
    });
    // Validate every token before signing any, so a bad entry never leaves half the job's tokens minted.
    let jobLifetime = this.lifetime(ctx);
    for (const p of prepared) {
      const claims = this.assemble(profile, p.custom, { sub, aud: p.aud, lifetime: p.lifetime });
      tokens[p.spec.name] = dryRun ? '' : this.sign(settings.algorithm, claims).token;
      jobLifetime = Math.max(jobLifetime, p.lifetime);
    }
    if (job.idTokens.length === 0 && settings.legacyJobJwt && !dryRun) {
      Object.assign(tokens, this.legacyTokens(ctx, settings));
    }
    return {
      tokens,
      audiences: [...audiences],
      settings,
      onDemand: job.onDemand === true || settings.onDemand,
      jobLifetime,
      jobClaims: jobLevel.definitions.map((d) => ({ name: d.name, value: d.value })),
    };
  }

  /**
   * A token minted on demand during the job (issuer.md §9): same profile, fresh iat/jti. The job's
   * static claims are resolved and serialised once per context object; each mint only appends the
   * registered claims and signs.
   */
  mintForJob(ctx: JobContext, aud: string | string[], lifetime?: number, jobClaims: readonly ClaimDefinition[] = []): MintedToken {
    const p = this.prepare(ctx, jobClaims);
    const life = this.lifetime(ctx, lifetime, this.cfg.onDemandLifetime);
    const active = this.keyring.signer(p.alg);
    if (!active) throw this.noKey(p.alg);
    const iat = this.clock();
    const exp = iat + life;
    const iss = this.urls.issuerUrl();
    if (iss !== this.issJson[0]) this.issJson = [iss, JSON.stringify(iss)];
    if (p.template?.kid !== active.signer.kid) p.template = active.signer.template(p.staticJson);
    const t = this.timeJson;
    if (t.iat !== iat || t.life !== life || t.iss !== iss) {
      this.timeJson = { iss, iat, life, json: `","iss":${this.issJson[1]},"iat":${String(iat)},"nbf":${String(iat - 5)},"exp":${String(exp)},"sub":` };
    }
    let audJson: string;
    if (typeof aud === 'string') {
      if (aud !== this.audJson[0]) this.audJson = [aud, JSON.stringify(aud)];
      audJson = this.audJson[1];
    } else audJson = JSON.stringify(aud);
    const suffix = `,"jti":"${randomUUID()}${this.timeJson.json}${p.subJson},"aud":${audJson}}`;
    const token = p.template.sign(suffix);
    const staticJson = p.staticJson;
    let claims: Claims | undefined;
    return {
      token,
      expiresAt: exp,
      get claims() {
        claims ??= JSON.parse(staticJson + suffix) as Claims;
        return claims;
      },
    };
  }

  private prepare(ctx: JobContext, jobClaims: readonly ClaimDefinition[]): PreparedJob {
    let p = this.preparedJobs.get(ctx);
    if (!p) {
      const settings = this.settingsFor(ctx);
      const { profile, sub } = this.profile(ctx, settings);
      const levels: ClaimLevel[] = [...settings.claimLevels, { level: `job ${ctx.jobName}`, untrusted: true, definitions: jobClaims }];
      const custom = this.resolveCustom(levels, 'on-demand token');
      const fixed: Claims = { ...profile };
      for (const [k, v] of Object.entries(custom)) if (!(k in fixed) && !REGISTERED.has(k)) fixed[k] = v;
      p = { alg: settings.algorithm, staticJson: JSON.stringify(fixed).slice(0, -1), subJson: JSON.stringify(sub) };
      this.preparedJobs.set(ctx, p);
    }
    return p;
  }

  /** Signs an arbitrary payload with the active key of `alg` (default: the first enabled algorithm). */
  signJwt(payload: Readonly<Record<string, unknown>>, options: { typ?: string; alg?: SigningAlg } = {}): { token: string; kid: string; alg: SigningAlg } {
    const alg = options.alg ?? this.cfg.algorithms[0]!;
    const active = this.keyring.signer(alg);
    if (!active) throw this.noKey(alg);
    return { token: active.signer.sign(payload, options.typ === undefined ? undefined : { typ: options.typ }), kid: active.signer.kid, alg };
  }

  private noKey(alg: SigningAlg): CiOidcError {
    return issuerError('id_token_signing_unavailable', `no active ${alg} signing key: the issuer cannot sign; check the key store and the KEK (ci-oidc keys list)`, 503);
  }

  private sign(alg: SigningAlg, claims: Claims): MintedToken {
    const active = this.keyring.signer(alg);
    if (!active) throw this.noKey(alg);
    return { token: active.signer.sign(claims), claims, expiresAt: claims.exp as number };
  }

  /** The claim profile of the project (GitLab's by default, or the optional GitHub one) and its `sub`. */
  private profile(ctx: JobContext, settings: EffectiveSettings): { profile: Claims; sub: string } {
    if (settings.claimProfile === 'github') return { profile: githubProfileClaims(ctx), sub: githubDefaultSub(ctx) };
    const profile = gitlabProfileClaims(ctx, { instanceHost: this.instanceHost(ctx), groupsDirect: settings.groupsDirect });
    return { profile, sub: this.subject(settings, profile) };
  }

  private subject(settings: EffectiveSettings, profile: Claims): string {
    const sub = renderSub(settings.subTemplate.components, profile);
    if (sub.length === 0) throw issuerError('sub_template_invalid', `the sub template of ${settings.subTemplateLevel} produced an empty subject; add project_path or project_id`);
    return sub;
  }

  private expandAudience(spec: IdTokenSpec, variables: ReadonlyMap<string, string>): string | string[] {
    const expanded = typeof spec.aud === 'string' ? expandVariables(spec.aud, variables) : spec.aud.map((a) => expandVariables(a, variables));
    return normaliseAudience(expanded, `${spec.where}.aud`);
  }

  private jobClaimLevel(defs: readonly ClaimDefinition[], level: string, variables: ReadonlyMap<string, string>): ClaimLevel {
    return { level, untrusted: true, definitions: defs.map((d) => ({ name: d.name, value: expandClaimValue(d.value, variables), mutable: true })) };
  }

  private resolveCustom(levels: readonly ClaimLevel[], where: string): Record<string, ClaimValue> {
    try {
      return resolveCustomClaims(levels).claims;
    } catch (err) {
      if (err instanceof CiOidcError && !err.message.startsWith(where)) throw new CiOidcError(err.code, err.message, { status: err.status, detail: where });
      throw err;
    }
  }

  private assemble(profile: Claims, custom: Record<string, ClaimValue>, reg: { sub: string; aud: string | string[]; lifetime: number; iss?: string }): Claims {
    const iat = this.clock();
    const out: Claims = { ...profile };
    for (const [k, v] of Object.entries(custom)) if (!(k in out) && !REGISTERED.has(k)) out[k] = v;
    out.jti = randomUUID();
    out.iss = reg.iss ?? this.urls.issuerUrl();
    out.iat = iat;
    out.nbf = iat - 5;
    out.exp = iat + reg.lifetime;
    out.sub = reg.sub;
    out.aud = Array.isArray(reg.aud) ? [...reg.aud] : reg.aud;
    return out;
  }

  /** CI_JOB_JWT (v1: host-only iss, no aud, sub job_<id>) and CI_JOB_JWT_V2 (aud = instance URL). */
  private legacyTokens(ctx: JobContext, settings: EffectiveSettings): Record<string, string> {
    // Legacy tokens always use GitLab's profile, whatever the project's claim profile.
    const profile = gitlabProfileClaims(ctx, { instanceHost: this.instanceHost(ctx), groupsDirect: settings.groupsDirect });
    const iat = this.clock();
    const lifetime = this.lifetime(ctx);
    const v1: Claims = gitlabProfileClaims(ctx, { instanceHost: this.instanceHost(ctx), groupsDirect: false }, 'legacy_v1');
    Object.assign(v1, { jti: randomUUID(), iss: new URL(this.urls.issuerUrl()).host, iat, nbf: iat - 5, exp: iat + lifetime, sub: gitlabLegacyV1Sub(ctx.jobId) });
    const custom = this.resolveCustom(settings.claimLevels, 'legacy token');
    const v2 = this.assemble(profile, custom, { sub: renderSub(GITLAB_SUB_DEFAULT_COMPONENTS, profile), aud: this.urls.instanceUrl(), lifetime });
    const t1 = this.sign(settings.algorithm, v1).token;
    return { CI_JOB_JWT: t1, CI_JOB_JWT_V1: t1, CI_JOB_JWT_V2: this.sign(settings.algorithm, v2).token };
  }
}
