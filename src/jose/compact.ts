import { isAscii } from 'node:buffer';

/**
 * Strict compact-JWS parsing. Everything here runs before any key lookup or crypto: length, charset and
 * segment count first, then canonical base64url, fatal UTF-8, a bounded duplicate-member scan and only
 * then JSON.parse. Node 20 is lenient on every one of these points (verification.md §4), we are not.
 */

export type CompactErrorCode = 'token_too_large' | 'token_malformed' | 'header_invalid' | 'duplicate_member';

export class CompactJwsError extends Error {
  readonly code: CompactErrorCode;

  constructor(code: CompactErrorCode, message: string) {
    super(message);
    this.name = 'CompactJwsError';
    this.code = code;
  }
}

export interface JsonLimits {
  /** Deepest nesting of objects and arrays; the top-level object is depth 1. */
  maxDepth: number;
  /** Members of the top-level object. */
  maxTopLevelMembers: number;
  /** Longest string (decoded UTF-16 length), for keys and values. */
  maxStringLength: number;
}

export interface CompactLimits {
  maxTokenLength: number;
  maxHeaderBytes: number;
  maxPayloadBytes: number;
  payload: JsonLimits;
}

export const DEFAULT_COMPACT_LIMITS: Readonly<CompactLimits> = Object.freeze({
  maxTokenLength: 20000,
  maxHeaderBytes: 2048,
  maxPayloadBytes: 16384,
  payload: Object.freeze({ maxDepth: 8, maxTopLevelMembers: 256, maxStringLength: 8192 }),
});

export const HEADER_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({ maxDepth: 4, maxTopLevelMembers: 64, maxStringLength: 1024 });

const SEGMENT_CHARSET = /^[A-Za-z0-9_-]*$/;

/** Value of a base64url character, or -1. */
function b64Value(c: number): number {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  if (c === 45) return 62;
  if (c === 95) return 63;
  return -1;
}

/**
 * True when `segment` is the one canonical unpadded base64url spelling of its bytes: charset only,
 * `length % 4 != 1`, and zero trailing bits (so `AB` is refused where Node would decode it like `AA`).
 * Assumes nothing about the caller; checks the charset itself.
 */
export function isCanonicalBase64url(segment: string): boolean {
  if (!SEGMENT_CHARSET.test(segment)) return false;
  return hasCanonicalTail(segment);
}

