/**
 * GCP Workload Identity Federation provider import (policy.md §11.3): `attributeCondition` (CEL over
 * `assertion`, `google`, `attribute`) with `attributeMapping` substituted in, `oidc.allowedAudiences`.
 */
import type { PolicyNode } from '../types.ts';
import { asObject, extractEqLeaves, ImportError, roleName, type ImportContext, type ImportResult } from './common.ts';

/** Replaces `google.x` / `attribute.x` references (outside string literals) by their mapping expressions. */
export function substituteMappings(expr: string, mapping: Record<string, string>): string {
  let out = '';
  let quote: string | null = null;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i] as string;
    if (quote) {
      out += c;
      if (c === '\\') out += expr[++i] ?? '';
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      out += c;
      continue;
    }
    const m = /^(google|attribute)\.([a-z0-9_]+)/.exec(expr.slice(i));
    if (m && (i === 0 || !/[\w.]/.test(expr[i - 1] as string))) {
      const target = `${m[1]}.${m[2]}`;
      const repl = mapping[target];
      if (repl === undefined) throw new ImportError(`${target} is not in attributeMapping: GCP rejects the credential when the condition reads an unmapped attribute`);
      out += `(${repl})`;
      i += m[0].length - 1;
      continue;
    }
    out += c;
  }
  return out;
}

export function importGcp(source: unknown, ctx: ImportContext): ImportResult {
  const doc = typeof source === 'string' ? { attributeCondition: source } : asObject(source, 'GCP provider');
  const condition = doc.attributeCondition;
  if (typeof condition !== 'string' || condition.trim() === '') throw new ImportError('attributeCondition (a CEL expression) is required');
  if (condition.length > 4096) throw new ImportError('attributeCondition is longer than 4096 characters');
  const mapping: Record<string, string> = { 'google.subject': 'assertion.sub' };
  if (doc.attributeMapping !== undefined) {
    const m = asObject(doc.attributeMapping, 'attributeMapping');
    if (!('google.subject' in m)) throw new ImportError('attributeMapping must map google.subject');
    const attrs = Object.keys(m).filter((k) => k.startsWith('attribute.'));
    if (attrs.length > 50) throw new ImportError('at most 50 attribute.<name> mappings');
    for (const [k, v] of Object.entries(m)) {
      if (typeof v !== 'string' || v.length > 2048) throw new ImportError(`attributeMapping.${k} must be a CEL expression of at most 2048 characters`);
      if (!/^(google\.(subject|groups|display_name|posix_username)|attribute\.[a-z0-9_]{1,100})$/.test(k)) throw new ImportError(`attributeMapping key ${k} is not google.* or attribute.<[a-z0-9_]>`);
      mapping[k] = v;
    }
  }
  const oidc = doc.oidc === undefined ? {} : asObject(doc.oidc, 'oidc');
  let audiences = Array.isArray(oidc.allowedAudiences) ? (oidc.allowedAudiences as unknown[]).filter((a): a is string => typeof a === 'string') : [];
  if (audiences.length > 10) throw new ImportError('oidc.allowedAudiences holds at most 10 values');
  if (audiences.length === 0) {
    const name = typeof doc.name === 'string' ? doc.name : undefined;
    if (name && /^projects\/[^/]+\/locations\/global\/workloadIdentityPools\/[^/]+\/providers\/[^/]+$/.test(name)) {
      audiences = [`//iam.googleapis.com/${name}`, `https://iam.googleapis.com/${name}`];
    } else if (ctx.serviceAudience) audiences = [ctx.serviceAudience];
    else throw new ImportError('no allowedAudiences and no provider resource name: the default audience is //iam.googleapis.com/<provider name>; give "name" or --service-audience');
  }
  const expr = substituteMappings(condition, mapping);
  const nodes: PolicyNode[] = [...extractEqLeaves(expr.replace(/\((assertion\.[A-Za-z_]\w*)\)/g, '$1'), 'assertion'), { cel: expr }];
  return { roles: [{ name: roleName(ctx, 'gcp'), issuer: ctx.registrationId, audiences, when: nodes.length === 1 ? (nodes[0] as PolicyNode) : { all: nodes }, origin: 'gcp' }], lints: [] };
}
