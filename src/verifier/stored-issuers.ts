/**
 * Issuer registrations made through the admin API: kept in `verifier_issuers` (migration 007), applied to
 * the verifier's registry at run time, and re-read by every replica on a short interval so a registration
 * made on one replica reaches the others (docs/verifier.md "Registrations at run time").
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../server/clock.ts';
import { CiOidcError, ConfigError } from '../server/errors.ts';
import type { Logger } from '../server/logger.ts';
import type { Db } from '../store/db.ts';
import type { VerifierIssuersTable } from '../store/tables/verifier.ts';
import { adminIssuerRegistrationSchema, toRegistrationInput, type AdminIssuerRegistration } from './config.ts';
import { buildRegistration, RegistrationConflictError } from './registry.ts';
import type { IssuerRegistrationInput, RegistrationInfo } from './types.ts';
import type { Verifier } from './verifier.ts';

/** 400 with every validation problem, so the operator fixes them in one round. */
export class IssuerValidationError extends CiOidcError {
  readonly problems: string[];

  constructor(problems: string[]) {
    super('issuer_invalid', `the issuer registration is invalid: ${problems.join('; ')}`, { status: 400 });
    this.problems = problems;
  }
}

/** What GET /admin/v1/issuers shows per registration. */
export interface IssuerView extends RegistrationInfo {
  /** `config`: the server config (presets, config entries, our own issuer), removable only there. */
  source: 'config' | 'admin';
  /** Admin registrations: the stored registration (config entry shape) and its times. */
  registration?: AdminIssuerRegistration;
  createdBy?: string;
  createdAt?: number;
  updatedAt?: number;
}

export interface StoredIssuersOptions {
  db: Db;
  /** The verifier to apply registrations to (a getter: the verifier module builds it on first use). */
  verifier: () => Verifier;
  clock: Clock;
  logger?: Logger;
  /** Permits `allowInsecureLoopback: true` in admin registrations (tests only). */
  allowInsecureLoopback?: boolean;
}

export interface StoredIssuers {
  list(): IssuerView[];
  /** Validates, stores and applies one registration. Throws IssuerValidationError (400) or a 409 CiOidcError. */
  register(body: unknown, options?: { actor?: string }): Promise<IssuerView>;
  /** Deletes and unapplies one admin registration; false when unknown. Config-defined ones: 409. */
  remove(id: string): Promise<boolean>;
  /** Re-reads the table and applies the difference; true when anything changed. */
  sync(): Promise<boolean>;
  /**
   * Called after registrations changed on this replica (own writes or a sync); awaited before the
   * write answers, so what depends on registrations (compiled roles) is current by then.
   */
  onChange(listener: () => void | Promise<void>): void;
  /** Stops further syncs and waits for the one in flight. */
  close(): Promise<void>;
}

interface Applied {
  row: VerifierIssuersTable;
  registration: AdminIssuerRegistration;
}

/** As many as the config may list: each one is a key cache, a refresh schedule and a sync row. */
export const MAX_ADMIN_ISSUERS = 500;

const issuerKey = (issuer: string, tenant: string | null): string =>
  createHash('sha256')
    .update(`${issuer.length}:${issuer}|${tenant ?? ''}`)
    .digest('hex');

