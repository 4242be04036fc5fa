import { z } from 'zod';
import { VERIFY_ALGS } from '../jose/verify-signature.ts';
import type { IssuerRegistrationInput, KeySourceInput } from './types.ts';

const PROFILE_NAMES = ['gitlab', 'github', 'buildkite', 'circleci', 'forgejo', 'ci-oidc', 'generic'] as const;

const keysSchema = z.union([
  z.literal('discovery'),
  z.strictObject({ jwksUri: z.url({ protocol: /^https?$/ }) }),
  /** Air-gapped: a JWKS document inline… */
  z.strictObject({ staticJwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).max(50) }) }),
  /** …or in a file read at start-up. */
  z.strictObject({ staticJwksFile: z.string().min(1) }),
]);

/** One trusted issuer (verification.md §2), registered by its exact `iss`. */
export const issuerRegistrationSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/, 'an id is 1-200 letters, digits and ._:/-'),
  /** Exact `iss`, byte for byte: scheme, host case, port and trailing slash all matter. No wildcards. */
  issuer: z.string().min(1).max(2048),
  profile: z.enum(PROFILE_NAMES).default('generic'),
  /** Owner of a user-registered issuer; absent = built-in. */
  tenant: z.string().min(1).max(200).nullable().default(null),
  shared: z.boolean().optional(),
  keys: keysSchema.default('discovery'),
  /** Extra TLS root for this registration only, as PEM text or a file. */
  caCertPem: z.string().min(1).optional(),
  caCertFile: z.string().min(1).optional(),
  algorithms: z.array(z.enum(VERIFY_ALGS)).min(1).default(['RS256']),
  leeway: z.number().int().min(0).max(60).default(30),
  maxLifetime: z.number().int().min(1).max(604800).default(86400),
  requireJti: z.boolean().optional(),
  instanceHost: z.string().min(1).max(253).optional(),
  jwksHostAllowlist: z.array(z.string().min(1).max(253)).max(16).default([]),
  /** TEST ONLY: http and loopback addresses for this registration. Never in production. */
  allowInsecureLoopback: z.boolean().default(false),
});

export type IssuerRegistrationConfig = z.infer<typeof issuerRegistrationSchema>;

/**
 * A registration sent to `POST /admin/v1/issuers`: the config entry's shape without the file forms
 * (`staticJwksFile`, `caCertFile`), which would let an API caller read files on the server.
 */
export const adminIssuerRegistrationSchema = issuerRegistrationSchema.omit({ caCertFile: true }).extend({
  keys: z
    .union([
      z.literal('discovery'),
      z.strictObject({ jwksUri: z.url({ protocol: /^https?$/ }) }),
      z.strictObject({ staticJwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).max(50) }) }),
    ])
    .default('discovery'),
});

export type AdminIssuerRegistration = z.infer<typeof adminIssuerRegistrationSchema>;

/** The `verifier:` section of ci-oidc.yaml. */
export const verifierConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Built-in registrations (verification.md §2). */
  presets: z
    .strictObject({
      gitlabCom: z.boolean().default(true),
      githubActions: z.boolean().default(true),
      buildkite: z.boolean().default(false),
    })
    .prefault({}),
  /** Self-managed GitLab, GHEC/GHES, CircleCI orgs, Forgejo, generic issuers: each by its exact URL. */
  issuers: z.array(issuerRegistrationSchema).max(500).default([]),
  /** Audiences accepted by `ci-oidc verify` when none is given, and by generic endpoints. */
  audiences: z.array(z.string().min(1).max(512)).max(10).default([]),
  /** Trust our own issuer's tokens (its keys are read in-process, never fetched). */
  trustOwnIssuer: z.boolean().default(true),
  /** Unknown-kid refetch cooldown in seconds (minimum 10). */
  kidMissCooldown: z.number().int().min(10).max(3600).default(30),
  /** Discovery/JWKS fetch rate limits: per registration id, and shared by all registrations. */
  fetchRateLimits: z
    .strictObject({
      perRegistration: z.strictObject({ burst: z.number().int().min(1).max(100).default(4), perMinute: z.number().min(0.1).max(600).default(4) }).prefault({}),
      global: z.strictObject({ burst: z.number().int().min(1).max(10000).default(64), perMinute: z.number().min(1).max(60000).default(120) }).prefault({}),
    })
    .prefault({}),
  maxTokenLength: z.number().int().min(1024).max(20000).default(20000),
  /** How often expired replay claims are deleted from the store. */
  replayPurgeIntervalSeconds: z.number().int().min(10).max(86400).default(300),
  /** How often each replica re-reads the issuers registered through the admin API (seconds). */
  registrationRefreshSeconds: z.number().int().min(1).max(300).default(10),
  /** TEST ONLY: lets admin-API registrations set allowInsecureLoopback (http and loopback URLs). */
  adminIssuersAllowInsecureLoopback: z.boolean().default(false),
});

export type VerifierConfig = z.infer<typeof verifierConfigSchema>;

/**
 * A configured or admin-registered issuer as a registry input; the caller resolves the key source and CA
 * certificate (files for config entries, inline values for the admin API).
 */
export function toRegistrationInput(
  c: Omit<IssuerRegistrationConfig, 'keys' | 'caCertPem' | 'caCertFile'>,
  keys: KeySourceInput,
  caCertPem: string | undefined,
): IssuerRegistrationInput {
  return {
    id: c.id,
    issuer: c.issuer,
    profile: c.profile,
    tenant: c.tenant,
    ...(c.shared === undefined ? {} : { shared: c.shared }),
    keys,
    ...(caCertPem === undefined ? {} : { caCertPem }),
    algorithms: c.algorithms,
    leeway: c.leeway,
    maxLifetime: c.maxLifetime,
    ...(c.requireJti === undefined ? {} : { requireJti: c.requireJti }),
    ...(c.instanceHost === undefined ? {} : { instanceHost: c.instanceHost }),
    jwksHostAllowlist: c.jwksHostAllowlist,
    allowInsecureLoopback: c.allowInsecureLoopback,
  };
}
