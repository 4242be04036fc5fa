import { z } from 'zod';

/** The `ca:` section of ci-oidc.yaml. */
export const caConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
});

export type CaConfig = z.infer<typeof caConfigSchema>;
