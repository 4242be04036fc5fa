import { admitJwks, JwksShapeError, type AdmittedKeySet } from '../jose/admit-key.ts';
import { FetchError, type HardenedFetcher } from '../jose/fetch.ts';
import type { Clock } from '../server/clock.ts';
import type { Logger } from '../server/logger.ts';
import { DEFAULT_FETCH_RATE_LIMITS, FetchBudget, type FetchRateLimits } from './fetch-budget.ts';
import type { Registration } from './registry.ts';

/**
 * Per-registration key sets (verification.md §9). Keyed by registration id only, never by kid, never
 * shared across issuers. One refresh in flight per registration; a failed or poisoned refresh keeps the
 * last good set; an unknown kid refetches at most once per cooldown.
 */

export const MIN_REFRESH = 300;
export const MAX_REFRESH = 86400;
export const DEFAULT_REFRESH = 3600;
export const MAX_STALE = 86400;
export const DEFAULT_KID_MISS_COOLDOWN = 30;
export const MIN_KID_MISS_COOLDOWN = 10;
/** In-process key sources cost no I/O, but re-admission is still CPU: keep a short cooldown. */
const LOCAL_SOURCE_COOLDOWN = 1;
const LOCAL_SOURCE_REFRESH = 60;

interface Entry {
  readonly reg: Registration;
  set: AdmittedKeySet | null;
  /** Clock time of the last successful load. */
  loadedAt: number;
  /** Clock time after which a background refresh starts. */
  refreshAt: number;
  /** End of the last kid-miss-triggered fetch. */
  kidMissAt: number;
  /** Last failed load: starts the cooldown too. */
  failedAt: number;
  inflight: Promise<void> | null;
  jwksUri: string | null;
  jwksUriExpiresAt: number;
  lastError: string | null;
}

export interface KeyCacheOptions {
  fetcherFor(reg: Registration): HardenedFetcher;
  clock: Clock;
  logger?: Logger | undefined;
  kidMissCooldown?: number | undefined;
  fetchRateLimits?: FetchRateLimits | undefined;
}

export interface KeySetStatus {
  registration: string;
  keys: number;
  loadedAt: number | null;
  lastError: string | null;
}

function clampRefresh(maxAge: number | undefined): number {
  if (maxAge === undefined) return DEFAULT_REFRESH;
  return Math.min(MAX_REFRESH, Math.max(MIN_REFRESH, maxAge));
}

