/**
 * AWS IAM trust policy import (policy.md §11.2): `sts:AssumeRoleWithWebIdentity` statements from an
 * OIDC provider, condition operators with AWS's exact semantics (including the pitfalls, with lints).
 */
import { GITHUB_CLAIM_TYPES } from '../../providers/github.ts';
import type { LeafNode, Lint, PolicyNode, RoleDocument } from '../types.ts';
import { all, asObject, ImportError, roleName, type ImportContext, type ImportResult } from './common.ts';

/** Keys AWS puts in the condition context for any OIDC provider. */
const GENERIC_KEYS = new Set(['aud', 'sub', 'azp', 'amr', 'oaud', 'email']);
/** Providers with their own keys since 2026-01 (GitHub, Google, CircleCI, OCI); we know GitHub's. */
const PROVIDER_KEYS: Record<string, ReadonlySet<string>> = {
  'token.actions.githubusercontent.com': new Set(Object.keys(GITHUB_CLAIM_TYPES)),
};

const STRING_OPS = ['StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike'];

function providerOf(federated: unknown): string {
  const arns = Array.isArray(federated) ? federated : [federated];
  const arn = arns.find((a) => typeof a === 'string' && /^arn:aws[\w-]*:iam::\d{12}:oidc-provider\/.+/.test(a));
  if (typeof arn !== 'string') throw new ImportError('Principal.Federated must be an arn:aws:iam::<account>:oidc-provider/<host/path> ARN');
  return arn.slice(arn.indexOf('oidc-provider/') + 'oidc-provider/'.length);
}

