import type { Kysely } from 'kysely';
import type { Logger } from '../server/logger.ts';
import type { Clock } from '../server/clock.ts';
import type { Database } from '../store/schema.ts';
import { appendAudit, toAuditRow, type AuditEntry } from './audit.ts';
import { mintSecret, newAwsAccessKeyId, newAwsSecretAccessKey, newCredentialId, hashCredential } from './credential.ts';
import { insertCredential, type CredentialRow } from './credentials.ts';
import { ExchangeError, MESSAGES, isExchangeError, kindForVerifierCode } from './errors.ts';
import type { BrokerMetrics } from './metrics.ts';
import type { Grant, JwtSignerPort, ReplayPort, TokenVerifierPort, VerifiedToken, VerifyExpectation } from './ports.ts';
import type { RateLimiter } from '../store/rate-limit.ts';
import type { FastMintWriter } from './sqlite-writer.ts';
import { pgMint } from './pg-writer.ts';
import { replayKey } from '../verifier/replay.ts';

export type Endpoint = 'pypi' | 'oauth' | 'vault' | 'sts';

/** Retention past `exp` for replay records: the maximum leeway (60 s) plus 5 s (verification.md §10). */
export const REPLAY_RETENTION_AFTER_EXP = 65;

export interface ExchangeDeps {
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  metrics: BrokerMetrics;
  verifier: TokenVerifierPort;
  replay: ReplayPort;
  signer?: JwtSignerPort | undefined;
  limits: { client: RateLimiter; issuer: RateLimiter };
  /** SQLite hot path; only set when `replay` is the verifier's SQL replay table. */
  fastWriter?: FastMintWriter | undefined;
  /** PostgreSQL hot path (one statement); same condition. */
  pgSingleStatement?: boolean;
}

export interface ExchangeInput {
  endpoint: Endpoint;
  token: string;
  clientIp: string;
  requestId: string;
  expect: VerifyExpectation;
  /** Policy or publisher decision; throws ExchangeError to deny. */
  decide(verified: VerifiedToken): Promise<Grant>;
  prefix: string;
  /** STS credentials also carry an AWS-shaped key pair. */
  aws?: boolean;
}