export class KeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly clock: Clock;
  private readonly cooldown: number;
  private readonly budget: FetchBudget;

  constructor(private readonly options: KeyCacheOptions) {
    this.clock = options.clock;
    this.budget = new FetchBudget(options.fetchRateLimits ?? DEFAULT_FETCH_RATE_LIMITS, options.clock);
    this.cooldown = Math.max(MIN_KID_MISS_COOLDOWN, options.kidMissCooldown ?? DEFAULT_KID_MISS_COOLDOWN);
  }

  private entry(reg: Registration): Entry {
    let e = this.entries.get(reg.id);
    // A registration removed and added again under its id is a new object: never reuse the old keys.
    if (e === undefined || e.reg !== reg) {
      e = { reg, set: null, loadedAt: 0, refreshAt: 0, kidMissAt: -Infinity, failedAt: -Infinity, inflight: null, jwksUri: null, jwksUriExpiresAt: 0, lastError: null };
      this.entries.set(reg.id, e);
    }
    return e;
  }

  private isStatic(reg: Registration): boolean {
    return typeof reg.keys === 'object' && 'staticJwks' in reg.keys;
  }

  private isLocal(reg: Registration): boolean {
    return typeof reg.keys === 'object' && ('keySource' in reg.keys || 'staticJwks' in reg.keys);
  }

  private cooldownFor(reg: Registration): number {
    return this.isLocal(reg) ? LOCAL_SOURCE_COOLDOWN : this.cooldown;
  }

  /** The usable set, or null when there is none or it is older than max-stale. Starts due refreshes. */
  current(reg: Registration): AdmittedKeySet | null {
    const e = this.entries.get(reg.id);
    if (e === undefined || e.set === null || e.reg !== reg) return null;
    if (this.isStatic(reg)) return e.set;
    const now = this.clock();
    if (now - e.loadedAt > MAX_STALE) return null;
    if (now >= e.refreshAt && e.inflight === null && now - e.failedAt >= this.cooldownFor(reg)) {
      void this.refresh(e, false);
    }
    return e.set;
  }

  /** A usable set, loading it when cold or expired; null when none can be had (fail closed). */
  async load(reg: Registration): Promise<AdmittedKeySet | null> {
    const cur = this.current(reg);
    if (cur !== null) return cur;
    const e = this.entry(reg);
    if (e.inflight === null) {
      if (this.clock() - e.failedAt < this.cooldownFor(reg)) return null;
      void this.refresh(e, false);
    }
    await e.inflight;
    return this.current(reg);
  }

  /**
   * An unknown kid: refetch unless a kid-miss fetch ended less than a cooldown ago. Concurrent misses
   * share the one in-flight fetch. Returns the set to retry with, or null when no refetch happened.
   */
  async kidMiss(reg: Registration): Promise<AdmittedKeySet | null> {
    if (this.isStatic(reg)) return null;
    const e = this.entry(reg);
    if (e.inflight === null) {
      const now = this.clock();
      const cooldown = this.cooldownFor(reg);
      if (now - e.kidMissAt < cooldown || now - e.failedAt < cooldown) return null;
      void this.refresh(e, true);
    }
    await e.inflight;
    return this.current(reg);
  }

  /** Forgets a registration's keys (it was removed); a refresh in flight finishes into the dropped entry. */
  drop(id: string): void {
    this.entries.delete(id);
  }

  /** Resolves once no refresh is in flight (tests, graceful shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      const pending = [...this.entries.values()].map((e) => e.inflight).filter((p): p is Promise<void> => p !== null);
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }

  status(): KeySetStatus[] {
    return [...this.entries.values()].map((e) => ({
      registration: e.reg.id,
      keys: e.set?.keys.length ?? 0,
      loadedAt: e.set === null ? null : e.loadedAt,
      lastError: e.lastError,
    }));
  }

  private refresh(e: Entry, kidMiss: boolean): Promise<void> {
    if (e.inflight !== null) return e.inflight;
    e.inflight = (async () => {
      try {
        const { doc, maxAge } = await this.fetchDocument(e);
        const set = await admitJwks(doc, e.reg.algorithms, e.set === null ? {} : { previous: e.set });
        for (const r of set.rejections) {
          this.options.logger?.warn({ registration: e.reg.id, kid: r.kid, index: r.index, disposition: r.disposition, reason: r.reason }, 'JWKS key not admitted');
        }
        if (set.keys.length === 0) throw new JwksShapeError('the JWKS has no usable keys');
        // Replace atomically: keys removed upstream stop verifying at once.
        const now = this.clock();
        e.set = set;
        e.loadedAt = now;
        e.refreshAt = now + (this.isLocal(e.reg) ? LOCAL_SOURCE_REFRESH : clampRefresh(maxAge));
        e.lastError = null;
      } catch (err) {
        e.failedAt = this.clock();
        e.lastError = err instanceof Error ? err.message : String(err);
        // Discovery may have moved the JWKS: rediscover on the next attempt.
        e.jwksUriExpiresAt = 0;
        const code = err instanceof FetchError ? err.code : err instanceof JwksShapeError ? 'jwks_invalid' : 'key_load_failed';
        this.options.logger?.warn({ registration: e.reg.id, code, err: e.lastError }, 'key set refresh failed; keeping the last good keys');
      } finally {
        if (kidMiss) e.kidMissAt = this.clock();
        e.inflight = null;
      }
    })();
    return e.inflight;
  }

  private async fetchDocument(e: Entry): Promise<{ doc: unknown; maxAge: number | undefined }> {
    const { reg } = e;
    const keys = reg.keys;
    if (typeof keys === 'object' && 'staticJwks' in keys) return { doc: keys.staticJwks, maxAge: undefined };
    if (typeof keys === 'object' && 'keySource' in keys) return { doc: await keys.keySource(), maxAge: undefined };
    // Network sources only: both rate limits are spent before any I/O, and a refusal counts as a failed
    // load (last good keys kept, cooldown started).
    if (!this.budget.take(reg.id)) throw new FetchError('fetch_rate_limited', `key fetches for ${reg.id} are over the rate limit; the last good keys stay in use`);
    const fetcher = this.options.fetcherFor(reg);
    const fetchOptions = reg.caCertPem === undefined ? {} : { caCertPem: reg.caCertPem };
    let jwksUri: string;
    if (typeof keys === 'object' && 'jwksUri' in keys) {
      jwksUri = keys.jwksUri;
    } else if (e.jwksUri !== null && this.clock() < e.jwksUriExpiresAt) {
      jwksUri = e.jwksUri;
    } else {
      const discovery = await fetcher.fetchJson(`${reg.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, fetchOptions);
      jwksUri = this.checkDiscovery(reg, discovery.body);
      e.jwksUri = jwksUri;
      e.jwksUriExpiresAt = this.clock() + clampRefresh(discovery.maxAge);
    }
    const res = await fetcher.fetchJson(jwksUri, fetchOptions);
    return { doc: res.body, maxAge: res.maxAge };
  }

  /** The discovery `issuer` must equal ours exactly; `jwks_uri` must be https on an allowed host. */
  private checkDiscovery(reg: Registration, doc: Record<string, unknown>): string {
    if (doc.issuer !== reg.issuer) {
      throw new FetchError('fetch_content_invalid', `discovery issuer ${JSON.stringify(String(doc.issuer).slice(0, 200))} does not equal the registered issuer ${reg.issuer}`);
    }
    const uri = doc.jwks_uri;
    if (typeof uri !== 'string') throw new FetchError('fetch_content_invalid', 'discovery document has no jwks_uri');
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new FetchError('fetch_content_invalid', 'discovery jwks_uri is not an absolute URL');
    }
    // http only for a test-flagged registration whose issuer is itself http: never a downgrade from https.
    if (url.protocol !== 'https:' && !(reg.allowInsecureLoopback && url.protocol === 'http:' && reg.issuer.startsWith('http:'))) {
      throw new FetchError('fetch_content_invalid', 'discovery jwks_uri is not https');
    }
    if (url.username || url.password) throw new FetchError('fetch_content_invalid', 'discovery jwks_uri contains userinfo');
    if (!reg.jwksHosts.includes(url.hostname.toLowerCase())) {
      throw new FetchError('fetch_content_invalid', `discovery jwks_uri host ${url.hostname} is neither the issuer host nor in jwksHostAllowlist`);
    }
    return uri;
  }
}
