/**
 * octo-sts trust policy import (policy.md §11.5): `issuer`/`subject`/`audience`, their `_pattern`
 * forms compiled as `^` + P + `$` (the alternation trap kept and linted), and `claim_pattern`.
 */
import { hasTopLevelAlternation } from '../regex.ts';
import type { Lint, PolicyNode } from '../types.ts';
import { asObject, ImportError, roleName, type ImportContext, type ImportResult } from './common.ts';

const FIELDS = ['issuer', 'issuer_pattern', 'subject', 'subject_pattern', 'audience', 'audience_pattern', 'claim_pattern', 'permissions', 'repositories'];

/** `pkg/oidcvalidate` subject rules, enforced at run time. */
const SUBJECT_OK = '[^\\s\\x00-\\x1f\\x7f"\'`\\\\<>;&$(){}\\[\\]]{1,255}';

function exactlyOne(doc: Record<string, unknown>, a: string, b: string, required: boolean): void {
  const has = (k: string) => doc[k] !== undefined && doc[k] !== '';
  if (has(a) && has(b)) throw new ImportError(`${a} and ${b} are mutually exclusive`);
  if (required && !has(a) && !has(b)) throw new ImportError(`one of ${a} or ${b} is required`);
}

function patternLints(p: string, path: string, lints: Lint[]): void {
  if (hasTopLevelAlternation(p)) {
    lints.push({ code: 'octo-sts-alternation', path, message: `octo-sts compiles ^${p}$, so only the first alternative is anchored at the start and the last at the end: '${p}' also matches e.g. '${p.split('|')[0]}-evil'. Write (${p})` });
  }
}

/** Fulcio-style issuer wildcard check: literal text plus [-_a-zA-Z0-9]+ (policy.md §6 "Issuer patterns"). */
function issuerPatternOk(p: string): boolean {
  return /^(?:[A-Za-z0-9:/_-]|\\\.)*$/.test(p.split('[-_a-zA-Z0-9]+').join(''));
}

export function importOctoSts(source: unknown, ctx: ImportContext): ImportResult {
  const doc = asObject(source, 'octo-sts trust policy');
  const lints: Lint[] = [];
  const conditionOnly = !FIELDS.slice(0, 6).some((f) => f in doc);
  const claimPattern = conditionOnly ? doc : doc.claim_pattern === undefined ? {} : asObject(doc.claim_pattern, 'claim_pattern');
  for (const k of Object.keys(doc)) if (!conditionOnly && !FIELDS.includes(k)) throw new ImportError(`unknown trust policy field "${k}"`);
  const nodes: PolicyNode[] = [];
  let audienceFromToken = false;
  let audiences: string[];
  if (!conditionOnly) {
    exactlyOne(doc, 'issuer', 'issuer_pattern', true);
    exactlyOne(doc, 'subject', 'subject_pattern', true);
    exactlyOne(doc, 'audience', 'audience_pattern', false);
    if (typeof doc.issuer === 'string') {
      if (ctx.issuerUrl !== undefined && doc.issuer !== ctx.issuerUrl) throw new ImportError(`issuer ${doc.issuer} is not this registration's issuer ${ctx.issuerUrl} (exact, a trailing slash is a different issuer)`);
    } else {
      const p = String(doc.issuer_pattern);
      if (!issuerPatternOk(p)) throw new ImportError(`issuer_pattern ${JSON.stringify(p)} cannot be rewritten as a literal plus [-_a-zA-Z0-9]+ wildcards: register each issuer instead`);
      nodes.push({ claim: 'iss', regex: p, dialect: 'octo-sts' });
    }
    if (typeof doc.subject === 'string') nodes.push({ claim: 'sub', in: [doc.subject], dialect: 'octo-sts' });
    else {
      const p = String(doc.subject_pattern);
      patternLints(p, 'subject_pattern', lints);
      nodes.push({ claim: 'sub', regex: p, dialect: 'octo-sts' });
    }
    nodes.push({ claim: 'sub', regex: SUBJECT_OK, dialect: 'native' });
    if (typeof doc.audience === 'string') {
      audiences = [doc.audience];
      nodes.push({ claim: 'aud', in: [doc.audience], dialect: 'octo-sts', quantifier: 'any' });
    } else if (typeof doc.audience_pattern === 'string') {
      patternLints(doc.audience_pattern, 'audience_pattern', lints);
      nodes.push({ claim: 'aud', regex: doc.audience_pattern, dialect: 'octo-sts', quantifier: 'any' });
      audienceFromToken = true;
      audiences = ctx.serviceAudience ? [ctx.serviceAudience] : [];
    } else {
      if (!ctx.serviceAudience) throw new ImportError('the policy names no audience, so the token must carry the service domain: pass --service-audience');
      audiences = [ctx.serviceAudience];
      nodes.push({ claim: 'aud', in: [ctx.serviceAudience], dialect: 'octo-sts', quantifier: 'any' });
    }
  } else {
    if (!ctx.serviceAudience) throw new ImportError('a claim_pattern map alone has no audience: pass --service-audience');
    audiences = [ctx.serviceAudience];
  }
  for (const [claim, p] of Object.entries(claimPattern)) {
    if (typeof p !== 'string') throw new ImportError(`claim_pattern.${claim} must be a regex string`);
    patternLints(p, `claim_pattern.${claim}`, lints);
    nodes.push({ claim, regex: p, dialect: 'octo-sts', quantifier: 'any' });
  }
  if (nodes.length === 0) throw new ImportError('the policy has no conditions');
  const permissions = doc.permissions !== undefined ? asObject(doc.permissions, 'permissions') : undefined;
  return {
    roles: [
      {
        name: roleName(ctx, 'octo-sts'),
        issuer: ctx.registrationId,
        audiences: audiences.length ? audiences : ['octo-sts-audience-pattern'],
        when: nodes.length === 1 ? (nodes[0] as PolicyNode) : { all: nodes },
        ...(permissions ? { grant: { type: 'github-token', permissions } } : {}),
        origin: 'octo-sts',
      },
    ],
    lints,
    ...(audienceFromToken ? { audienceFromToken: true } : {}),
  };
}
