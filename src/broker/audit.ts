import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { BrokerAuditTable } from '../store/tables/broker.ts';
import { randomBytesPooled } from './random.ts';

export type AuditOutcome = 'allow' | 'deny' | 'error';

export interface AuditEntry {
  at: number;
  endpoint: string;
  outcome: AuditOutcome;
  reason: string;
  registration?: string | null;
  iss?: string | null;
  sub?: string | null;
  jti?: string | null;
  kid?: string | null;
  projectId?: string | null;
  jobId?: string | null;
  pipelineId?: string | null;
  role?: string | null;
  credentialId?: string | null;
  clientIp?: string | null;
  requestId?: string | null;
  detail?: Record<string, unknown> | null;
}

export type AuditRecord = BrokerAuditTable;

export interface AuditQuery {
  since?: number;
  until?: number;
  endpoint?: string;
  outcome?: AuditOutcome;
  reason?: string;
  registration?: string;
  sub?: string;
  jti?: string;
  role?: string;
  credentialId?: string;
  clientIp?: string;
  /** Return records with an id after this one (pagination, oldest first). */
  after?: string;
  limit?: number;
}

export const AUDIT_MAX_PAGE = 1000;

const clip = (v: string | null | undefined, max: number): string | null => {
  if (v === undefined || v === null) return null;
  const s = String(v);
  return s.length > max ? s.slice(0, max) : s;
};

export function newAuditId(at: number): string {
  return Math.max(0, Math.floor(at)).toString(16).padStart(12, '0') + randomBytesPooled(8).toString('hex');
}

export function toAuditRow(e: AuditEntry): AuditRecord {
  return {
    id: newAuditId(e.at),
    at: e.at,
    endpoint: e.endpoint,
    outcome: e.outcome,
    reason: clip(e.reason, 64) ?? 'unknown',
    registration: clip(e.registration, 200),
    iss: clip(e.iss, 2048),
    sub: clip(e.sub, 1024),
    jti: clip(e.jti, 300),
    kid: clip(e.kid, 200),
    project_id: clip(e.projectId, 32),
    job_id: clip(e.jobId, 32),
    pipeline_id: clip(e.pipelineId, 32),
    role: clip(e.role, 300),
    credential_id: clip(e.credentialId, 64),
    client_ip: clip(e.clientIp, 64),
    request_id: clip(e.requestId, 64),
    detail: e.detail ? JSON.stringify(e.detail).slice(0, 8192) : null,
  };
}

/** Append-only: there is deliberately no update or delete here, and the database refuses them too. */
export async function appendAudit(db: Kysely<Database>, entry: AuditEntry): Promise<string> {
  const row = toAuditRow(entry);
  await db.insertInto('broker_audit').values(row).execute();
  return row.id;
}

export async function queryAudit(db: Kysely<Database>, q: AuditQuery): Promise<AuditRecord[]> {
  let query = db.selectFrom('broker_audit').selectAll();
  if (q.since !== undefined) query = query.where('at', '>=', q.since);
  if (q.until !== undefined) query = query.where('at', '<', q.until);
  if (q.endpoint !== undefined) query = query.where('endpoint', '=', q.endpoint);
  if (q.outcome !== undefined) query = query.where('outcome', '=', q.outcome);
  if (q.reason !== undefined) query = query.where('reason', '=', q.reason);
  if (q.registration !== undefined) query = query.where('registration', '=', q.registration);
  if (q.sub !== undefined) query = query.where('sub', '=', q.sub);
  if (q.jti !== undefined) query = query.where('jti', '=', q.jti);
  if (q.role !== undefined) query = query.where('role', '=', q.role);
  if (q.credentialId !== undefined) query = query.where('credential_id', '=', q.credentialId);
  if (q.clientIp !== undefined) query = query.where('client_ip', '=', q.clientIp);
  if (q.after !== undefined) query = query.where('id', '>', q.after);
  const limit = Math.min(Math.max(1, q.limit ?? 100), AUDIT_MAX_PAGE);
  return query.orderBy('id', 'asc').limit(limit).execute();
}

/** Every matching record as JSON lines, paging through the store so memory stays bounded. */
export async function* exportAudit(db: Kysely<Database>, q: Omit<AuditQuery, 'limit'>): AsyncGenerator<string> {
  let after = q.after;
  for (;;) {
    const page = await queryAudit(db, { ...q, after, limit: AUDIT_MAX_PAGE });
    for (const r of page) yield `${JSON.stringify(auditJson(r))}\n`;
    if (page.length < AUDIT_MAX_PAGE) return;
    after = page[page.length - 1]!.id;
  }
}

/** The public JSON shape of a record (detail parsed back). */
export function auditJson(r: AuditRecord): Record<string, unknown> {
  let detail: unknown = null;
  if (r.detail !== null) {
    try {
      detail = JSON.parse(r.detail);
    } catch {
      detail = r.detail;
    }
  }
  return { ...r, detail };
}
