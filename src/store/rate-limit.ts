import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.ts';

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

/**
 * Shared through the store like createStoreRateLimiter, but each replica adds its hits to the store in
 * one upsert per key every `syncMs` instead of one per request, so hot keys (one CI provider's NAT
 * address, one issuer) do not serialise every request on a row lock. A replica decides on the last
 * shared count plus its own unsynced hits: other replicas' hits are seen at most `syncMs` late.
 */
export function createSyncedRateLimiter(db: Kysely<Database>, opts: RateLimitOptions & { syncMs?: number }): RateLimiter & { flush(): Promise<void>; close(): void } {
  const syncMs = opts.syncMs ?? 1000;
  const entries = new Map<string, { window: number; shared: number; pending: number; idle: number }>();
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let closed = false;
  const flush = async (): Promise<void> => {
    timer = undefined;
    for (const [key, e] of entries) {
      // A key without hits is still refreshed once (to learn other replicas' hits), then forgotten.
      if (e.pending === 0 && ++e.idle > 1) {
        entries.delete(key);
        continue;
      }
      const sent = e.pending;
      const window = e.window;
      try {
        const row = await db
          .insertInto('broker_rate_limits')
          .values({ key, window_start: window, count: sent })
          .onConflict((oc) =>
            oc.column('key').doUpdateSet({
              count: sql<number>`case when broker_rate_limits.window_start = ${window} then broker_rate_limits.count + ${sent} else ${sent} end`,
              window_start: window,
            }),
          )
          .returning('count')
          .executeTakeFirstOrThrow();
        if (e.window === window) {
          e.pending -= sent;
          e.shared = Number(row.count);
        }
      } catch {
        // The store is unreachable: keep counting locally and retry on the next sync.
      }
    }
  };
  const schedule = (): void => {
    if (timer !== undefined || closed) return;
    timer = setTimeout(() => {
      flushing = flush()
        .finally(() => (flushing = undefined))
        .then(() => {
          if (entries.size > 0) schedule();
        });
    }, syncMs);
    timer.unref();
  };
  return {
    async hit(key, now) {
      const window = now - (now % opts.windowSeconds);
      let e = entries.get(key);
      if (e === undefined || e.window !== window) {
        if (e === undefined && entries.size >= MAX_MEMORY_KEYS) {
          for (const [k, v] of entries) if (v.window !== window && v.pending === 0) entries.delete(k);
          if (entries.size >= MAX_MEMORY_KEYS) return { allowed: false, retryAfter: window + opts.windowSeconds - now };
        }
        e = { window, shared: 0, pending: 0, idle: 0 };
        entries.set(key, e);
      }
      e.pending++;
      e.idle = 0;
      schedule();
      return { allowed: e.shared + e.pending <= opts.limit, retryAfter: window + opts.windowSeconds - now };
    },
    async flush() {
      if (flushing) await flushing;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

export type RateLimitBackend = 'auto' | 'memory' | 'store' | 'synced';

/**
 * Rate limiters for one store. `auto` counts in memory on SQLite (one replica by construction) and
 * shares counts through the store on PostgreSQL (`synced`), so every replica spends the same budget.
 */
export function rateLimiters(store: { db: Kysely<Database>; dialect: string }, backend: RateLimitBackend): { create(opts: RateLimitOptions): RateLimiter; close(): void } {
  const chosen = backend === 'auto' ? (store.dialect === 'postgres' ? 'synced' : 'memory') : backend;
  const closers: (() => void)[] = [];
  return {
    create(opts) {
      if (chosen === 'store') return createStoreRateLimiter(store.db, opts);
      if (chosen === 'synced') {
        const l = createSyncedRateLimiter(store.db, opts);
        closers.push(() => l.close());
        return l;
      }
      return createMemoryRateLimiter(opts);
    },
    close() {
      for (const c of closers.splice(0)) c();
    },
  };
}
