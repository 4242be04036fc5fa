/**
 * What the policy engine needs to know about a provider's claims: logical types (policy.md §4),
 * tenant binding (§8.1) and ID pins (§8.2). The facts live in src/providers/<provider>.ts; this file only
 * adapts them to one shape.
 */
import { GITLAB_POLICY } from '../providers/gitlab.ts';
import { GITHUB_POLICY } from '../providers/github.ts';
import { buildkiteSubTenantStrength, buildkiteVerifierProfile } from '../providers/buildkite.ts';
import { circleciVerifierProfile } from '../providers/circleci.ts';
import type { ClaimType, VerifierProfile } from '../providers/claim-types.ts';

export type ClaimKind = 'bool' | 'id' | 'int' | 'path' | 'string' | 'untyped';

export interface PolicyProfile {
  readonly name: string;
  kindOf(claim: string): ClaimKind;
  /** `eq`/`in` on these claims binds the tenant with the given strength (3 project, 2 namespace). */
  readonly tenantExact: Readonly<Record<string, number>>;
  /** Claims a segment-boundary prefix or glob binds (strength 1). */
  readonly tenantPrefix: readonly string[];
  subTenantStrength(literal: string, exact: boolean): number;
  readonly pins?: { readonly owner: string; readonly project: string };
  readonly pinOwnerWhenBound: readonly string[];
  readonly pinProjectWhenBound: readonly string[];
  readonly subEscaped: boolean;
  readonly subLeadingComponent?: string;
}

interface ProviderPolicyFacts {
  idClaims: readonly string[];
  boolClaims: readonly string[];
  intClaims: readonly string[];
  pathClaims: readonly string[];
  stringClaims: readonly string[];
  tenantExact: Readonly<Record<string, number>>;
  tenantPrefix: readonly string[];
  subTenantStrength(literal: string, exact: boolean): number;
  pins: { owner: string; project: string };
  pinOwnerWhenBound: readonly string[];
  pinProjectWhenBound: readonly string[];
  subEscaped: boolean;
  subLeadingComponent: string;
}

function fromFacts(name: string, facts: ProviderPolicyFacts, overrides: { subEscaped?: boolean } = {}): PolicyProfile {
  const kinds = new Map<string, ClaimKind>();
  for (const c of facts.stringClaims) kinds.set(c, 'string');
  for (const c of facts.pathClaims) kinds.set(c, 'path');
  for (const c of facts.idClaims) kinds.set(c, 'id');
  for (const c of facts.boolClaims) kinds.set(c, 'bool');
  for (const c of facts.intClaims) kinds.set(c, 'int');
  return {
    name,
    kindOf: (claim) => kinds.get(claim) ?? 'untyped',
    tenantExact: facts.tenantExact,
    tenantPrefix: facts.tenantPrefix,
    subTenantStrength: facts.subTenantStrength,
    pins: facts.pins,
    pinOwnerWhenBound: facts.pinOwnerWhenBound,
    pinProjectWhenBound: facts.pinProjectWhenBound,
    subEscaped: overrides.subEscaped ?? facts.subEscaped,
    subLeadingComponent: facts.subLeadingComponent,
  };
}

function kindOfClaimType(t: ClaimType): ClaimKind {
  switch (t) {
    case 'id_string':
    case 'digit_string':
      return 'id';
    case 'boolean_string':
      return 'bool';
    case 'integer':
    case 'nonnegative_integer':
      return 'int';
    case 'string':
    case 'nullable_string':
      return 'string';
    default:
      return typeof t === 'object' ? 'string' : 'untyped';
  }
}

/** Profiles without policy facts of their own: types from the verifier profile, tenant claims bind at strength 2. */
function fromVerifierProfile(p: VerifierProfile): PolicyProfile {
  const exact: Record<string, number> = {};
  for (const c of p.tenantClaims) exact[c] = 2;
  return {
    name: p.name,
    kindOf: (claim) => {
      const t = p.claimTypes[claim];
      if (t !== undefined) return kindOfClaimType(t);
      return claim === 'sub' || claim === 'iss' || claim === 'jti' ? 'string' : 'untyped';
    },
    tenantExact: exact,
    tenantPrefix: [],
    subTenantStrength: () => 0,
    pinOwnerWhenBound: [],
    pinProjectWhenBound: [],
    subEscaped: false,
  };
}

const GENERIC: PolicyProfile = {
  name: 'generic',
  kindOf: (claim) => (claim === 'sub' || claim === 'iss' || claim === 'jti' ? 'string' : 'untyped'),
  tenantExact: {},
  tenantPrefix: [],
  subTenantStrength: () => 0,
  pinOwnerWhenBound: [],
  pinProjectWhenBound: [],
  subEscaped: false,
};

const PROFILES: Record<string, PolicyProfile> = {
  gitlab: fromFacts('gitlab', GITLAB_POLICY),
  // Our issuer emits GitLab's claim set; its `sub` escapes `:` and `%` (issuer.md §3).
  'ci-oidc': fromFacts('ci-oidc', GITLAB_POLICY, { subEscaped: true }),
  github: fromFacts('github', GITHUB_POLICY),
  forgejo: fromFacts('forgejo', GITHUB_POLICY),
  buildkite: { ...fromVerifierProfile(buildkiteVerifierProfile), subTenantStrength: buildkiteSubTenantStrength },
  circleci: fromVerifierProfile(circleciVerifierProfile),
  generic: GENERIC,
};

export function policyProfile(name: string): PolicyProfile {
  return PROFILES[name] ?? GENERIC;
}