function values(v: unknown, key: string): string[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.some((x) => typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean')) throw new ImportError(`condition values for ${key} must be strings`);
  return list.map(String);
}

function conditionNodes(condition: Record<string, unknown>, provider: string | null, ctx: ImportContext, lints: Lint[], path: string): { nodes: PolicyNode[]; audiences: string[] } {
  const nodes: PolicyNode[] = [];
  const audiences: string[] = [];
  for (const [rawOp, block] of Object.entries(condition)) {
    let op = rawOp;
    let setOp: 'any' | 'all' | null = null;
    if (/^ForAnyValue:/i.test(op)) {
      setOp = 'any';
      op = op.slice('ForAnyValue:'.length);
    } else if (/^ForAllValues:/i.test(op)) {
      setOp = 'all';
      op = op.slice('ForAllValues:'.length);
    }
    let ifExists = false;
    if (op.endsWith('IfExists')) {
      ifExists = true;
      op = op.slice(0, -'IfExists'.length);
    }
    const entries = Object.entries(asObject(block, `Condition.${rawOp}`));
    for (const [rawKey, rawVal] of entries) {
      const colon = rawKey.lastIndexOf(':');
      if (colon <= 0) throw new ImportError(`condition key ${rawKey} must be <provider>:<claim>`);
      const keyProvider = rawKey.slice(0, colon).toLowerCase();
      const claim = rawKey.slice(colon + 1).toLowerCase();
      if (provider !== null && keyProvider !== provider.toLowerCase()) throw new ImportError(`condition key ${rawKey} names another provider than the statement's principal (${provider})`);
      const known = GENERIC_KEYS.has(claim) || PROVIDER_KEYS[keyProvider]?.has(claim);
      if (!known && !ctx.extendedClaimKeys) throw new ImportError(`condition key ${rawKey}: claim "${claim}" is not available for this provider in AWS's condition context (only aud, sub and a few more); set extendedClaimKeys to import it anyway`);
      const keyPath = `${path}.${rawOp}.${rawKey}`;
      if (op === 'Null') {
        const v = values(rawVal, rawKey)[0];
        nodes.push({ claim, exists: v === 'false' });
        continue;
      }
      if (!STRING_OPS.includes(op)) throw new ImportError(`condition operator ${rawOp} is not supported for OIDC claims: use the String* operators or Null`);
      const vals = values(rawVal, rawKey);
      const negated = op.includes('Not');
      const like = op.endsWith('Like');
      const ignoreCase = op.endsWith('IgnoreCase');
      const leaf: LeafNode = like ? { claim, glob: vals, dialect: 'aws' } : { claim, in: vals, dialect: 'aws', ...(ignoreCase ? { ignoreCase: true } : {}) };
      if (setOp === 'any') {
        leaf.quantifier = 'any';
        leaf.onMissing = 'false';
      } else if (setOp === 'all') {
        leaf.quantifier = 'all';
        leaf.onMissing = 'true';
        leaf.emptyListTrue = true;
      }
      if (ifExists) leaf.onMissing = 'true';
      if (!like && vals.some((v) => /[*?]/.test(v))) lints.push({ code: 'stringequals-with-wildcard', path: keyPath, message: `${rawOp} compares literally: "*" and "?" are not wildcards here (use StringLike)` });
      if (negated) {
        // AWS: a negated operator is true when the key is missing.
        nodes.push({ not: { ...leaf, onMissing: setOp === 'all' ? 'true' : 'false' } });
        lints.push({ code: 'negated-missing-true', path: keyPath, message: `${rawOp} is true when ${claim} is missing from the token` });
      } else {
        nodes.push(leaf);
      }
      if (ifExists) lints.push({ code: 'negated-missing-true', path: keyPath, message: `${rawOp} is true when ${claim} is missing from the token` });
      if (setOp === 'all') lints.push({ code: 'forallvalues-vacuous', path: keyPath, message: `ForAllValues is true when ${claim} is absent or empty` });
      if (claim === 'aud' && !negated && !like && setOp !== 'all') audiences.push(...vals);
    }
  }
  return { nodes, audiences };
}

export function importAws(source: unknown, ctx: ImportContext): ImportResult {
  const doc = asObject(source, 'AWS trust policy');
  const lints: Lint[] = [];
  // Condition-only input: {"StringEquals": {...}, ...} or {"Condition": {...}}.
  if (!('Statement' in doc) && !('Effect' in doc)) {
    const condition = asObject('Condition' in doc ? doc.Condition : doc, 'Condition');
    const { nodes, audiences } = conditionNodes(condition, null, ctx, lints, 'Condition');
    const auds = audiences.length ? audiences : ctx.serviceAudience ? [ctx.serviceAudience] : [];
    if (!auds.length) throw new ImportError('no audience: add a StringEquals condition on <provider>:aud or pass --service-audience');
    return { roles: [{ name: roleName(ctx, 'aws'), issuer: ctx.registrationId, audiences: auds, when: all(nodes), origin: 'aws', ...(ctx.extendedClaimKeys ? { extendedClaimKeys: true } : {}) }], lints };
  }
  const statements = 'Statement' in doc ? (Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement]) : [doc];
  const allows: { nodes: PolicyNode[]; audiences: string[]; provider: string }[] = [];
  const denies: { nodes: PolicyNode[]; provider: string }[] = [];
  statements.forEach((raw, i) => {
    const st = asObject(raw, `Statement[${i}]`);
    const actions = Array.isArray(st.Action) ? st.Action : [st.Action];
    if (!actions.some((a) => typeof a === 'string' && /^sts:(AssumeRoleWithWebIdentity|\*)$/i.test(a))) return;
    const principal = asObject(st.Principal, `Statement[${i}].Principal`);
    const provider = providerOf(principal.Federated);
    const cond = st.Condition === undefined ? {} : asObject(st.Condition, `Statement[${i}].Condition`);
    const { nodes, audiences } = conditionNodes(cond, provider, ctx, lints, `Statement[${i}].Condition`);
    if (st.Effect === 'Deny') denies.push({ nodes, provider });
    else if (st.Effect === 'Allow') allows.push({ nodes, audiences, provider });
    else throw new ImportError(`Statement[${i}].Effect must be Allow or Deny`);
  });
  if (allows.length === 0) throw new ImportError('no Allow statement for sts:AssumeRoleWithWebIdentity with a Federated OIDC principal');
  if (ctx.issuerUrl !== undefined) {
    for (const a of allows) if (`https://${a.provider}` !== ctx.issuerUrl) throw new ImportError(`the trust policy's provider https://${a.provider} is not this registration's issuer ${ctx.issuerUrl}`);
  }
  // A Deny without conditions denies every request.
  const deny: PolicyNode[] = denies.filter((d) => ctx.issuerUrl === undefined || `https://${d.provider}` === ctx.issuerUrl).map((d) => (d.nodes.length ? all(d.nodes) : { cel: 'true' }));
  const roles: RoleDocument[] = allows.map((a, i) => {
    const auds = a.audiences.length ? [...new Set(a.audiences)] : ctx.serviceAudience ? [ctx.serviceAudience] : [];
    if (!auds.length) throw new ImportError(`Statement ${i + 1} does not constrain <provider>:aud: give the provider's client ID list with --service-audience`);
    return {
      name: roleName(ctx, 'aws', allows.length > 1 ? i : undefined),
      issuer: ctx.registrationId,
      audiences: auds.slice(0, 10),
      when: all(a.nodes.length ? a.nodes : [{ claim: 'aud', in: auds, dialect: 'aws' }]),
      ...(deny.length ? { deny } : {}),
      origin: 'aws',
      ...(ctx.extendedClaimKeys ? { extendedClaimKeys: true } : {}),
    };
  });
  return { roles, lints };
}
