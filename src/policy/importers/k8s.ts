/**
 * Kubernetes `AuthenticationConfiguration` import (policy.md §11.4): `claimValidationRules` with
 * `claim`/`requiredValue` (present, a JSON string, equal) or CEL `expression` over `claims`.
 */
import type { PolicyNode, RoleDocument } from '../types.ts';
import { asObject, extractEqLeaves, ImportError, roleName, type ImportContext, type ImportResult } from './common.ts';

function rules(list: unknown, path: string): PolicyNode[] {
  if (!Array.isArray(list)) throw new ImportError(`${path} must be a list`);
  const nodes: PolicyNode[] = [];
  list.forEach((raw, i) => {
    const r = asObject(raw, `${path}[${i}]`);
    if (typeof r.expression === 'string') {
      nodes.push(...extractEqLeaves(r.expression, 'claims'), { cel: r.expression });
    } else if (typeof r.claim === 'string') {
      if (typeof r.requiredValue !== 'string') throw new ImportError(`${path}[${i}].requiredValue must be a string`);
      nodes.push({ claim: r.claim, eq: r.requiredValue, dialect: 'k8s' });
    } else throw new ImportError(`${path}[${i}] needs claim+requiredValue or expression`);
  });
  return nodes;
}

export function importK8s(source: unknown, ctx: ImportContext): ImportResult {
  if (Array.isArray(source)) {
    if (!ctx.serviceAudience) throw new ImportError('claimValidationRules alone carry no audience: pass --service-audience');
    return { roles: [{ name: roleName(ctx, 'k8s'), issuer: ctx.registrationId, audiences: [ctx.serviceAudience], when: { all: rules(source, 'claimValidationRules') }, origin: 'k8s' }], lints: [] };
  }
  const doc = asObject(source, 'AuthenticationConfiguration');
  const jwts = Array.isArray(doc.jwt) ? doc.jwt : 'issuer' in doc ? [doc] : null;
  if (!jwts) {
    if ('claimValidationRules' in doc) return importK8s(doc.claimValidationRules, ctx);
    throw new ImportError('expected an AuthenticationConfiguration with jwt[], one jwt authenticator, or a claimValidationRules list');
  }
  if (jwts.length > 64) throw new ImportError('at most 64 jwt authenticators');
  const roles: RoleDocument[] = [];
  jwts.forEach((raw, i) => {
    const a = asObject(raw, `jwt[${i}]`);
    const issuer = asObject(a.issuer, `jwt[${i}].issuer`);
    if (typeof issuer.url !== 'string') throw new ImportError(`jwt[${i}].issuer.url is required`);
    if (ctx.issuerUrl !== undefined && issuer.url !== ctx.issuerUrl) return;
    const auds = Array.isArray(issuer.audiences) ? (issuer.audiences as unknown[]).filter((x): x is string => typeof x === 'string') : [];
    if (auds.length === 0) throw new ImportError(`jwt[${i}].issuer.audiences must not be empty`);
    if (auds.length > 1 && issuer.audienceMatchPolicy !== 'MatchAny') throw new ImportError(`jwt[${i}]: more than one audience requires audienceMatchPolicy: MatchAny`);
    if (a.userValidationRules !== undefined) throw new ImportError(`jwt[${i}].userValidationRules run over the mapped user, which ci-oidc does not compute: express them as claimValidationRules`);
    const nodes = a.claimValidationRules === undefined ? [] : rules(a.claimValidationRules, `jwt[${i}].claimValidationRules`);
    if (nodes.length === 0) throw new ImportError(`jwt[${i}] has no claimValidationRules: a role must bind something`);
    roles.push({ name: roleName(ctx, 'k8s', jwts.length > 1 ? i : undefined), issuer: ctx.registrationId, audiences: auds.slice(0, 10), when: { all: nodes }, grant: { type: 'k8s', ...(a.claimMappings ? { claimMappings: a.claimMappings } : {}) }, origin: 'k8s' });
  });
  if (roles.length === 0) throw new ImportError(`no jwt authenticator has issuer.url ${ctx.issuerUrl}`);
  return { roles, lints: [] };
}
