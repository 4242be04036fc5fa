import { z } from 'zod';
import { SIGNING_ALGS } from '../jose/keys.ts';
import { isCiOidcError } from '../server/errors.ts';
import { assertHierarchySavable, type ClaimLevel } from './custom-claims.ts';
import { findLockedOverride, subTemplateProblems } from './sub.ts';

const ID = /^[1-9][0-9]{0,19}$/;
const FULL_PATH = /^[A-Za-z0-9_.][A-Za-z0-9_.+-]*(\/[A-Za-z0-9_.][A-Za-z0-9_.+-]*)*$/;

const claimDefinition = z.strictObject({
  name: z.string().min(1).max(256),
  value: z.unknown(),
  mutable: z.boolean().default(false),
});

const subTemplate = z.strictObject({
  components: z.array(z.string()).min(1).max(8),
  locked: z.boolean().default(false),
});

const levelShape = {
  subTemplate: subTemplate.optional(),
  claims: z.array(claimDefinition).max(20).default([]),
  /** On-demand minting and the GitHub-compatible request URL for every job below this level. */
  idTokensOnDemand: z.boolean().optional(),
  /** Audiences on-demand minting may use besides those the job's id_tokens declare. */
  allowedAudiences: z.array(z.string().min(1).max(512)).max(50).optional(),
  /** On-demand minting may use any audience. */
  anyAudience: z.boolean().optional(),
  /** Emit the legacy CI_JOB_JWT (v1) and CI_JOB_JWT_V2 for jobs without id_tokens (migration only). */
  legacyJobJwt: z.boolean().optional(),
  /** Emit `groups_direct` (when the user is a direct member of at most 200 groups). */
  groupsDirect: z.boolean().optional(),
  /** `github`: the same facts under GitHub Actions claim names and GitHub's default `sub` (issuer.md §9.4). */
  claimProfile: z.enum(['gitlab', 'github']).optional(),
};

const groupSettings = z.strictObject(levelShape);
const projectSettings = z.strictObject({
  ...levelShape,
  /** Pins the settings to this project ID: a different project at the same path gets none (fail closed). */
  id: z.string().regex(ID, 'must be a decimal project ID').optional(),
  algorithm: z.enum(SIGNING_ALGS).optional(),
});

const ciSystem = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be a short lowercase name'),
    /** SHA-256 (hex) of the credential; preferred: the secret itself never sits in the file. */
    tokenSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters').optional(),
    /** Name of an environment variable holding the credential. */
    tokenEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional(),
    /** Top-level namespaces (or full paths) this CI system may register jobs for; empty: any. */
    namespaces: z.array(z.string().regex(FULL_PATH)).default([]),
  })
  .refine((s) => (s.tokenSha256 === undefined) !== (s.tokenEnv === undefined), {
    message: 'set exactly one of tokenSha256 (sha256 of the credential, hex) or tokenEnv (an environment variable holding it)',
  });

const urlWithoutSlash = z
  .url({ protocol: /^https?$/ })
  .refine((u) => !u.endsWith('/'), { message: 'must not end with "/": it is compared byte for byte with iss' })
  .refine((u) => {
    const parsed = new URL(u);
    return !parsed.search && !parsed.hash && !parsed.username && !parsed.password && !u.includes('?') && !u.includes('#');
  }, { message: 'must not have a query, fragment or userinfo' })
  .refine((u) => {
    const parsed = new URL(u);
    return parsed.protocol === 'https:' || ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname);
  }, { message: 'must be https (plain http only on loopback, for development)' });

