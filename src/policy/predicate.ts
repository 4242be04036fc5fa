/**
 * The typed predicate tree (policy.md §3–§7): validation at save, compilation to closures, and
 * three-valued evaluation with an explain trace. Fail closed: a missing claim, a type mismatch or an
 * evaluation error is never `true`, and outside CEL an error is never absorbed.
 */
import { asciiLower, compileGlob, type CompiledGlob, type GlobDialect } from './glob.ts';
import { compileRegex, type CompiledRegex } from './regex.ts';
import { compileCel, type CompiledCel } from './cel.ts';
import { parseClaimRef, resolveClaim, type ClaimRef, type ResolveContext } from './pointer.ts';
import type { ClaimKind, PolicyProfile } from './profile.ts';
import type { Dialect, Literal, TraceEntry, Tri } from './types.ts';

export const MAX_DEPTH = 16;
export const MAX_LEAVES = 256;
export const MAX_CHILDREN = 64;
export const MAX_IN = 100;

export class PolicyValidationError extends Error {
  readonly code: string;
  readonly path: string;
  constructor(path: string, message: string, code = 'role_invalid') {
    super(`${path}: ${message}`);
    this.code = code;
    this.path = path;
  }
}

export interface EvalContext extends ResolveContext {
  profile: PolicyProfile;
  /** Non-ASCII paths are an error on shared issuers (security-tests.md C10). */
  shared: boolean;
  trace?: TraceEntry[];
  /** Set when a leaf errs: the most specific reason (claim-missing, claim-type, cel-error, cel-non-bool). */
  errorReason?: 'claim-missing' | 'claim-type' | 'cel-error' | 'cel-non-bool';
}

export type Op = 'eq' | 'in' | 'prefix' | 'glob' | 'regex' | 'contains' | 'exists' | 'cel' | 'all' | 'any' | 'not';

export interface CompiledLeaf {
  readonly type: 'leaf';
  readonly path: string;
  readonly claim: string;
  readonly ref: ClaimRef;
  readonly op: Exclude<Op, 'cel' | 'all' | 'any' | 'not'>;
  readonly operand: unknown;
  readonly dialect: Dialect;
  readonly kind: ClaimKind;
  readonly onMissing: 'error' | 'false' | 'true';
  readonly quantifier: 'any' | 'all';
  readonly ignoreCase: boolean;
  readonly emptyListTrue: boolean;
  /** For `eq`/`in`: literals after save-time coercion. */
  readonly literals: readonly unknown[];
  readonly globs: readonly CompiledGlob[];
  readonly regex?: CompiledRegex;
  evaluate(ctx: EvalContext): Tri;
}

export interface CompiledCelNode {
  readonly type: 'cel';
  readonly path: string;
  readonly cel: CompiledCel;
  readonly dialect: Dialect;
  evaluate(ctx: EvalContext): Tri;
}

export interface CompiledGroup {
  readonly type: 'all' | 'any';
  readonly path: string;
  readonly children: readonly CompiledNode[];
  evaluate(ctx: EvalContext): Tri;
}

export interface CompiledNot {
  readonly type: 'not';
  readonly path: string;
  readonly child: CompiledNode;
  evaluate(ctx: EvalContext): Tri;
}

export type CompiledNode = CompiledLeaf | CompiledCelNode | CompiledGroup | CompiledNot;

const LEAF_KEYS = new Set(['claim', 'eq', 'in', 'prefix', 'glob', 'regex', 'contains', 'exists', 'quantifier', 'onMissing', 'ignoreCase', 'dialect', 'emptyListTrue']);
const OPS = ['eq', 'in', 'prefix', 'glob', 'regex', 'contains', 'exists'] as const;
const DIALECTS: Dialect[] = ['native', 'vault', 'aws', 'gcp', 'k8s', 'octo-sts'];

function isLiteral(v: unknown): v is Literal {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v;
}

function hasNonAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return true;
  return false;
}

