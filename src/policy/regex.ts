/**
 * Regular expressions (policy.md §6): RE2 syntax through re2js (linear time), whole-value anchoring
 * in the native dialect, octo-sts's `^` + P + `$` wrapping reproduced in its dialect.
 */
import { RE2JS } from 're2js';

export const MAX_REGEX_LENGTH = 512;
export const MAX_REGEX_SUBJECT = 8192;

export type RegexDialect = 'native' | 'octo-sts';

export class RegexSyntaxError extends Error {
  readonly code = 'regex_invalid';
}

export interface CompiledRegex {
  readonly pattern: string;
  readonly dialect: RegexDialect;
  /** The program actually run (what the anchoring produced). */
  readonly source: string;
  /** Literal characters in the pattern (specificity). */
  readonly literalChars: number;
  /** true / false, or 'error' for a subject over the limit. */
  test(subject: string): boolean | 'error';
}

/**
 * Refuses everything RE2 would treat differently from what the author likely meant, before re2js
 * sees it: inline flags other than `i`, lookaround and backreferences.
 */
function checkSyntax(pattern: string): void {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n !== undefined && /[1-9]/.test(n) && !inClass) throw new RegexSyntaxError(`backreference \\${n} is not supported (RE2 has no backreferences)`);
      if (n === 'k' && pattern[i + 2] === '<') throw new RegexSyntaxError('named backreferences are not supported (RE2)');
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      if (pattern[i + 1] === '^') i++;
      if (pattern[i + 1] === ']') i++;
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2);
      if (/^[=!]/.test(rest) || /^<[=!]/.test(rest)) throw new RegexSyntaxError('lookaround ((?=, (?!, (?<=, (?<!) is not supported: RE2 matches in linear time and has none');
      if (rest.startsWith(':') || rest.startsWith('P<') || /^<[A-Za-z_]/.test(rest)) continue;
      const flags = /^([a-zA-Z-]*)[:)]/.exec(rest);
      if (!flags) throw new RegexSyntaxError(`unsupported group syntax "(?${rest.slice(0, 3)}"`);
      if (!/^i*$/.test(flags[1] as string)) throw new RegexSyntaxError(`inline flags "${flags[1]}" are not allowed: only (?i) is`);
    }
  }
}

function literalCount(pattern: string): number {
  let n = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const nx = pattern[i + 1] ?? '';
      if (/[^a-zA-Z0-9]/.test(nx)) n++;
      i++;
    } else if (/[A-Za-z0-9_/:\-@]/.test(c)) n++;
  }
  return n;
}

export function compileRegex(pattern: string, dialect: RegexDialect = 'native'): CompiledRegex {
  if (typeof pattern !== 'string' || pattern.length === 0) throw new RegexSyntaxError('an empty regex is not allowed');
  if (pattern.length > MAX_REGEX_LENGTH) throw new RegexSyntaxError(`regex is ${pattern.length} characters; the limit is ${MAX_REGEX_LENGTH}`);
  checkSyntax(pattern);
  const source = dialect === 'native' ? `^(?:${pattern})$` : `^${pattern}$`;
  let re: ReturnType<typeof RE2JS.compile>;
  try {
    re = RE2JS.compile(source);
  } catch (err) {
    throw new RegexSyntaxError(`invalid RE2 regex: ${(err as Error).message}`);
  }
  return {
    pattern,
    dialect,
    source,
    literalChars: literalCount(pattern),
    test(subject) {
      if (subject.length > MAX_REGEX_SUBJECT) return 'error';
      return re.test(subject);
    },
  };
}

/**
 * Calls `visit` with each unescaped character outside a character class, and its group depth; stops
 * at the first `true`.
 */
function someOutsideClasses(pattern: string, visit: (c: string, i: number, depth: number) => boolean): boolean {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (visit(c, i, depth)) return true;
  }
  return false;
}

/** Whether the pattern has a `|` at nesting depth 0 (the octo-sts anchoring trap). */
export function hasTopLevelAlternation(pattern: string): boolean {
  return someOutsideClasses(pattern, (c, _i, depth) => c === '|' && depth === 0);
}

/** Whether an unescaped `.` appears outside a character class (lint `unescaped-dot`), other than `.*` or `.+`. */
export function hasUnescapedDot(pattern: string): boolean {
  return someOutsideClasses(pattern, (c, i) => c === '.' && pattern[i + 1] !== '*' && pattern[i + 1] !== '+');
}

/**
 * The literal text every match must start with (for tenant binding), or '' when unknown: stops at the
 * first metacharacter; any top-level alternation, a leading flag group or a quantified last literal gives ''.
 */
export function regexLiteralPrefix(pattern: string): string {
  if (hasTopLevelAlternation(pattern) || pattern.startsWith('(?')) return '';
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const n = pattern[i + 1] ?? '';
      if (!/[.\\/:\-@$^*+?()[\]{}|]/.test(n)) break;
      if (/[*+?{]/.test(pattern[i + 2] ?? '')) break;
      out += n;
      i++;
      continue;
    }
    if (/[.^$*+?()[\]{}|]/.test(c)) break;
    if (/[*+?{]/.test(pattern[i + 1] ?? '')) break;
    out += c;
  }
  return out;
}
