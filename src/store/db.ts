import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database as Schema } from './schema.ts';
import { migrateToLatest } from './migrate.ts';

export type Db = Kysely<Schema>;
export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Db;
  dialect: Dialect;
  /** Where the data lives, with any password removed: safe to log. */
  location: string;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** `postgres://…`, `sqlite:PATH`, a plain file path, or `:memory:`. Empty: `<dataDir>/ci-oidc.db`. */
  url?: string | undefined;
  dataDir?: string | undefined;
  /** PostgreSQL schema to use (tests isolate themselves this way). */
  pgSchema?: string | undefined;
  pgPoolSize?: number | undefined;
  /** Apply pending migrations on open (default true). */
  migrate?: boolean | undefined;
}

// int8 columns hold seconds and counters well inside the safe-integer range; parse them as numbers
// so both stores return the same row shapes.
pg.types.setTypeParser(20, (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`int8 value ${value} is outside the safe-integer range`);
  return n;
});

export function isPostgresUrl(url: string | undefined): url is string {
  return !!url && /^postgres(ql)?:\/\//i.test(url);
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

export async function openStore(options: StoreOptions = {}): Promise<Store> {
  const store = isPostgresUrl(options.url) ? openPostgres(options.url, options) : openSqlite(options);
  try {
    await store.ping();
    if (options.migrate ?? true) await migrateToLatest(store.db, store.dialect, store.dialect === 'postgres' ? options.pgSchema : undefined);
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}

function openSqlite(options: StoreOptions): Store {
  const raw = options.url?.startsWith('sqlite:') ? options.url.slice('sqlite:'.length) : options.url;
  const file = raw && raw.length > 0 ? raw : resolve(options.dataDir ?? './data', 'ci-oidc.db');
  if (file !== ':memory:') mkdirSync(dirname(resolve(file)), { recursive: true });
  const sqlite = new Database(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
  return {
    db,
    dialect: 'sqlite',
    location: file === ':memory:' ? 'sqlite::memory:' : `sqlite:${resolve(file)}`,
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}

function openPostgres(url: string, options: StoreOptions): Store {
  if (options.pgSchema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(options.pgSchema)) {
    throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(options.pgSchema)}`);
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.pgPoolSize ?? 10,
    connectionTimeoutMillis: 5000,
    ...(options.pgSchema ? { options: `-c search_path=${options.pgSchema}` } : {}),
  });
  // An idle client that loses its connection must not crash the process.
  pool.on('error', () => undefined);
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    location: redactUrl(url),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}
