/** Claim addressing (policy.md §3): a top-level name, an RFC 6901 JSON pointer, or `$sub.<component>`. */

export type ClaimRef = { kind: 'name'; name: string } | { kind: 'pointer'; tokens: string[] } | { kind: 'sub'; component: string };

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$/;

export function parseClaimRef(claim: unknown): ClaimRef | string {
  if (typeof claim !== 'string' || claim.length === 0) return 'claim must be a non-empty string';
  if (claim.length > 256) return 'claim reference is longer than 256 characters';
  if (claim.startsWith('/')) {
    const tokens = claim
      .slice(1)
      .split('/')
      .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (/~[^01]|~$/.test(claim)) return `invalid JSON pointer ${JSON.stringify(claim)}: "~" must be followed by 0 or 1`;
    return { kind: 'pointer', tokens };
  }
  if (claim.startsWith('$sub.')) {
    const component = claim.slice(5);
    if (!/^[a-z_][a-z0-9_]{0,63}$/.test(component)) return `invalid sub component ${JSON.stringify(component)}`;
    return { kind: 'sub', component };
  }
  if (!NAME.test(claim)) return `invalid claim name ${JSON.stringify(claim)}: use a top-level name, a JSON pointer starting with "/", or $sub.<component>`;
  return { kind: 'name', name: claim };
}

function own(obj: unknown, key: string): unknown {
  if (obj === null || typeof obj !== 'object') return undefined;
  if (Array.isArray(obj)) {
    if (!/^(0|[1-9][0-9]{0,5})$/.test(key)) return undefined;
    return obj[Number(key)];
  }
  return Object.prototype.hasOwnProperty.call(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
}

/** Parses `sub` into its `name:value` pairs; null when it is not pair-shaped. */
export function parseSubPairs(sub: unknown, escaped: boolean): Map<string, string> | null {
  if (typeof sub !== 'string') return null;
  const parts = sub.split(':');
  const out = new Map<string, string>();
  let i = 0;
  while (i < parts.length) {
    const key = parts[i] as string;
    // GitHub's bare `pull_request` context has no value.
    if (key === 'pull_request' && (i + 1 === parts.length || parts.length % 2 === 1)) {
      out.set(key, 'true');
      i++;
      continue;
    }
    if (i + 1 >= parts.length) return null;
    const raw = parts[i + 1] as string;
    const value = escaped ? raw.replace(/%3A|%25/gi, (m) => (m === '%25' ? '%' : ':')) : raw;
    if (!out.has(key)) out.set(key, value);
    i += 2;
  }
  return out;
}

export interface ResolveContext {
  claims: Readonly<Record<string, unknown>>;
  subEscaped: boolean;
  subPairs?: Map<string, string> | null;
}

/** The claim value, or undefined when absent (JSON null is returned as null). */
export function resolveClaim(ref: ClaimRef, ctx: ResolveContext): unknown {
  switch (ref.kind) {
    case 'name':
      return own(ctx.claims, ref.name);
    case 'pointer': {
      let cur: unknown = ctx.claims;
      for (const t of ref.tokens) {
        cur = own(cur, t);
        if (cur === undefined) return undefined;
      }
      return cur;
    }
    case 'sub': {
      if (ctx.subPairs === undefined) ctx.subPairs = parseSubPairs(own(ctx.claims, 'sub'), ctx.subEscaped);
      const mapped = ref.component === 'repository' ? 'repo' : ref.component;
      return ctx.subPairs?.get(ref.component) ?? ctx.subPairs?.get(mapped);
    }
  }
}
