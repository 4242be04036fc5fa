import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Keyring } from '../jose/keyring.ts';
import type { Clock } from '../server/clock.ts';
import type { Logger } from '../server/logger.ts';
import type { Db } from '../store/db.ts';
import { createMemoryRateLimiter, type RateLimiter } from '../store/rate-limit.ts';
import type { CiSystemConfig } from './config.ts';
import { expansionVariables, parseJobContext, type JobContext, type Vars } from './context.ts';
import { issuerError } from './errors.ts';
import { CiConfig, type JobTokenConfig } from './id-tokens.ts';
import { IssuerCore, normaliseAudience, type MintedToken } from './issuer.ts';
import { JobRepository, ProjectPathRepository, hashJobToken, type JobRecord } from './repository.ts';
import type { EffectiveSettings } from './settings.ts';

export const JOB_TOKEN_PREFIX = 'cioidc_job_';
const DEFAULT_JOB_TIMEOUT = 3600;
const IMMUTABLE_SUB_IDS = new Set(['project_id', 'namespace_id', 'job_project_id']);

export interface RegisterJobInput {
  ciSystem: string;
  /** GitLab predefined variables plus CI_OIDC_* extras, from the CI system. */
  variables: Vars;
  /** The job's own CI/CD variables, visible only to expansion in `aud` and `jwt_claims`. */
  jobVariables?: Vars;
  /** The pipeline's CI configuration (YAML text) ... */
  ciConfig?: string;
  ciConfigPath?: string;
  /** ... or just the job's keywords (`id_tokens`, `jwt_claims`, `id_tokens_on_demand`). */
  job?: unknown;
}

export interface RegisteredJob {
  jobId: string;
  jobToken: string;
  expiresAt: number;
  idTokens: Record<string, string>;
  onDemand: boolean;
  /** Variables the runner should set for the job. */
  variables: Record<string, string>;
}

interface CiSystemCredential {
  name: string;
  digest: Buffer;
  namespaces: string[];
}

/** Job registration, on-demand minting and CI-system authentication, on top of IssuerCore. */
export class IssuerService {
  private readonly jobs: JobRepository;
  private readonly paths: ProjectPathRepository;
  private readonly credentials: CiSystemCredential[];

  constructor(
    readonly core: IssuerCore,
    readonly keyring: Keyring,
    db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
    ciSystems: readonly CiSystemConfig[],
    env: NodeJS.ProcessEnv,
    private readonly countMinted: (kind: 'job' | 'on_demand', n: number) => void = () => undefined,
    /** Per-job on-demand budget; shared through the store on PostgreSQL so replicas do not multiply it. */
    private readonly onDemandLimit: RateLimiter = createMemoryRateLimiter({ limit: core.config.onDemandRateLimit, windowSeconds: 60 }),
  ) {
    this.jobs = new JobRepository(db);
    this.paths = new ProjectPathRepository(db);
    this.credentials = [];
    for (const s of ciSystems) {
      let hex = s.tokenSha256;
      if (s.tokenEnv) {
        const secret = env[s.tokenEnv];
        if (!secret || secret.length < 32) {
          logger.warn({ ciSystem: s.name, env: s.tokenEnv }, 'CI system disabled: its credential variable is unset or shorter than 32 characters');
          continue;
        }
        hex = createHash('sha256').update(secret, 'utf8').digest('hex');
      }
      this.credentials.push({ name: s.name, digest: Buffer.from(hex!, 'hex'), namespaces: s.namespaces });
    }
  }

  /** Authenticates a CI system by its bearer credential; every configured credential is compared in constant time. */
  authenticateCiSystem(authorization: string | undefined): CiSystemCredential {
    const presented = bearer(authorization);
    if (!presented) throw issuerError('ci_system_unauthorized', 'send the CI-system credential as "Authorization: Bearer <credential>"', 401);
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let match: CiSystemCredential | undefined;
    for (const c of this.credentials) {
      if (timingSafeEqual(c.digest, digest) && !match) match = c;
    }
    if (!match) throw issuerError('ci_system_unauthorized', 'the CI-system credential is not valid; check issuer.ciSystems', 401);
    return match;
  }

