import Database from 'better-sqlite3';
import type { BrokerAuditTable, BrokerCredentialTable } from '../store/tables/broker.ts';

/**
 * SQLite hot path for the mint transaction: replay claim + credential row + audit row as one
 * synchronous better-sqlite3 transaction on prepared statements (kysely prepares every statement on
 * every call, which costs more than the exchange's own crypto). It runs on its own connection with
 * busy_timeout 0 and never waits: if another writer holds the lock it reports `busy` and the caller takes
 * the ordinary kysely path, so it can never block the event loop.
 */
export interface FastMintWriter {
  write(claim: { key: string; registration: string; expiresAt: number; now: number } | null, credential: BrokerCredentialTable, audit: BrokerAuditTable): 'ok' | 'replayed' | 'busy';
  close(): void;
}

const CRED_COLS = ['id', 'token_hash', 'kind', 'endpoint', 'registration', 'iss', 'sub', 'subject_jti', 'role', 'scope', 'metadata', 'aws_access_key_id', 'issued_at', 'expires_at', 'revoked_at', 'revoked_reason'] as const;
const AUDIT_COLS = ['id', 'at', 'endpoint', 'outcome', 'reason', 'registration', 'iss', 'sub', 'jti', 'kid', 'project_id', 'job_id', 'pipeline_id', 'role', 'credential_id', 'client_ip', 'request_id', 'detail'] as const;

const insert = (table: string, cols: readonly string[]): string => `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`;

/** `location` is the Store's `sqlite:/abs/path`; in-memory databases cannot be shared, so none is returned. */
export function openFastMintWriter(location: string): FastMintWriter | undefined {
  if (!location.startsWith('sqlite:') || location === 'sqlite::memory:') return undefined;
  const raw = new Database(location.slice('sqlite:'.length), { fileMustExist: true });
  raw.pragma('busy_timeout = 0');
  raw.pragma('synchronous = NORMAL');
  const claim = raw.prepare(
    'INSERT INTO verifier_replay (key, registration, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, registration = excluded.registration WHERE verifier_replay.expires_at <= ?',
  );
  const cred = raw.prepare(insert('broker_credentials', CRED_COLS));
  const audit = raw.prepare(insert('broker_audit', AUDIT_COLS));
  const tx = raw.transaction((c: Parameters<FastMintWriter['write']>[0], row: BrokerCredentialTable, a: BrokerAuditTable): 'ok' | 'replayed' => {
    if (c !== null && claim.run(c.key, c.registration, c.expiresAt, c.now).changes !== 1) return 'replayed';
    cred.run(row);
    audit.run(a);
    return 'ok';
  });
  return {
    write(c, row, a) {
      try {
        return tx.immediate(c, row, a);
      } catch (err) {
        if (typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('SQLITE_BUSY')) return 'busy';
        throw err;
      }
    },
    close() {
      raw.close();
    },
  };
}
