import type { Kysely } from 'kysely';

/**
 * Issuer registrations made through the admin API (src/verifier/stored-issuers.ts). Config-file
 * registrations are never stored: every replica reads them from its own config.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('verifier_issuers')
    .addColumn('id', 'varchar(200)', (c) => c.primaryKey())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('tenant', 'varchar(200)')
    // SHA-256 (hex) of (issuer, tenant): one registration per exact iss and tenant across replicas.
    .addColumn('issuer_key', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('profile', 'varchar(32)', (c) => c.notNull())
    // The registration in the config entry's shape, validated (JSON text).
    .addColumn('registration', 'text', (c) => c.notNull())
    .addColumn('created_by', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}
