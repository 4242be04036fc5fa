import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../db.ts';

/** Tables owned by src/broker/. */
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('broker_credentials')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('endpoint', 'varchar(16)', (c) => c.notNull())
    .addColumn('registration', 'varchar(200)', (c) => c.notNull())
    .addColumn('iss', 'text', (c) => c.notNull())
    .addColumn('sub', 'text', (c) => c.notNull())
    .addColumn('subject_jti', 'varchar(300)')
    .addColumn('role', 'varchar(300)', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('aws_access_key_id', 'varchar(32)')
    .addColumn('issued_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('revoked_reason', 'varchar(200)')
    .execute();
  await db.schema.createIndex('broker_credentials_expires').on('broker_credentials').column('expires_at').execute();
  // Partial indexes: most rows have no AWS key id or no credential, and skipping them keeps each mint's
  // write set small.
  await db.schema.createIndex('broker_credentials_aws_key').unique().on('broker_credentials').column('aws_access_key_id').where(sql.ref('aws_access_key_id'), 'is not', null).execute();

  await db.schema
    .createTable('broker_audit')
    .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('endpoint', 'varchar(16)', (c) => c.notNull())
    .addColumn('outcome', 'varchar(8)', (c) => c.notNull())
    .addColumn('reason', 'varchar(64)', (c) => c.notNull())
    .addColumn('registration', 'varchar(200)')
    .addColumn('iss', 'text')
    .addColumn('sub', 'text')
    .addColumn('jti', 'varchar(300)')
    .addColumn('kid', 'varchar(200)')
    .addColumn('project_id', 'varchar(32)')
    .addColumn('job_id', 'varchar(32)')
    .addColumn('pipeline_id', 'varchar(32)')
    .addColumn('role', 'varchar(300)')
    .addColumn('credential_id', 'varchar(64)')
    .addColumn('client_ip', 'varchar(64)')
    .addColumn('request_id', 'varchar(64)')
    .addColumn('detail', 'text')
    .execute();
  await db.schema.createIndex('broker_audit_at').on('broker_audit').column('at').execute();
  await db.schema.createIndex('broker_audit_jti').on('broker_audit').column('jti').execute();
  await db.schema.createIndex('broker_audit_credential').on('broker_audit').column('credential_id').where(sql.ref('credential_id'), 'is not', null).execute();

  // Append-only is enforced by the database, not only by the repository having no update path.
  if (dialect === 'sqlite') {
    await sql`CREATE TRIGGER broker_audit_no_update BEFORE UPDATE ON broker_audit BEGIN SELECT RAISE(ABORT, 'broker_audit is append-only'); END`.execute(db);
    await sql`CREATE TRIGGER broker_audit_no_delete BEFORE DELETE ON broker_audit BEGIN SELECT RAISE(ABORT, 'broker_audit is append-only'); END`.execute(db);
  } else {
    await sql`CREATE OR REPLACE FUNCTION broker_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'broker_audit is append-only'; END $$`.execute(db);
    await sql`CREATE TRIGGER broker_audit_no_change BEFORE UPDATE OR DELETE ON broker_audit FOR EACH ROW EXECUTE FUNCTION broker_audit_append_only()`.execute(db);
  }

  await db.schema
    .createTable('broker_rate_limits')
    .addColumn('key', 'varchar(300)', (c) => c.primaryKey())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .execute();
}
