import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { BrokerCredentialTable } from '../store/tables/broker.ts';
import { hashCredential } from './credential.ts';

export type CredentialRow = BrokerCredentialTable;

export interface CredentialScope {
  /** Trusted publishing: the projects the token may upload to. */
  projects?: string[];
  /** OAuth-style scopes granted (role grant ∩ request). */
  scopes?: string[];
  /** Target audience/resource of the credential. */
  audience?: string[];
  /** Vault policies. */
  policies?: string[];
  /** AWS role ARN and the session policy/ARNs that narrowed it. */
  roleArn?: string;
  sessionName?: string;
  policyArns?: string[];
  sessionPolicy?: string;
}

export async function insertCredential(db: Kysely<Database>, row: CredentialRow): Promise<void> {
  await db.insertInto('broker_credentials').values(row).execute();
}

/** The live row for a presented bearer value, or null (unknown, expired or revoked). */
export async function findActiveCredential(db: Kysely<Database>, token: string, now: number): Promise<CredentialRow | null> {
  const row = await db.selectFrom('broker_credentials').selectAll().where('token_hash', '=', hashCredential(token)).executeTakeFirst();
  if (!row || row.revoked_at !== null || row.expires_at <= now) return null;
  return row;
}

export async function getCredential(db: Kysely<Database>, id: string): Promise<CredentialRow | null> {
  return (await db.selectFrom('broker_credentials').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
}

/** Returns true when a live credential was revoked by this call. */
export async function revokeCredentialById(db: Kysely<Database>, id: string, now: number, reason: string): Promise<boolean> {
  const r = await db
    .updateTable('broker_credentials')
    .set({ revoked_at: now, revoked_reason: reason.slice(0, 200) })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function revokeCredentialByToken(db: Kysely<Database>, token: string, now: number, reason: string): Promise<string | null> {
  const row = await db.selectFrom('broker_credentials').select(['id']).where('token_hash', '=', hashCredential(token)).executeTakeFirst();
  if (!row) return null;
  await revokeCredentialById(db, row.id, now, reason);
  return row.id;
}

/**
 * Revokes every live credential minted from one ID token (e.g. after a leaked job token). The audit log
 * (indexed by jti) names them, which spares the credentials table a per-mint index.
 */
export async function revokeCredentialsForJti(db: Kysely<Database>, registration: string, jti: string, now: number, reason: string): Promise<number> {
  const issued = await db
    .selectFrom('broker_audit')
    .select('credential_id')
    .where('jti', '=', jti)
    .where('registration', '=', registration)
    .where('outcome', '=', 'allow')
    .where('credential_id', 'is not', null)
    .execute();
  const ids = issued.map((r) => r.credential_id!).filter((id) => id.length > 0);
  if (ids.length === 0) return 0;
  const r = await db
    .updateTable('broker_credentials')
    .set({ revoked_at: now, revoked_reason: reason.slice(0, 200) })
    .where('id', 'in', ids)
    .where('registration', '=', registration)
    .where('subject_jti', '=', jti)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export interface CredentialListQuery {
  registration?: string;
  sub?: string;
  role?: string;
  activeAt?: number;
  limit?: number;
}

/** Metadata only; the hash is left out of listings as well. */
export async function listCredentials(db: Kysely<Database>, q: CredentialListQuery): Promise<Omit<CredentialRow, 'token_hash'>[]> {
  let query = db
    .selectFrom('broker_credentials')
    .select(['id', 'kind', 'endpoint', 'registration', 'iss', 'sub', 'subject_jti', 'role', 'scope', 'metadata', 'aws_access_key_id', 'issued_at', 'expires_at', 'revoked_at', 'revoked_reason']);
  if (q.registration !== undefined) query = query.where('registration', '=', q.registration);
  if (q.sub !== undefined) query = query.where('sub', '=', q.sub);
  if (q.role !== undefined) query = query.where('role', '=', q.role);
  if (q.activeAt !== undefined) query = query.where('expires_at', '>', q.activeAt).where('revoked_at', 'is', null);
  return query.orderBy('issued_at', 'desc').limit(Math.min(Math.max(1, q.limit ?? 100), 1000)).execute();
}

/** Trusted-publishing and other credentials older than a day past expiry are deleted (T§10 purge). */
export async function purgeExpiredCredentials(db: Kysely<Database>, now: number, graceSeconds = 86400): Promise<number> {
  const r = await db.deleteFrom('broker_credentials').where('expires_at', '<', now - graceSeconds).executeTakeFirst();
  return Number(r.numDeletedRows);
}
