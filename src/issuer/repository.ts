import { createHash } from 'node:crypto';
import type { KeyRecord, KeyState, KeyringBackend, StoredKey } from '../jose/keyring.ts';
import { isSigningAlg, type PublicSigningJwk } from '../jose/keys.ts';
import type { Db } from '../store/db.ts';
import type { IssuerJobTable, IssuerSigningKeyTable } from '../store/tables/issuer.ts';
import type { JobContext } from './context.ts';
import type { ClaimDefinition } from './custom-claims.ts';

const STATES: readonly KeyState[] = ['next', 'active', 'retired', 'removed'];

function rowToKey(row: IssuerSigningKeyTable): StoredKey {
  if (!isSigningAlg(row.alg) || !(STATES as readonly string[]).includes(row.state)) {
    throw new Error(`issuer_signing_keys row ${row.kid} has an unknown alg or state`);
  }
  return {
    kid: row.kid,
    alg: row.alg,
    state: row.state as KeyState,
    publicJwk: JSON.parse(row.public_jwk) as PublicSigningJwk,
    createdAt: Number(row.created_at),
    activateAt: Number(row.activate_at),
    activatedAt: row.activated_at === null ? null : Number(row.activated_at),
    retiredAt: row.retired_at === null ? null : Number(row.retired_at),
    removeAt: row.remove_at === null ? null : Number(row.remove_at),
    removedAt: row.removed_at === null ? null : Number(row.removed_at),
    sealedPrivateKey: row.sealed_private_key,
  };
}

/** The keyring's storage in the `issuer_signing_keys` table. */
export function keyringBackend(db: Db): KeyringBackend {
  return {
    async list() {
      const rows = await db.selectFrom('issuer_signing_keys').selectAll().orderBy('created_at').execute();
      return rows.map(rowToKey);
    },
    async insert(key) {
      await db
        .insertInto('issuer_signing_keys')
        .values({
          kid: key.kid,
          alg: key.alg,
          state: key.state,
          public_jwk: JSON.stringify(key.publicJwk),
          sealed_private_key: key.sealedPrivateKey,
          created_at: key.createdAt,
          activate_at: key.activateAt,
          activated_at: key.activatedAt,
          retired_at: key.retiredAt,
          remove_at: key.removeAt,
          removed_at: key.removedAt,
        })
        .execute();
    },
    async update(kid, expectedState, patch: Partial<KeyRecord>) {
      const set: Partial<IssuerSigningKeyTable> = {};
      if (patch.state !== undefined) set.state = patch.state;
      if (patch.activatedAt !== undefined) set.activated_at = patch.activatedAt;
      if (patch.retiredAt !== undefined) set.retired_at = patch.retiredAt;
      if (patch.removeAt !== undefined) set.remove_at = patch.removeAt;
      if (patch.removedAt !== undefined) set.removed_at = patch.removedAt;
      if (patch.activateAt !== undefined) set.activate_at = patch.activateAt;
      const result = await db.updateTable('issuer_signing_keys').set(set).where('kid', '=', kid).where('state', '=', expectedState).executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}

export function hashJobToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export interface JobRecord {
  jobId: string;
  ciSystem: string;
  projectId: string;
  projectPath: string;
  context: JobContext;
  /** Job-level `jwt_claims` (expanded at registration), carried by on-demand tokens. */
  jobClaims: ClaimDefinition[];
  onDemand: boolean;
  audiences: string[];
  anyAudience: boolean;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

function rowToJob(row: IssuerJobTable): JobRecord {
  return {
    jobId: row.job_id,
    ciSystem: row.ci_system,
    projectId: row.project_id,
    projectPath: row.project_path,
    ...parseStoredContext(row.context),
    onDemand: Number(row.on_demand) === 1,
    audiences: JSON.parse(row.audiences) as string[],
    anyAudience: Number(row.any_audience) === 1,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}

function parseStoredContext(text: string): { context: JobContext; jobClaims: ClaimDefinition[] } {
  const stored = JSON.parse(text) as { context?: JobContext; jobClaims?: ClaimDefinition[] };
  if (!stored.context || !Array.isArray(stored.jobClaims)) throw new Error('issuer_jobs row has an unreadable context');
  return { context: stored.context, jobClaims: stored.jobClaims };
}

/** Jobs registered through the Job API; job tokens are kept only as SHA-256. */
export class JobRepository {
  constructor(private readonly db: Db) {}

  /** Inserts a job; false when the job ID is already registered (a retry must get a new job ID). */
  async insert(job: Omit<JobRecord, 'revokedAt'>, tokenHash: string): Promise<boolean> {
    const existing = await this.db.selectFrom('issuer_jobs').select('job_id').where('job_id', '=', job.jobId).executeTakeFirst();
    if (existing) return false;
    try {
      await this.db
        .insertInto('issuer_jobs')
        .values({
          job_id: job.jobId,
          token_hash: tokenHash,
          ci_system: job.ciSystem,
          project_id: job.projectId,
          project_path: job.projectPath,
          context: JSON.stringify({ context: job.context, jobClaims: job.jobClaims }),
          on_demand: job.onDemand ? 1 : 0,
          audiences: JSON.stringify(job.audiences),
          any_audience: job.anyAudience ? 1 : 0,
          created_at: job.createdAt,
          expires_at: job.expiresAt,
          revoked_at: null,
        })
        .execute();
      return true;
    } catch (err) {
      const again = await this.db.selectFrom('issuer_jobs').select('job_id').where('job_id', '=', job.jobId).executeTakeFirst();
      if (again) return false;
      throw err;
    }
  }

  /** A live job for a token hash: not revoked, not past its timeout. */
  async findLiveByTokenHash(tokenHash: string, now: number): Promise<JobRecord | undefined> {
    const row = await this.db
      .selectFrom('issuer_jobs')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return row ? rowToJob(row) : undefined;
  }

  async find(jobId: string): Promise<JobRecord | undefined> {
    const row = await this.db.selectFrom('issuer_jobs').selectAll().where('job_id', '=', jobId).executeTakeFirst();
    return row ? rowToJob(row) : undefined;
  }

  async revoke(jobId: string, now: number): Promise<boolean> {
    const r = await this.db.updateTable('issuer_jobs').set({ revoked_at: now }).where('job_id', '=', jobId).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Deletes jobs that ended more than `keepSeconds` ago. */
  async purge(now: number, keepSeconds = 86400): Promise<number> {
    const r = await this.db.deleteFrom('issuer_jobs').where('expires_at', '<', now - keepSeconds).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

/** Remembers which project first held each path, for the reclaimed-path guard. */
export class ProjectPathRepository {
  constructor(private readonly db: Db) {}

  /** Records the path on first sight and returns the project ID that first held it. */
  async firstHolder(projectPath: string, projectId: string, now: number): Promise<string> {
    const existing = await this.db.selectFrom('issuer_project_paths').select('project_id').where('project_path', '=', projectPath).executeTakeFirst();
    if (existing) return existing.project_id;
    try {
      await this.db.insertInto('issuer_project_paths').values({ project_path: projectPath, project_id: projectId, first_seen_at: now }).execute();
      return projectId;
    } catch {
      const again = await this.db.selectFrom('issuer_project_paths').select('project_id').where('project_path', '=', projectPath).executeTakeFirst();
      if (!again) throw new Error('could not record the project path');
      return again.project_id;
    }
  }
}
