import { z } from 'zod';

/** The `verifier:` section of ci-oidc.yaml. */
export const verifierConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
});

export type VerifierConfig = z.infer<typeof verifierConfigSchema>;
