import { compileNode, PolicyValidationError, type CompiledNode } from '../policy/predicate.ts';
import { policyProfile } from '../policy/profile.ts';
import { profileFor } from './authenticate.ts';
import type { CaIssuer, CaIssuerConfig } from './issuer-config.ts';

/**
 * Per-issuer authorization (signing-ca.md §5.1 step 6, ours): each issuer entry's `Authorization` is a
 * policy.md `when` tree, compiled at load time. Only `true` allows; `false` and every error refuse.
 */
export type Authorizer = (issuer: CaIssuer, claims: Readonly<Record<string, unknown>>) => boolean;

export class AuthorizationConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(issues.join('; '));
    this.name = 'AuthorizationConfigError';
  }
}

export function compileAuthorizations(config: CaIssuerConfig): Authorizer | undefined {
  const compiled = new Map<CaIssuer, { node: CompiledNode; profile: ReturnType<typeof policyProfile>; escaped: boolean }>();
  const issues: string[] = [];
  for (const issuer of [...config.oidcIssuers.values(), ...config.metaIssuers]) {
    if (issuer.authorization === undefined) continue;
    const name = profileFor(issuer);
    const profile = policyProfile(name);
    const where = `${issuer.issuerUrl ?? issuer.wildcardIssuerUrl}.Authorization`;
    try {
      compiled.set(issuer, { node: compileNode(issuer.authorization, where, profile, 'native'), profile, escaped: name === 'ci-oidc' });
    } catch (err) {
      issues.push(err instanceof PolicyValidationError ? err.message : `${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (issues.length) throw new AuthorizationConfigError(issues);
  if (compiled.size === 0) return undefined;
  return (issuer, claims) => {
    const c = compiled.get(issuer);
    if (!c) return true;
    try {
      return c.node.evaluate({ claims, subEscaped: c.escaped, profile: c.profile, shared: true }) === true;
    } catch {
      return false;
    }
  };
}
