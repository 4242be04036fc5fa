/** Shared types of the importers (policy.md §11). */
import type { Lint, PolicyNode, RoleDocument } from '../types.ts';

export type ImportDialect = 'native' | 'aws' | 'vault' | 'octo-sts' | 'gcp' | 'k8s';

export interface ImportContext {
  /** Registration id the imported roles bind. */
  registrationId: string;
  /** The registration's exact `iss` (used to match AWS providers, k8s authenticators, octo-sts issuers). */
  issuerUrl?: string;
  /** Audience assumed when the document names none (octo-sts: its service domain). */
  serviceAudience?: string;
  /** Base role name. */
  name?: string;
  /** AWS: import claim keys AWS does not put in the condition context for this provider. */
  extendedClaimKeys?: boolean;
}

export interface ImportResult {
  roles: RoleDocument[];
  lints: Lint[];
  /** octo-sts `audience_pattern`: the audience is decided by a pattern leaf, not by `audiences`. */
  audienceFromToken?: boolean;
}

export class ImportError extends Error {
  readonly code = 'import_invalid';
}

export function asObject(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ImportError(`${what} must be an object`);
  return v as Record<string, unknown>;
}

export function all(nodes: PolicyNode[]): PolicyNode {
  if (nodes.length === 0) throw new ImportError('the document has no conditions: a role must bind something');
  return nodes.length === 1 ? (nodes[0] as PolicyNode) : { all: nodes };
}

export function roleName(ctx: ImportContext, fallback: string, i?: number): string {
  const base = (ctx.name ?? fallback).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 56) || 'imported';
  return i === undefined ? base : `${base}-${i + 1}`;
}

/** Splits a CEL expression on top-level `&&` (outside strings and parentheses). */
export function celConjuncts(expr: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (depth === 0 && c === '|' && expr[i + 1] === '|') return [expr.trim()];
    else if (depth === 0 && c === '&' && expr[i + 1] === '&') {
      out.push(expr.slice(start, i).trim());
      start = i + 2;
      i++;
    }
  }
  out.push(expr.slice(start).trim());
  return out;
}

/**
 * Top-level `<var>.<claim> == '<literal>'` conjuncts of a CEL condition, as exact (uncoerced) leaves. They
 * repeat what the CEL already requires, so adding them never changes a decision; they let the engine
 * see the tenant binding and index the role.
 */
export function extractEqLeaves(expr: string, variable: string): PolicyNode[] {
  const out: PolicyNode[] = [];
  const re = new RegExp(`^\\(?\\s*${variable}\\.([A-Za-z_][A-Za-z0-9_]*)\\s*==\\s*(?:'([^'\\\\]*)'|"([^"\\\\]*)")\\s*\\)?$`);
  for (const part of celConjuncts(expr)) {
    const m = re.exec(part);
    if (m) out.push({ claim: m[1] as string, eq: (m[2] ?? m[3]) as string, dialect: 'gcp' });
  }
  return out;
}