function problemsOf(err: unknown): string[] | null {
  if (err instanceof ConfigError) return err.issues.map((i) => i.replace(/^verifier issuer "[^"]*": /, ''));
  return null;
}

function conflict(err: RegistrationConflictError): CiOidcError {
  return new CiOidcError(err.code, err.message, { status: 409 });
}

/** The admin shape as a registry input (no files: the admin schema has none). */
export function inputFromAdmin(c: AdminIssuerRegistration): IssuerRegistrationInput {
  return toRegistrationInput(c, c.keys, c.caCertPem);
}

/**
 * Parses and validates an admin registration with the config rules (schema, then buildRegistration),
 * plus the admin API's stricter URL rules: https only (even with static keys) and no test-only loopback
 * unless the server allows it.
 */
export function parseAdminRegistration(body: unknown, allowInsecureLoopback: boolean): AdminIssuerRegistration {
  const parsed = adminIssuerRegistrationSchema.safeParse(body);
  if (!parsed.success) {
    throw new IssuerValidationError(parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : 'body'}: ${i.message}`));
  }
  const reg = parsed.data;
  const problems: string[] = [];
  if (reg.allowInsecureLoopback && !allowInsecureLoopback) {
    problems.push('allowInsecureLoopback: not permitted for admin registrations (test servers set verifier.adminIssuersAllowInsecureLoopback)');
  }
  if (!reg.allowInsecureLoopback && !reg.issuer.startsWith('https://')) problems.push('issuer: must use https');
  try {
    buildRegistration(inputFromAdmin(reg));
  } catch (err) {
    const p = problemsOf(err);
    if (p === null) throw err;
    problems.push(...p);
  }
  if (problems.length > 0) throw new IssuerValidationError(problems);
  return reg;
}

export function createStoredIssuers(options: StoredIssuersOptions): StoredIssuers {
  const { db, clock, logger } = options;
  const verifier = options.verifier;
  const applied = new Map<string, Applied>();
  /** Rows this replica could not apply, by id and text, so each is logged once rather than every sync. */
  const refused = new Map<string, string>();
  const listeners: (() => void | Promise<void>)[] = [];
  // Registrations change only inside this queue: a sync that read the table before an own write must
  // not undo that write.
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };
  const changed = async (): Promise<void> => {
    for (const l of listeners) {
      try {
        await l();
      } catch (err) {
        logger?.warn({ err }, 'issuer registration listener failed');
      }
    }
  };

  const view = (info: RegistrationInfo): IssuerView => {
    const a = applied.get(info.id);
    if (a === undefined) return { ...info, source: verifier().isConfigRegistration(info.id) ? 'config' : 'admin' };
    return { ...info, source: 'admin', registration: a.registration, createdBy: a.row.created_by, createdAt: Number(a.row.created_at), updatedAt: Number(a.row.updated_at) };
  };

  function apply(row: VerifierIssuersTable): void {
    const v = verifier();
    let registration: AdminIssuerRegistration;
    try {
      // Rows were validated on the way in; re-validate anyway, since this replica's rules may be newer.
      registration = parseAdminRegistration(JSON.parse(row.registration), options.allowInsecureLoopback ?? false);
      if (registration.id !== row.id) throw new IssuerValidationError([`id: the stored document names ${JSON.stringify(registration.id)}`]);
      v.addRegistration(inputFromAdmin(registration));
    } catch (err) {
      if (refused.get(row.id) !== row.registration) {
        refused.set(row.id, row.registration);
        const reason = err instanceof IssuerValidationError ? err.problems : err instanceof RegistrationConflictError ? [err.message] : [(err as Error).message];
        logger?.warn({ registration: row.id, problems: reason }, 'stored issuer registration not applied on this replica');
      }
      return;
    }
    refused.delete(row.id);
    applied.set(row.id, { row, registration });
    logger?.info({ registration: row.id, issuer: row.issuer }, 'issuer registration applied');
  }

  function unapply(id: string): boolean {
    applied.delete(id);
    refused.delete(id);
    const removed = verifier().removeRegistration(id);
    if (removed) logger?.info({ registration: id }, 'issuer registration removed');
    return removed;
  }

  async function syncNow(): Promise<boolean> {
    // Bounded like the config's list; a replica never applies more than the cap, oldest first.
    const rows = await db.selectFrom('verifier_issuers').selectAll().orderBy('created_at').orderBy('id').limit(MAX_ADMIN_ISSUERS).execute();
    const seen = new Set<string>();
    let any = false;
    for (const row of rows) {
      seen.add(row.id);
      const a = applied.get(row.id);
      if (a !== undefined && a.row.registration === row.registration) continue;
      if (a !== undefined) any = unapply(row.id) || any;
      if (a === undefined && refused.get(row.id) === row.registration) continue;
      const before = applied.has(row.id);
      apply(row);
      any ||= applied.has(row.id) !== before;
    }
    for (const id of [...applied.keys()]) if (!seen.has(id)) any = unapply(id) || any;
    for (const id of [...refused.keys()]) if (!seen.has(id)) refused.delete(id);
    if (any) await changed();
    return any;
  }

  return {
    list: () => verifier().registrations().map(view),

    register: (body, o = {}) =>
      serial(async () => {
        const registration = parseAdminRegistration(body, options.allowInsecureLoopback ?? false);
        const v = verifier();
        // Conflicts with what this replica trusts (config included) before touching the store.
        for (const r of v.registrations()) {
          if (r.id === registration.id) throw conflict(RegistrationConflictError.idTaken(r.id, v.isConfigRegistration(r.id)));
          if (r.issuer === registration.issuer && r.tenant === registration.tenant) throw conflict(RegistrationConflictError.issuerTaken(r.issuer, r.id, r.tenant));
        }
        const { count } = await db.selectFrom('verifier_issuers').select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
        if (Number(count) >= MAX_ADMIN_ISSUERS) {
          throw new CiOidcError('issuer_limit_reached', `at most ${String(MAX_ADMIN_ISSUERS)} issuers can be registered through the admin API; remove unused ones first`, { status: 409 });
        }
        const now = clock();
        const row: VerifierIssuersTable = {
          id: registration.id,
          issuer: registration.issuer,
          tenant: registration.tenant,
          issuer_key: issuerKey(registration.issuer, registration.tenant),
          profile: registration.profile,
          registration: JSON.stringify(registration),
          created_by: (o.actor ?? 'admin').slice(0, 255),
          created_at: now,
          updated_at: now,
        };
        try {
          await db.insertInto('verifier_issuers').values(row).execute();
        } catch (err) {
          // Another replica got there first (not yet synced here): tell which key clashed.
          const byId = await db.selectFrom('verifier_issuers').select('id').where('id', '=', row.id).executeTakeFirst();
          if (byId) throw conflict(RegistrationConflictError.idTaken(row.id, false));
          const byIss = await db.selectFrom('verifier_issuers').select('id').where('issuer_key', '=', row.issuer_key).executeTakeFirst();
          if (byIss) throw conflict(RegistrationConflictError.issuerTaken(row.issuer, byIss.id, row.tenant));
          throw err;
        }
        try {
          v.addRegistration(inputFromAdmin(registration));
        } catch (err) {
          await db.deleteFrom('verifier_issuers').where('id', '=', row.id).execute();
          if (err instanceof RegistrationConflictError) throw conflict(err);
          throw err;
        }
        applied.set(row.id, { row, registration });
        logger?.info({ registration: row.id, issuer: row.issuer, actor: row.created_by }, 'issuer registered through the admin API');
        await changed();
        return view(v.registrations().find((r) => r.id === row.id)!);
      }),

    remove: (id) =>
      serial(async () => {
        const v = verifier();
        if (v.isConfigRegistration(id)) {
          throw conflict(RegistrationConflictError.configDefined(id));
        }
        const deleted = await db.deleteFrom('verifier_issuers').where('id', '=', id).executeTakeFirst();
        const inStore = Number(deleted.numDeletedRows) > 0;
        const inMemory = unapply(id);
        if (inStore || inMemory) await changed();
        return inStore || inMemory;
      }),

    sync: () => (closed ? Promise.resolve(false) : serial(syncNow)),

    onChange(listener) {
      listeners.push(listener);
    },

    async close() {
      closed = true;
      await queue;
    },
  };
}
