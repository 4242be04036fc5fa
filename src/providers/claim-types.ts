/**
 * The vocabulary provider files use to declare claim JSON types and verifier profile facts
 * (verification.md §2, §7.6). Generic: no provider knowledge lives here.
 */

export type ClaimType =
  | 'string'
  /** a string, or JSON null (null counts as absent for policy) */
  | 'nullable_string'
  /** GitLab ID: string matching ^[1-9][0-9]{0,19}$ */
  | 'id_string'
  /** string of decimal digits (GitHub/Forgejo IDs and counters) */
  | 'digit_string'
  /** exactly "true" or "false" */
  | 'boolean_string'
  /** safe integer >= 0 */
  | 'nonnegative_integer'
  /** any safe integer */
  | 'integer'
  | 'boolean'
  | 'string_array'
  | 'object_array'
  | 'array'
  | 'object'
  | { readonly enum: readonly string[] };

export type ClaimSchema = Readonly<Record<string, ClaimType>>;

export type VerifierProfileName = 'gitlab' | 'github' | 'buildkite' | 'circleci' | 'forgejo' | 'ci-oidc' | 'generic';

/** What the verifier needs to know about one provider's tokens. */
export interface VerifierProfile {
  readonly name: VerifierProfileName;
  /** Types of the claims this profile knows; others are allowed and logged. */
  readonly claimTypes: ClaimSchema;
  /** Default for `shared`: a multi-tenant issuer whose policies must bind tenant claims. */
  readonly shared: boolean;
  /** Claims that identify the tenant on a shared issuer (policy.md §8), most immutable first. */
  readonly tenantClaims: readonly string[];
  /** Default for `requireJti`. */
  readonly requireJti: boolean;
  /**
   * `sub` consistency (verification.md §7.1): returns a description of the first disagreement
   * between `sub` and the component claims, or null when consistent or not checkable.
   */
  readonly checkSub?: (sub: string, claims: Readonly<Record<string, unknown>>) => string | null;
}

/** A built-in issuer registration a profile ships (verification.md §2). */
export interface IssuerPreset {
  readonly id: string;
  readonly issuer: string;
  readonly profile: VerifierProfileName;
}

/** 1 to 20 decimal digits; with `noLeadingZero`, the first is 1-9 (GitLab IDs: ^[1-9][0-9]{0,19}$). */
function isDigits(v: unknown, noLeadingZero: boolean): boolean {
  if (typeof v !== 'string' || v.length === 0 || v.length > 20) return false;
  if (noLeadingZero && v.charCodeAt(0) === 0x30) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function isPlainObject(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const CHECKERS: Record<Exclude<ClaimType, { readonly enum: readonly string[] }>, (value: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  nullable_string: (v) => v === null || typeof v === 'string',
  id_string: (v) => isDigits(v, true),
  digit_string: (v) => isDigits(v, false),
  boolean_string: (v) => v === 'true' || v === 'false',
  nonnegative_integer: (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && !Object.is(v, -0),
  integer: (v) => typeof v === 'number' && Number.isSafeInteger(v),
  boolean: (v) => typeof v === 'boolean',
  string_array: (v) => Array.isArray(v) && v.every((x) => typeof x === 'string'),
  object_array: (v) => Array.isArray(v) && v.every(isPlainObject),
  array: (v) => Array.isArray(v),
  object: isPlainObject,
};

/** A specialised predicate for one claim type (built once per schema, used on the hot path). */
export function claimChecker(type: ClaimType): (value: unknown) => boolean {
  if (typeof type === 'object') {
    const allowed = type.enum;
    return (v) => typeof v === 'string' && allowed.includes(v);
  }
  return CHECKERS[type];
}

/** Whether a claim value has the declared JSON type. */
export function claimHasType(value: unknown, type: ClaimType): boolean {
  return claimChecker(type)(value);
}

/** Splits `name:value:name:value…` into pairs; null when the part count is odd. */
export function subPairs(sub: string, decode: (v: string) => string = (v) => v): [string, string][] | null {
  const parts = sub.split(':');
  if (parts.length % 2 !== 0) return null;
  const out: [string, string][] = [];
  for (let i = 0; i < parts.length; i += 2) out.push([parts[i] as string, decode(parts[i + 1] as string)]);
  return out;
}

/** `%3A` → `:` and `%25` → `%` only (the ci-oidc / GitHub `sub` escaping). */
export function decodeSubValue(value: string): string {
  return value.replace(/%3A|%25/gi, (m) => (m === '%25' ? '%' : ':'));
}