function hasCanonicalTail(segment: string): boolean {
  const rem = segment.length % 4;
  if (rem === 1) return false;
  if (rem === 0) return true;
  const last = b64Value(segment.charCodeAt(segment.length - 1));
  // 2 chars carry 12 bits for 1 byte (4 spare), 3 chars carry 18 bits for 2 bytes (2 spare).
  return rem === 2 ? (last & 0x0f) === 0 : (last & 0x03) === 0;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Fatal UTF-8 decoding; a byte-order mark is refused rather than stripped. */
export function decodeUtf8Strict(bytes: Uint8Array): string | null {
  // Pure ASCII is valid UTF-8 and cannot hold a BOM: take the cheap path.
  if (isAscii(bytes)) {
    return Buffer.isBuffer(bytes) ? bytes.toString('latin1') : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return null;
  }
  if (text.charCodeAt(0) === 0xfeff) return null;
  return text;
}

export type JsonProblem = 'syntax' | 'duplicate' | 'depth' | 'members' | 'string' | 'not_object';

export class StrictJsonError extends Error {
  readonly problem: JsonProblem;

  constructor(problem: JsonProblem, message: string) {
    super(message);
    this.name = 'StrictJsonError';
    this.problem = problem;
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Scans JSON text for duplicate member names (after unescaping, at every depth), nesting depth,
 * top-level member count, string length and lone surrogates. Runs before JSON.parse, which keeps the
 * last duplicate silently. Linear in the text length and iterative, so hostile nesting cannot blow the stack.
 * Strings are skipped with native indexOf; only member names are materialised.
 */
export function scanJson(text: string, limits: JsonLimits, memberCounts?: number[]): void {
  // One entry per open container: a Set of member names for objects, null for arrays. In counting mode
  // (memberCounts given) objects get no Set: their member counts are recorded in document order instead,
  // and `parseStrictJsonObject` compares them with the parsed result, which loses every duplicate.
  const stack: (Set<string> | number | null)[] = [];
  let expectKey = false;
  let topLevelMembers = 0;
  const n = text.length;
  // Position of the next backslash at or after the current string (amortised: recomputed only when passed).
  let nextBackslash = text.indexOf('\\');
  if (nextBackslash === -1) nextBackslash = n;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // "
      let end = text.indexOf('"', i + 1);
      if (nextBackslash < i) {
        nextBackslash = text.indexOf('\\', i);
        if (nextBackslash === -1) nextBackslash = n;
      }
      const escaped = nextBackslash < end;
      if (escaped) {
        // Skip quotes preceded by an odd number of backslashes.
        while (end !== -1) {
          let k = end - 1;
          while (text.charCodeAt(k) === 0x5c) k--;
          if (((end - 1 - k) & 1) === 0) break;
          end = text.indexOf('"', end + 1);
        }
      }
      if (end === -1) throw new StrictJsonError('syntax', 'unterminated JSON string');
      let value: string | undefined;
      if (escaped) {
        try {
          value = JSON.parse(text.slice(i, end + 1)) as string;
        } catch {
          throw new StrictJsonError('syntax', 'invalid escape in JSON string');
        }
        if (LONE_SURROGATE.test(value)) throw new StrictJsonError('syntax', 'lone surrogate in JSON string');
        if (value.length > limits.maxStringLength) throw new StrictJsonError('string', `JSON string longer than ${limits.maxStringLength} characters`);
      } else if (end - i - 1 > limits.maxStringLength) {
        throw new StrictJsonError('string', `JSON string longer than ${limits.maxStringLength} characters`);
      }
      if (expectKey) {
        const members = stack[stack.length - 1] as Set<string> | number;
        if (typeof members === 'number') {
          (memberCounts as number[])[members] = ((memberCounts as number[])[members] as number) + 1;
        } else {
          const name = value ?? text.slice(i + 1, end);
          if (members.has(name)) throw new StrictJsonError('duplicate', `duplicate JSON member ${JSON.stringify(name.slice(0, 64))}`);
          members.add(name);
        }
        if (stack.length === 1 && ++topLevelMembers > limits.maxTopLevelMembers) {
          throw new StrictJsonError('members', `more than ${limits.maxTopLevelMembers} top-level members`);
        }
        expectKey = false;
      }
      i = end + 1;
      continue;
    }
    switch (c) {
      case 0x7b: // {
        if (stack.length >= limits.maxDepth) throw new StrictJsonError('depth', `JSON nesting deeper than ${limits.maxDepth}`);
        if (memberCounts) {
          stack.push(memberCounts.length);
          memberCounts.push(0);
        } else stack.push(new Set());
        expectKey = true;
        break;
      case 0x5b: // [
        if (stack.length >= limits.maxDepth) throw new StrictJsonError('depth', `JSON nesting deeper than ${limits.maxDepth}`);
        stack.push(null);
        expectKey = false;
        break;
      case 0x7d: // }
      case 0x5d: // ]
        if (stack.length === 0) throw new StrictJsonError('syntax', 'unbalanced JSON');
        stack.pop();
        expectKey = false;
        break;
      case 0x2c: // ,
        expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
        break;
    }
    i++;
  }
  if (stack.length !== 0) throw new StrictJsonError('syntax', 'unbalanced JSON');
}

/**
 * Strict JSON object parsing: duplicate scan and caps first, then JSON.parse; the result must be an
 * object, and is returned deep-frozen (callers hold verified data that nothing may alter).
 */
export function parseStrictJsonObject(text: string, limits: JsonLimits): Record<string, unknown> {
  if (text.charCodeAt(0) === 0xfeff) throw new StrictJsonError('syntax', 'byte-order mark before JSON');
  // Without a backslash every '"' delimits a string, so one light pass counts the strings exactly.
  if (text.indexOf('\\') === -1) return parseUnescapedJsonObject(text, limits);
  const counts: number[] = [];
  scanJson(text, limits, counts);
  const value = parseJsonObject(text);
  const verdict = compareMemberCounts(value, counts, { next: 0 });
  // A lost member means a duplicate; digit-leading names may be reordered by JSON.parse, so then the
  // exact name-by-name scan decides. Either way the Set scan names the duplicate.
  if (verdict !== COUNTS_MATCH) {
    scanJson(text, limits);
    if (verdict === COUNTS_LOST) throw new StrictJsonError('duplicate', 'duplicate JSON member');
  }
  freezeCountingStrings(value, 1, limits);
  return value;
}

function parseJsonObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StrictJsonError('syntax', 'invalid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new StrictJsonError('not_object', 'JSON value is not an object');
  }
  return value as Record<string, unknown>;
}

