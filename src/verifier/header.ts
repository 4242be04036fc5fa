import { CompactJwsError, decodeHeaderSegment } from '../jose/compact.ts';
import { isVerifyAlg, type VerifyAlg } from '../jose/verify-signature.ts';
import { VerificationError } from './errors.ts';

/** A header that passed the §5 rules, except `typ`, which depends on the caller's expectation. */
export interface CheckedHeader {
  readonly header: Readonly<Record<string, unknown>>;
  readonly alg: VerifyAlg;
  readonly kid: string | undefined;
  /** Lower-cased `typ`, or undefined when absent. */
  readonly typ: string | undefined;
}

const KEY_CARRYING = ['jwk', 'jku', 'x5u', 'x5c'] as const;
const JWE_MEMBERS = ['enc', 'zip', 'epk', 'p2c', 'p2s', 'iv', 'tag', 'apu', 'apv'] as const;
const KID_PATTERN = /^[\x20-\x7e]{1,256}$/;

function checkHeader(segment: string): CheckedHeader {
  let header: Record<string, unknown>;
  try {
    header = decodeHeaderSegment(segment);
  } catch (err) {
    if (err instanceof CompactJwsError) throw new VerificationError(err.code, err.message);
    throw err;
  }
  const alg = header.alg;
  if (typeof alg !== 'string') throw new VerificationError('header_invalid', 'the header has no string alg');
  if (!isVerifyAlg(alg)) throw new VerificationError('alg_not_allowed', `alg ${JSON.stringify(alg.slice(0, 32))} is never accepted`);
  if ('crit' in header) throw new VerificationError('crit_unsupported', 'the header has a crit member');
  if ('b64' in header) throw new VerificationError('crit_unsupported', 'the header has a b64 member (RFC 7797)');
  for (const m of KEY_CARRYING) {
    if (m in header) throw new VerificationError('header_invalid', `the header carries ${m}; keys are never taken from a token`);
  }
  for (const m of JWE_MEMBERS) {
    if (m in header) throw new VerificationError('header_invalid', `the header has the JWE member ${m}; only JWS is accepted`);
  }
  const kid = header.kid;
  if (kid !== undefined && (typeof kid !== 'string' || !KID_PATTERN.test(kid))) {
    throw new VerificationError('header_invalid', 'kid must be a string of 1 to 256 printable ASCII characters');
  }
  const typ = header.typ;
  if (typ !== undefined && typeof typ !== 'string') throw new VerificationError('typ_invalid', 'typ is not a string');
  return Object.freeze({ header: Object.freeze(header), alg, kid, typ: typ?.toLowerCase() });
}

const CACHE_LIMIT = 512;

/**
 * Header validation is a pure function of the exact header segment, and one issuer signs every token
 * with a handful of distinct headers, so checked headers are memoised by segment. Failures are not
 * cached. The cache is bounded: when full it is dropped and refilled.
 */
export class HeaderCache {
  private readonly entries = new Map<string, CheckedHeader>();
  /** The last header seen: most calls repeat it, and matching it needs no slice or hash of the token. */
  private last: { segment: string; checked: CheckedHeader } | undefined;

  /** `check` for the header segment `token[0, end)`. */
  checkPrefix(token: string, end: number): CheckedHeader {
    const last = this.last;
    if (last !== undefined && last.segment.length === end && token.startsWith(last.segment)) return last.checked;
    const segment = token.slice(0, end);
    const checked = this.check(segment);
    this.last = { segment, checked };
    return checked;
  }

  check(segment: string): CheckedHeader {
    const hit = this.entries.get(segment);
    if (hit !== undefined) return hit;
    const checked = checkHeader(segment);
    if (this.entries.size >= CACHE_LIMIT) this.entries.clear();
    this.entries.set(segment, checked);
    return checked;
  }
}

/** `typ` rule: default ID-token rule, or an explicit expected type (with or without `application/`). */
export function checkTyp(typ: string | undefined, expected: string | undefined): void {
  if (expected === undefined) {
    if (typ === undefined || typ === 'jwt' || typ === 'application/jwt') return;
    throw new VerificationError('typ_invalid', `typ ${JSON.stringify(typ.slice(0, 64))} is not an ID token type`);
  }
  const want = expected.toLowerCase().replace(/^application\//, '');
  const got = typ?.replace(/^application\//, '');
  if (got !== want) throw new VerificationError('typ_invalid', `typ ${JSON.stringify(typ?.slice(0, 64) ?? null)} is not ${JSON.stringify(expected)}`);
}
