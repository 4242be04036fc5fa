import { GITLAB_CLAIM_NAMES, GITLAB_NEVER_EMITTED_CLAIMS, GITLAB_REGISTERED_CLAIMS } from '../providers/gitlab.ts';
import { GITHUB_CLAIM_NAMES_FOR_RESERVATION } from './reserved.ts';
import { issuerError } from './errors.ts';
import { hasControlChars } from './text.ts';
import type { ClaimValue } from './claims.ts';

/** Custom claims (issuer.md §7): instance -> groups -> project -> job -> one id_tokens entry. */
export interface ClaimDefinition {
  name: string;
  value: unknown;
  mutable?: boolean;
}

export interface ClaimLevel {
  /** Human name of the level for messages, e.g. `group acme/platform`, `job deploy`. */
  level: string;
  definitions: readonly ClaimDefinition[];
  /** Job-controlled levels may only add names or override mutable ones, and are untrusted. */
  untrusted?: boolean;
}

export const AWS_TAGS_CLAIM = 'https://aws.amazon.com/tags';
export const MAX_CUSTOM_CLAIMS = 20;
export const MAX_CUSTOM_CLAIMS_BYTES = 4096;
const MAX_STRING = 256;
const MAX_ARRAY = 50;
const NAME = /^[a-z][a-z0-9_]{0,63}$/;
const URI_NAME = /^https:\/\/[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+$/;

const OIDC_RESERVED = ['email', 'email_verified', 'name', 'nonce', 'azp', 'amr', 'acr', 'auth_time', 'at_hash', 'c_hash', 'sid', 'typ', 'cnf'];

export const RESERVED_CLAIM_NAMES: ReadonlySet<string> = new Set([
  ...GITLAB_REGISTERED_CLAIMS,
  ...GITLAB_CLAIM_NAMES,
  ...GITLAB_NEVER_EMITTED_CLAIMS,
  ...OIDC_RESERVED,
  ...GITHUB_CLAIM_NAMES_FOR_RESERVATION,
]);

export function claimNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'a claim name must be a string';
  if (RESERVED_CLAIM_NAMES.has(name) || name.startsWith('repo_property_')) return `claim ${JSON.stringify(name)} is a built-in or reserved claim and can never be set`;
  if (name.startsWith('https://')) {
    if (name.length > 256 || !URI_NAME.test(name)) return `claim name ${JSON.stringify(name.slice(0, 300))} must be an https:// URI of at most 256 characters`;
    return undefined;
  }
  if (!NAME.test(name)) return `claim name ${JSON.stringify(name.slice(0, 80))} must match ^[a-z][a-z0-9_]{0,63}$ or be an https:// URI`;
  return undefined;
}

export type ClaimKind = 'string' | 'integer' | 'boolean' | 'string_array' | 'aws_tags';

function isStringWithin(v: unknown): v is string {
  return typeof v === 'string' && v.length <= MAX_STRING && !hasControlChars(v);
}

/** The JSON kind of a valid value, or a problem message. */
export function claimValueKind(name: string, value: unknown): ClaimKind | { problem: string } {
  if (typeof value === 'string') return isStringWithin(value) ? 'string' : { problem: `claim ${name}: strings are at most ${String(MAX_STRING)} characters without control characters` };
  if (typeof value === 'number') return Number.isSafeInteger(value) ? 'integer' : { problem: `claim ${name}: numbers must be safe integers` };
  if (typeof value === 'boolean') return 'boolean';
  if (Array.isArray(value)) {
    if (value.length > MAX_ARRAY || !value.every(isStringWithin)) return { problem: `claim ${name}: arrays hold at most ${String(MAX_ARRAY)} strings of at most ${String(MAX_STRING)} characters` };
    return 'string_array';
  }
  if (name === AWS_TAGS_CLAIM && typeof value === 'object' && value !== null) {
    const problem = awsTagsProblem(value as Record<string, unknown>);
    return problem ? { problem } : 'aws_tags';
  }
  return { problem: `claim ${name}: a value is a string, a safe integer, a boolean or an array of strings` };
}

function awsTagsProblem(value: Record<string, unknown>): string | undefined {
  const keys = Object.keys(value);
  if (keys.some((k) => k !== 'principal_tags' && k !== 'transitive_tag_keys') || !('principal_tags' in value)) {
    return `claim ${AWS_TAGS_CLAIM} must be {"principal_tags": {key: [value]}, "transitive_tag_keys": [key]}`;
  }
  const tags = value.principal_tags;
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) return `claim ${AWS_TAGS_CLAIM}: principal_tags must be an object`;
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > 50) return `claim ${AWS_TAGS_CLAIM}: at most 50 principal tags (AWS limit)`;
  for (const [k, v] of entries) {
    if (!/^[\p{L}\p{Z}\p{N}_.:/=+@-]{1,128}$/u.test(k)) return `claim ${AWS_TAGS_CLAIM}: tag key ${JSON.stringify(k.slice(0, 140))} is not a valid AWS tag key`;
    if (!Array.isArray(v) || v.length !== 1 || typeof v[0] !== 'string' || v[0].length > 256) {
      return `claim ${AWS_TAGS_CLAIM}: tag ${k} must be a one-element array holding a string of at most 256 characters`;
    }
  }
  const transitive = value.transitive_tag_keys;
  if (transitive !== undefined) {
    if (!Array.isArray(transitive) || transitive.length > 50 || !transitive.every((t) => typeof t === 'string' && t in (tags as object))) {
      return `claim ${AWS_TAGS_CLAIM}: transitive_tag_keys must list keys of principal_tags`;
    }
  }
  return undefined;
}