/**
 * The common case: text without any backslash, so no string holds a '"' and none needs unescaping.
 * One pass, before JSON.parse, counts the strings and checks nesting depth and string lengths; the
 * parse and the duplicate verdict are `parseQuoteCountedObject`'s, as on the compact-token hot path.
 */
function parseUnescapedJsonObject(text: string, limits: JsonLimits): Record<string, unknown> {
  const n = text.length;
  let strings = 0;
  let depth = 0;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const end = text.indexOf('"', i + 1);
      if (end === -1) throw new StrictJsonError('syntax', 'unterminated JSON string');
      if (end - i - 1 > limits.maxStringLength) throw stringTooLong(limits);
      strings++;
      i = end + 1;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      if (++depth > limits.maxDepth) throw new StrictJsonError('depth', `JSON nesting deeper than ${limits.maxDepth}`);
    } else if (c === 0x7d || c === 0x5d) depth--;
    i++;
  }
  return parseQuoteCountedObject(text, strings * 2, limits);
}

/**
 * Escape-free JSON text whose '"' characters were counted beforehand (`quotes`): without a backslash
 * every '"' delimits a string, so the text holds `quotes / 2` strings, member names included. JSON.parse
 * keeps one member per duplicated name and drops the other's name and value, so the parsed tree holds
 * fewer strings exactly when a name was duplicated, at any depth. The freezing walk counts them and
 * applies the depth, string-length and member limits to what was kept (a dropped member fails anyway).
 * JSON.parse thus runs before the depth check, which is safe only for bounded text: V8's parser is
 * iterative, and a compact payload is capped (16 KiB), so hostile nesting costs bounded work and no
 * stack. `parseStrictJsonObject`, for documents from the network, checks depth and lengths before parsing.
 */
function parseQuoteCountedObject(text: string, quotes: number, limits: JsonLimits): Record<string, unknown> {
  const value = parseJsonObject(text);
  Object.freeze(value);
  const max = limits.maxStringLength;
  let top = 0;
  let strings = 0;
  for (const k in value) {
    top++;
    if (k.length > max) throw stringTooLong(limits);
    const v = value[k];
    if (typeof v === 'string') {
      if (v.length > max) throw stringTooLong(limits);
      strings += 2;
    } else {
      strings++;
      if (v !== null && typeof v === 'object') strings += freezeCountingStrings(v, 2, limits);
    }
  }
  if (top > limits.maxTopLevelMembers) throw new StrictJsonError('members', `more than ${limits.maxTopLevelMembers} top-level members`);
  if (strings * 2 !== quotes) throw new StrictJsonError('duplicate', 'duplicate JSON member');
  return value;
}

function stringTooLong(limits: JsonLimits): StrictJsonError {
  return new StrictJsonError('string', `JSON string longer than ${limits.maxStringLength} characters`);
}

/** Deep-freezes a container at nesting `depth` (top level 1) and returns how many strings it holds, names included. */
function freezeCountingStrings(node: object, depth: number, limits: JsonLimits): number {
  if (depth > limits.maxDepth) throw new StrictJsonError('depth', `JSON nesting deeper than ${limits.maxDepth}`);
  Object.freeze(node);
  const max = limits.maxStringLength;
  let strings = 0;
  if (Array.isArray(node)) {
    for (const v of node as unknown[]) {
      if (typeof v === 'string') {
        if (v.length > max) throw stringTooLong(limits);
        strings++;
      } else if (v !== null && typeof v === 'object') strings += freezeCountingStrings(v, depth + 1, limits);
    }
    return strings;
  }
  for (const k in node) {
    if (k.length > max) throw stringTooLong(limits);
    strings++;
    const v = (node as Record<string, unknown>)[k];
    if (typeof v === 'string') {
      if (v.length > max) throw stringTooLong(limits);
      strings++;
    } else if (v !== null && typeof v === 'object') strings += freezeCountingStrings(v, depth + 1, limits);
  }
  return strings;
}