  async registerJob(input: RegisterJobInput, system?: CiSystemCredential): Promise<RegisteredJob> {
    const context = parseJobContext(input.variables);
    if (system && system.namespaces.length > 0) {
      const ok = system.namespaces.some((ns) => context.jobProjectPath === ns || context.jobProjectPath.startsWith(`${ns}/`));
      if (!ok) throw issuerError('ci_system_forbidden', `CI system ${system.name} may not register jobs for ${context.jobProjectPath}; extend issuer.ciSystems[].namespaces`, 403);
    }
    const job = this.jobConfig(input, context.jobName);
    const settings = this.core.settingsFor(context);
    await this.guardReclaimedPath(context, settings);
    const variables = expansionVariables(input.variables, input.jobVariables);
    const issued = this.core.issueJob({ context, job, variables });
    const now = this.clock();
    const jobToken = `${JOB_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const expiresAt = now + (context.jobTimeout ?? DEFAULT_JOB_TIMEOUT);
    const audiences = [...new Set([...issued.audiences, ...settings.allowedAudiences])];
    const inserted = await this.jobs.insert(
      {
        jobId: context.jobId,
        ciSystem: input.ciSystem,
        projectId: context.jobProjectId,
        projectPath: context.jobProjectPath,
        context,
        jobClaims: issued.jobClaims,
        onDemand: issued.onDemand,
        audiences,
        anyAudience: settings.anyAudience,
        createdAt: now,
        expiresAt,
      },
      hashJobToken(jobToken),
    );
    if (!inserted) throw issuerError('job_exists', `job ${context.jobId} is already registered; a retried job must get a new CI_JOB_ID`, 409);
    this.countMinted('job', Object.keys(issued.tokens).length);
    this.logger.info({ jobId: context.jobId, project: context.jobProjectPath, tokens: Object.keys(issued.tokens), onDemand: issued.onDemand }, 'job registered');
    const vars: Record<string, string> = { ...issued.tokens, CI_OIDC_ISSUER_URL: this.core.issuerUrl() };
    if (issued.onDemand) {
      vars.CI_JOB_TOKEN = jobToken;
      vars.ACTIONS_ID_TOKEN_REQUEST_URL = this.requestUrl(context.jobId);
      vars.ACTIONS_ID_TOKEN_REQUEST_TOKEN = jobToken;
    }
    return { jobId: context.jobId, jobToken, expiresAt, idTokens: issued.tokens, onDemand: issued.onDemand, variables: vars };
  }

  requestUrl(jobId: string): string {
    return `${this.core.issuerUrl()}/api/v1/jobs/${jobId}/id_token?api-version=1`;
  }

  jobConfig(input: Pick<RegisterJobInput, 'ciConfig' | 'ciConfigPath' | 'job'>, jobName: string): JobTokenConfig {
    if (input.ciConfig !== undefined && input.job !== undefined) throw issuerError('request_invalid', 'send either ci_config or job, not both');
    if (input.ciConfig !== undefined) return CiConfig.parse(input.ciConfig, input.ciConfigPath ?? '.gitlab-ci.yml').jobTokenConfig(jobName);
    if (input.job !== undefined) return CiConfig.fromJobObject(input.job, jobName).jobTokenConfig(jobName);
    return { jobName, idTokens: [], idTokensSource: 'none', jwtClaims: [] };
  }

  private async guardReclaimedPath(ctx: JobContext, settings: EffectiveSettings): Promise<void> {
    if (!this.core.config.blockJwtForReclaimedPaths) return;
    if (settings.subTemplate.components.some((c) => IMMUTABLE_SUB_IDS.has(c))) return;
    const now = this.clock();
    const pairs = new Map([[ctx.projectPath, ctx.projectId], [ctx.jobProjectPath, ctx.jobProjectId]]);
    for (const [path, id] of pairs) {
      const holder = await this.paths.firstHolder(path, id, now);
      if (holder !== id) {
        throw issuerError(
          'reclaimed_path',
          `ID token issuance is disabled in CI because this project's path (${path}) was previously used by a different project; add project_id or namespace_id to the sub template (issuer.projects.<path>.subTemplate) so relying parties can tell the projects apart, or turn off issuer.blockJwtForReclaimedPaths`,
          403,
        );
      }
    }
  }

  async authenticateJob(authorization: string | undefined, jobTokenHeader?: string): Promise<JobRecord> {
    const token = jobTokenHeader ?? bearer(authorization);
    if (!token || token.length > 256 || !token.startsWith(JOB_TOKEN_PREFIX)) {
      throw issuerError('job_token_invalid', 'send the job token as "Authorization: Bearer <token>" or a JOB-TOKEN header', 401);
    }
    const job = await this.jobs.findLiveByTokenHash(hashJobToken(token), this.clock());
    if (!job) throw issuerError('job_token_invalid', 'the job token is unknown, revoked or past the job timeout', 401);
    return job;
  }

  /** On-demand minting (issuer.md §9) for an authenticated job. */
  async mintOnDemand(job: JobRecord, request: { aud?: string | string[] | undefined; lifetime?: number | undefined; mode: 'api' | 'github' }): Promise<MintedToken> {
    if (!job.onDemand) throw issuerError('on_demand_disabled', 'on-demand minting is off for this job: set id_tokens_on_demand: true on the job, or idTokensOnDemand for the project', 403);
    const ctx = job.context;
    let aud = request.aud;
    if (aud === undefined || aud === '' || (Array.isArray(aud) && aud.length === 0)) {
      if (request.mode === 'api') throw issuerError('aud_required', 'aud is required: send {"aud": "<audience>"}');
      aud = `${this.instanceUrl()}/${ctx.namespacePath}`;
    } else {
      const normalised = normaliseAudience(aud, 'aud', 'aud_invalid');
      for (const a of typeof normalised === 'string' ? [normalised] : normalised) {
        if (!job.anyAudience && !job.audiences.includes(a)) {
          throw issuerError('aud_not_allowed', `audience ${JSON.stringify(a.slice(0, 100))} is not declared in this job's id_tokens; declare it there or add it to the project's allowedAudiences`, 403);
        }
      }
      aud = normalised;
    }
    if (request.lifetime !== undefined && (!Number.isSafeInteger(request.lifetime) || request.lifetime < 60)) {
      throw issuerError('lifetime_invalid', 'lifetime must be a whole number of seconds, at least 60');
    }
    const { allowed, retryAfter } = await this.onDemandLimit.hit(`issuer-on-demand:${job.jobId}`, this.clock());
    if (!allowed) {
      throw issuerError('rate_limited', `more than ${String(this.core.config.onDemandRateLimit)} tokens this minute for job ${job.jobId}; retry in ${String(retryAfter)} s`, 429);
    }
    const minted = this.core.mintForJob(ctx, aud, request.lifetime, job.jobClaims);
    this.countMinted('on_demand', 1);
    this.logger.info({ jobId: job.jobId, jti: minted.claims.jti, mode: request.mode }, 'on-demand token minted');
    return minted;
  }

  instanceUrl(): string {
    return this.core.config.instanceUrl ?? this.core.issuerUrl();
  }

  async revokeJob(jobId: string): Promise<boolean> {
    const ok = await this.jobs.revoke(jobId, this.clock());
    if (ok) this.logger.info({ jobId }, 'job token revoked');
    return ok;
  }

  findJob(jobId: string): Promise<JobRecord | undefined> {
    return this.jobs.find(jobId);
  }

  purge(): Promise<number> {
    return this.jobs.purge(this.clock());
  }

}

export function bearer(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const m = /^bearer ([\x21-\x7e]{1,4096})$/i.exec(authorization.trim());
  return m?.[1];
}
