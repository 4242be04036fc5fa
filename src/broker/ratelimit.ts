import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

/** Fixed-window counter: `limit` hits per `windowSeconds` per key. */
export interface RateLimiter {
  hit(key: string, now: number): Promise<{ allowed: boolean; retryAfter: number }>;
}

export interface RateLimitOptions {
  limit: number;
  windowSeconds: number;
}

const MAX_MEMORY_KEYS = 100_000;

/** One process only: used for SQLite deployments, where there is a single replica by construction. */
export function createMemoryRateLimiter(opts: RateLimitOptions): RateLimiter {
  const windows = new Map<string, { start: number; count: number }>();
  return {
    async hit(key, now) {
      const start = now - (now % opts.windowSeconds);
      let w = windows.get(key);
      if (w === undefined || w.start !== start) {
        if (windows.size >= MAX_MEMORY_KEYS) {
          for (const [k, v] of windows) if (v.start !== start) windows.delete(k);
          // Still full inside one window: refuse new keys rather than grow without bound.
          if (windows.size >= MAX_MEMORY_KEYS) return { allowed: false, retryAfter: start + opts.windowSeconds - now };
        }
        w = { start, count: 0 };
        windows.set(key, w);
      }
      w.count++;
      return { allowed: w.count <= opts.limit, retryAfter: start + opts.windowSeconds - now };
    },
  };
}

/** Shared through the store, so every replica counts against the same budget. One upsert per hit. */
export function createStoreRateLimiter(db: Kysely<Database>, opts: RateLimitOptions): RateLimiter {
  let lastPurge = 0;
  return {
    async hit(key, now) {
      const start = now - (now % opts.windowSeconds);
      const row = await db
        .insertInto('broker_rate_limits')
        .values({ key, window_start: start, count: 1 })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({
            count: sql<number>`case when broker_rate_limits.window_start = ${start} then broker_rate_limits.count + 1 else 1 end`,
            window_start: start,
          }),
        )
        .returning('count')
        .executeTakeFirstOrThrow();
      if (now - lastPurge >= opts.windowSeconds * 10) {
        lastPurge = now;
        await db.deleteFrom('broker_rate_limits').where('window_start', '<', start - opts.windowSeconds).execute();
      }
      return { allowed: Number(row.count) <= opts.limit, retryAfter: start + opts.windowSeconds - now };
    },
  };
}