// The scratch memory as 32-bit words, for counting bytes four at a time (remade when scratch grows;
// compared by the Buffer itself, since reading `.buffer` costs a runtime call).
let scratchWords: Int32Array<ArrayBufferLike> = new Int32Array(0);
let scratchWordsOf: Buffer | undefined;

/**
 * How many bytes of `b[0, n)` are '"', and whether all are ASCII (SWAR: a byte equal to 0x22 becomes a
 * zero byte under XOR, and zero bytes are marked exactly, without carries between bytes). UTF-8
 * multi-byte sequences hold no byte below 0x80, so the count is exact for any valid UTF-8.
 */
function countQuotes(b: Buffer, n: number): { quotes: number; ascii: boolean } {
  if (scratchWordsOf !== b) {
    scratchWords = new Int32Array(b.buffer, b.byteOffset, b.length >>> 2);
    scratchWordsOf = b;
  }
  const words = scratchWords;
  const full = n >>> 2;
  let quotes = 0;
  let high = 0;
  for (let k = 0; k < full; k++) {
    const w = words[k] as number;
    high |= w;
    const x = w ^ 0x22222222;
    const zero = ~(((x & 0x7f7f7f7f) + 0x7f7f7f7f) | x) & 0x80808080;
    quotes += Math.imul(zero >>> 7, 0x01010101) >>> 24;
  }
  for (let i = full << 2; i < n; i++) {
    const c = b[i] as number;
    high |= c;
    if (c === 0x22) quotes++;
  }
  return { quotes, ascii: (high & 0x80808080) === 0 };
}

const COUNTS_MATCH = 0;
const COUNTS_LOST = 1;
const COUNTS_UNSURE = 2;

/** Pre-order walk in document order: every object must still have as many members as the text named. */
function compareMemberCounts(value: object, counts: readonly number[], pos: { next: number }): number {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (item !== null && typeof item === 'object') {
        const r = compareMemberCounts(item as object, counts, pos);
        if (r !== COUNTS_MATCH) return r;
      }
    }
    return COUNTS_MATCH;
  }
  const expected = counts[pos.next++];
  let n = 0;
  // One enumeration decides the count; a second, for nested values, runs only when there are any
  // (ID-token payloads are mostly flat).
  let nested = false;
  for (const k in value) {
    n++;
    const c = k.charCodeAt(0);
    // Integer-like names are enumerated before the others, breaking document order.
    if (c >= 0x30 && c <= 0x39) return COUNTS_UNSURE;
    const item = (value as Record<string, unknown>)[k];
    if (item !== null && typeof item === 'object') nested = true;
  }
  if (n !== expected) return COUNTS_LOST;
  if (!nested) return COUNTS_MATCH;
  for (const k in value) {
    const item = (value as Record<string, unknown>)[k];
    if (item !== null && typeof item === 'object') {
      const r = compareMemberCounts(item, counts, pos);
      if (r !== COUNTS_MATCH) return r;
    }
  }
  return COUNTS_MATCH;
}

/**
 * Decodes a segment and proves it was the one canonical spelling of its bytes: re-encoding must give the
 * identical string. That single comparison refuses every character outside the base64url alphabet
 * (Node's decoder would skip or reinterpret them: `=`, `+`, `/`, whitespace, anything else), a length
 * `% 4 == 1` and non-zero spare bits, and costs less than a separate charset pass over the token.
 */
function decodeCanonical(segment: string): Buffer | null {
  const bytes = Buffer.from(segment, 'base64url');
  return bytes.toString('base64url') === segment ? bytes : null;
}

/**
 * Step 1: a string within the size cap (checked before anything else) with exactly two dots, header and
 * signature non-empty; returns the dot positions. JSON serialization, JWE (five segments) and appended
 * data all fail here.
 */
