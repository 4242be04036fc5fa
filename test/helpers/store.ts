import { randomBytes } from 'node:crypto';
import { describe } from 'node:test';
import pg from 'pg';
import { openStore, type Store } from '../../src/store/db.ts';

export type StoreKind = 'sqlite' | 'postgres';

export interface TestStore extends Store {
  kind: StoreKind;
  /** What openStore needs to reach the same data from another pool or process. */
  url: string;
  pgSchema?: string;
}

/** PostgreSQL tests run when CI_OIDC_TEST_PG_URL points at a server (.ci/run sets it). */
export const pgUrl = process.env.CI_OIDC_TEST_PG_URL;

export function storeSkipReason(kind: StoreKind): string | false {
  if (kind === 'postgres' && !pgUrl) return 'PostgreSQL tests skipped: set CI_OIDC_TEST_PG_URL=postgres://user@host:5432/db to run them';
  return false;
}

/**
 * A fresh, migrated store: a new SQLite file under the OS temp dir, or a new schema in the test
 * PostgreSQL database. `close()` drops the schema.
 */
export async function openTestStore(kind: StoreKind, options: { migrate?: boolean; pgPoolSize?: number } = {}): Promise<TestStore> {
  if (kind === 'sqlite') {
    const file = `${process.env.TMPDIR ?? '/tmp'}/ci-oidc-test-${randomBytes(6).toString('hex')}.db`;
    const store = await openStore({ url: `sqlite:${file}`, migrate: options.migrate ?? true });
    return {
      ...store,
      kind,
      url: `sqlite:${file}`,
      async close() {
        await store.close();
        const { rm } = await import('node:fs/promises');
        await Promise.all(['', '-wal', '-shm'].map((s) => rm(file + s, { force: true })));
      },
    };
  }
  if (!pgUrl) throw new Error(storeSkipReason('postgres') as string);
  const dbUrl = await processDatabase();
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: dbUrl });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const store = await openStore({ url: dbUrl, pgSchema: schema, migrate: options.migrate ?? true, pgPoolSize: options.pgPoolSize ?? 10 });
  return {
    ...store,
    kind,
    url: dbUrl,
    pgSchema: schema,
    async close() {
      await store.close();
      const c = new pg.Client({ connectionString: dbUrl });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    },
  };
}

let processDb: Promise<string> | undefined;

/**
 * One database per test process. Test files run in parallel processes, and kysely's migrator reads the
 * catalog of every schema in its database: a schema that another process drops mid-read fails the read
 * ("schema … does not exist"). Schemas are per-test inside the process's own database; databases left
 * by earlier runs are dropped once they are an hour old.
 */
function processDatabase(): Promise<string> {
  processDb ??= (async () => {
    const name = `ci_oidc_t_${Math.floor(Date.now() / 1000)}_${process.pid}_${randomBytes(3).toString('hex')}`;
    const admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    try {
      const stale = await admin.query<{ datname: string }>(`select datname from pg_database where datname like 'ci\\_oidc\\_t\\_%'`);
      const cutoff = Math.floor(Date.now() / 1000) - 3600;
      for (const { datname } of stale.rows) {
        const born = Number(datname.split('_')[3]);
        if (Number.isFinite(born) && born < cutoff) await admin.query(`drop database if exists "${datname}" with (force)`).catch(() => undefined);
      }
      await admin.query(`create database "${name}"`);
    } finally {
      await admin.end();
    }
    const url = new URL(pgUrl!);
    url.pathname = `/${name}`;
    return url.toString();
  })();
  return processDb;
}

/** Opens a second connection pool onto an existing test store (as a second replica would). */
export async function openReplica(store: TestStore): Promise<Store> {
  return openStore({ url: store.url, pgSchema: store.pgSchema, migrate: false });
}

/**
 * Declares the same suite once per store: `forEachStore((kind, open) => { test(..., async () => { const s = await open(); ... }) })`.
 * The PostgreSQL suite is skipped, with the reason, when no server is configured.
 */
export function forEachStore(body: (kind: StoreKind, open: () => Promise<TestStore>) => void): void {
  for (const kind of ['sqlite', 'postgres'] as const) {
    describe(`store: ${kind}`, { skip: storeSkipReason(kind) }, () => body(kind, () => openTestStore(kind)));
  }
}
