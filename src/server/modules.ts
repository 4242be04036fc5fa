import { createBrokerModule } from '../broker/module.ts';
import { createCaModule } from '../ca/module.ts';
import { createIssuerModule, type IssuerModule } from '../issuer/module.ts';
import { createPolicyModule } from '../policy/module.ts';
import type { PolicyRegistration } from '../policy/types.ts';
import { createVerifierModule, type VerifierModule } from '../verifier/module.ts';
import type { CapabilityModule, ServerContext } from './context.ts';

/** The modules of one server, by name, for the CLI and the demo. */
export interface ServerModules {
  list: CapabilityModule[];
  issuer?: IssuerModule;
  verifier: VerifierModule;
  policy?: Awaited<ReturnType<typeof createPolicyModule>>;
  broker?: ReturnType<typeof createBrokerModule>;
  ca?: Awaited<ReturnType<typeof createCaModule>>;
}

/**
 * Builds the capability modules in dependency order: issuer, verifier, policy, broker, CA. The verifier
 * always exists (the broker and the CA rest on it); the others follow their config section's `enabled`.
 * Our own issuer reaches the verifier and the CA as keys passed in, never as an import.
 */
export async function buildModules(ctx: ServerContext): Promise<ServerModules> {
  const { config } = ctx;
  const list: CapabilityModule[] = [];
  const issuer = config.issuer.enabled ? await createIssuerModule(ctx) : undefined;
  if (issuer) list.push(issuer);
  const ownIssuer = issuer
    ? {
        get issuerUrl() {
          return issuer.issuerUrl;
        },
        jwks: () => issuer.jwks(),
        algorithms: config.issuer.algorithms,
        get instanceHost() {
          return issuer.core.instanceHost();
        },
      }
    : undefined;

  const verifier = createVerifierModule(ctx, ownIssuer ? { ownIssuer } : {});
  list.push(verifier);

  const out: ServerModules = { list, verifier, ...(issuer ? { issuer } : {}) };
  if (config.broker.enabled) {
    const registrations = (id: string): PolicyRegistration | undefined => {
      const r = verifier.verifier.registrations().find((x) => x.id === id);
      if (!r) return undefined;
      return { id: r.id, issuer: r.issuer, profile: r.profile, shared: r.shared, instanceHost: r.instanceHost, ...(r.tenant ? { tenant: r.tenant } : {}) };
    };
    const policy = await createPolicyModule(ctx, { registrations });
    list.push(policy);
    out.policy = policy;
    // Roles compile against registrations: recompile when an admin registration comes or goes.
    verifier.issuers.onChange(() => policy.engine.refresh());
    const issuers = {
      list: () => verifier.issuers.list(),
      register: (input: unknown, o?: { actor?: string }) => verifier.issuers.register(input, o),
      remove: (id: string) => verifier.issuers.remove(id),
    };
    const broker = createBrokerModule(ctx, {
      verifier: () => verifier.verifier,
      policy: policy.engine,
      ...(issuer
        ? {
            signer: {
              issuer: () => issuer.issuerUrl,
              sign: (payload: Record<string, unknown>, typ: string) => issuer.signJwt(payload, { typ }).token,
            },
            admin: {
              keys: { list: () => issuer.keys().map(publicKeyView), rotate: () => issuer.rotate() },
              issuers,
            },
          }
        : { admin: { issuers } }),
    });
    list.push(broker);
    out.broker = broker;
  }
  if (config.ca.enabled) {
    const ca = await createCaModule(ctx, ownIssuer ? { ownIssuer } : {});
    list.push(ca);
    out.ca = ca;
  }
  return out;
}

/** What the admin API shows of a signing key: never private material. */
function publicKeyView(record: object): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) {
    if (/private|sealed|secret/i.test(k)) continue;
    shown[k] = v;
  }
  return shown;
}
