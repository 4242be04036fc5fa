import { z } from 'zod';

const prefix = z
  .string()
  .regex(/^[a-z][a-z0-9]{1,15}[_-]$/, 'a credential prefix is 2-16 lowercase letters or digits ending in "_" or "-" (e.g. cioidc_ or pypi-)');

const audience = z.string().min(1).max(512);

/** The `broker:` section of ci-oidc.yaml. */
export const brokerConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Bearer token for /admin/v1 (secret: prefer CI_OIDC_ADMIN_TOKEN). At least 32 characters. */
  adminToken: z.string().min(32, 'broker.adminToken must be at least 32 characters; generate one with `openssl rand -hex 32`').optional(),
  /** Extra bearer secrets that resource servers present at /oauth/introspect (the admin token also works). */
  introspectionTokens: z.array(z.string().min(32)).max(32).default([]),
  credentials: z
    .strictObject({
      prefix: prefix.default('cioidc_'),
      /** Lifetime when the role sets none and the request asks for none (seconds). */
      defaultTtl: z.number().int().min(60).max(43200).default(900),
      /** Hard ceiling for any role (seconds). */
      maxTtl: z.number().int().min(60).max(43200).default(43200),
      /** Expired credentials are deleted this long after expiry (T§10 purge: one day). */
      purgeAfterSeconds: z.number().int().min(0).max(30 * 86400).default(86400),
    })
    .prefault({}),
  /** Audiences a role-based exchange accepts when the role names none of its own (e.g. this broker's URL). */
  audiences: z.array(audience).max(10).default([]),
  pypi: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** GET /_/oidc/audience answers this; it must be unique to this deployment. */
      audience: audience.default('pypi'),
      /** Prefix of minted upload tokens; `pypi-` when fronting a PyPI-compatible index. */
      prefix: prefix.optional(),
      /** Per-provider kill switches, e.g. ["github"] (PyPI `disallow-github-oidc`). */
      disabledProviders: z.array(z.string().min(1)).default([]),
      /** Per-registration kill switches (ours). */
      disabledRegistrations: z.array(z.string().min(1)).default([]),
      ttl: z.number().int().min(60).max(3600).default(900),
    })
    .prefault({}),
  oauth: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  vault: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Mount name → options. Only listed mounts answer. */
      mounts: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/), z.strictObject({ defaultRole: z.string().min(1).max(64).optional() })).default({ jwt: {} }),
    })
    .prefault({}),
  sts: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Account id shown in assumed-role ARNs when the role ARN has none. */
      accountId: z.string().regex(/^[0-9]{12}$/).default('000000000000'),
    })
    .prefault({}),
  /** SQLite only: write the mint transaction on prepared statements of a second connection (never waits; falls back when busy). */
  sqliteFastPath: z.boolean().default(true),
  rateLimit: z
    .strictObject({
      /** Requests per window per client address. */
      perClient: z.number().int().min(1).max(1_000_000).default(600),
      /** Verified requests per window per issuer registration. */
      perIssuer: z.number().int().min(1).max(10_000_000).default(600),
      windowSeconds: z.number().int().min(1).max(3600).default(60),
      /**
       * `store`: one upsert per request, exact across replicas. `synced`: counters shared through the store
       * once a second per replica (other replicas' hits seen up to 1 s late). `auto`: synced on PostgreSQL,
       * memory on SQLite (one process).
       */
      backend: z.enum(['auto', 'memory', 'store', 'synced']).default('auto'),
    })
    .prefault({}),
});

export type BrokerConfig = z.infer<typeof brokerConfigSchema>;
