import { claimChecker, type ClaimSchema } from '../providers/claim-types.ts';
import type { Registration } from './registry.ts';
import { VerificationError } from './errors.ts';
import type { AudienceMode } from './types.ts';

/** Latest representable time: 9999-12-31T23:59:59Z (verification.md §7.3). */
export const MAX_TIME = 253402300799;
const MAX_AUDIENCES = 10;
// C0 controls, DEL and C1 controls.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function timeClaim(claims: Record<string, unknown>, name: string, required: boolean): number | undefined {
  const v = claims[name];
  if (v === undefined) {
    if (required) throw new VerificationError('claim_type_invalid', `${name} is required`);
    return undefined;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_TIME || Object.is(v, -0)) {
    throw new VerificationError('claim_type_invalid', `${name} must be an integer number of seconds from 0 to ${MAX_TIME}`);
  }
  return v;
}

export interface TimeRules {
  now: number;
  leeway: number;
  maxLifetime: number;
}

/** §7.3: required safe-integer times, expiry with leeway, no future iat, lifetime and age caps. */
export function checkTimes(claims: Record<string, unknown>, rules: TimeRules): { exp: number; iat: number } {
  const exp = timeClaim(claims, 'exp', true) as number;
  const iat = timeClaim(claims, 'iat', true) as number;
  const nbf = timeClaim(claims, 'nbf', false);
  const { now, leeway: L, maxLifetime } = rules;
  if (exp <= iat) throw new VerificationError('claim_type_invalid', 'exp must be later than iat');
  if (nbf !== undefined && nbf > exp) throw new VerificationError('claim_type_invalid', 'nbf must not be later than exp');
  if (exp - iat > maxLifetime) throw new VerificationError('lifetime_too_long', `exp - iat is ${exp - iat} s, above the ${maxLifetime} s maximum`);
  if (now >= exp + L) throw new VerificationError('expired', `expired ${now - exp} s ago (leeway ${L} s)`);
  if (now - iat > maxLifetime + L) throw new VerificationError('expired', `issued ${now - iat} s ago, older than the ${maxLifetime} s maximum lifetime`);
  if (nbf !== undefined && nbf > now + L) throw new VerificationError('not_yet_valid', `nbf is ${nbf - now} s in the future (leeway ${L} s)`);
  if (iat > now + L) throw new VerificationError('iat_in_future', `iat is ${iat - now} s in the future (leeway ${L} s)`);
  return { exp, iat };
}

/** §7.2: audience shape, then the mode's rule against the expected set. */
export function checkAudience(claims: Record<string, unknown>, expected: readonly string[], mode: AudienceMode): void {
  const aud = claims.aud;
  if (aud === undefined || aud === null) throw new VerificationError('aud_missing', 'the token has no aud');
  if (typeof aud === 'string') {
    if (aud.length === 0) throw new VerificationError('claim_type_invalid', 'aud is an empty string');
    if (!expected.includes(aud)) throw new VerificationError('aud_mismatch', 'aud is not an accepted audience');
    return;
  }
  if (!Array.isArray(aud)) throw new VerificationError('claim_type_invalid', 'aud must be a string or an array of strings');
  if (aud.length === 0) throw new VerificationError('aud_missing', 'aud is an empty array');
  if (aud.length > MAX_AUDIENCES) throw new VerificationError('claim_type_invalid', `aud has more than ${MAX_AUDIENCES} values`);
  const seen = new Set<string>();
  for (const a of aud) {
    if (typeof a !== 'string' || a.length === 0) throw new VerificationError('claim_type_invalid', 'aud values must be non-empty strings');
    if (seen.has(a)) throw new VerificationError('claim_type_invalid', 'aud repeats a value');
    seen.add(a);
  }
  if (mode === 'strict-string') throw new VerificationError('aud_mismatch', 'aud must be a JSON string here, not an array');
  if (mode === 'single') {
    if (aud.length > 1) throw new VerificationError('aud_multi_valued', `aud carries ${aud.length} audiences; exactly one is accepted`);
    if (!expected.includes(aud[0] as string)) throw new VerificationError('aud_mismatch', 'aud is not an accepted audience');
    return;
  }
  for (const a of aud as string[]) if (expected.includes(a)) return;
  throw new VerificationError('aud_mismatch', 'no aud value is an accepted audience');
}

type ClaimCheck = (value: unknown) => boolean;

/**
 * A profile's schema as name → predicate, plus the predicates in the order of the last claim set seen:
 * one issuer's tokens repeat the same claim names in the same order, so most claim sets are checked by
 * comparing each name with the remembered one (internalised strings: a pointer comparison) instead of
 * looking it up.
 */
interface CompiledSchema {
  readonly checks: ReadonlyMap<string, ClaimCheck>;
  lastNames: readonly string[];
  lastChecks: readonly (ClaimCheck | undefined)[];
}

const compiledSchemas = new WeakMap<ClaimSchema, CompiledSchema>();

/** The schema compiled once per profile. */
function compiled(schema: ClaimSchema): CompiledSchema {
  let c = compiledSchemas.get(schema);
  if (c === undefined) {
    c = { checks: new Map(Object.entries(schema).map(([name, type]) => [name, claimChecker(type)] as const)), lastNames: [], lastChecks: [] };
    compiledSchemas.set(schema, c);
  }
  return c;
}

/** §7.6: every claim the schema knows has its JSON type; a claim the schema does not know is allowed. */
function checkClaimTypes(claims: Record<string, unknown>, c: CompiledSchema, profile: string): void {
  const names = c.lastNames;
  const remembered = c.lastChecks;
  let i = 0;
  let same = true;
  for (const name in claims) {
    let check: ClaimCheck | undefined;
    if (same && names[i] === name) check = remembered[i];
    else {
      same = false;
      check = c.checks.get(name);
    }
    i++;
    if (check !== undefined && !check(claims[name])) {
      throw new VerificationError('claim_type_invalid', `claim ${name} has the wrong JSON type for the ${profile} profile`);
    }
  }
  if (!same || i !== names.length) {
    // A new order (rare: another issuer, or claims added): remember it. Bounded by the member cap.
    const order = Object.keys(claims);
    c.lastNames = order;
    c.lastChecks = order.map((name) => c.checks.get(name));
  }
}

/** §7.1 `sub` shape and per-profile consistency, §7.4 `jti`, §7.6 profile claim types. */
export function checkIdentityClaims(claims: Record<string, unknown>, reg: Registration, requireJti: boolean): void {
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 1024 || CONTROL.test(sub)) {
    throw new VerificationError('claim_type_invalid', 'sub must be a non-empty string of at most 1024 characters without control characters');
  }
  const jti = claims.jti;
  if (jti === undefined) {
    if (requireJti) throw new VerificationError('jti_missing', 'the token has no jti');
  } else if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) {
    throw new VerificationError('claim_type_invalid', 'jti must be a string of 1 to 256 characters');
  }
  checkClaimTypes(claims, compiled(reg.profile.claimTypes), reg.profile.name);
  const problem = reg.profile.checkSub?.(sub, claims);
  if (problem) throw new VerificationError('sub_inconsistent', problem);
}
