import type { Kysely } from 'kysely';

/** Tables owned by src/ca/. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ca_keys')
    .addColumn('id', 'varchar(80)', (c) => c.primaryKey())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('certificate_pem', 'text', (c) => c.notNull())
    .addColumn('sealed_private_key', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'varchar(80)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('not_after', 'bigint', (c) => c.notNull())
    .addColumn('retired_at', 'bigint')
    .execute();
  await db.schema.createIndex('ca_keys_kind_state').on('ca_keys').columns(['kind', 'state']).execute();
}
