import type { Clock } from '../server/clock.ts';

/**
 * Rate limits on discovery/JWKS fetches (verification.md §8 "Concurrency"): a token bucket per
 * registration id and one shared by all registrations. Cooldowns already keep one registration's
 * kid-miss storms to one fetch per cooldown; these buckets bound what cooldowns cannot: many
 * registrations at once (admin-registered issuers), and a registration removed and added again, whose
 * new cache entry starts cold (the per-registration bucket is keyed by id and outlives the entry).
 */

export interface BucketRate {
  /** Fetches allowed at once. */
  burst: number;
  /** Sustained fetches per minute. */
  perMinute: number;
}

export interface FetchRateLimits {
  perRegistration: BucketRate;
  global: BucketRate;
}

export const DEFAULT_FETCH_RATE_LIMITS: Readonly<FetchRateLimits> = Object.freeze({
  perRegistration: Object.freeze({ burst: 4, perMinute: 4 }),
  global: Object.freeze({ burst: 64, perMinute: 120 }),
});

interface Bucket {
  tokens: number;
  at: number;
}

/** Most registration buckets kept; past it, full (idle) buckets are forgotten first. */
const MAX_BUCKETS = 10_000;

export class FetchBudget {
  private readonly perRegistration = new Map<string, Bucket>();
  private readonly global: Bucket;

  constructor(
    private readonly limits: FetchRateLimits,
    private readonly clock: Clock,
  ) {
    for (const [name, rate] of Object.entries(limits)) {
      if (!(rate.burst >= 1 && rate.perMinute > 0)) throw new Error(`fetch rate limit ${name} needs burst >= 1 and perMinute > 0`);
    }
    this.global = { tokens: limits.global.burst, at: clock() };
  }

  /** Takes one fetch from both buckets, or none when either is empty. */
  take(registrationId: string): boolean {
    const now = this.clock();
    let own = this.perRegistration.get(registrationId);
    if (own === undefined) {
      if (this.perRegistration.size >= MAX_BUCKETS) this.forgetFull(now);
      own = { tokens: this.limits.perRegistration.burst, at: now };
      this.perRegistration.set(registrationId, own);
    }
    refill(own, this.limits.perRegistration, now);
    refill(this.global, this.limits.global, now);
    if (own.tokens < 1 || this.global.tokens < 1) return false;
    own.tokens -= 1;
    this.global.tokens -= 1;
    return true;
  }

  private forgetFull(now: number): void {
    for (const [id, b] of this.perRegistration) {
      refill(b, this.limits.perRegistration, now);
      if (b.tokens >= this.limits.perRegistration.burst) this.perRegistration.delete(id);
    }
  }
}

function refill(b: Bucket, rate: BucketRate, now: number): void {
  if (now > b.at) b.tokens = Math.min(rate.burst, b.tokens + ((now - b.at) * rate.perMinute) / 60);
  b.at = Math.max(b.at, now);
}
