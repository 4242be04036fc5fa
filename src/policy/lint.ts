/**
 * Pitfall lints (policy.md §4–§9, security-tests.md G7). Lints never change a decision; they tell the
 * operator where a source system's own semantics would bite.
 */
import { celLints } from './cel.ts';
import { hasTopLevelAlternation, hasUnescapedDot } from './regex.ts';
import type { CompiledNode } from './predicate.ts';
import type { PolicyProfile } from './profile.ts';
import type { Lint, PolicyRegistration } from './types.ts';

const PATHLIKE = new Set(['sub', 'ref', 'ref_path', 'project_path', 'namespace_path', 'job_project_path', 'job_namespace_path', 'repository', 'job_workflow_ref', 'workflow_ref', 'ci_config_ref_uri', 'groups_direct']);

export function lintNode(n: CompiledNode, profile: PolicyProfile, registration: PolicyRegistration): Lint[] {
  const out: Lint[] = [];
  const add = (code: string, message: string) => out.push({ code, path: n.path, message });
  if (n.type === 'cel') {
    for (const l of celLints(n.cel.expression)) add(l.code, l.message);
    return out;
  }
  if (n.type !== 'leaf') return out;
  const base = n.ref.kind === 'name' ? n.ref.name : n.ref.kind === 'sub' ? n.ref.component : '';
  const kind = profile.kindOf(base);
  const pathLike = PATHLIKE.has(base) || kind === 'path';

  // Typed literals that can never equal the claim as issued.
  if ((n.op === 'eq' || n.op === 'in') && n.dialect !== 'native' && n.dialect !== 'gcp') {
    for (const l of n.literals) {
      const issuedAsString = kind === 'id' || kind === 'bool' || kind === 'string' || kind === 'path';
      if (issuedAsString && typeof l !== 'string') add('type-never-matches', `${base} is issued as a JSON string; the ${typeof l} literal ${JSON.stringify(l)} never equals it in ${n.dialect} (write "${String(l)}")`);
      if (kind === 'int' && typeof l === 'string') add('type-never-matches', `${base} is issued as a JSON integer; the string literal ${JSON.stringify(l)} never equals it in ${n.dialect}`);
    }
  }
  if ((n.op === 'eq' || n.op === 'in') && (n.dialect === 'native' || n.dialect === 'gcp') && kind === 'untyped') {
    for (const l of n.literals) {
      if (typeof l !== 'string' || /^(\d+|true|false)$/.test(l)) {
        add('untyped-literal', `${n.claim} is not a claim this issuer profile knows: ${JSON.stringify(l)} is compared with its exact JSON type and value ("20" != 20)`);
        break;
      }
    }
  }
  if (n.op === 'glob') {
    for (const g of n.globs) {
      if (g.hasWildcard && g.crossesSegments && n.dialect !== 'native' && pathLike) {
        add('glob-crosses-segment', `'${g.pattern}': in ${n.dialect} '*' crosses '/' and ':' so it also matches deeper paths and later sub components`);
      }
      const lp = g.literalPrefix;
      if (g.hasWildcard && lp.length > 0 && !/[/:]$/.test(lp) && pathLike) {
        const last = lp.split(/[/:]/).pop() ?? '';
        if (last.length > 0 && (base === 'ref' || base === 'ref_path' || /(^|\/)(main|master|release|v?\d)/.test(last))) {
          add('wildcard-after-literal', `'${g.pattern}' also matches '${lp}-evil': end the literal at a boundary or list exact values`);
        } else {
          add('prefix-without-boundary', `'${g.pattern}' also matches '${lp}-evil…': end the prefix with '/'`);
        }
      }
      if (n.dialect === 'vault' && g.pattern.includes('?')) add('question-mark-literal', `'${g.pattern}': Vault globs treat '?' as a literal character`);
    }
  }
  if (n.op === 'prefix' && pathLike && !/[/:]$/.test(n.operand as string)) {
    add('prefix-without-boundary', `prefix '${n.operand as string}' also matches '${n.operand as string}-evil': end path prefixes with '/' or ':'`);
  }
  if ((n.op === 'eq' || n.op === 'in') && n.dialect === 'aws' && n.literals.some((l) => typeof l === 'string' && /[*?]/.test(l))) {
    add('stringequals-with-wildcard', 'StringEquals compares literally: "*" and "?" are not wildcards here (use StringLike)');
  }
  if (n.op === 'regex' && n.regex) {
    if (n.dialect === 'octo-sts' && hasTopLevelAlternation(n.regex.pattern)) {
      add('octo-sts-alternation', `octo-sts compiles ^${n.regex.pattern}$, which anchors only the first and last alternative: write ^(${n.regex.pattern})$ as (${n.regex.pattern})`);
    }
    if (pathLike && hasUnescapedDot(n.regex.pattern.replace(/^\(\?i\)/, ''))) add('unescaped-dot', `'.' in '${n.regex.pattern}' matches any character ('gitlab.com' also matches 'gitlabxcom'): escape it as '\\.'`);
  }
  if (n.onMissing === 'true' && n.dialect === 'aws') add('negated-missing-true', 'AWS negated and IfExists operators are true when the key is missing');
  if (n.emptyListTrue) add('forallvalues-vacuous', 'ForAllValues is true when the key is absent or the list is empty');
  void registration;
  return out;
}