export interface ExchangeResult {
  token: string;
  credentialId: string;
  issuedAt: number;
  expiresAt: number;
  verified: VerifiedToken;
  grant: Grant;
  awsAccessKeyId?: string;
  awsSecretAccessKey?: string;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function claimSummary(v: VerifiedToken): Partial<AuditEntry> {
  const c = v.claims;
  return {
    registration: v.registration.id,
    iss: str(c.iss),
    sub: str(c.sub),
    jti: str(c.jti),
    kid: v.kid ?? null,
    projectId: str(c.project_id),
    jobId: str(c.job_id),
    pipelineId: str(c.pipeline_id),
  };
}

/**
 * The audit entry of one attempt, field by field: on Node 20 an object literal that starts with two
 * spreads (`{ ...base, ...known, outcome, … }`) gets a fresh hidden class on every call, which cost about
 * 10 µs and 5 KB of garbage per mint.
 */
function attempt(base: AuditEntry, known: Partial<AuditEntry>, last: Pick<AuditEntry, 'outcome' | 'reason' | 'role' | 'credentialId' | 'detail'>): AuditEntry {
  return {
    at: base.at,
    endpoint: base.endpoint,
    outcome: last.outcome,
    reason: last.reason,
    registration: known.registration,
    iss: known.iss,
    sub: known.sub,
    jti: known.jti,
    kid: known.kid,
    projectId: known.projectId,
    jobId: known.jobId,
    pipelineId: known.pipelineId,
    role: last.role,
    credentialId: last.credentialId,
    clientIp: base.clientIp,
    requestId: base.requestId,
    detail: last.detail,
  };
}

/**
 * verify → decide → claim `jti` (single-use only, after the decision so a denied request does not burn
 * the token) → mint → audit. The claim, the credential row and the audit row share one transaction, so
 * a crash cannot leave a burned token without its audit record or a credential without its claim.
 */
export async function runExchange(deps: ExchangeDeps, input: ExchangeInput): Promise<ExchangeResult> {
  const started = process.hrtime.bigint();
  const now = deps.clock();
  const base: AuditEntry = { at: now, endpoint: input.endpoint, outcome: 'deny', reason: 'unknown', clientIp: input.clientIp, requestId: input.requestId };
  let known: Partial<AuditEntry> = {};
  let role: string | null = null;
  try {
    const byClient = await deps.limits.client.hit(`client:${input.clientIp}`, now);
    if (!byClient.allowed) {
      deps.metrics.rateLimited.inc({ endpoint: input.endpoint, scope: 'client' });
      throw new ExchangeError('rate_limited', 'rate_limited', MESSAGES.rate_limited, { detail: `client ${input.clientIp}` });
    }
    let verified: VerifiedToken;
    try {
      verified = await deps.verifier.verify(input.token, input.expect);
    } catch (err) {
      const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'verification_failed';
      if (isExchangeError(err)) throw err;
      const kind = kindForVerifierCode(code);
      throw new ExchangeError(kind, code, MESSAGES[kind], { detail: (err as { detail?: string })?.detail, cause: err });
    }
    known = claimSummary(verified);
    const byIssuer = await deps.limits.issuer.hit(`issuer:${verified.registration.id}`, now);
    if (!byIssuer.allowed) {
      deps.metrics.rateLimited.inc({ endpoint: input.endpoint, scope: 'issuer' });
      throw new ExchangeError('rate_limited', 'rate_limited', MESSAGES.rate_limited, { detail: `issuer ${verified.registration.id}` });
    }

    const grant = await input.decide(verified);
    role = grant.role;
    const jti = str(verified.claims.jti);
    if (grant.singleUse && (jti === null || jti.length === 0)) {
      throw new ExchangeError('token_invalid', 'jti_missing', 'this endpoint is single-use and the token has no jti; use an issuer that sets jti');
    }
    if (grant.format === 'jwt' && !deps.signer) {
      throw new ExchangeError('internal', 'signer_unavailable', MESSAGES.internal, { detail: 'the role asks for JWT access tokens but the issuer signer is not available' });
    }

    const credentialId = newCredentialId(now);
    const issuedAt = now;
    const expiresAt = now + grant.ttl;
    let token: string;
    let tokenHash: string;
    if (grant.format === 'jwt') {
      token = deps.signer!.sign(
        {
          iss: deps.signer!.issuer(),
          sub: str(verified.claims.sub) ?? '',
          aud: grant.scope.audience && grant.scope.audience.length === 1 ? grant.scope.audience[0] : (grant.scope.audience ?? [deps.signer!.issuer()]),
          client_id: grant.role,
          iat: issuedAt,
          nbf: issuedAt,
          exp: expiresAt,
          jti: credentialId,
          ...(grant.scope.scopes && grant.scope.scopes.length > 0 ? { scope: grant.scope.scopes.join(' ') } : {}),
          ...(Object.keys(grant.metadata).length > 0 ? { metadata: grant.metadata } : {}),
        },
        'at+jwt',
      );
      tokenHash = hashCredential(token);
    } else {
      ({ token, hash: tokenHash } = mintSecret(input.prefix));
    }
    const aws = input.aws ? { accessKeyId: newAwsAccessKeyId(), secretAccessKey: newAwsSecretAccessKey() } : undefined;
    const row: CredentialRow = {
      id: credentialId,
      token_hash: tokenHash,
      kind: grant.format,
      endpoint: input.endpoint,
      registration: verified.registration.id,
      iss: verified.registration.issuer,
      sub: str(verified.claims.sub) ?? '',
      subject_jti: jti,
      role: grant.role,
      scope: JSON.stringify(grant.scope),
      metadata: JSON.stringify(grant.metadata),
      aws_access_key_id: aws?.accessKeyId ?? null,
      issued_at: issuedAt,
      expires_at: expiresAt,
      revoked_at: null,
      revoked_reason: null,
    };
    const auditEntry = attempt(base, known, { outcome: 'allow', reason: 'issued', role: grant.role, credentialId, detail: grant.detail ?? null });
    const claimExpiry = Number(verified.claims.exp) + REPLAY_RETENTION_AFTER_EXP;
    const claim = grant.singleUse ? { key: replayKey(verified.registration.id, verified.registration.issuer, jti!), registration: verified.registration.id, expiresAt: claimExpiry, now } : null;
    const fast = grant.inTransaction
      ? 'busy'
      : deps.fastWriter
        ? await deps.fastWriter.write(claim, row, toAuditRow(auditEntry))
        : deps.pgSingleStatement
          ? await pgMint(deps.db, claim, row, toAuditRow(auditEntry))
          : 'busy';
    if (fast === 'replayed') throw new ExchangeError('replayed', 'replayed', MESSAGES.replayed);
    if (fast === 'busy') {
      await deps.db.transaction().execute(async (trx) => {
        if (grant.singleUse) {
          const fresh = await deps.replay.claim({ registration: verified.registration.id, iss: verified.registration.issuer, jti: jti! }, claimExpiry, trx);
          if (!fresh) throw new ExchangeError('replayed', 'replayed', MESSAGES.replayed);
        }
        if (grant.inTransaction) await grant.inTransaction(trx);
        await insertCredential(trx, row);
        await appendAudit(trx, auditEntry);
      });
    }
    deps.logger.info({ endpoint: input.endpoint, registration: verified.registration.id, kid: verified.kid, jti, role: grant.role, credentialId }, 'credential issued');
    observe(deps, input.endpoint, 'allow', 'issued', started);
    return { token, credentialId, issuedAt, expiresAt, verified, grant, ...(aws ? { awsAccessKeyId: aws.accessKeyId, awsSecretAccessKey: aws.secretAccessKey } : {}) };
  } catch (err) {
    const failure = isExchangeError(err)
      ? err
      : new ExchangeError('internal', 'internal_error', MESSAGES.internal, { detail: err instanceof Error ? err.message : String(err), cause: err });
    const outcome = failure.kind === 'internal' ? 'error' : 'deny';
    if (failure.kind === 'internal') deps.logger.error({ err: failure.cause ?? failure, endpoint: input.endpoint, ...known }, 'exchange failed');
    else deps.logger.info({ endpoint: input.endpoint, code: failure.code, detail: failure.detail, registration: known.registration, kid: known.kid, jti: known.jti }, 'exchange denied');
    try {
      await appendAudit(deps.db, attempt(base, known, { outcome, reason: failure.code, role, credentialId: null, detail: failure.detail ? { detail: failure.detail } : null }));
    } catch (auditErr) {
      deps.logger.error({ err: auditErr }, 'could not write the audit record for a failed exchange');
    }
    observe(deps, input.endpoint, outcome, failure.code, started);
    throw failure;
  }
}

function observe(deps: ExchangeDeps, endpoint: string, outcome: string, reason: string, started: bigint): void {
  deps.metrics.exchanges.inc({ endpoint, outcome, reason });
  deps.metrics.duration.observe({ endpoint, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
}
