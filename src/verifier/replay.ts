import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../store/db.ts';
import type { Clock } from '../server/clock.ts';
import { systemClock } from '../server/clock.ts';

/**
 * One-time use of a token `jti` (verification.md §10). `claim` is the check and the store in one
 * atomic step: true exactly once per key until it expires.
 */
export interface ReplayStore {
  claim(key: string, expiresAt: number, registration: string): Promise<boolean>;
  /** Deletes expired claims; returns how many. */
  purge(now: number): Promise<number>;
}

/** Retention margin past `exp + leeway` (PyPI: exp + 30 + 5). */
export const REPLAY_MARGIN = 5;

/**
 * SHA-256 over the length-prefixed (registration id, iss, jti): scoped per registration, never the raw
 * token (one signed token has only one spelling after §4, but the key must not depend on that).
 */
export function replayKey(registrationId: string, iss: string, jti: string): string {
  const h = createHash('sha256');
  for (const part of [registrationId, iss, jti]) {
    const bytes = Buffer.from(part, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(len).update(bytes);
  }
  return h.digest('hex');
}

/** For a single process and tests. Expired entries are swept lazily. */
export function createMemoryReplayStore(options: { clock?: Clock; maxEntries?: number } = {}): ReplayStore {
  const clock = options.clock ?? systemClock;
  const maxEntries = options.maxEntries ?? 1_000_000;
  const entries = new Map<string, number>();
  const purge = (now: number): number => {
    let removed = 0;
    for (const [k, exp] of entries) {
      if (exp <= now) {
        entries.delete(k);
        removed++;
      }
    }
    return removed;
  };
  return {
    async claim(key, expiresAt) {
      const now = clock();
      const existing = entries.get(key);
      if (existing !== undefined && existing > now) return false;
      if (entries.size >= maxEntries && purge(now) === 0) {
        // Fail closed rather than forget claims that are still live.
        throw new Error(`replay store full (${maxEntries} live entries)`);
      }
      entries.set(key, expiresAt);
      return true;
    },
    async purge(now) {
      return purge(now);
    },
  };
}

/**
 * SQLite and PostgreSQL: one row per claimed key. The insert is the check: a conflicting live row
 * leaves zero affected rows; an expired row is taken over in the same statement.
 */
export function createSqlReplayStore(db: Db, options: { clock?: Clock } = {}): ReplayStore {
  const clock = options.clock ?? systemClock;
  return {
    async claim(key, expiresAt, registration) {
      const now = clock();
      const result = await db
        .insertInto('verifier_replay')
        .values({ key, registration, expires_at: expiresAt })
        .onConflict((oc) =>
          oc
            .column('key')
            .doUpdateSet({ expires_at: expiresAt, registration })
            .where(sql<boolean>`verifier_replay.expires_at <= ${now}`),
        )
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
    },
    async purge(now) {
      const result = await db.deleteFrom('verifier_replay').where('expires_at', '<=', now).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
