import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { BrokerAuditTable, BrokerCredentialTable } from '../store/tables/broker.ts';

/**
 * PostgreSQL hot path for the mint transaction: the replay claim, the credential row and the audit row
 * as one statement of data-modifying CTEs, so one round trip instead of five (BEGIN, three inserts,
 * COMMIT). A single statement is atomic; the credential and audit rows are written only when the claim
 * row was inserted (or an expired one taken over). A concurrent claim of the same key waits for the
 * first statement to commit and then finds the live row, so exactly one succeeds.
 */
const CRED: [keyof BrokerCredentialTable, 'text' | 'bigint'][] = [
  ['id', 'text'], ['token_hash', 'text'], ['kind', 'text'], ['endpoint', 'text'], ['registration', 'text'], ['iss', 'text'], ['sub', 'text'],
  ['subject_jti', 'text'], ['role', 'text'], ['scope', 'text'], ['metadata', 'text'], ['aws_access_key_id', 'text'], ['issued_at', 'bigint'],
  ['expires_at', 'bigint'], ['revoked_at', 'bigint'], ['revoked_reason', 'text'],
];
const AUDIT: [keyof BrokerAuditTable, 'text' | 'bigint'][] = [
  ['id', 'text'], ['at', 'bigint'], ['endpoint', 'text'], ['outcome', 'text'], ['reason', 'text'], ['registration', 'text'], ['iss', 'text'],
  ['sub', 'text'], ['jti', 'text'], ['kid', 'text'], ['project_id', 'text'], ['job_id', 'text'], ['pipeline_id', 'text'], ['role', 'text'],
  ['credential_id', 'text'], ['client_ip', 'text'], ['request_id', 'text'], ['detail', 'text'],
];

function typedValues<T>(row: T, cols: [keyof T, 'text' | 'bigint'][]): RawBuilder<unknown> {
  return sql.join(cols.map(([c, t]) => (t === 'bigint' ? sql`${row[c]}::bigint` : sql`${row[c]}::text`)));
}

const names = <T>(cols: [keyof T, string][]): RawBuilder<unknown> => sql.join(cols.map(([c]) => sql.ref(String(c))));

export async function pgMint(
  db: Kysely<Database>,
  claim: { key: string; registration: string; expiresAt: number; now: number } | null,
  credential: BrokerCredentialTable,
  audit: BrokerAuditTable,
): Promise<'ok' | 'replayed'> {
  const claimCte =
    claim === null
      ? sql`claim AS (SELECT 1 AS ok)`
      : sql`claim AS (
          INSERT INTO verifier_replay (key, registration, expires_at) VALUES (${claim.key}, ${claim.registration}, ${claim.expiresAt}::bigint)
          ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, registration = excluded.registration
          WHERE verifier_replay.expires_at <= ${claim.now}::bigint
          RETURNING 1 AS ok)`;
  const result = await sql<{ written: number | string }>`
    WITH ${claimCte},
    cred AS (
      INSERT INTO broker_credentials (${names(CRED)}) SELECT ${typedValues(credential, CRED)} WHERE EXISTS (SELECT 1 FROM claim) RETURNING id),
    aud AS (
      INSERT INTO broker_audit (${names(AUDIT)}) SELECT ${typedValues(audit, AUDIT)} WHERE EXISTS (SELECT 1 FROM cred) RETURNING id)
    SELECT count(*) AS written FROM aud`.execute(db);
  return Number(result.rows[0]?.written ?? 0) === 1 ? 'ok' : 'replayed';
}
