import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { BrokerAuditTable, BrokerCredentialTable } from '../store/tables/broker.ts';

/**
 * SQLite hot path for the mint transaction: replay claim + credential row + audit row on prepared
 * statements (kysely prepares every statement on every call, which costs more than the exchange's own
 * crypto). Mints that arrive in the same event-loop turn share one transaction (group commit): each item
 * still claims its `jti` before its rows are written, a replayed item writes nothing, and no caller is
 * answered before the commit. The connection uses busy_timeout 0 and never waits: if another writer holds
 * the lock, every item in the batch reports `busy` and its caller takes the ordinary kysely path, so this
 * can never block the event loop.
 */
export interface FastMintWriter {
  write(claim: { key: string; registration: string; expiresAt: number; now: number } | null, credential: BrokerCredentialTable, audit: BrokerAuditTable): Promise<'ok' | 'replayed' | 'busy'>;
  close(): void;
}

interface Item {
  claim: Parameters<FastMintWriter['write']>[0];
  credential: BrokerCredentialTable;
  audit: BrokerAuditTable;
  resolve(r: 'ok' | 'replayed' | 'busy'): void;
  reject(err: unknown): void;
}

const MAX_BATCH = 64;
/** Safety net if the background checkpointer is not running: the WAL may grow to about 40 MB. */
const WAL_AUTOCHECKPOINT_PAGES = 10_000;
const CHECKPOINT_INTERVAL_MS = 250;

/**
 * WAL checkpoints (copying the WAL into the database and fsyncing it) cost more than the mint itself
 * when they run inline on the writing connection. A worker thread runs PASSIVE checkpoints instead, which
 * never block writers, so the fsync happens off the event loop.
 */
const CHECKPOINTER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
const timer = setInterval(() => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} }, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); db.close(); parentPort.close(); });
`;

function startCheckpointer(file: string): Worker | undefined {
  try {
    const worker = new Worker(CHECKPOINTER, { eval: true, workerData: { file, module: createRequire(import.meta.url).resolve('better-sqlite3'), intervalMs: CHECKPOINT_INTERVAL_MS } });
    worker.on('error', () => undefined);
    worker.unref();
    return worker;
  } catch {
    return undefined;
  }
}

const CRED_COLS = ['id', 'token_hash', 'kind', 'endpoint', 'registration', 'iss', 'sub', 'subject_jti', 'role', 'scope', 'metadata', 'aws_access_key_id', 'issued_at', 'expires_at', 'revoked_at', 'revoked_reason'] as const;
const AUDIT_COLS = ['id', 'at', 'endpoint', 'outcome', 'reason', 'registration', 'iss', 'sub', 'jti', 'kid', 'project_id', 'job_id', 'pipeline_id', 'role', 'credential_id', 'client_ip', 'request_id', 'detail'] as const;

const insert = (table: string, cols: readonly string[]): string => `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;

/** Positional parameters: better-sqlite3 binds them by index, which costs less than looking up every named one. */
const values = <T extends object>(row: T, cols: readonly (keyof T)[]): unknown[] => {
  const out = new Array<unknown>(cols.length);
  for (let i = 0; i < cols.length; i++) out[i] = row[cols[i]!];
  return out;
};

/** `location` is the Store's `sqlite:/abs/path`; in-memory databases cannot be shared, so none is returned. */
export function openFastMintWriter(location: string): FastMintWriter | undefined {
  if (!location.startsWith('sqlite:') || location === 'sqlite::memory:') return undefined;
  const file = location.slice('sqlite:'.length);
  const raw = new Database(file, { fileMustExist: true });
  raw.pragma('busy_timeout = 0');
  raw.pragma('synchronous = NORMAL');
  const checkpointer = startCheckpointer(file);
  if (checkpointer) raw.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  // After a checkpoint resets the WAL, truncate the file back to this size rather than keep its high-water mark.
  raw.pragma('journal_size_limit = 67108864');
  const claim = raw.prepare(
    'INSERT INTO verifier_replay (key, registration, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, registration = excluded.registration WHERE verifier_replay.expires_at <= ?',
  );
  const cred = raw.prepare(insert('broker_credentials', CRED_COLS));
  const audit = raw.prepare(insert('broker_audit', AUDIT_COLS));
  const tx = raw.transaction((items: Item[]): ('ok' | 'replayed')[] =>
    items.map((it) => {
      const c = it.claim;
      if (c !== null && claim.run(c.key, c.registration, c.expiresAt, c.now).changes !== 1) return 'replayed';
      cred.run(values(it.credential, CRED_COLS));
      audit.run(values(it.audit, AUDIT_COLS));
      return 'ok';
    }),
  );
  let queue: Item[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    let results: ('ok' | 'replayed')[];
    try {
      results = tx.immediate(batch);
    } catch (err) {
      const busy = typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('SQLITE_BUSY');
      for (const it of batch) {
        if (busy) it.resolve('busy');
        else it.reject(err);
      }
      return;
    }
    batch.forEach((it, i) => it.resolve(results[i]!));
  };
  let open = true;
  return {
    write(c, credential, a) {
      if (!open) return Promise.resolve('busy');
      return new Promise((resolve, reject) => {
        queue.push({ claim: c, credential, audit: a, resolve, reject });
        if (queue.length >= MAX_BATCH) flush();
        else if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    close() {
      if (queue.length > 0) flush();
      open = false;
      raw.close();
      checkpointer?.postMessage('stop');
    },
  };
}
