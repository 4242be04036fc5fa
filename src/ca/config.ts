import { z } from 'zod';

/** Fulcio's `--client-signing-algorithms` names, all allowed by default. */
export const CLIENT_SIGNING_ALGORITHMS = [
  'ecdsa-sha2-256-nistp256',
  'ecdsa-sha2-384-nistp384',
  'ecdsa-sha2-512-nistp521',
  'rsa-sign-pkcs1-2048-sha256',
  'rsa-sign-pkcs1-3072-sha256',
  'rsa-sign-pkcs1-4096-sha256',
  'ed25519',
] as const;

const keysSchema = z
  .strictObject({
    /** `generate`: root + intermediate created on first start, sealed in the store. `pem`: external files. */
    source: z.enum(['generate', 'pem']).default('generate'),
    /** Curve for generated CA keys; P-384 as public Fulcio. P-256 signs ~30x faster on Node 20. */
    algorithm: z.enum(['P-256', 'P-384', 'P-521']).default('P-384'),
    organization: z.string().min(1).max(64).default('ci-oidc'),
    commonName: z.string().min(1).max(50).default('ci-oidc signing CA'),
    rootValidityDays: z.number().int().min(30).max(36500).default(3650),
    intermediateValidityDays: z.number().int().min(7).max(3650).default(365),
    /** The active intermediate is replaced at start when it has less than this left. */
    rotateBeforeDays: z.number().int().min(1).max(365).default(30),
    /** source=pem: the root certificate. */
    rootCertificateFile: z.string().optional(),
    /** source=pem: the issuing chain, leaf-most first (the intermediate that signs leaves). */
    chainFile: z.string().optional(),
    /** source=pem: unencrypted PKCS#8 PEM key of the first certificate in chainFile. */
    keyFile: z.string().optional(),
  })
  .superRefine((v, ctx) => {
    if (v.source !== 'pem') return;
    for (const k of ['rootCertificateFile', 'chainFile', 'keyFile'] as const) {
      if (!v[k]) ctx.addIssue({ code: 'custom', path: [k], message: `required when ca.keys.source is pem` });
    }
  });

/** The `ca:` section of ci-oidc.yaml. */
export const caConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Fulcio-format issuer configuration file (JSON or YAML, either key spelling). */
  issuerConfigFile: z.string().optional(),
  /** The same document inline. Without either: gitlab.com, GitHub Actions and our own issuer. */
  issuerConfig: z.record(z.string(), z.unknown()).optional(),
  /** Register our own issuer (ci-provider `ci-oidc`, challenge `sub`) when the issuer module runs. */
  includeOwnIssuer: z.boolean().default(true),
  keys: keysSchema.prefault({}),
  /** Omit extensions whose claims are missing instead of refusing (issuers may override). */
  lenientClaims: z.boolean().default(false),
  /** Fulcio's `--client-signing-algorithms`. */
  clientSigningAlgorithms: z.array(z.enum(CLIENT_SIGNING_ALGORITHMS)).min(1).default([...CLIENT_SIGNING_ALGORITHMS]),
  /** TEST ONLY: allow http/loopback issuer URLs for discovery. */
  allowInsecureLoopback: z.boolean().default(false),
});

export type CaConfig = z.infer<typeof caConfigSchema>;
