/**
 * Claim-value hygiene for certificate identities (spec signing-ca.md §8.2 "URI safety", security-tests G1).
 * Ordinary values stay byte-identical to Fulcio's output; hostile ones are refused or encoded.
 */

export class UnsafeClaimError extends Error {
  constructor(
    readonly code: 'claim_control_character' | 'claim_whitespace_in_uri' | 'certificate_uri_invalid',
    message: string,
  ) {
    super(message);
    this.name = 'UnsafeClaimError';
  }
}

// C0, DEL, C1, and the Unicode line/paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const WHITESPACE = /\s/;
// RFC 3986 unreserved, sub-delims, ':', '@' and '/' pass unchanged; everything else is percent-encoded.
const URI_SAFE = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]$/;
const URI_SAFE_STRING = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;

export function assertNoControl(value: string, what: string): void {
  if (CONTROL.test(value)) {
    throw new UnsafeClaimError('claim_control_character', `${what} contains a control character; the issuer must not sign such values`);
  }
}

/** Escapes one interpolated value for a URI-valued output. */
export function encodeUriComponentValue(value: string, what: string): string {
  assertNoControl(value, what);
  if (WHITESPACE.test(value)) {
    throw new UnsafeClaimError('claim_whitespace_in_uri', `${what} contains whitespace and cannot be placed in a URI`);
  }
  if (URI_SAFE_STRING.test(value)) return value;
  let out = '';
  for (const ch of value) {
    if (URI_SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const b of Buffer.from(ch, 'utf8')) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * Checks that a finished URI-valued output parses back to exactly itself: no dot segments, no userinfo,
 * nothing a URL parser would rewrite. `requireHttps` applies to the SAN, which must be an absolute https URI.
 */
export function assertCanonicalUri(uri: string, what: string, requireHttps: boolean): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(uri);
  } catch {
    parsed = undefined;
  }
  if (!parsed) {
    if (requireHttps) throw new UnsafeClaimError('certificate_uri_invalid', `${what} is not an absolute URI: ${JSON.stringify(uri)}`);
    return;
  }
  if (requireHttps && parsed.protocol !== 'https:') {
    throw new UnsafeClaimError('certificate_uri_invalid', `${what} must be an https URI`);
  }
  if (parsed.username || parsed.password) {
    throw new UnsafeClaimError('certificate_uri_invalid', `${what} must not contain userinfo`);
  }
  if (requireHttps && !parsed.hostname) throw new UnsafeClaimError('certificate_uri_invalid', `${what} has no host`);
  if (parsed.href !== uri) {
    throw new UnsafeClaimError(
      'certificate_uri_invalid',
      `${what} does not parse back to itself (dot segments, backslashes or an unusual host): ${JSON.stringify(uri)}`,
    );
  }
}
