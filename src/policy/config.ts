import { z } from 'zod';

/** The `policy:` section of ci-oidc.yaml. */
export const policyConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /**
   * How long a replica serves decisions from its in-memory index before re-reading the store's
   * generation counter (seconds). Writes made through this replica apply at once.
   */
  maxStaleSeconds: z.number().int().min(0).max(300).default(5),
  /** Remove expired pending publishers this often (seconds); 0 disables the sweep. */
  pendingSweepSeconds: z.number().int().min(0).max(86_400).default(3600),
});

export type PolicyConfig = z.infer<typeof policyConfigSchema>;