function dotsOf(token: unknown, maxTokenLength: number): [string, number, number] {
  if (typeof token !== 'string') throw new CompactJwsError('token_malformed', 'the token is not a string');
  if (token.length > maxTokenLength) throw new CompactJwsError('token_too_large', `the token is longer than ${maxTokenLength} characters`);
  const d1 = token.indexOf('.');
  const d2 = d1 === -1 ? -1 : token.indexOf('.', d1 + 1);
  if (d1 <= 0 || d2 === -1 || d2 === token.length - 1 || token.indexOf('.', d2 + 1) !== -1) {
    throw new CompactJwsError('token_malformed', 'the token is not a compact JWS (three base64url segments separated by dots)');
  }
  return [token, d1, d2];
}

/**
 * A compact JWS that passed steps 1–2 (`parseCompactJws`), held as the token string and its dot
 * positions: no Buffer is made per token. The payload is already decoded to text; the signature is
 * decoded again, into scratch memory, only at the moment it is checked.
 */
export interface CompactJws {
  readonly token: string;
  /** Index of the first and second dot: the header segment is `token[0, d1)`, the signing input `token[0, d2)`. */
  readonly d1: number;
  readonly d2: number;
  /** The payload as text, or null when its bytes are not valid UTF-8 (refused at step 5). */
  readonly payloadText: string | null;
  /**
   * How many '"' the payload holds, counted from its bytes while they were in scratch memory, so step 5
   * needs no pass over the text. Only `parseCompactJws` may set it: duplicate detection rests on it.
   */
  readonly payloadQuotes: number;
}

// Scratch memory for decoding. Only synchronous code in this module writes or reads it, and no view of
// it outlives the call that made it, so concurrent verifications (which interleave only at awaits)
// cannot see each other's bytes.
let scratch = Buffer.allocUnsafeSlow(4096);

function scratchOf(size: number): Buffer {
  if (scratch.length < size) scratch = Buffer.allocUnsafeSlow(Math.max(size, scratch.length * 2));
  return scratch;
}

/**
 * Decodes `token[start, end)` into `into` at `offset` when it is the one canonical unpadded base64url
 * spelling of its bytes; returns the byte count, or -1. The token is known to be ASCII. Node's decoder
 * skips foreign characters and stops at '=', so any of them leaves fewer bytes than the length implies;
 * it also takes the '+' and '/' of standard base64, which are refused by name; and the spare bits of
 * the last character must be zero (`AB` is not a spelling of the byte `AA` decodes to).
 */
function decodeCanonicalInto(token: string, start: number, end: number, into: Buffer, offset = 0): number {
  const len = end - start;
  const rem = len & 3;
  if (rem === 1) return -1;
  const expected = (len >> 2) * 3 + (rem === 0 ? 0 : rem - 1);
  const segment = start === 0 && end === token.length ? token : token.slice(start, end);
  if (into.write(segment, offset, 'base64url') !== expected) return -1;
  if (segment.indexOf('+') !== -1 || segment.indexOf('/') !== -1) return -1;
  if (rem !== 0) {
    const last = b64Value(segment.charCodeAt(len - 1));
    if ((rem === 2 ? last & 0x0f : last & 0x03) !== 0) return -1;
  }
  return expected;
}

/**
 * Steps 1–2: size first (nothing is decoded past the cap), ASCII, exactly three segments, header and
 * signature non-empty, canonical base64url for payload and signature. The header segment is left to
 * `decodeHeaderSegment` (memoised per exact segment by its callers). The payload may be empty at the JWS
 * layer (RFC 7515; Wycheproof "emptyPayload" vectors are valid); an ID token's payload must still be a
 * JSON object, so an empty one fails at step 5.
 */
