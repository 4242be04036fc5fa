import type { Kysely } from 'kysely';

/** Tables owned by src/verifier/: the one-time-use claims of token `jti`s (verification.md §10). */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('verifier_replay')
    // SHA-256 (hex) of (registration id, iss, jti): never the raw token.
    .addColumn('key', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('registration', 'varchar(200)', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('verifier_replay_expires_at').on('verifier_replay').column('expires_at').execute();
}