/** Coerces a native literal to the claim's logical type at save (policy.md §4 "Literals accepted at save"). */
function coerceLiteral(kind: ClaimKind, lit: unknown, path: string, ignoreCase: boolean): unknown {
  switch (kind) {
    case 'bool':
      if (lit === true || lit === 'true') return true;
      if (lit === false || lit === 'false') return false;
      throw new PolicyValidationError(path, `literal ${JSON.stringify(lit)} is not a boolean: use true or false`);
    case 'id':
      if (typeof lit === 'number' && Number.isSafeInteger(lit) && lit > 0) return String(lit);
      if (typeof lit === 'string' && /^[1-9][0-9]{0,19}$/.test(lit)) return lit;
      throw new PolicyValidationError(path, `literal ${JSON.stringify(lit)} is not an ID: use a positive integer or a digit string without sign or leading zero`);
    case 'int':
      if (typeof lit === 'number' && Number.isSafeInteger(lit)) return lit;
      if (typeof lit === 'string' && /^(0|-?[1-9][0-9]{0,15})$/.test(lit) && Number.isSafeInteger(Number(lit))) return Number(lit);
      throw new PolicyValidationError(path, `literal ${JSON.stringify(lit)} is not an integer`);
    case 'path':
      if (typeof lit !== 'string') throw new PolicyValidationError(path, `literal ${JSON.stringify(lit)} must be a string for a path claim`);
      return asciiLower(lit);
    case 'string':
      if (typeof lit !== 'string') throw new PolicyValidationError(path, `literal ${JSON.stringify(lit)} must be a string (this claim is a string)`);
      return ignoreCase ? asciiLower(lit) : lit;
    case 'untyped':
      return lit;
  }
}

/** Result of coercing one claim element in the native dialect. */
type Coerced = { ok: true; value: unknown; str: string | null } | { ok: false; why: string };

