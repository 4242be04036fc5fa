/**
 * Store access for roles, publishers, pending publishers, pins and the admin audit (SQLite and
 * PostgreSQL through kysely). Every write bumps `policy_generation` so replicas refresh their index.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { PolicyPendingPublisherRow, PolicyPublisherRow, PolicyRoleRow } from '../store/tables/policy.ts';

type Db = Kysely<Database>;
type Tx = Transaction<Database> | Db;

export type PinColumn = 'pin_owner_id' | 'pin_project_id';

export class PolicyRepository {
  constructor(private readonly db: Db) {}

  async generation(): Promise<number> {
    const row = await this.db.selectFrom('policy_generation').select('generation').where('id', '=', 1).executeTakeFirst();
    return row ? Number(row.generation) : 0;
  }

  private async bump(tx: Tx): Promise<void> {
    await tx
      .updateTable('policy_generation')
      .set({ generation: sql`generation + 1` })
      .where('id', '=', 1)
      .execute();
  }

  async audit(tx: Tx, entry: { at: number; actor: string; action: string; targetKind: string; targetId: string; detail: unknown }): Promise<void> {
    await tx
      .insertInto('policy_admin_audit')
      .values({ id: randomUUID(), at: entry.at, actor: entry.actor, action: entry.action, target_kind: entry.targetKind, target_id: entry.targetId, detail: JSON.stringify(entry.detail) })
      .execute();
  }

  async listAudit(targetKind: string, targetId: string) {
    return this.db.selectFrom('policy_admin_audit').selectAll().where('target_kind', '=', targetKind).where('target_id', '=', targetId).orderBy('at').execute();
  }

  // --- roles ---

  async allRoles(): Promise<PolicyRoleRow[]> {
    return this.db.selectFrom('policy_roles').selectAll().execute();
  }

  async getRole(tenant: string, name: string): Promise<PolicyRoleRow | undefined> {
    return this.db.selectFrom('policy_roles').selectAll().where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
  }

  async getRoleById(id: string): Promise<PolicyRoleRow | undefined> {
    return this.db.selectFrom('policy_roles').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Create or replace by (tenant, name). Replacing keeps recorded pins unless the document sets them. */
  async upsertRole(row: Omit<PolicyRoleRow, 'id' | 'created_at'> & { now: number; actor: string }): Promise<PolicyRoleRow> {
    return this.db.transaction().execute(async (tx) => {
      const existing = await tx.selectFrom('policy_roles').selectAll().where('tenant', '=', row.tenant).where('name', '=', row.name).executeTakeFirst();
      let out: PolicyRoleRow;
      if (existing) {
        const sameIssuer = existing.registration === row.registration;
        out = {
          ...existing,
          registration: row.registration,
          document: row.document,
          pin_owner_id: row.pin_owner_id ?? (sameIssuer ? existing.pin_owner_id : null),
          pin_project_id: row.pin_project_id ?? (sameIssuer ? existing.pin_project_id : null),
          updated_at: row.now,
        };
        await tx
          .updateTable('policy_roles')
          .set({ registration: out.registration, document: out.document, pin_owner_id: out.pin_owner_id, pin_project_id: out.pin_project_id, updated_at: out.updated_at })
          .where('id', '=', existing.id)
          .execute();
      } else {
        out = { id: randomUUID(), tenant: row.tenant, name: row.name, registration: row.registration, document: row.document, pin_owner_id: row.pin_owner_id, pin_project_id: row.pin_project_id, created_at: row.now, updated_at: row.now };
        await tx.insertInto('policy_roles').values(out).execute();
      }
      await this.audit(tx, { at: row.now, actor: row.actor, action: existing ? 'role.update' : 'role.create', targetKind: 'role', targetId: out.id, detail: { tenant: row.tenant, name: row.name } });
      await this.bump(tx);
      return out;
    });
  }

  async deleteRole(tenant: string, name: string, actor: string, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const existing = await tx.selectFrom('policy_roles').select('id').where('tenant', '=', tenant).where('name', '=', name).executeTakeFirst();
      if (!existing) return false;
      await tx.deleteFrom('policy_roles').where('id', '=', existing.id).execute();
      await this.audit(tx, { at: now, actor, action: 'role.delete', targetKind: 'role', targetId: existing.id, detail: { tenant, name } });
      await this.bump(tx);
      return true;
    });
  }

  /**
   * Compare-and-set of one pin (`... WHERE pin IS NULL`): returns the value in force afterwards, so of two
   * racing first uses exactly one value wins and the loser re-compares.
   */
  async casPin(table: 'policy_roles' | 'policy_publishers', id: string, column: PinColumn, value: string): Promise<string | null> {
    await this.db
      .updateTable(table)
      .set({ [column]: value } as never)
      .where('id', '=', id)
      .where(column, 'is', null)
      .execute();
    const row = await this.db.selectFrom(table).select(column).where('id', '=', id).executeTakeFirst();
    return row ? ((row as Record<string, string | null>)[column] ?? null) : null;
  }

  async resetPins(table: 'policy_roles' | 'policy_publishers', id: string, actor: string, reason: string, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const before = await tx.selectFrom(table).select(['pin_owner_id', 'pin_project_id']).where('id', '=', id).executeTakeFirst();
      if (!before) return false;
      await tx.updateTable(table).set({ pin_owner_id: null, pin_project_id: null }).where('id', '=', id).execute();
      await this.audit(tx, { at: now, actor, action: 'pins.reset', targetKind: table === 'policy_roles' ? 'role' : 'publisher', targetId: id, detail: { reason, before } });
      await this.bump(tx);
      return true;
    });
  }

  // --- publishers ---

  async allPublishers(): Promise<PolicyPublisherRow[]> {
    return this.db.selectFrom('policy_publishers').selectAll().execute();
  }

  async allPending(): Promise<PolicyPendingPublisherRow[]> {
    return this.db.selectFrom('policy_pending_publishers').selectAll().execute();
  }

  async getPublisher(id: string): Promise<PolicyPublisherRow | undefined> {
    return this.db.selectFrom('policy_publishers').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async getPending(id: string): Promise<PolicyPendingPublisherRow | undefined> {
    return this.db.selectFrom('policy_pending_publishers').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Indexed lookup by (registration, lower(owner), lower(project)) — the unique index's prefix. */
  async findPublishers(registration: string, ownerLc: string, projectLc: string): Promise<PolicyPublisherRow[]> {
    return this.db.selectFrom('policy_publishers').selectAll().where('registration', '=', registration).where('owner_lc', '=', ownerLc).where('project_lc', '=', projectLc).execute();
  }

  async findPending(registration: string, ownerLc: string, projectLc: string): Promise<PolicyPendingPublisherRow[]> {
    return this.db.selectFrom('policy_pending_publishers').selectAll().where('registration', '=', registration).where('owner_lc', '=', ownerLc).where('project_lc', '=', projectLc).execute();
  }

  async insertPublisher(row: PolicyPublisherRow, actor: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('policy_publishers').values(row).execute();
      await this.audit(tx, { at: row.created_at, actor, action: 'publisher.create', targetKind: 'publisher', targetId: row.id, detail: { registration: row.registration, owner: row.owner, project: row.project, workflow: row.workflow, environment: row.environment } });
      await this.bump(tx);
    });
  }

  async setProjects(id: string, projects: string[], actor: string, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx.updateTable('policy_publishers').set({ projects: JSON.stringify(projects) }).where('id', '=', id).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      await this.audit(tx, { at: now, actor, action: 'publisher.projects', targetKind: 'publisher', targetId: id, detail: { projects } });
      await this.bump(tx);
      return true;
    });
  }

  async deletePublisher(id: string, actor: string, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx.deleteFrom('policy_publishers').where('id', '=', id).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await this.audit(tx, { at: now, actor, action: 'publisher.delete', targetKind: 'publisher', targetId: id, detail: {} });
      await this.bump(tx);
      return true;
    });
  }

  async countPendingBy(addedBy: string): Promise<number> {
    const r = await this.db.selectFrom('policy_pending_publishers').select((eb) => eb.fn.countAll<number>().as('n')).where('added_by', '=', addedBy).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async insertPending(row: PolicyPendingPublisherRow): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('policy_pending_publishers').values(row).execute();
      await this.audit(tx, { at: row.created_at, actor: row.added_by, action: 'pending.create', targetKind: 'pending', targetId: row.id, detail: { project_name: row.project_name } });
      await this.bump(tx);
    });
  }

  async deletePending(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx.deleteFrom('policy_pending_publishers').where('id', '=', id).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await this.bump(tx);
      return true;
    });
  }

  async expirePending(now: number): Promise<PolicyPendingPublisherRow[]> {
    return this.db.transaction().execute(async (tx) => {
      const rows = await tx.selectFrom('policy_pending_publishers').selectAll().where('expires_at', '<=', now).execute();
      if (rows.length === 0) return rows;
      await tx.deleteFrom('policy_pending_publishers').where('expires_at', '<=', now).execute();
      for (const r of rows) await this.audit(tx, { at: now, actor: 'system', action: 'pending.expire', targetKind: 'pending', targetId: r.id, detail: { project_name: r.project_name } });
      await this.bump(tx);
      return rows;
    });
  }

  /**
   * Reify a pending publisher (trusted-publishing.md §8): reuse an identical normal publisher row or
   * create one, attach the project, delete the pending row and every other pending row for the same
   * normalized project name, record ID pins (compare-and-set). One transaction.
   */
  async reify(pendingId: string, pins: { owner: string | null; project: string | null }, now: number): Promise<{ publisher: PolicyPublisherRow; removed: PolicyPendingPublisherRow[] } | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const p = await tx.selectFrom('policy_pending_publishers').selectAll().where('id', '=', pendingId).executeTakeFirst();
      if (!p) return undefined;
      let pub = await tx
        .selectFrom('policy_publishers')
        .selectAll()
        .where('registration', '=', p.registration)
        .where('owner_lc', '=', p.owner_lc)
        .where('project_lc', '=', p.project_lc)
        .where('workflow', '=', p.workflow)
        .where('environment', '=', p.environment)
        .executeTakeFirst();
      if (!pub) {
        pub = {
          id: randomUUID(),
          tenant: p.tenant,
          provider: p.provider,
          registration: p.registration,
          owner: p.owner,
          owner_lc: p.owner_lc,
          project: p.project,
          project_lc: p.project_lc,
          workflow: p.workflow,
          environment: p.environment,
          constraints: p.constraints,
          pin_owner_id: p.pin_owner_id,
          pin_project_id: p.pin_project_id,
          projects: '[]',
          first_use_deadline: null,
          created_at: now,
        };
        await tx.insertInto('policy_publishers').values(pub).execute();
      }
      const projects = new Set<string>(JSON.parse(pub.projects) as string[]);
      projects.add(p.project_name);
      const ownerPin = pub.pin_owner_id ?? pins.owner;
      const projectPin = pub.pin_project_id ?? pins.project;
      await tx
        .updateTable('policy_publishers')
        .set({ projects: JSON.stringify([...projects]), pin_owner_id: ownerPin, pin_project_id: projectPin })
        .where('id', '=', pub.id)
        .execute();
      const removed = await tx.selectFrom('policy_pending_publishers').selectAll().where('project_name_norm', '=', p.project_name_norm).where('id', '!=', p.id).execute();
      await tx.deleteFrom('policy_pending_publishers').where('project_name_norm', '=', p.project_name_norm).execute();
      await this.audit(tx, { at: now, actor: p.added_by, action: 'pending.reify', targetKind: 'publisher', targetId: pub.id, detail: { pending: p.id, project_name: p.project_name, removed: removed.map((r) => r.id) } });
      await this.bump(tx);
      return { publisher: { ...pub, projects: JSON.stringify([...projects]), pin_owner_id: ownerPin, pin_project_id: projectPin }, removed };
    });
  }
}
