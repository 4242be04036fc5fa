/**
 * Offline evaluation and lint of a policy file against a claims file (the `ci-oidc policy eval|lint`
 * commands). No store: the roles are compiled in memory; pins are not recorded.
 */
import YAML from 'yaml';
import { selectRole, type LoadedRole } from './decide.ts';
import { importPolicy, ImportError, type ImportDialect } from './importers/index.ts';
import { PolicyValidationError } from './predicate.ts';
import { compileRole } from './role.ts';
import type { Lint, PolicyRegistration, RoleDecision } from './types.ts';

const SHARED_ISSUERS: Record<string, string> = {
  'https://gitlab.com': 'gitlab',
  'https://token.actions.githubusercontent.com': 'github',
  'https://agent.buildkite.com': 'buildkite',
};

export const EXIT_ALLOW = 0;
export const EXIT_DENY = 1;
export const EXIT_MALFORMED = 2;

export interface OfflineResult {
  exitCode: number;
  output: unknown;
}

export function parseDocument(text: string, what: string): unknown {
  if (text.length > 1_048_576) throw new ImportError(`${what} is larger than 1 MiB`);
  try {
    return YAML.parse(text, { uniqueKeys: true, maxAliasCount: 0 });
  } catch (err) {
    throw new ImportError(`${what} is neither JSON nor YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Guesses the issuer profile from the claims (CLI only: the server uses registrations). */
export function inferRegistration(id: string, claims: Record<string, unknown>, profile?: string): PolicyRegistration {
  const iss = typeof claims.iss === 'string' ? claims.iss : '';
  const known = SHARED_ISSUERS[iss];
  const guessed = known ?? (profile ? profile : 'project_path' in claims ? 'gitlab' : 'repository_owner' in claims ? 'github' : 'organization_slug' in claims ? 'buildkite' : 'generic');
  return { id, issuer: iss, profile: profile ?? guessed, shared: known !== undefined };
}

export function evalPolicy(options: { dialect: ImportDialect; policyText: string; claimsText: string; serviceAudience?: string; profile?: string }): OfflineResult {
  let claims: Record<string, unknown>;
  let source: unknown;
  try {
    const c = parseDocument(options.claimsText, 'claims file');
    if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new ImportError('the claims file must hold a JSON object (a decoded token payload)');
    claims = c as Record<string, unknown>;
    source = parseDocument(options.policyText, 'policy file');
  } catch (err) {
    return malformed(err);
  }
  const firstIssuer = options.dialect === 'native' ? ((Array.isArray(source) ? source[0] : source) as { issuer?: unknown } | null)?.issuer : undefined;
  const registration = inferRegistration(typeof firstIssuer === 'string' ? firstIssuer : 'cli', claims, options.profile);
  const lints: Lint[] = [];
  const roles: LoadedRole[] = [];
  try {
    const imported = importPolicy(options.dialect, source, { registrationId: registration.id, issuerUrl: registration.issuer || undefined, serviceAudience: options.serviceAudience });
    lints.push(...imported.lints);
    for (const doc of imported.roles) {
      if (imported.audienceFromToken) {
        const aud = claims.aud;
        doc.audiences = (Array.isArray(aud) ? aud : [aud]).filter((a): a is string => typeof a === 'string').slice(0, 10);
        if (doc.audiences.length === 0) doc.audiences = ['(none)'];
      }
      const compiled = compileRole({ ...doc, issuer: registration.id }, registration);
      lints.push(...compiled.lints);
      roles.push({ id: doc.name, tenant: 'cli', compiled, pins: { owner: null, project: null }, createdAt: 0, updatedAt: 0 });
    }
  } catch (err) {
    return malformed(err);
  }
  const mode = roles.some((r) => r.compiled.document.grant?.allowMultiAudienceTokens === true) ? 'multi' : 'single';
  let decision: RoleDecision;
  if (roles.length === 1 || options.dialect === 'native') {
    decision = selectRole({ registration, claims, candidates: roles, named: roles.length === 1, mode }).decision;
  } else {
    // Imported documents with several statements/authenticators: any one allowing is enough (AWS OR).
    const all = roles.map((r) => selectRole({ registration, claims, candidates: [r], named: true, mode }).decision);
    const allowed = all.find((d) => d.decision === 'allow');
    decision = allowed ? { ...allowed, candidates: all.flatMap((d) => d.candidates) } : { ...(all[0] as RoleDecision), reason: 'no-role-matched', candidates: all.flatMap((d) => d.candidates) };
  }
  return { exitCode: decision.decision === 'allow' ? EXIT_ALLOW : EXIT_DENY, output: { ...decision, lints } };
}

export function lintPolicy(options: { dialect: ImportDialect; policyText: string; profile?: string; shared?: boolean; issuerUrl?: string; serviceAudience?: string }): OfflineResult {
  let source: unknown;
  try {
    source = parseDocument(options.policyText, 'policy file');
  } catch (err) {
    return malformed(err);
  }
  const profile = options.profile ?? (options.issuerUrl ? SHARED_ISSUERS[options.issuerUrl] : undefined) ?? 'gitlab';
  const shared = options.shared ?? (options.issuerUrl ? SHARED_ISSUERS[options.issuerUrl] !== undefined : profile === 'gitlab' || profile === 'github');
  const lints: Lint[] = [];
  try {
    const firstIssuer = options.dialect === 'native' ? ((Array.isArray(source) ? source[0] : source) as { issuer?: unknown } | null)?.issuer : undefined;
    const registration: PolicyRegistration = { id: typeof firstIssuer === 'string' ? firstIssuer : 'lint', issuer: options.issuerUrl ?? '', profile, shared };
    const imported = importPolicy(options.dialect, source, { registrationId: registration.id, issuerUrl: options.issuerUrl, serviceAudience: options.serviceAudience ?? 'lint-audience' });
    lints.push(...imported.lints);
    for (const doc of imported.roles) {
      const compiled = compileRole({ ...doc, issuer: registration.id }, registration, { requireTenantBinding: false });
      lints.push(...compiled.lints.map((l) => ({ ...l, path: `${doc.name}.${l.path}` })));
      if (shared && compiled.tenantStrength === 0) {
        lints.push({ code: 'tenant-binding-missing', path: `${doc.name}.when`, message: `no top-level condition binds the namespace/owner or project on a shared ${profile} issuer: saving this role fails` });
      }
    }
  } catch (err) {
    return malformed(err);
  }
  return { exitCode: lints.length ? 1 : 0, output: { lints } };
}

function malformed(err: unknown): OfflineResult {
  const code = err instanceof PolicyValidationError ? err.code : err instanceof ImportError ? err.code : 'policy_malformed';
  return { exitCode: EXIT_MALFORMED, output: { decision: 'deny', error: code, message: err instanceof Error ? err.message : String(err) } };
}
