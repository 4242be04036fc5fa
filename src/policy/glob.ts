/**
 * Glob dialects (policy.md §5). Every glob compiles to an anchored RE2 program (linear time), with
 * fast paths for literal and literal-prefix patterns.
 */
import { RE2JS } from 're2js';

export type GlobDialect = 'native' | 'vault' | 'aws';

export class GlobSyntaxError extends Error {
  readonly code = 'glob_invalid';
}

/** One token of a parsed glob. */
type GlobToken = { t: 'lit'; v: string } | { t: 'star' } | { t: 'globstar' } | { t: 'any1' } | { t: 'any1seg' };

export interface CompiledGlob {
  readonly pattern: string;
  readonly dialect: GlobDialect;
  /** The text before the first wildcard (for tenant binding, specificity and lints). */
  readonly literalPrefix: string;
  /** Number of literal characters in the pattern (specificity). */
  readonly literalChars: number;
  readonly hasWildcard: boolean;
  /** Whether some wildcard may match `/` or `:`. */
  readonly crossesSegments: boolean;
  /** Matches the whole value. `value` must already be case-folded when the glob was compiled folded. */
  match(value: string): boolean;
}

export const MAX_GLOB_LENGTH = 512;

function tokenize(pattern: string, dialect: GlobDialect): GlobToken[] {
  if (pattern.length === 0) throw new GlobSyntaxError('an empty glob never matches anything useful: give a pattern');
  if (pattern.length > MAX_GLOB_LENGTH) throw new GlobSyntaxError(`glob is ${pattern.length} characters; the limit is ${MAX_GLOB_LENGTH}`);
  const out: GlobToken[] = [];
  const lit = (c: string) => {
    const last = out[out.length - 1];
    if (last && last.t === 'lit') last.v += c;
    else out.push({ t: 'lit', v: c });
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (dialect === 'vault') {
      if (c === '*') out.push({ t: 'star' });
      else lit(c);
      continue;
    }
    if (dialect === 'aws') {
      if (c === '*') out.push({ t: 'star' });
      else if (c === '?') out.push({ t: 'any1' });
      else if (c === '$' && pattern[i + 1] === '{') {
        const end = pattern.indexOf('}', i + 2);
        const inner = end < 0 ? '' : pattern.slice(i + 2, end);
        if (inner === '*' || inner === '?' || inner === '$') {
          lit(inner);
          i = end;
        } else {
          throw new GlobSyntaxError(`AWS policy variable \${${inner}} is not supported: only \${*}, \${?} and \${$} escapes can be imported`);
        }
      } else lit(c);
      continue;
    }
    // native
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw new GlobSyntaxError('glob ends with a lone "\\": escape a character or remove it');
      lit(next);
      i++;
    } else if (c === '*') {
      if (pattern[i + 1] === '*') {
        out.push({ t: 'globstar' });
        i++;
        while (pattern[i + 1] === '*') i++;
      } else out.push({ t: 'star' });
    } else if (c === '?') out.push({ t: 'any1seg' });
    else if (c === '[' || c === ']' || c === '{' || c === '}') {
      throw new GlobSyntaxError(`"${c}" is reserved in ci-oidc globs: escape it as "\\${c}"`);
    } else lit(c);
  }
  return out;
}

const RE2_META = /[\\.+*?()|[\]{}^$]/g;
function re2Quote(s: string): string {
  return s.replace(RE2_META, '\\$&');
}

function tokenToRe2(t: GlobToken, dialect: GlobDialect): string {
  switch (t.t) {
    case 'lit':
      return re2Quote(t.v);
    case 'star':
      return dialect === 'native' ? '[^/:]*' : '(?s:.*)';
    case 'globstar':
      return '(?s:.*)';
    case 'any1':
      return '(?s:.)';
    case 'any1seg':
      return '[^/:]';
  }
}

/** ASCII-only lower case (policy.md §4: path and ignoreCase comparisons fold ASCII only). */
export function asciiLower(s: string): string {
  let needs = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      needs = true;
      break;
    }
  }
  if (!needs) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : s[i];
  }
  return out;
}

/**
 * Compiles a glob. With `fold`, literals are ASCII-lowercased: callers then lowercase the value too.
 */
export function compileGlob(pattern: string, dialect: GlobDialect, fold = false): CompiledGlob {
  const tokens = tokenize(pattern, dialect).map((t) => (fold && t.t === 'lit' ? { t: 'lit' as const, v: asciiLower(t.v) } : t));
  const firstWild = tokens.findIndex((t) => t.t !== 'lit');
  const literalPrefix = firstWild < 0 ? tokens.map((t) => (t.t === 'lit' ? t.v : '')).join('') : tokens.slice(0, firstWild).map((t) => (t as { v: string }).v).join('');
  const literalChars = tokens.reduce((n, t) => n + (t.t === 'lit' ? t.v.length : 0), 0);
  const hasWildcard = firstWild >= 0;
  const crossesSegments = tokens.some((t) => t.t === 'globstar' || t.t === 'any1' || (t.t === 'star' && dialect !== 'native'));
  let match: (v: string) => boolean;
  if (!hasWildcard) {
    match = (v) => v === literalPrefix;
  } else if (tokens.length === 2 && firstWild === 1 && tokens[1]?.t === 'globstar') {
    match = (v) => v.startsWith(literalPrefix);
  } else if (tokens.length === 2 && firstWild === 1 && tokens[1]?.t === 'star' && dialect !== 'native') {
    match = (v) => v.startsWith(literalPrefix);
  } else {
    const re = RE2JS.compile(tokens.map((t) => tokenToRe2(t, dialect)).join(''));
    match = (v) => re.matches(v);
  }
  return { pattern, dialect, literalPrefix, literalChars, hasWildcard, crossesSegments, match };
}

/** Validates a glob without keeping it; returns the error text or null. */
export function globError(pattern: string, dialect: GlobDialect): string | null {
  try {
    compileGlob(pattern, dialect);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
