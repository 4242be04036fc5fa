import { DEFAULT_COMPACT_LIMITS, parseCompactPayload } from '../jose/compact.ts';
import { createHardenedFetcher, type HardenedFetcher } from '../jose/fetch.ts';
import { systemClock } from '../server/clock.ts';
import { checkAudience, checkIdentityClaims, checkTimes } from './claims.ts';
import { VerificationError } from './errors.ts';
import { HeaderCache } from './header.ts';
import { checkSignature, keySelectionError, parseJws, rethrowCompact, selectKey } from './jws.ts';
import { KeyCache, type KeySetStatus } from './key-cache.ts';
import { IssuerRegistry, type Registration } from './registry.ts';
import { REPLAY_MARGIN, replayKey, type ReplayStore } from './replay.ts';
import type { IssuerRegistrationInput, RegistrationInfo, VerifiedToken, VerifierOptions, VerifyExpectations } from './types.ts';

export interface Verifier {
  /** Runs the whole pipeline (verification.md §3); throws `VerificationError`. */
  verify(token: unknown, expect: VerifyExpectations): Promise<VerifiedToken>;
  /**
   * The one-time-use claim on its own, for callers that run policy between verification and minting
   * (step 11 after policy). Throws `replayed` or `jti_missing`.
   */
  claimReplay(result: VerifiedToken): Promise<void>;
  /** Loads every registration's keys once (start-up readiness); reports the ones that failed. */
  warmUp(): Promise<KeySetStatus[]>;
  registrations(): RegistrationInfo[];
  /**
   * Adds a registration at run time, validated like a config entry. Throws ConfigError (invalid) or
   * RegistrationConflictError (id or iss taken).
   */
  addRegistration(input: IssuerRegistrationInput): RegistrationInfo;
  /** Removes a run-time registration and drops its keys; false when unknown. Config-defined ones throw. */
  removeRegistration(id: string): boolean;
  /** True for registrations from the config (presets, config entries, our own issuer). */
  isConfigRegistration(id: string): boolean;
  keyStatus(): KeySetStatus[];
  /** Resolves when no key refresh is in flight. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export function createVerifier(options: VerifierOptions): Verifier {
  const registry = new IssuerRegistry(options.issuers);
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const headers = new HeaderCache();
  const maxTokenLength = options.maxTokenLength ?? DEFAULT_COMPACT_LIMITS.maxTokenLength;

  let strictFetcher: HardenedFetcher | undefined;
  let loopbackFetcher: HardenedFetcher | undefined;
  const ownedFetchers: HardenedFetcher[] = [];
  const fetcherFor = (reg: Registration): HardenedFetcher => {
    if (options.fetcher) return options.fetcher;
    if (reg.allowInsecureLoopback) {
      if (!loopbackFetcher) ownedFetchers.push((loopbackFetcher = createHardenedFetcher({ allowLoopback: true, ...(options.resolver ? { resolver: options.resolver } : {}) })));
      return loopbackFetcher;
    }
    if (!strictFetcher) ownedFetchers.push((strictFetcher = createHardenedFetcher(options.resolver ? { resolver: options.resolver } : {})));
    return strictFetcher;
  };
  const keys = new KeyCache({ fetcherFor, clock, logger, kidMissCooldown: options.kidMissCooldown, fetchRateLimits: options.fetchRateLimits });
  const replayStore: ReplayStore | undefined = options.replayStore;

  async function claimReplay(result: VerifiedToken): Promise<void> {
    const jti = result.claims.jti;
    if (typeof jti !== 'string') throw new VerificationError('jti_missing', 'single-use verification needs a jti');
    if (replayStore === undefined) throw new Error('single-use verification needs a replayStore in createVerifier options');
    const reg = registry.get(result.registration.id);
    // Removed through the admin API between verify() and this claim: fail closed, as verify() now would.
    if (reg === undefined && !registry.isFixed(result.registration.id)) throw new VerificationError('issuer_unknown', `registration ${result.registration.id} was removed`);
    if (reg === undefined || reg.info !== result.registration) throw new Error('claimReplay() needs a result returned by this verifier');
    const expiresAt = (result.claims.exp as number) + reg.leeway + REPLAY_MARGIN;
    const claimed = await replayStore.claim(replayKey(reg.id, reg.issuer, jti), expiresAt, reg.id);
    if (!claimed) {
      logger?.info({ registration: reg.id, jti, code: 'replayed' }, 'token replay refused');
      throw new VerificationError('replayed', `jti already used for registration ${reg.id}`);
    }
  }

  async function verify(token: unknown, expect: VerifyExpectations): Promise<VerifiedToken> {
    if (!expect || !Array.isArray(expect.audiences) || expect.audiences.length === 0) {
      // An empty audience set is a configuration error, never "accept any".
      throw new Error('verify() needs a non-empty expect.audiences list');
    }
    // Steps 1-4: size, shape, charset, canonical base64url; header rules (memoised per exact segment); typ.
    const { jws, checked } = parseJws(token, headers, maxTokenLength, expect.typ);
    // Step 5: payload, strictly; the claims come back deep-frozen, so no caller can alter what is verified.
    let claims: Record<string, unknown>;
    try {
      claims = parseCompactPayload(jws);
    } catch (err) {
      rethrowCompact(err);
    }
    // Step 6: exact iss among visible registrations. No network I/O for unknown issuers.
    const reg = registry.lookup(claims.iss, expect.tenant);
    if (reg === undefined) throw new VerificationError('issuer_unknown', typeof claims.iss === 'string' ? `iss ${JSON.stringify(claims.iss.slice(0, 200))} is not registered` : 'iss is missing or not a string');
    // Step 7: the registration's allow-list.
    const { alg, kid } = checked;
    if (!reg.algorithms.includes(alg)) throw new VerificationError('alg_not_allowed', `alg ${alg} is not allowed for ${reg.id}`);
    // Step 8: key selection within this registration only.
    const set = keys.current(reg) ?? (await keys.load(reg));
    if (set === null) throw new VerificationError('jwks_unavailable', `no usable keys for ${reg.id}`);
    // Hot path: a known kid whose key fits alg needs no selection object.
    let verifier = kid === undefined ? undefined : set.byKid.get(kid)?.verifiers.get(alg);
    if (verifier === undefined) {
      let selected = selectKey(set, kid, alg);
      if (selected.miss) {
        const refreshed = await keys.kidMiss(reg);
        if (refreshed !== null) selected = selectKey(refreshed, kid, alg);
      }
      if (selected.verifier === undefined) throw keySelectionError(selected, kid, alg, reg.id);
      verifier = selected.verifier;
    }
    // Step 9: signature over the exact header.payload bytes, alg pinned to the admitted key.
    checkSignature(verifier, jws, reg.id);
    // Step 10: claim rules.
    const leeway = expect.leeway === undefined ? reg.leeway : Math.min(reg.leeway, Math.max(0, expect.leeway));
    const maxLifetime = expect.maxLifetime === undefined ? reg.maxLifetime : Math.min(reg.maxLifetime, Math.max(1, expect.maxLifetime));
    checkTimes(claims, { now: clock(), leeway, maxLifetime });
    checkAudience(claims, expect.audiences, expect.audienceMode ?? 'single');
    const singleUse = expect.replay === 'single-use';
    checkIdentityClaims(claims, reg, reg.requireJti || singleUse);
    if (logger?.isLevelEnabled('debug')) {
      const known = reg.profile.claimTypes;
      const unknown = Object.keys(claims).filter((n) => !Object.hasOwn(known, n) && !REGISTERED.has(n));
      if (unknown.length > 0) logger.debug({ registration: reg.id, jti: claims.jti, claims: unknown.slice(0, 32) }, 'token carries unaccounted claims');
    }
    const result: VerifiedToken = Object.freeze({ registration: reg.info, header: checked.header, claims, kid, alg });
    // Step 11 for library callers; the broker calls claimReplay() itself after policy.
    if (singleUse) await claimReplay(result);
    return result;
  }

  return {
    verify,
    claimReplay,
    async warmUp() {
      await Promise.all(registry.all().map((reg) => keys.load(reg)));
      return keys.status();
    },
    registrations: () => registry.all().map((r) => r.info),
    addRegistration: (input) => registry.add(input).info,
    removeRegistration(id) {
      if (registry.remove(id) === undefined) return false;
      keys.drop(id);
      return true;
    },
    isConfigRegistration: (id) => registry.isFixed(id),
    keyStatus: () => keys.status(),
    idle: () => keys.idle(),
    async close() {
      await keys.idle();
      await Promise.all(ownedFetchers.map((f) => f.close()));
    },
  };
}

const REGISTERED = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti']);
