/**
 * GitLab variable expansion for `aud` and job claim values: `$VAR` and `${VAR}`, once, never
 * recursive; `$$` is a literal `$`; an unknown variable expands to the empty string (GitLab).
 */
const PATTERN = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;
const MAX_EXPANDED = 8192;

export function expandVariables(value: string, variables: ReadonlyMap<string, string>): string {
  const out = value.replace(PATTERN, (match, braced: string | undefined, bare: string | undefined) => {
    if (match === '$$') return '$';
    return variables.get((braced ?? bare)!) ?? '';
  });
  if (out.length > MAX_EXPANDED) return out.slice(0, MAX_EXPANDED + 1);
  return out;
}

/** Expands strings, and strings inside arrays; other JSON values pass through. */
export function expandClaimValue(value: unknown, variables: ReadonlyMap<string, string>): unknown {
  if (typeof value === 'string') return expandVariables(value, variables);
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? expandVariables(v, variables) : v));
  return value;
}
