import { z } from 'zod';

/** The `issuer:` section of ci-oidc.yaml. */
export const issuerConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
});

export type IssuerConfig = z.infer<typeof issuerConfigSchema>;
