/**
 * Stringifies JSON claim values the way Fulcio's `ci-provider` principal does before templating:
 * whole-number floats as integers without exponent, other floats as the shortest decimal without
 * exponent, booleans as `true`/`false`, arrays and objects with Go's `%v` (`[a b]`, `map[k:v]`, keys sorted).
 */

function expandExponent(s: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, intPart, frac = '', expStr] = m;
  const exp = Number(expStr);
  const digits = intPart! + frac;
  const point = intPart!.length + exp;
  let out: string;
  if (point <= 0) out = '0.' + '0'.repeat(-point) + digits;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = digits.slice(0, point) + '.' + digits.slice(point);
  out = out.replace(/^0+(?=\d)/, '');
  if (out.includes('.')) out = out.replace(/\.?0+$/, '');
  return sign + out;
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
  if (Number.isInteger(n)) return Object.is(n, -0) ? '0' : BigInt(n).toString();
  return expandExponent(String(n));
}

/** Go `%v` of a decoded JSON value (inside containers). */
function goV(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return formatNumber(v);
  if (Array.isArray(v)) return '[' + v.map(goV).join(' ') + ']';
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return 'map[' + keys.map((k) => `${k}:${goV((v as Record<string, unknown>)[k])}`).join(' ') + ']';
  }
  return String(v);
}

/**
 * Converts a claim value for template data. `null` counts as absent (GitLab emits null
 * `ci_config_ref_uri`; a null there once crashed Fulcio), so the caller gets `undefined`.
 */
export function stringifyClaim(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  return goV(v);
}