/** Checks one definition in isolation; throws `claim_reserved` / `claim_invalid`. */
export function assertValidDefinition(def: ClaimDefinition, level: string): ClaimKind {
  const nameProblem = claimNameProblem(def.name);
  if (nameProblem) {
    const reserved = typeof def.name === 'string' && (RESERVED_CLAIM_NAMES.has(def.name) || def.name.startsWith('repo_property_'));
    throw issuerError(reserved ? 'claim_reserved' : 'claim_invalid', `${level}: ${nameProblem}`);
  }
  const kind = claimValueKind(def.name, def.value);
  if (typeof kind === 'object') throw issuerError('claim_invalid', `${level}: ${kind.problem}`);
  return kind;
}

interface Resolved {
  value: unknown;
  kind: ClaimKind;
  mutable: boolean;
  level: string;
  untrusted: boolean;
}

export interface ResolvedClaims {
  claims: Record<string, ClaimValue>;
  /** Names whose value came from a job-controlled level. */
  untrusted: string[];
}

/**
 * Walks the levels top-down. The first immutable definition wins and any lower attempt to change it
 * fails with the level that locked it; a mutable value may be replaced by a value of the same kind.
 */
export function resolveCustomClaims(levels: readonly ClaimLevel[]): ResolvedClaims {
  const out = new Map<string, Resolved>();
  for (const { level, definitions, untrusted = false } of levels) {
    const seen = new Set<string>();
    for (const def of definitions) {
      const kind = assertValidDefinition(def, level);
      if (seen.has(def.name)) throw issuerError('claim_invalid', `${level}: claim ${def.name} is defined twice`);
      seen.add(def.name);
      const prior = out.get(def.name);
      if (prior) {
        if (!prior.mutable) {
          throw issuerError('claim_immutable', `${level}: claim ${def.name} is locked by ${prior.level} (mutable: false); remove it from ${level} or ask the owner of ${prior.level} to mark it mutable`);
        }
        if (prior.kind !== kind) {
          throw issuerError('claim_type_changed', `${level}: claim ${def.name} must keep the JSON type ${prior.kind} set by ${prior.level}`);
        }
      }
      out.set(def.name, { value: def.value, kind, mutable: untrusted ? true : def.mutable === true, level, untrusted });
    }
  }
  if (out.size > MAX_CUSTOM_CLAIMS) throw issuerError('claims_too_many', `a token may carry at most ${String(MAX_CUSTOM_CLAIMS)} custom claims (${String(out.size)} resolved); remove some`);
  const claims: Record<string, ClaimValue> = {};
  const untrustedNames: string[] = [];
  for (const [name, r] of out) {
    claims[name] = structuredClone(r.value) as ClaimValue;
    if (r.untrusted) untrustedNames.push(name);
  }
  const size = Buffer.byteLength(JSON.stringify(claims), 'utf8');
  if (size > MAX_CUSTOM_CLAIMS_BYTES) throw issuerError('claims_too_large', `custom claims serialise to ${String(size)} bytes; the limit is ${String(MAX_CUSTOM_CLAIMS_BYTES)}`);
  return { claims, untrusted: untrustedNames };
}

/**
 * For a settings save (config load, API): the first definition at `levels[i]` that an ancestor locked,
 * reported as `claim_immutable`.
 */
export function assertHierarchySavable(levels: readonly ClaimLevel[]): void {
  resolveCustomClaimsNoLimits(levels);
}

function resolveCustomClaimsNoLimits(levels: readonly ClaimLevel[]): void {
  const locked = new Map<string, { level: string; kind: ClaimKind; mutable: boolean }>();
  for (const { level, definitions } of levels) {
    for (const def of definitions) {
      const kind = assertValidDefinition(def, level);
      const prior = locked.get(def.name);
      if (prior && !prior.mutable) {
        throw issuerError('claim_immutable', `${level}: claim ${def.name} is locked by ${prior.level} (mutable: false) and cannot be overridden`);
      }
      if (prior && prior.kind !== kind) throw issuerError('claim_type_changed', `${level}: claim ${def.name} must keep the JSON type ${prior.kind} set by ${prior.level}`);
      locked.set(def.name, { level, kind, mutable: def.mutable === true });
    }
  }
}
