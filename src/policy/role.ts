/**
 * Role documents (policy.md §2): strict schema, compilation, tenant binding (§8.1), pins (§8.2),
 * specificity (§10) and lints. A role is compiled once at save/load and evaluated many times.
 */
import { z } from 'zod';
import { compileNode, PolicyValidationError, topLevelConjuncts, walk, type CompiledLeaf, type CompiledNode } from './predicate.ts';
import { policyProfile, type PolicyProfile } from './profile.ts';
import { lintNode } from './lint.ts';
import { regexLiteralPrefix } from './regex.ts';
import type { Dialect, Lint, PolicyRegistration, RoleDocument, RolePins, Specificity } from './types.ts';

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ID_RE = /^[1-9][0-9]{0,19}$/;

const grantSchema = z
  .object({
    type: z.string().min(1).max(64),
    scopes: z.array(z.string().min(1).max(256)).max(100).optional(),
    maxTtl: z.number().int().min(1).max(43_200).optional(),
    boundToTokenExpiry: z.boolean().optional(),
  })
  .catchall(z.unknown());

const roleSchema = z.strictObject({
  name: z.string().regex(NAME_RE, 'name must match ^[a-z0-9][a-z0-9._-]{0,63}$'),
  issuer: z.string().min(1).max(200),
  audiences: z.array(z.string().min(1).max(256)).min(1, 'audiences must not be empty').max(10),
  when: z.unknown(),
  deny: z.array(z.unknown()).max(64).optional(),
  pins: z
    .strictObject({
      namespace_id: z.string().regex(ID_RE).optional(),
      project_id: z.string().regex(ID_RE).optional(),
      repository_owner_id: z.string().regex(ID_RE).optional(),
      repository_id: z.string().regex(ID_RE).optional(),
    })
    .optional(),
  pinning: z.enum(['tofu', 'explicit', 'off']).optional(),
  claimMappings: z.record(z.string().min(1).max(256), z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/)).optional(),
  grant: grantSchema.optional(),
  origin: z.enum(['native', 'vault', 'aws', 'gcp', 'k8s', 'octo-sts']).optional(),
  extendedClaimKeys: z.boolean().optional(),
});

/** Which immutable IDs a role must pin, from its exact path bindings (policy.md §8.2). */
export interface PinRequirement {
  owner: boolean;
  project: boolean;
}

export interface CompiledRole {
  readonly document: RoleDocument;
  readonly profile: PolicyProfile;
  readonly when: CompiledNode;
  readonly deny: readonly CompiledNode[];
  readonly tenantStrength: number;
  readonly specificity: Specificity;
  readonly pinRequirement: PinRequirement;
  readonly lints: Lint[];
  /** Exact values a top-level conjunct requires, by claim (lowercased for path claims): the lookup index keys. */
  readonly indexKeys: ReadonlyMap<string, readonly string[]>;
  /** `sub` literals of exact top-level `sub` leaves (for the `sub-format-changed` flag). */
  readonly exactSubs: readonly string[];
}