export const issuerConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** `iss` of every token and the discovery `issuer`. Default: the server's public URL. */
    issuerUrl: urlWithoutSlash.optional(),
    /** The CI instance URL: legacy V2 `aud`, GitHub-mode default audience. Default: issuerUrl. */
    instanceUrl: urlWithoutSlash.optional(),
    /** Host written into `ci_config_ref_uri`. Default: CI_SERVER_HOST, else the instance URL's host. */
    instanceHost: z.string().regex(/^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$/).optional(),
    /** Enabled signing algorithms; the first signs unless a project picks another. */
    algorithms: z.array(z.enum(SIGNING_ALGS)).min(1).max(3).default(['RS256']),
    rsaBits: z.union([z.literal(2048), z.literal(3072)]).default(2048),
    /** Upper bound of every token lifetime, seconds (`max_id_token_lifetime`). */
    maxIdTokenLifetime: z.number().int().min(60).max(604800).default(86400),
    /** Lifetime when the job has no timeout (GitLab: 300). */
    defaultLifetime: z.number().int().min(60).max(86400).default(300),
    /** Default lifetime of on-demand tokens. */
    onDemandLifetime: z.number().int().min(60).max(86400).default(300),
    /** On-demand tokens per job per minute. */
    onDemandRateLimit: z.number().int().min(1).max(10000).default(100),
    rotation: z
      .strictObject({
        periodDays: z.number().int().min(3).max(3650).default(90),
        prePublishHours: z.number().int().min(48).max(24 * 60).default(48),
        retentionGraceHours: z.number().int().min(24).max(24 * 60).default(24),
        checkIntervalSeconds: z.number().int().min(10).max(86400).default(300),
      })
      .prefault({}),
    /** GitLab's reclaimed-path guard (issuer.md §3). */
    blockJwtForReclaimedPaths: z.boolean().default(true),
    subTemplate: subTemplate.optional(),
    claims: z.array(claimDefinition).max(20).default([]),
    idTokensOnDemand: z.boolean().default(false),
    legacyJobJwt: z.boolean().default(false),
    claimProfile: z.enum(['gitlab', 'github']).default('gitlab'),
    groups: z.record(z.string().regex(FULL_PATH, 'group keys are full paths such as acme/platform'), groupSettings).default({}),
    projects: z.record(z.string().regex(FULL_PATH, 'project keys are full paths such as acme/platform/api'), projectSettings).default({}),
    ciSystems: z.array(ciSystem).max(50).default([]),
  })
  .superRefine((cfg, ctx) => {
    const templates: [string, { components: string[] } | undefined][] = [
      ['issuer.subTemplate', cfg.subTemplate],
      ...Object.entries(cfg.groups).map(([p, g]) => [`issuer.groups.${p}.subTemplate`, g.subTemplate] as [string, { components: string[] } | undefined]),
      ...Object.entries(cfg.projects).map(([p, g]) => [`issuer.projects.${p}.subTemplate`, g.subTemplate] as [string, { components: string[] } | undefined]),
    ];
    for (const [key, t] of templates) {
      if (!t) continue;
      for (const problem of subTemplateProblems(t.components)) ctx.addIssue({ code: 'custom', message: `sub_template_invalid: ${key}: ${problem}` });
    }
    const names = new Set(cfg.ciSystems.map((s) => s.name));
    if (names.size !== cfg.ciSystems.length) ctx.addIssue({ code: 'custom', path: ['ciSystems'], message: 'ciSystems names must be unique' });
    for (const [path, kind] of [...Object.keys(cfg.groups).map((p) => [p, 'group'] as const), ...Object.keys(cfg.projects).map((p) => [p, 'project'] as const)]) {
      const chain = settingsChain(cfg, path, kind);
      const locked = findLockedOverride(chain.map((l) => ({ level: l.level, template: l.settings.subTemplate })));
      if (locked) {
        ctx.addIssue({ code: 'custom', message: `sub_template_locked: ${locked.level} sets a sub template, but ${locked.lockedBy} locked it; remove the override or unlock it at ${locked.lockedBy}` });
      }
      try {
        assertHierarchySavable(chain.map((l): ClaimLevel => ({ level: l.level, definitions: l.settings.claims })));
      } catch (err) {
        if (isCiOidcError(err)) ctx.addIssue({ code: 'custom', message: `${err.code}: ${err.message}` });
        else throw err;
      }
    }
  });

export type IssuerConfig = z.infer<typeof issuerConfigSchema>;
export type IssuerConfigInput = z.input<typeof issuerConfigSchema>;
export type GroupSettings = z.infer<typeof groupSettings>;
export type ProjectSettingsConfig = z.infer<typeof projectSettings>;
export type CiSystemConfig = z.infer<typeof ciSystem>;

export interface SettingsLevel {
  level: string;
  settings: Partial<GroupSettings> & Partial<ProjectSettingsConfig> & { claims: GroupSettings['claims'] };
}

/** Ancestor group paths of a project or group path, top first: a/b/c -> [a, a/b]. */
export function ancestorPaths(path: string): string[] {
  const parts = path.split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

/** instance -> each configured ancestor group -> the group or project itself. */
export function settingsChain(cfg: IssuerConfig, path: string, kind: 'group' | 'project'): SettingsLevel[] {
  const chain: SettingsLevel[] = [
    { level: 'instance', settings: { claims: cfg.claims, ...(cfg.subTemplate ? { subTemplate: cfg.subTemplate } : {}) } },
  ];
  for (const g of ancestorPaths(path)) {
    const s = cfg.groups[g];
    if (s) chain.push({ level: `group ${g}`, settings: s });
  }
  const own = kind === 'group' ? cfg.groups[path] : cfg.projects[path];
  if (own) chain.push({ level: `${kind} ${path}`, settings: own });
  return chain;
}