function coerceClaim(kind: ClaimKind, v: unknown, ignoreCase: boolean, shared: boolean): Coerced {
  switch (kind) {
    case 'bool':
      if (v === 'true') return { ok: true, value: true, str: 'true' };
      if (v === 'false') return { ok: true, value: false, str: 'false' };
      return { ok: false, why: `type-mismatch: bool claim must be the string "true" or "false", got ${jsonType(v)} ${JSON.stringify(v)}` };
    case 'id':
      if (typeof v === 'string' && /^[1-9][0-9]{0,19}$/.test(v)) return { ok: true, value: v, str: v };
      return { ok: false, why: `type-mismatch: ID claim must be a digit string, got ${jsonType(v)}` };
    case 'int':
      if (typeof v === 'number' && Number.isSafeInteger(v)) return { ok: true, value: v, str: String(v) };
      return { ok: false, why: `type-mismatch: integer claim, got ${jsonType(v)}` };
    case 'path': {
      if (typeof v !== 'string') return { ok: false, why: `type-mismatch: path claim must be a string, got ${jsonType(v)}` };
      if (shared && hasNonAscii(v)) return { ok: false, why: 'type-mismatch: non-ASCII path on a shared issuer' };
      const lower = asciiLower(v);
      return { ok: true, value: lower, str: lower };
    }
    case 'string': {
      if (typeof v !== 'string') return { ok: false, why: `type-mismatch: string claim, got ${jsonType(v)}` };
      const folded = ignoreCase ? asciiLower(v) : v;
      return { ok: true, value: folded, str: folded };
    }
    case 'untyped': {
      const str = typeof v === 'string' ? v : typeof v === 'boolean' ? String(v) : typeof v === 'number' && Number.isFinite(v) ? String(v) : null;
      return { ok: true, value: v, str: str !== null && ignoreCase ? asciiLower(str) : str };
    }
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

type ElemResult = { r: Tri; why: string; coerced?: unknown };

function globDialectOf(d: Dialect): GlobDialect {
  return d === 'vault' ? 'vault' : d === 'aws' ? 'aws' : 'native';
}

interface LeafSpec {
  path: string;
  claim: string;
  ref: ClaimRef;
  op: (typeof OPS)[number];
  operand: unknown;
  dialect: Dialect;
  kind: ClaimKind;
  onMissing: 'error' | 'false' | 'true';
  quantifier: 'any' | 'all';
  ignoreCase: boolean;
  emptyListTrue: boolean;
  literals: unknown[];
  globs: CompiledGlob[];
  regex?: CompiledRegex;
}

/** Element test for the leaf's op and dialect. */
function elementTester(s: LeafSpec): (v: unknown, shared: boolean) => ElemResult {
  const { op, dialect, kind, ignoreCase } = s;
  if (dialect === 'native') {
    const litSet = kind !== 'untyped' ? new Set(s.literals) : null;
    const globWhy = s.globs.map((g) => `glob '${g.pattern}' matches`);
    const fold = kind === 'path' || ignoreCase;
    return (v, shared) => {
      const c = coerceClaim(kind, v, ignoreCase, shared);
      if (!c.ok) return { r: 'error', why: c.why };
      switch (op) {
        case 'eq':
        case 'in':
        case 'contains': {
          const hit = litSet ? litSet.has(c.value) : s.literals.some((l) => deepEqual(l, c.value));
          if (hit) return { r: true, why: 'equal', coerced: c.value };
          const typeNote = kind === 'untyped' && s.literals.every((l) => jsonType(l) !== jsonType(c.value)) ? `type-mismatch: ${jsonType(s.literals[0])} literal vs ${jsonType(c.value)} claim` : 'not equal';
          return { r: false, why: typeNote, coerced: c.value };
        }
        case 'prefix': {
          if (c.str === null) return { r: 'error', why: `type-mismatch: prefix needs a string, got ${jsonType(v)}` };
          const p = fold ? asciiLower(s.operand as string) : (s.operand as string);
          return c.str.startsWith(p) ? { r: true, why: 'prefix matches', coerced: c.str } : { r: false, why: 'prefix differs', coerced: c.str };
        }
        case 'glob': {
          if (c.str === null) return { r: 'error', why: `type-mismatch: glob needs a string, got ${jsonType(v)}` };
          for (let i = 0; i < s.globs.length; i++) if ((s.globs[i] as CompiledGlob).match(c.str)) return { r: true, why: globWhy[i] as string, coerced: c.str };
          const crosses = s.globs.some((g) => !g.crossesSegments && g.hasWildcard && /[/:]/.test(c.str as string));
          return { r: false, why: crosses ? "glob '*' does not cross '/' or ':'" : 'glob does not match', coerced: c.str };
        }
        case 'regex': {
          if (c.str === null) return { r: 'error', why: `type-mismatch: regex needs a string, got ${jsonType(v)}` };
          const t = s.regex!.test(c.str);
          if (t === 'error') return { r: 'error', why: 'regex subject longer than 8192 characters' };
          return { r: t, why: t ? 'regex matches' : 'regex does not match (anchored)', coerced: c.str };
        }
        default:
          return { r: 'error', why: `op ${op} not applicable` };
      }
    };
  }
  if (dialect === 'vault') {
    return (v) => {
      if (op === 'glob') {
        // Vault skips non-string claims in glob mode: they never match.
        if (typeof v !== 'string') return { r: false, why: `vault: non-string claim (${jsonType(v)}) is skipped in glob mode` };
        for (const g of s.globs) if (g.match(v)) return { r: true, why: `vault glob '${g.pattern}' matches` };
        return { r: false, why: 'vault glob does not match' };
      }
      // bound_claims_type string / bound_subject: typed equality (bool true != "true", 20 != "20").
      for (const l of s.literals) {
        if (typeof l === 'string' && l === v) return { r: true, why: 'vault: equal' };
        if (typeof l === 'boolean' && l === v) return { r: true, why: 'vault: equal' };
        if (typeof l === 'number' && typeof v === 'number' && Math.trunc(v) === l) return { r: true, why: 'vault: equal (numeric claim truncated)' };
      }
      const why = s.literals.every((l) => typeof l !== typeof v) ? `type-mismatch: ${jsonType(s.literals[0])} literal vs ${jsonType(v)} claim (vault never coerces)` : 'vault: not equal';
      return { r: false, why };
    };
  }
  if (dialect === 'aws') {
    return (v) => {
      const str = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;
      if (str === null) return { r: false, why: `aws: ${jsonType(v)} value never matches a string condition` };
      if (op === 'glob') {
        for (const g of s.globs) if (g.match(str)) return { r: true, why: `aws StringLike '${g.pattern}' matches` };
        return { r: false, why: 'aws StringLike does not match' };
      }
      const cmp = ignoreCase ? asciiLower(str) : str;
      for (const l of s.literals) if ((ignoreCase ? asciiLower(String(l)) : String(l)) === cmp) return { r: true, why: 'aws: equal' };
      return { r: false, why: ignoreCase ? 'aws StringEqualsIgnoreCase: not equal' : 'aws StringEquals: not equal (case-sensitive, no wildcards)' };
    };
  }
  if (dialect === 'octo-sts') {
    return (v) => {
      const str = typeof v === 'string' ? v : typeof v === 'boolean' ? String(v) : null;
      if (str === null) return { r: false, why: `octo-sts: ${jsonType(v)} claim never matches` };
      if (op === 'regex') {
        const t = s.regex!.test(str);
        if (t === 'error') return { r: 'error', why: 'regex subject longer than 8192 characters' };
        return { r: t, why: t ? `octo-sts pattern ${s.regex!.source} matches` : `octo-sts pattern ${s.regex!.source} does not match` };
      }
      return s.literals.includes(str) ? { r: true, why: 'octo-sts: equal' } : { r: false, why: 'octo-sts: not equal' };
    };
  }
  if (dialect === 'gcp') {
    // Extracted from CEL `assertion.x == 'v'`: exact string equality, no coercion; other types are simply unequal.
    return (v) => {
      if (typeof v !== 'string') return { r: false, why: `cel equality: ${jsonType(v)} claim never equals a string literal` };
      return s.literals.includes(v) ? { r: true, why: 'equal' } : { r: false, why: 'not equal (case-sensitive)' };
    };
  }
  // k8s claim/requiredValue: present, a JSON string, and equal; anything else is an error.
  return (v) => {
    if (typeof v !== 'string') return { r: 'error', why: `k8s: claim must be a JSON string, got ${jsonType(v)}` };
    return s.literals.includes(v) ? { r: true, why: 'k8s: equal' } : { r: false, why: 'k8s: not equal' };
  };
}

function compileLeaf(node: Record<string, unknown>, path: string, profile: PolicyProfile, defaultDialect: Dialect): CompiledLeaf {
  for (const k of Object.keys(node)) if (!LEAF_KEYS.has(k)) throw new PolicyValidationError(path, `unknown field "${k}"`);
  const ref = parseClaimRef(node.claim);
  if (typeof ref === 'string') throw new PolicyValidationError(path, ref);
  const claim = node.claim as string;
  const ops = OPS.filter((o) => node[o] !== undefined);
  if (ops.length !== 1) throw new PolicyValidationError(path, `a leaf needs exactly one of ${OPS.join(', ')} (got ${ops.length ? ops.join(', ') : 'none'})`);
  const op = ops[0] as (typeof OPS)[number];
  const dialect = (node.dialect ?? defaultDialect) as Dialect;
  if (!DIALECTS.includes(dialect)) throw new PolicyValidationError(path, `unknown dialect ${JSON.stringify(node.dialect)}`);
  const quantifier = (node.quantifier ?? 'any') as 'any' | 'all';
  if (quantifier !== 'any' && quantifier !== 'all') throw new PolicyValidationError(path, 'quantifier must be "any" or "all"');
  const onMissing = (node.onMissing ?? 'error') as 'error' | 'false' | 'true';
  if (!['error', 'false', 'true'].includes(onMissing)) throw new PolicyValidationError(path, 'onMissing must be "error", "false" or "true"');
  if (node.ignoreCase !== undefined && typeof node.ignoreCase !== 'boolean') throw new PolicyValidationError(path, 'ignoreCase must be a boolean');
  if (node.emptyListTrue !== undefined && typeof node.emptyListTrue !== 'boolean') throw new PolicyValidationError(path, 'emptyListTrue must be a boolean');
  const ignoreCase = node.ignoreCase === true;
  const native = dialect === 'native';
  const baseClaim = ref.kind === 'name' ? ref.name : ref.kind === 'sub' ? ref.component : null;
  const kind: ClaimKind = native && baseClaim !== null ? profile.kindOf(baseClaim) : 'untyped';
  const operand = node[op];
  let literals: unknown[] = [];
  let globs: CompiledGlob[] = [];
  let regex: CompiledRegex | undefined;
  switch (op) {
    case 'eq':
      if (!isLiteral(operand)) throw new PolicyValidationError(path, 'eq needs a string, number, boolean or null literal');
      literals = [native ? coerceLiteral(kind, operand, path, ignoreCase) : operand];
      break;
    case 'in':
    case 'contains': {
      const list = op === 'contains' && !Array.isArray(operand) ? [operand] : operand;
      if (!Array.isArray(list) || list.length < 1 || list.length > MAX_IN) throw new PolicyValidationError(path, `${op} needs 1 to ${MAX_IN} literals`);
      for (const l of list) if (!isLiteral(l)) throw new PolicyValidationError(path, `${op} values must be string, number, boolean or null literals`);
      literals = native ? list.map((l) => coerceLiteral(kind, l, path, ignoreCase)) : [...list];
      break;
    }
    case 'prefix':
      if (typeof operand !== 'string' || operand.length === 0) throw new PolicyValidationError(path, 'prefix needs a non-empty string');
      break;
    case 'glob': {
      const patterns = Array.isArray(operand) ? operand : [operand];
      if (patterns.length < 1 || patterns.length > MAX_IN || patterns.some((p) => typeof p !== 'string')) throw new PolicyValidationError(path, `glob needs a pattern or 1 to ${MAX_IN} patterns`);
      const fold = (native && kind === 'path') || ignoreCase;
      try {
        globs = (patterns as string[]).map((p) => compileGlob(p, globDialectOf(dialect), fold));
      } catch (err) {
        throw new PolicyValidationError(path, (err as Error).message, 'role_invalid');
      }
      break;
    }
    case 'regex': {
      if (typeof operand !== 'string') throw new PolicyValidationError(path, 'regex needs a pattern string');
      const caseless = native && (kind === 'path' || ignoreCase) && !operand.startsWith('(?i)');
      try {
        regex = compileRegex(caseless ? `(?i)${operand}` : operand, dialect === 'octo-sts' ? 'octo-sts' : 'native');
      } catch (err) {
        throw new PolicyValidationError(path, (err as Error).message);
      }
      break;
    }
    case 'exists':
      if (typeof operand !== 'boolean') throw new PolicyValidationError(path, 'exists needs true or false');
      break;
  }
  const spec: LeafSpec = { path, claim, ref, op, operand, dialect, kind, onMissing, quantifier, ignoreCase, emptyListTrue: node.emptyListTrue === true, literals, globs, regex };
  const test = op === 'exists' ? null : elementTester(spec);

  const evaluate = (ctx: EvalContext): Tri => {
    const raw = resolveClaim(ref, ctx);
    const present = raw !== undefined && raw !== null;
    let result: Tri;
    let why: string;
    let coerced: unknown;
    if (op === 'exists') {
      result = present === operand;
      why = present ? 'claim present' : 'claim-missing';
    } else if (!present) {
      result = onMissing === 'error' ? 'error' : onMissing === 'true';
      why = 'claim-missing';
      if (result === 'error') ctx.errorReason ??= 'claim-missing';
    } else if (typeof raw === 'object' && !Array.isArray(raw)) {
      result = 'error';
      why = 'type-mismatch: object claim supports only exists, cel and pointers into it';
      ctx.errorReason ??= 'claim-type';
    } else {
      const elems = Array.isArray(raw) ? raw : [raw];
      if (op === 'contains') {
        // Every operand value must be some element of the list.
        const results = elems.map((e) => test!(e, ctx.shared));
        const err = results.find((x) => x.r === 'error');
        if (err) {
          result = 'error';
          why = err.why;
          ctx.errorReason ??= 'claim-type';
        } else {
          const coercedElems = elems.map((e) => coerceClaim(kind, e, ignoreCase, ctx.shared)).map((c) => (c.ok ? c.value : undefined));
          const missing = literals.filter((l) => !coercedElems.some((c) => deepEqual(c, l)));
          result = missing.length === 0;
          why = result ? 'list contains every value' : `list lacks ${JSON.stringify(missing[0])}`;
        }
      } else if (elems.length === 0) {
        result = spec.emptyListTrue;
        why = spec.emptyListTrue ? 'empty list (vacuously true: ForAllValues)' : 'empty list';
      } else if (elems.length === 1) {
        const r = test!(elems[0], ctx.shared);
        result = r.r;
        why = r.why;
        coerced = r.coerced;
        if (result === 'error') ctx.errorReason ??= 'claim-type';
      } else {
        let sawTrue = false;
        let sawFalse = false;
        let errWhy: string | null = null;
        let lastWhy = '';
        for (const e of elems) {
          const r = test!(e, ctx.shared);
          if (r.r === 'error') errWhy ??= r.why;
          else if (r.r) sawTrue = true;
          else {
            sawFalse = true;
            lastWhy = r.why;
          }
        }
        if (errWhy !== null) {
          result = 'error';
          why = `list element: ${errWhy}`;
          ctx.errorReason ??= 'claim-type';
        } else if (quantifier === 'any') {
          result = sawTrue;
          why = sawTrue ? 'some element matches' : `no element matches (${lastWhy})`;
        } else {
          result = !sawFalse;
          why = sawFalse ? `not every element matches (${lastWhy})` : 'every element matches';
        }
      }
    }
    if (ctx.trace) {
      ctx.trace.push({ path, claim, op, operand, actual: raw, actualType: jsonType(raw), coerced, result, why });
    }
    return result;
  };
  return { type: 'leaf', path, claim, ref, op, operand, dialect, kind, onMissing, quantifier, ignoreCase, emptyListTrue: spec.emptyListTrue, literals, globs, regex, evaluate };
}

export interface CompileState {
  leaves: number;
}

export function compileNode(node: unknown, path: string, profile: PolicyProfile, dialect: Dialect, depth = 1, state: CompileState = { leaves: 0 }): CompiledNode {
  if (depth > MAX_DEPTH) throw new PolicyValidationError(path, `nesting deeper than ${MAX_DEPTH}`);
  if (node === null || typeof node !== 'object' || Array.isArray(node)) throw new PolicyValidationError(path, 'a node must be an object');
  const n = node as Record<string, unknown>;
  if ('all' in n || 'any' in n) {
    const key = 'all' in n ? 'all' : 'any';
    if (Object.keys(n).length !== 1) throw new PolicyValidationError(path, `"${key}" takes no other fields`);
    const list = n[key];
    if (!Array.isArray(list) || list.length < 1 || list.length > MAX_CHILDREN) throw new PolicyValidationError(path, `"${key}" needs 1 to ${MAX_CHILDREN} children`);
    const children = list.map((c, i) => compileNode(c, `${path}.${key}[${i}]`, profile, dialect, depth + 1, state));
    const isAll = key === 'all';
    const whyTrue = `${key}: true`;
    const whyFalse = `${key}: false`;
    const evaluate = (ctx: EvalContext): Tri => {
      let sawErr = false;
      let decided = false;
      for (const c of children) {
        const r = c.evaluate(ctx);
        if (r === 'error') sawErr = true;
        else if (r !== isAll) decided = true;
        // Keep evaluating when tracing so explain shows every predicate; otherwise stop early only on error.
        if (sawErr && !ctx.trace) break;
      }
      const result: Tri = sawErr ? 'error' : isAll ? !decided : decided;
      if (ctx.trace) ctx.trace.push({ path, op: key, result, why: sawErr ? 'a child is error (never absorbed)' : result ? whyTrue : whyFalse });
      return result;
    };
    return { type: key, path, children, evaluate };
  }
  if ('not' in n) {
    if (Object.keys(n).length !== 1) throw new PolicyValidationError(path, '"not" takes no other fields');
    const child = compileNode(n.not, `${path}.not`, profile, dialect, depth + 1, state);
    const evaluate = (ctx: EvalContext): Tri => {
      const r = child.evaluate(ctx);
      const result: Tri = r === 'error' ? 'error' : !r;
      if (ctx.trace) ctx.trace.push({ path, op: 'not', result, why: r === 'error' ? 'not(error) = error' : 'negated' });
      return result;
    };
    return { type: 'not', path, child, evaluate };
  }
  if ('cel' in n) {
    for (const k of Object.keys(n)) if (k !== 'cel' && k !== 'dialect') throw new PolicyValidationError(path, `unknown field "${k}" in a cel node`);
    if (++state.leaves > MAX_LEAVES) throw new PolicyValidationError(path, `more than ${MAX_LEAVES} leaves`);
    let cel: CompiledCel;
    try {
      cel = compileCel(n.cel as string);
    } catch (err) {
      throw new PolicyValidationError(path, (err as Error).message);
    }
    const d = (n.dialect ?? dialect) as Dialect;
    const evaluate = (ctx: EvalContext): Tri => {
      const claims = ctx.claims;
      const res = cel.evaluate({ claims, assertion: claims });
      let result: Tri;
      let why: string;
      if (res.ok) {
        result = res.value;
        why = `cel: ${String(res.value)}`;
      } else {
        result = 'error';
        why = res.why;
        ctx.errorReason ??= res.kind;
      }
      if (ctx.trace) ctx.trace.push({ path, op: 'cel', operand: cel.expression, result, why });
      return result;
    };
    return { type: 'cel', path, cel, dialect: d, evaluate };
  }
  if (++state.leaves > MAX_LEAVES) throw new PolicyValidationError(path, `more than ${MAX_LEAVES} leaves`);
  return compileLeaf(n, path, profile, dialect);
}

/** Top-level conjuncts: reached from the root through `all` nodes only (policy.md §8.1). */
export function topLevelConjuncts(root: CompiledNode): CompiledNode[] {
  if (root.type === 'all') return root.children.flatMap((c) => topLevelConjuncts(c));
  return [root];
}

export function walk(root: CompiledNode, visit: (n: CompiledNode) => void): void {
  visit(root);
  if (root.type === 'all' || root.type === 'any') for (const c of root.children) walk(c, visit);
  else if (root.type === 'not') walk(root.child, visit);
}