function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : 'role'}: ${i.message}`).join('; ');
}

function leafBase(l: CompiledLeaf): string | null {
  return l.ref.kind === 'name' ? l.ref.name : l.ref.kind === 'sub' ? l.ref.component : null;
}

/** Tenant-binding strength of one top-level conjunct (0 when it binds nothing). */
function conjunctStrength(n: CompiledNode, profile: PolicyProfile): number {
  if (n.type !== 'leaf' || n.onMissing === 'true' || n.emptyListTrue) return 0;
  const claim = leafBase(n);
  if (claim === null) return 0;
  const exact = n.op === 'eq' || n.op === 'in';
  if (claim === 'sub' && n.ref.kind === 'name') {
    const strOf = (v: unknown) => (typeof v === 'string' ? v : '');
    if (exact) return Math.min(...n.literals.map((l) => profile.subTenantStrength(strOf(n.kind === 'path' ? l : l), true)));
    if (n.op === 'prefix') return profile.subTenantStrength(n.operand as string, false);
    if (n.op === 'glob') return Math.min(...n.globs.map((g) => (g.hasWildcard ? profile.subTenantStrength(g.literalPrefix, false) : profile.subTenantStrength(g.literalPrefix, true))));
    if (n.op === 'regex' && n.regex) return profile.subTenantStrength(regexLiteralPrefix(n.regex.pattern), false);
    return 0;
  }
  const exactStrength = profile.tenantExact[claim];
  if (exactStrength !== undefined && exact) return exactStrength;
  if (exactStrength !== undefined && n.op === 'glob' && n.globs.every((g) => !g.hasWildcard)) return exactStrength;
  if (profile.tenantPrefix.includes(claim)) {
    const boundary = (p: string) => {
      const cut = p.lastIndexOf('/');
      return cut > 0 && !p.startsWith('/') && p.slice(0, cut).split('/').every((seg) => seg.length > 0);
    };
    if (n.op === 'prefix' && (n.operand as string).endsWith('/') && boundary(n.operand as string)) return 1;
    if (n.op === 'glob' && n.globs.every((g) => boundary(g.literalPrefix))) return 1;
  }
  return 0;
}

function exactSingle(n: CompiledNode): string | null {
  if (n.type !== 'leaf' || n.onMissing === 'true') return null;
  if ((n.op === 'eq' || n.op === 'in') && n.literals.length === 1 && typeof n.literals[0] === 'string') return n.literals[0];
  return null;
}

export function specificityOf(when: CompiledNode, profile: PolicyProfile, tenantStrength: number): Specificity {
  const conj = topLevelConjuncts(when);
  const bindsEnv = conj.some((n) => n.type === 'leaf' && leafBase(n) === 'environment' && n.onMissing !== 'true' && (n.op === 'eq' || n.op === 'in' || n.op === 'glob' || n.op === 'regex'));
  const eqCount = conj.filter((n) => exactSingle(n) !== null || (n.type === 'leaf' && n.op === 'eq')).length;
  let literalChars = 0;
  let anyCel = 0;
  walk(when, (n) => {
    if (n.type === 'leaf') {
      if (n.op === 'glob') literalChars += n.globs.reduce((s, g) => s + g.literalChars, 0);
      else if (n.op === 'prefix') literalChars += (n.operand as string).length;
      else if (n.op === 'regex') literalChars += n.regex?.literalChars ?? 0;
    } else if (n.type === 'any' || n.type === 'cel') anyCel++;
  });
  void profile;
  return [tenantStrength, bindsEnv ? 1 : 0, eqCount, literalChars, -anyCel];
}

export function compareSpecificity(a: Specificity, b: Specificity): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return 0;
}

/**
 * Validates and compiles a role document for its registration. Throws PolicyValidationError
 * (code `role_invalid`, `tenant_binding_missing` or `pins_required`).
 */
export function compileRole(input: unknown, registration: PolicyRegistration | undefined, options: { requireTenantBinding?: boolean } = {}): CompiledRole {
  const parsed = roleSchema.safeParse(input);
  if (!parsed.success) throw new PolicyValidationError('role', zodMessage(parsed.error));
  const document = parsed.data as RoleDocument;
  if (!registration) throw new PolicyValidationError('issuer', `unknown issuer registration ${JSON.stringify(document.issuer)}: register the issuer first`, 'issuer_unknown');
  if (registration.id !== document.issuer) throw new PolicyValidationError('issuer', 'role issuer does not name this registration');
  const profile = policyProfile(registration.profile);
  const origin: Dialect = document.origin ?? 'native';
  const when = compileNode(document.when, 'when', profile, origin);
  const deny = (document.deny ?? []).map((d, i) => compileNode(d, `deny[${i}]`, profile, origin));
  const conj = topLevelConjuncts(when);
  const tenantStrength = Math.max(0, ...conj.map((c) => conjunctStrength(c, profile)));
  if ((options.requireTenantBinding ?? true) && registration.shared && tenantStrength === 0) {
    throw new PolicyValidationError(
      'when',
      `issuer ${registration.id} is shared by many tenants: add a top-level condition that binds your ${Object.keys(profile.tenantExact).join(' / ') || 'tenant claims'} (eq/in, or a prefix ending in "/")`,
      'tenant_binding_missing',
    );
  }
  const pinning = document.pinning ?? 'tofu';
  if (pinning === 'off' && registration.shared) throw new PolicyValidationError('pinning', 'pinning "off" is allowed only on non-shared issuers: use "tofu" or "explicit"');
  // Pins need one exact owner/project, so only single-valued exact bindings call for them.
  const pinReq: PinRequirement = { owner: false, project: false };
  if (profile.pins && pinning !== 'off') {
    for (const c of conj) {
      const v = exactSingle(c);
      if (v === null || c.type !== 'leaf') continue;
      const claim = leafBase(c) as string;
      if (claim === 'sub') {
        const s = profile.subTenantStrength(v, true);
        if (s === 3) {
          pinReq.owner = true;
          pinReq.project = true;
        }
        continue;
      }
      if (profile.pinOwnerWhenBound.includes(claim)) pinReq.owner = true;
      if (profile.pinProjectWhenBound.includes(claim)) pinReq.project = true;
    }
  }
  const lints: Lint[] = [];
  walk(when, (n) => lints.push(...lintNode(n, profile, registration)));
  for (const d of deny) walk(d, (n) => lints.push(...lintNode(n, profile, registration)));
  if (registration.shared && tenantStrength > 0) {
    const onlySub = conj.every((c) => conjunctStrength(c, profile) === 0 || (c.type === 'leaf' && leafBase(c) === 'sub'));
    if (onlySub) lints.push({ code: 'sub-only-binding', path: 'when', message: 'the only tenant binding is sub: bind project_id/namespace_id (or paths) instead; sub formats change (policy.md §9)' });
  }
  if (profile.pins && pinning !== 'off') {
    const bindsPathLoosely = conj.some((c) => c.type === 'leaf' && profile.pinOwnerWhenBound.includes(leafBase(c) ?? '') && exactSingle(c) === null && conjunctStrength(c, profile) > 0);
    if (bindsPathLoosely && !pinReq.owner) lints.push({ code: 'pin-unavailable', path: 'when', message: 'a prefix or multi-value path binding cannot be ID-pinned: bind namespace_id / repository_owner_id explicitly to defeat resurrection' });
  }
  if (pinning === 'explicit') {
    const pins = document.pins ?? {};
    const missing: string[] = [];
    if (pinReq.owner && profile.pins && !(pins as Record<string, string>)[profile.pins.owner]) missing.push(profile.pins.owner);
    if (pinReq.project && profile.pins && !(pins as Record<string, string>)[profile.pins.project]) missing.push(profile.pins.project);
    if (missing.length) throw new PolicyValidationError('pins', `pinning "explicit" needs ${missing.join(' and ')}: resolve them from the provider API`, 'pins_required');
  }
  if (document.claimMappings) {
    const targets = new Set<string>();
    for (const [claim, key] of Object.entries(document.claimMappings)) {
      if (key === 'role') throw new PolicyValidationError(`claimMappings.${claim}`, '"role" is a reserved metadata key');
      if (targets.has(key)) throw new PolicyValidationError(`claimMappings.${claim}`, `two claims map to metadata key "${key}"`);
      targets.add(key);
      const kind = profile.kindOf(claim);
      if (!['string', 'path', 'id'].includes(kind)) throw new PolicyValidationError(`claimMappings.${claim}`, `claim ${claim} is not a string claim (${kind}): only string claims can be mapped`);
    }
  }
  const indexKeys = new Map<string, string[]>();
  const exactSubs: string[] = [];
  for (const c of conj) {
    if (c.type !== 'leaf' || c.onMissing === 'true' || (c.op !== 'eq' && c.op !== 'in') || c.dialect !== 'native') continue;
    const claim = leafBase(c);
    if (claim === null || c.ref.kind !== 'name') continue;
    if (claim === 'sub') exactSubs.push(...c.literals.filter((l): l is string => typeof l === 'string'));
    if (profile.tenantExact[claim] !== undefined && c.literals.every((l) => typeof l === 'string')) indexKeys.set(claim, c.literals as string[]);
  }
  const specificity = specificityOf(when, profile, tenantStrength);
  return { document, profile, when, deny, tenantStrength, specificity, pinRequirement: pinReq, lints, indexKeys, exactSubs };
}

/** The pins a role document declares, restricted to the profile's pin claims. */
export function explicitPins(doc: RoleDocument): RolePins {
  return { ...(doc.pins ?? {}) };
}

export { PolicyValidationError };
export { policyProfile };
