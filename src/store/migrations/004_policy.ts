import type { Kysely } from 'kysely';

/**
 * Tables owned by src/policy/: roles, trusted publishers, pending publishers, the admin audit of pin
 * resets, and a generation counter replicas poll to invalidate their in-memory index.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('policy_roles')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant', 'varchar(200)', (c) => c.notNull())
    .addColumn('name', 'varchar(64)', (c) => c.notNull())
    .addColumn('registration', 'varchar(200)', (c) => c.notNull())
    .addColumn('document', 'text', (c) => c.notNull())
    .addColumn('pin_owner_id', 'varchar(20)')
    .addColumn('pin_project_id', 'varchar(20)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('policy_roles_tenant_name', ['tenant', 'name'])
    .execute();
  await db.schema.createIndex('policy_roles_registration').on('policy_roles').column('registration').execute();

  for (const table of ['policy_publishers', 'policy_pending_publishers']) {
    let t = db.schema
      .createTable(table)
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('tenant', 'varchar(200)', (c) => c.notNull())
      .addColumn('provider', 'varchar(16)', (c) => c.notNull())
      .addColumn('registration', 'varchar(200)', (c) => c.notNull())
      .addColumn('owner', 'varchar(255)', (c) => c.notNull())
      .addColumn('owner_lc', 'varchar(255)', (c) => c.notNull())
      .addColumn('project', 'varchar(255)', (c) => c.notNull())
      .addColumn('project_lc', 'varchar(255)', (c) => c.notNull())
      .addColumn('workflow', 'varchar(1024)', (c) => c.notNull())
      .addColumn('environment', 'varchar(255)', (c) => c.notNull())
      .addColumn('constraints', 'text', (c) => c.notNull())
      .addColumn('pin_owner_id', 'varchar(20)')
      .addColumn('pin_project_id', 'varchar(20)')
      .addColumn('projects', 'text', (c) => c.notNull())
      .addColumn('first_use_deadline', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull());
    if (table === 'policy_pending_publishers') {
      t = t
        .addColumn('project_name', 'varchar(255)', (c) => c.notNull())
        .addColumn('project_name_norm', 'varchar(255)', (c) => c.notNull())
        .addColumn('added_by', 'varchar(255)', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull());
    }
    // trusted-publishing.md §2.3 (ours): the issuer registration is part of the uniqueness key. The
    // unique index also serves the lookup by (registration, owner, project).
    await t.addUniqueConstraint(`${table}_identity`, ['registration', 'owner_lc', 'project_lc', 'workflow', 'environment']).execute();
  }
  await db.schema.createIndex('policy_pending_publishers_name').on('policy_pending_publishers').column('project_name_norm').execute();
  await db.schema.createIndex('policy_pending_publishers_added_by').on('policy_pending_publishers').column('added_by').execute();

  await db.schema
    .createTable('policy_admin_audit')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('actor', 'varchar(255)', (c) => c.notNull())
    .addColumn('action', 'varchar(64)', (c) => c.notNull())
    .addColumn('target_kind', 'varchar(32)', (c) => c.notNull())
    .addColumn('target_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('policy_admin_audit_target').on('policy_admin_audit').columns(['target_kind', 'target_id']).execute();

  await db.schema
    .createTable('policy_generation')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('generation', 'bigint', (c) => c.notNull())
    .execute();
  await db.insertInto('policy_generation').values({ id: 1, generation: 0 }).execute();
}