export function parseCompactJws(
  input: unknown,
  limits: Pick<CompactLimits, 'maxTokenLength'> & Partial<Pick<CompactLimits, 'maxPayloadBytes'>> = DEFAULT_COMPACT_LIMITS,
): CompactJws {
  const [token, d1, d2] = dotsOf(input, limits.maxTokenLength);
  // One UTF-8 byte per character exactly when every character is ASCII; Node's base64 decoder would
  // read only the low byte of a wider character.
  if (Buffer.byteLength(token, 'utf8') !== token.length) {
    throw new CompactJwsError('token_malformed', 'a token segment is not canonical unpadded base64url');
  }
  const maxPayloadBytes = limits.maxPayloadBytes ?? DEFAULT_COMPACT_LIMITS.maxPayloadBytes;
  const payloadChars = d2 - d1 - 1;
  if (Math.floor((payloadChars * 3) / 4) > maxPayloadBytes) {
    throw new CompactJwsError('token_malformed', `the JWS payload is larger than ${maxPayloadBytes} bytes`);
  }
  const buf = scratchOf(Math.max(payloadChars, token.length - d2));
  if (decodeCanonicalInto(token, d2 + 1, token.length, buf) === -1) {
    throw new CompactJwsError('token_malformed', 'a token segment is not canonical unpadded base64url');
  }
  const n = decodeCanonicalInto(token, d1 + 1, d2, buf);
  if (n === -1) throw new CompactJwsError('token_malformed', 'a token segment is not canonical unpadded base64url');
  const { quotes, ascii } = countQuotes(buf, n);
  const payloadText = ascii ? buf.toString('latin1', 0, n) : decodeUtf8Strict(buf.subarray(0, n));
  return { token, d1, d2, payloadText, payloadQuotes: quotes };
}

/** Step 5 on the hot path: the payload text as a strict, deep-frozen JSON object. */
export function parseCompactPayload(jws: CompactJws, limits: Pick<CompactLimits, 'payload'> = DEFAULT_COMPACT_LIMITS): Record<string, unknown> {
  const text = jws.payloadText;
  if (text === null) throw new CompactJwsError('token_malformed', 'the JWS payload is not valid UTF-8');
  try {
    // A BOM never reaches here (decodeUtf8Strict refuses it); escapes need the name-by-name scan.
    if (text.indexOf('\\') === -1) return parseQuoteCountedObject(text, jws.payloadQuotes, limits.payload);
    return parseStrictJsonObject(text, limits.payload);
  } catch (err) {
    if (err instanceof StrictJsonError) throw new CompactJwsError(jsonErrorCode(err, 'token_malformed'), `the JWS payload is invalid: ${err.message}`);
    throw err;
  }
}

/**
 * Step 9's bytes: calls `check(signingInput, signature)` with views of scratch memory, synchronously,
 * so no await can fall between writing them and the check. `check` must not keep the views.
 */
export function withSigningBytes(jws: CompactJws, check: (signingInput: Buffer, signature: Buffer) => boolean): boolean {
  const { token, d2 } = jws;
  const sigChars = token.length - d2 - 1;
  const buf = scratchOf(d2 + sigChars);
  const sigBytes = decodeCanonicalInto(token, d2 + 1, token.length, buf, d2);
  if (sigBytes === -1) return false;
  buf.write(token, 0, d2, 'latin1');
  return check(buf.subarray(0, d2), buf.subarray(d2, d2 + sigBytes));
}

function jsonErrorCode(err: StrictJsonError, fallback: CompactErrorCode): CompactErrorCode {
  return err.problem === 'duplicate' ? 'duplicate_member' : fallback;
}

/** Step 3: the protected header as a JSON object (no rules applied yet). */
export function decodeHeaderSegment(segment: string, maxBytes = DEFAULT_COMPACT_LIMITS.maxHeaderBytes): Record<string, unknown> {
  // 4 chars carry 3 bytes; refuse before decoding when the segment cannot fit.
  if (Math.floor((segment.length * 3) / 4) > maxBytes) {
    throw new CompactJwsError('header_invalid', `the JWS header is larger than ${maxBytes} bytes`);
  }
  const bytes = segment.length === 0 ? null : decodeCanonical(segment);
  if (bytes === null) throw new CompactJwsError('token_malformed', 'the JWS header segment is not canonical unpadded base64url');
  const text = decodeUtf8Strict(bytes);
  if (text === null) throw new CompactJwsError('header_invalid', 'the JWS header is not valid UTF-8');
  try {
    return parseStrictJsonObject(text, HEADER_JSON_LIMITS);
  } catch (err) {
    if (err instanceof StrictJsonError) throw new CompactJwsError(jsonErrorCode(err, 'header_invalid'), `the JWS header is invalid: ${err.message}`);
    throw err;
  }
}
