import { z } from 'zod';

/** The `policy:` section of ci-oidc.yaml. */
export const policyConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
});

export type PolicyConfig = z.infer<typeof policyConfigSchema>;
