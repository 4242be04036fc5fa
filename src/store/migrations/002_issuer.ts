import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('issuer_signing_keys')
    .addColumn('kid', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('alg', 'varchar(16)', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('sealed_private_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('activate_at', 'bigint', (c) => c.notNull())
    .addColumn('activated_at', 'bigint')
    .addColumn('retired_at', 'bigint')
    .addColumn('remove_at', 'bigint')
    .addColumn('removed_at', 'bigint')
    .execute();
  await db.schema.createIndex('issuer_signing_keys_state').on('issuer_signing_keys').columns(['alg', 'state']).execute();

  await db.schema
    .createTable('issuer_jobs')
    .addColumn('job_id', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('ci_system', 'varchar(100)', (c) => c.notNull())
    .addColumn('project_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('project_path', 'varchar(1024)', (c) => c.notNull())
    .addColumn('context', 'text', (c) => c.notNull())
    .addColumn('on_demand', 'integer', (c) => c.notNull())
    .addColumn('audiences', 'text', (c) => c.notNull())
    .addColumn('any_audience', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('issuer_jobs_expires').on('issuer_jobs').column('expires_at').execute();

  await db.schema
    .createTable('issuer_project_paths')
    .addColumn('project_path', 'varchar(1024)', (c) => c.primaryKey())
    .addColumn('project_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('first_seen_at', 'bigint', (c) => c.notNull())
    .execute();
}
