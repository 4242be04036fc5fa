/** The policy capability: builds the engine over the store and sweeps expired pending publishers. */
import type { CapabilityModule, ServerContext } from '../server/context.ts';
import { createPolicyEngine } from './engine.ts';
import type { PolicyConfig } from './config.ts';
import type { PolicyEngine, PolicyRegistration } from './types.ts';

export interface PolicyModule extends CapabilityModule {
  readonly engine: PolicyEngine;
}

export async function createPolicyModule(
  ctx: ServerContext,
  deps: { registrations: (id: string) => PolicyRegistration | undefined; config?: Partial<PolicyConfig> },
): Promise<PolicyModule> {
  const config = { maxStaleSeconds: 5, pendingSweepSeconds: 3600, ...((ctx.config as { policy?: Partial<PolicyConfig> }).policy ?? {}), ...(deps.config ?? {}) };
  const engine = await createPolicyEngine({
    store: ctx.store,
    registrations: deps.registrations,
    clock: ctx.clock,
    maxStaleSeconds: config.maxStaleSeconds,
    onLoadError: (role, message) => ctx.logger.warn({ role: role.name, tenant: role.tenant, roleId: role.id }, message),
    onDecision: (kind, d) => {
      // Operators get the trace in the log; never the raw token (only its summary is in the decision).
      ctx.logger.debug({ policy: kind, decision: d.decision, reason: d.reason, explain: d }, 'policy decision');
    },
  });
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    name: 'policy',
    engine,
    start() {
      if (config.pendingSweepSeconds > 0) {
        timer = setInterval(() => {
          engine
            .expirePendingPublishers()
            .then((rows) => {
              for (const r of rows) ctx.logger.info({ pending: r.id, project: r.projectName, addedBy: r.addedBy }, 'pending publisher expired');
            })
            .catch((err: unknown) => ctx.logger.warn({ err: (err as Error).message }, 'pending publisher sweep failed'));
        }, config.pendingSweepSeconds * 1000);
        timer.unref();
      }
    },
    async close() {
      if (timer) clearInterval(timer);
      await engine.close();
    },
  };
}
