import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Dialect } from './db.ts';
import { migrations } from './migrations/index.ts';

export type MigrationModule = { up(db: Kysely<any>, dialect: Dialect): Promise<void> };

class StaticProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const out: Record<string, Migration> = {};
    for (const [name, mod] of Object.entries(migrations)) {
      out[name] = { up: (db) => mod.up(db, this.dialect) };
    }
    return out;
  }
}

/** Applies pending migrations in name order. Kysely holds a lock, so replicas starting together are safe. */
export async function migrateToLatest(db: Kysely<any>, dialect: Dialect, pgSchema?: string): Promise<string[]> {
  // Kysely looks its bookkeeping tables up in every schema unless told which one: name ours, so two
  // stores in one database (tests, or tenants) never see each other's migration lock.
  const migrator = new Migrator({ db, provider: new StaticProvider(dialect), ...(pgSchema ? { migrationTableSchema: pgSchema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`store migration ${failed?.migrationName ?? '?'} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
