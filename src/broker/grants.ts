import type { RoleGrant } from '../policy/index.ts';
import { ExchangeError } from './errors.ts';

/**
 * Pure credential rules (policy.md §12): lifetime = min(requested, role max, deployment max), capped at
 * the token's remaining life when the role is bound to it; scope = role grant ∩ request.
 */
export interface LifetimeInput {
  requested: number | undefined;
  roleMaxTtl: number | undefined;
  defaultTtl: number;
  deploymentMaxTtl: number;
  /** Cap at `exp − now` (default for RFC 8693 and Vault). */
  boundToTokenExpiry: boolean;
  tokenExp: number;
  now: number;
}

export function computeTtl(i: LifetimeInput): number {
  const roleMax = Math.min(i.roleMaxTtl ?? i.defaultTtl, i.deploymentMaxTtl);
  let ttl = Math.min(i.requested ?? i.defaultTtl, roleMax);
  if (i.boundToTokenExpiry) ttl = Math.min(ttl, i.tokenExp - i.now);
  if (!Number.isSafeInteger(ttl) || ttl < 1) {
    throw new ExchangeError('token_expired', 'token_expiring', 'the token expires before a credential could be used; mint a fresh ID token');
  }
  return ttl;
}

const strings = (v: unknown): string[] | undefined => {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  return undefined;
};

/** Role scopes ∩ requested scopes; a request for nothing gets the role's scopes. */
export function intersectScopes(roleScopes: readonly string[] | undefined, requested: readonly string[]): string[] {
  const granted = roleScopes ?? [];
  if (requested.length === 0) return [...granted];
  const out = requested.filter((s) => granted.includes(s));
  if (out.length === 0) {
    throw new ExchangeError('invalid_target', 'scope_not_granted', 'none of the requested scopes is granted by the role; request a subset of the role scopes');
  }
  return out;
}

/** Requested audiences/resources must all be targets of the role; none requested → all role targets. */
export function selectTargets(grant: RoleGrant | undefined, requested: readonly string[]): string[] {
  const targets = strings(grant?.audience) ?? strings(grant?.targets) ?? [];
  if (requested.length === 0) return [...targets];
  for (const r of requested) {
    if (!targets.includes(r)) {
      throw new ExchangeError('invalid_target', 'target_not_allowed', 'the requested audience or resource is not a target of the role; ask for one the role lists');
    }
  }
  return [...requested];
}

export function grantStrings(grant: RoleGrant | undefined, ...names: string[]): string[] | undefined {
  for (const n of names) {
    const v = strings(grant?.[n]);
    if (v !== undefined) return v;
  }
  return undefined;
}

export function grantNumber(grant: RoleGrant | undefined, ...names: string[]): number | undefined {
  for (const n of names) {
    const v = grant?.[n];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  }
  return undefined;
}

export function grantFlag(grant: RoleGrant | undefined, ...names: string[]): boolean | undefined {
  for (const n of names) {
    const v = grant?.[n];
    if (typeof v === 'boolean') return v;
  }
  return undefined;
}
