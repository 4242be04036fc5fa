/**
 * HashiCorp Vault JWT role import (policy.md §11.1): `bound_audiences`, exact `bound_subject`,
 * `bound_claims` (string or glob mode, JSON-pointer keys), `claim_mappings`, token fields.
 */
import type { LeafNode, Lint, PolicyNode, RoleGrant } from '../types.ts';
import { all, asObject, ImportError, roleName, type ImportContext, type ImportResult } from './common.ts';

const ROLE_FIELDS = ['role_type', 'bound_audiences', 'bound_subject', 'bound_claims', 'bound_claims_type', 'claim_mappings', 'user_claim', 'groups_claim', 'token_policies', 'policies'];

function list(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  return Array.isArray(v) ? v : [v];
}

function boundClaims(bound: Record<string, unknown>, type: string, lints: Lint[]): PolicyNode[] {
  const nodes: PolicyNode[] = [];
  for (const [key, raw] of Object.entries(bound)) {
    const vals = Array.isArray(raw) ? raw : [raw];
    if (vals.length === 0) throw new ImportError(`bound_claims.${key} has no values`);
    const path = `bound_claims.${key}`;
    if (type === 'glob') {
      if (vals.some((v) => typeof v !== 'string')) throw new ImportError(`${path}: Vault rejects non-string bound values in glob mode`);
      nodes.push({ claim: key, glob: vals as string[], dialect: 'vault', quantifier: 'any' });
      for (const v of vals as string[]) {
        if (v.includes('?')) lints.push({ code: 'question-mark-literal', path, message: `'${v}': Vault globs treat '?' as a literal character` });
      }
    } else {
      for (const v of vals) if (v !== null && !['string', 'number', 'boolean'].includes(typeof v)) throw new ImportError(`${path}: values must be strings, numbers or booleans`);
      const leaf: LeafNode = { claim: key, in: vals as (string | number | boolean)[], dialect: 'vault', quantifier: 'any' };
      nodes.push(leaf);
    }
  }
  return nodes;
}

export function importVault(source: unknown, ctx: ImportContext): ImportResult {
  const doc = asObject(source, 'Vault role');
  const lints: Lint[] = [];
  const whole = ROLE_FIELDS.some((f) => f in doc);
  if (!whole) {
    // Just the bound_claims map (string mode).
    const auds = ctx.serviceAudience ? [ctx.serviceAudience] : [];
    if (!auds.length) throw new ImportError('a bound_claims map alone has no audience: pass --service-audience (Vault rejects tokens with an aud when the role binds none)');
    return { roles: [{ name: roleName(ctx, 'vault'), issuer: ctx.registrationId, audiences: auds, when: all(boundClaims(doc, 'string', lints)), origin: 'vault' }], lints };
  }
  const roleType = doc.role_type ?? 'oidc';
  if (roleType !== 'jwt') throw new ImportError(`role_type is ${JSON.stringify(roleType)}: only jwt roles can use /login (Vault's default on create is oidc); set "role_type": "jwt"`);
  const audiences = list(doc.bound_audiences);
  if (audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a === '')) {
    throw new ImportError('bound_audiences is empty: since Vault 1.16.3 a token with an aud is rejected by such a role; bind the audience your CI jobs request');
  }
  const type = doc.bound_claims_type ?? 'string';
  if (type !== 'string' && type !== 'glob') throw new ImportError('bound_claims_type must be "string" or "glob"');
  const nodes: PolicyNode[] = [];
  if (doc.bound_subject !== undefined && doc.bound_subject !== '') {
    if (typeof doc.bound_subject !== 'string') throw new ImportError('bound_subject must be a string');
    nodes.push({ claim: 'sub', in: [doc.bound_subject], dialect: 'vault' });
  }
  if (doc.bound_claims !== undefined && doc.bound_claims !== null) nodes.push(...boundClaims(asObject(doc.bound_claims, 'bound_claims'), type as string, lints));
  const userClaim = doc.user_claim;
  if (typeof userClaim !== 'string' || userClaim === '') throw new ImportError('user_claim is required (Vault refuses roles without it)');
  // The user claim must exist and be a string, or every login fails.
  nodes.push({ claim: userClaim, glob: '*', dialect: 'vault' });
  const mappings = doc.claim_mappings === undefined ? undefined : (asObject(doc.claim_mappings, 'claim_mappings') as Record<string, string>);
  const ttl = (v: unknown): number | undefined => {
    if (typeof v === 'number' && v > 0) return v;
    if (typeof v === 'string') {
      const m = /^(\d+)(s|m|h)?$/.exec(v);
      if (m) return Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
    }
    return undefined;
  };
  const maxTtl = ttl(doc.token_explicit_max_ttl) ?? ttl(doc.token_max_ttl) ?? ttl(doc.token_ttl) ?? ttl(doc.ttl);
  for (const f of ['clock_skew_leeway', 'expiration_leeway', 'not_before_leeway']) {
    const v = doc[f];
    if (typeof v === 'number' && (v > 60 || v === 0 || v === -1)) lints.push({ code: 'leeway-clamped', path: f, message: `${f}=${v}: ci-oidc caps leeway at 60 s` });
  }
  const grant: RoleGrant = {
    type: 'vault',
    ...(maxTtl ? { maxTtl: Math.min(maxTtl, 43_200) } : {}),
    policies: list(doc.token_policies ?? doc.policies),
    userClaim,
    ...(typeof doc.groups_claim === 'string' ? { groupsClaim: doc.groups_claim } : {}),
    ...(doc.allow_multi_audience_tokens === true ? { allowMultiAudienceTokens: true } : {}),
    boundToTokenExpiry: true,
  };
  return {
    roles: [
      {
        name: roleName(ctx, 'vault'),
        issuer: ctx.registrationId,
        audiences: (audiences as string[]).slice(0, 10),
        when: all(nodes),
        ...(mappings && Object.keys(mappings).length ? { claimMappings: mappings } : {}),
        grant,
        origin: 'vault',
      },
    ],
    lints,
  };
}
