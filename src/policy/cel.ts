/**
 * CEL leaves (policy.md §7). Expressions are compiled once and cached.
 *
 * Engine choice (measured; see docs/policy.md "CEL evaluator"): @marcbachmann/cel-js evaluates
 * several times faster than @bufbuild/cel and agrees with it on every pitfall in policy.md §7, but its
 * `matches()` runs JavaScript RegExp: not RE2 syntax (`(?i)` fails, backreferences and lookaround are
 * accepted) and exponential on patterns like `^(a+)+$`. So an expression that calls `matches` runs on
 * @bufbuild/cel (RE2 semantics, linear time); every other expression runs on @marcbachmann/cel-js.
 */
import { Environment } from '@marcbachmann/cel-js';
import { celEnv, isCelError, parse as bufParse, plan as bufPlan } from '@bufbuild/cel';

export const MAX_CEL_LENGTH = 4096;

export type CelVariable = 'claims' | 'assertion' | 'google' | 'attribute';

export type CelResult = { ok: true; value: boolean } | { ok: false; kind: 'cel-error' | 'cel-non-bool'; why: string };

export interface CompiledCel {
  readonly expression: string;
  readonly engine: 'cel-js' | 'bufbuild';
  evaluate(bindings: Partial<Record<CelVariable, unknown>>): CelResult;
}

export class CelCompileError extends Error {
  readonly code = 'cel_invalid';
}

const VARIABLES: CelVariable[] = ['claims', 'assertion', 'google', 'attribute'];

const marcEnv = new Environment({
  unlistedVariablesAreDyn: false,
  limits: { maxAstNodes: 2000, maxDepth: 64, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 16 },
});
// `google` is a reserved namespace in cel-js: expressions using it run on bufbuild.
for (const v of VARIABLES) if (v !== 'google') marcEnv.registerVariable(v, 'map');

const bufEnv = celEnv({});

const NEEDS_BUFBUILD = /\bmatches\b|\bgoogle\b/;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  return typeof value;
}

function compileMarc(expression: string): CompiledCel {
  let fn: ReturnType<Environment['parse']>;
  try {
    fn = marcEnv.parse(expression);
  } catch (err) {
    throw new CelCompileError(`CEL parse error: ${firstLine(err)}`);
  }
  const checked = fn.check();
  if (!checked.valid) throw new CelCompileError(`CEL type error: ${firstLine(checked.error)}`);
  if (checked.type !== 'bool' && checked.type !== 'dyn') throw new CelCompileError(`CEL expression has type ${checked.type}; a condition must be bool`);
  return {
    expression,
    engine: 'cel-js',
    evaluate(bindings) {
      let value: unknown;
      try {
        value = fn(bindings as Record<string, unknown>);
      } catch (err) {
        return { ok: false, kind: 'cel-error', why: `cel: ${firstLine(err)}` };
      }
      if (typeof value !== 'boolean') return { ok: false, kind: 'cel-non-bool', why: `cel: result is ${describe(value)}, not bool` };
      return { ok: true, value };
    },
  };
}

function compileBuf(expression: string): CompiledCel {
  let run: (ctx: Record<string, unknown>) => unknown;
  try {
    const parsed = bufParse(expression);
    run = bufPlan(bufEnv, parsed) as unknown as (ctx: Record<string, unknown>) => unknown;
  } catch (err) {
    throw new CelCompileError(`CEL parse error: ${firstLine(err)}`);
  }
  // bufbuild reports unknown variables only at run time: refuse them at save like the other engine.
  const idents = expression.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g, '').match(/(?<![.\w])[A-Za-z_]\w*(?=\s*[.[])/g) ?? [];
  for (const id of idents) {
    if (!VARIABLES.includes(id as CelVariable) && !['has', 'size', 'int', 'string', 'double', 'bool', 'dyn', 'type', 'uint', 'bytes', 'timestamp', 'duration'].includes(id)) {
      throw new CelCompileError(`CEL expression references unknown variable "${id}": use claims (or assertion for GCP)`);
    }
  }
  return {
    expression,
    engine: 'bufbuild',
    evaluate(bindings) {
      let value: unknown;
      try {
        value = run(bindings as Record<string, unknown>);
      } catch (err) {
        return { ok: false, kind: 'cel-error', why: `cel: ${firstLine(err)}` };
      }
      if (isCelError(value as never)) return { ok: false, kind: 'cel-error', why: `cel: ${firstLine(value)}` };
      if (typeof value !== 'boolean') return { ok: false, kind: 'cel-non-bool', why: `cel: result is ${describe(value)}, not bool` };
      return { ok: true, value };
    },
  };
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return (msg.split('\n')[0] ?? '').slice(0, 300);
}

const cache = new Map<string, CompiledCel>();
const CACHE_MAX = 10_000;

/** Compiles (or returns the cached) expression. Throws CelCompileError. */
export function compileCel(expression: string, engine: 'auto' | 'cel-js' | 'bufbuild' = 'auto'): CompiledCel {
  if (typeof expression !== 'string' || expression.trim().length === 0) throw new CelCompileError('empty CEL expression');
  if (expression.length > MAX_CEL_LENGTH) throw new CelCompileError(`CEL expression is ${expression.length} characters; the limit is ${MAX_CEL_LENGTH}`);
  const key = `${engine}\u0000${expression}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const chosen = engine === 'auto' ? (NEEDS_BUFBUILD.test(expression) ? 'bufbuild' : 'cel-js') : engine;
  const compiled = chosen === 'bufbuild' ? compileBuf(expression) : compileMarc(expression);
  if (chosen === 'cel-js') {
    // Parse on bufbuild too: an expression must be valid CEL for the reference implementation as well.
    try {
      bufParse(expression);
    } catch (err) {
      throw new CelCompileError(`CEL parse error: ${firstLine(err)}`);
    }
  }
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
  cache.set(key, compiled);
  return compiled;
}

/** Lints for the pitfalls of policy.md §7. */
export function celLints(expression: string): { code: string; message: string }[] {
  const out: { code: string; message: string }[] = [];
  for (const m of expression.matchAll(/\.matches\(\s*(['"])((?:\\.|(?!\1).)*)\1\s*\)/g)) {
    const p = m[2] as string;
    if (!p.startsWith('^') || !p.endsWith('$')) {
      out.push({ code: 'cel-unanchored-matches', message: `matches('${p}') searches for a substring: anchor it as '^...$'` });
    }
  }
  for (const m of expression.matchAll(/\.startsWith\(\s*(['"])((?:\\.|(?!\1).)*)\1\s*\)/g)) {
    const p = m[2] as string;
    if (!p.endsWith('/') && !p.endsWith(':')) {
      out.push({ code: 'prefix-without-boundary', message: `startsWith('${p}') also matches '${p}-evil': end path prefixes with '/'` });
    }
  }
  for (const m of expression.matchAll(/\b(?:claims|assertion)\.(\w+)\s*==\s*(-?\d+(?:\.\d+)?|true|false)\b/g)) {
    out.push({ code: 'type-never-matches', message: `${m[1]} == ${m[2]} compares a ${/\d/.test(m[2] as string) ? 'number' : 'bool'} literal: GitLab emits IDs and booleans as strings, so write '${m[2]}'` });
  }
  return out;
}
