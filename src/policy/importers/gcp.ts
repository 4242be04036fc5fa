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
  // google.subject must map (no error) to at most 127 bytes, else GCP answers invalid_request.
  const subjectLimit: PolicyNode = { cel: `size(bytes(string(${mapping['google.subject']}))) <= 127` };
  const nodes: PolicyNode[] = [...extractEqLeaves(expr.replace(/\((assertion\.[A-Za-z_]\w*)\)/g, '$1'), 'assertion'), subjectLimit, { cel: expr }];
  const members = doc.members === undefined ? [undefined] : Array.isArray(doc.members) ? (doc.members as unknown[]) : [doc.members];
  if (members.length === 0 || members.length > 100) throw new ImportError('members must list 1 to 100 IAM principals');
  const roles = members.map((m, i) => {
    const extra = m === undefined ? [] : memberNodes(m, mapping);
    const all = [...extra, ...nodes];
    return { name: roleName(ctx, 'gcp', members.length > 1 ? i : undefined), issuer: ctx.registrationId, audiences, when: all.length === 1 ? (all[0] as PolicyNode) : { all }, origin: 'gcp' as const };
  });
  return { roles, lints: [] };
}

const celString = (v: string): string => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * One IAM principal (exact, no wildcards): `principal://…/subject/S`, `principalSet://…/group/G`,
 * `principalSet://…/attribute.NAME/V` or `principalSet://…/*` (the whole pool).
 */
function memberNodes(member: unknown, mapping: Record<string, string>): PolicyNode[] {
  if (typeof member !== 'string') throw new ImportError('members must be strings');
  const m = /^(principal|principalSet):\/\/iam\.googleapis\.com\/projects\/[^/]+\/locations\/global\/workloadIdentityPools\/[^/]+\/(.+)$/.exec(member);
  if (!m) throw new ImportError(`member ${member} is not a workload identity pool principal`);
  const rest = m[2] as string;
  const eqOn = (target: string, value: string): PolicyNode[] => {
    const expr = mapping[target];
    if (expr === undefined) throw new ImportError(`member ${member} uses ${target}, which attributeMapping does not map`);
    const direct = /^assertion\.([A-Za-z_]\w*)$/.exec(expr.trim());
    return direct ? [{ claim: direct[1] as string, eq: value, dialect: 'gcp' }] : [{ cel: `(${expr}) == ${celString(value)}` }];
  };
  if (m[1] === 'principal') {
    const sub = /^subject\/(.+)$/.exec(rest);
    if (!sub) throw new ImportError(`member ${member}: principal:// members name a subject`);
    return eqOn('google.subject', decodeURIComponent(sub[1] as string));
  }
  if (rest === '*') return [];
  const group = /^group\/(.+)$/.exec(rest);
  if (group) {
    const expr = mapping['google.groups'];
    if (!expr) throw new ImportError(`member ${member} uses google.groups, which attributeMapping does not map`);
    return [{ cel: `${celString(decodeURIComponent(group[1] as string))} in (${expr})` }];
  }
  const attr = /^attribute\.([a-z0-9_]+)\/(.+)$/.exec(rest);
  if (attr) return eqOn(`attribute.${attr[1]}`, decodeURIComponent(attr[2] as string));
  throw new ImportError(`member ${member} is not a subject, group, attribute or * principal set`);
}
