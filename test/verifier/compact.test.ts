import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  CompactJwsError,
  decodeHeaderSegment,
  decodeUtf8Strict,
  isCanonicalBase64url,
  parseCompactJws,
  parseCompactPayload,
  parseStrictJsonObject,
  scanJson,
  StrictJsonError,
  withSigningBytes,
} from '../../src/jose/compact.ts';
import { b64u } from './helpers.ts';
import { referenceSteps12 } from './reference-compact.ts';

const LIMITS = { maxDepth: 8, maxTopLevelMembers: 256, maxStringLength: 8192 };
const problem = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof StrictJsonError) return err.problem;
    if (err instanceof CompactJwsError) return err.code;
    throw err;
  }
};

describe('canonical base64url (V§4)', () => {
  test('AB vs AA, padding, length % 4 == 1, foreign characters', () => {
    assert.equal(isCanonicalBase64url('AA'), true);
    assert.equal(isCanonicalBase64url('AB'), false);
    assert.equal(isCanonicalBase64url('AAA'), true);
    assert.equal(isCanonicalBase64url('AAB'), false);
    assert.equal(isCanonicalBase64url('AAAAA'), false);
    for (const s of ['AA==', 'A+/A', 'AA AA', 'AA\n', 'AA.']) assert.equal(isCanonicalBase64url(s), false, s);
  });

  test('property: every byte string has exactly one accepted spelling, and it round-trips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const s = Buffer.from(bytes).toString('base64url');
        if (!isCanonicalBase64url(s)) return false;
        if (!Buffer.from(s, 'base64url').equals(Buffer.from(bytes))) return false;
        // Flip the spare low bits of the last character: never accepted.
        if (s.length % 4 === 2 || s.length % 4 === 3) {
          const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
          const last = alphabet.indexOf(s[s.length - 1] as string);
          const alt = alphabet[last | 1] as string;
          if (alt !== s[s.length - 1] && isCanonicalBase64url(s.slice(0, -1) + alt)) return false;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });
});

describe('compact splitting (steps 1–2)', () => {
  test('size is checked before anything else; shape and charset next', () => {
    assert.equal(problem(() => parseCompactJws('a'.repeat(20001))), 'token_too_large');
    assert.equal(problem(() => parseCompactJws('a.'.repeat(100_000))), 'token_too_large');
    // Steps 1–2 for all three segments: the parser checks payload and signature, the (memoised) header
    // decoder checks the header segment.
    const steps12 = (t: unknown) => {
      const p = parseCompactJws(t);
      decodeHeaderSegment(p.token.slice(0, p.d1));
    };
    const h = b64u('{"alg":"RS256"}');
    for (const t of ['a.b', 'a.b.c.d', 'a.b.c.d.e', '.b.c', 'a.b.', `${h}.b.c=`, `${h}.AA .AA`, `${h}.AA.A+A/`, '{"a":1}', '', `${h}.AA.AA.`, `${h}.AA.AAAAA`, `${h}.AB.AA`, `${h}.AA.AB`]) {
      assert.equal(problem(() => steps12(t)), 'token_malformed', t);
    }
    for (const t of ['a .AA.AA', 'AB.AA.AA', `${h}=.AA.AA`, ` ${h}.AA.AA`]) assert.equal(problem(() => steps12(t)), 'token_malformed', t);
    assert.equal(problem(() => steps12(42)), 'token_malformed');
    assert.equal(problem(() => steps12(`${h}.AA.AA`)), 'ok');
    let signingInput = '';
    withSigningBytes(parseCompactJws('AA.AAA.AAAA'), (input) => ((signingInput = input.toString('latin1')), true));
    assert.equal(signingInput, 'AA.AAA');
    assert.equal(parseCompactJws('AA..AA').payloadText, '', 'empty payload allowed at the JWS layer');
  });
});

describe('strict JSON (steps 3, 5)', () => {
  test('duplicates at every depth and after unescaping', () => {
    for (const t of ['{"a":1,"a":2}', '{"x":{"a":1,"a":2}}', '{"x":[{"a":1,"a":2}]}', '{"iss":"evil","\\u0069ss":"https://gitlab.com"}', '{"a\\/b":1,"a/b":2}']) {
      assert.equal(problem(() => parseStrictJsonObject(t, LIMITS)), 'duplicate', t);
    }
    for (const t of ['{"a":{"a":1}}', '{"a":[{"b":1},{"b":2}]}', '{"a":"a","b":"a"}', '{"a":"\\"a\\":1,\\"a\\":2"}']) assert.equal(problem(() => parseStrictJsonObject(t, LIMITS)), 'ok', t);
  });

  test('D5: depth, members, string caps are enforced before JSON.parse; no stack growth', () => {
    assert.equal(problem(() => parseStrictJsonObject(`${'['.repeat(100_000)}${']'.repeat(100_000)}`, LIMITS)), 'depth');
    assert.equal(problem(() => parseStrictJsonObject(`{"a":${'['.repeat(8)}${']'.repeat(8)}}`, LIMITS)), 'depth');
    assert.equal(problem(() => parseStrictJsonObject(`{"a":${'['.repeat(7)}${']'.repeat(7)}}`, LIMITS)), 'ok');
    const many = `{${Array.from({ length: 257 }, (_, i) => `"k${i}":1`).join(',')}}`;
    assert.equal(problem(() => parseStrictJsonObject(many, LIMITS)), 'members');
    assert.equal(problem(() => parseStrictJsonObject(`{"a":"${'x'.repeat(8193)}"}`, LIMITS)), 'string');
    assert.equal(problem(() => parseStrictJsonObject(`{"${'x'.repeat(8193)}":1}`, LIMITS)), 'string');
    assert.equal(problem(() => scanJson('{"a":"unterminated', LIMITS)), 'syntax');
    assert.equal(problem(() => parseStrictJsonObject('{"a":1}}', LIMITS)), 'syntax');
    assert.equal(problem(() => parseStrictJsonObject('{"a":1} x', LIMITS)), 'syntax');
  });

  test('D6: non-objects, lone surrogates, BOM', () => {
    for (const t of ['[1,2]', 'null', '"str"', '1']) assert.equal(problem(() => parseStrictJsonObject(t, LIMITS)), 'not_object', t);
    assert.equal(problem(() => parseStrictJsonObject('{"a":"\\ud800"}', LIMITS)), 'syntax');
    assert.equal(problem(() => parseStrictJsonObject('{"a":"\\udc00x"}', LIMITS)), 'syntax');
    assert.equal(problem(() => parseStrictJsonObject('{"a":"\\ud83d\\ude00"}', LIMITS)), 'ok');
    assert.equal(problem(() => parseStrictJsonObject('\ufeff{}', LIMITS)), 'syntax');
  });

  test('segment decoders: size caps before decoding, fatal UTF-8, error codes', () => {
    assert.equal(problem(() => decodeHeaderSegment(b64u(`{"alg":"RS256","x":"${'a'.repeat(3000)}"}`))), 'header_invalid');
    assert.equal(problem(() => decodeHeaderSegment(b64u(Buffer.from([0x7b, 0xc3, 0x28, 0x7d])))), 'header_invalid');
    assert.equal(problem(() => decodeHeaderSegment(b64u('{"alg":"a","alg":"b"}'))), 'duplicate_member');
    const payload = (segment: string) => parseCompactPayload(parseCompactJws(`AA.${segment}.AA`, { maxTokenLength: 40000 }));
    assert.equal(problem(() => payload(b64u(`{"a":"${'x'.repeat(17000)}"}`))), 'token_malformed');
    assert.equal(problem(() => payload(b64u(Buffer.from([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d])))), 'token_malformed');
    assert.equal(problem(() => payload(b64u('{"a":1,"a":1}'))), 'duplicate_member');
    assert.deepEqual(payload(b64u('{"big":1e400,"neg":-0}')), { big: Infinity, neg: -0 });
  });

  test('property: the scanner agrees with JSON.parse on valid JSON objects without duplicates', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 12 }), (obj) => {
        const text = JSON.stringify(obj);
        return problem(() => parseStrictJsonObject(text, { maxDepth: 16, maxTopLevelMembers: 256, maxStringLength: 8192 })) === 'ok';
      }),
      { numRuns: 300 },
    );
  });
});

describe('duplicate detection by member counts', () => {
  test('digit-leading names, __proto__, nested and array-held objects', () => {
    const ok = ['{"1":1,"0":{"b":1},"a":{"c":1}}', '{"__proto__":{"x":1},"a":1}', '{"a":[{"x":1},{"x":2,"y":[{"z":1}]}],"b":{}}', '{"a":{},"b":[[],[{}]]}'];
    for (const t of ok) assert.equal(problem(() => parseStrictJsonObject(t, LIMITS)), 'ok', t);
    const dup = ['{"1":1,"0":{"b":1,"b":2},"a":1}', '{"10":1,"10":2}', '{"a":[{"x":1},{"x":2,"x":3}]}', '{"__proto__":1,"__proto__":2}', '{"a":{"y":1},"b":2,"a":{"z":1}}', '{"a":[{"q":1}],"a":[{"q":1,"q":2}]}'];
    for (const t of dup) assert.equal(problem(() => parseStrictJsonObject(t, LIMITS)), 'duplicate', t);
  });

  test('flat objects (one enumeration) and objects whose only nested value comes last', () => {
    assert.equal(problem(() => parseStrictJsonObject('{"a":1,"b":"x","c":null,"d":true}', LIMITS)), 'ok');
    assert.equal(problem(() => parseStrictJsonObject('{"a":1,"b":"x","a":2}', LIMITS)), 'duplicate');
    assert.equal(problem(() => parseStrictJsonObject('{"a":1,"b":"x","z":{"c":1,"c":2}}', LIMITS)), 'duplicate');
    assert.equal(problem(() => parseStrictJsonObject('{"a":1,"b":"x","z":[1,{"c":1,"c":2}]}', LIMITS)), 'duplicate');
  });

  test('property: duplicates injected anywhere are always found', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 8 }),
        fc.nat(),
        (obj, pick) => {
          const keys = Object.keys(obj);
          const dupKey = keys[pick % keys.length] as string;
          const text = `{${JSON.stringify(dupKey)}:0,${JSON.stringify(obj).slice(1)}`;
          return problem(() => parseStrictJsonObject(text, { maxDepth: 16, maxTopLevelMembers: 256, maxStringLength: 8192 })) === 'duplicate';
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('hot-path parsing agrees with the reference definitions', () => {
  // The reference: split by re-encoding (every segment must re-encode to itself) and decode the payload
  // with fatal UTF-8; the hot path decodes into scratch memory and must accept and refuse the same tokens.
  const reference = (t: unknown): string => {
    try {
      const p = referenceSteps12(t);
      decodeHeaderSegment(p.headerSegment);
      return `ok:${JSON.stringify(decodeUtf8Strict(p.payloadBytes))}`;
    } catch (err) {
      return (err as CompactJwsError).code;
    }
  };
  const hot = (t: unknown): string => {
    try {
      const p = parseCompactJws(t);
      decodeHeaderSegment(p.token.slice(0, p.d1));
      return `ok:${JSON.stringify(p.payloadText)}`;
    } catch (err) {
      return (err as CompactJwsError).code;
    }
  };
  const h = b64u('{"alg":"RS256"}');

  test('property: mutated tokens get the same verdict (foreign characters, padding, +/, non-ASCII, spare bits)', () => {
    const alphabet = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', '=', '+', '/', ' ', '\n', '.', '\u00e9', '\u0141', '\u0100', '\u4e00', '\ud83d', '\u0000', '%'];
    const char = fc.constantFrom(...alphabet);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.array(fc.tuple(fc.nat(), char), { maxLength: 3 }), (payload, sig, edits) => {
        let t = `${h}.${b64u(payload)}.${b64u(sig)}`;
        for (const [at, c] of edits) {
          const i = at % (t.length + 1);
          t = t.slice(0, i) + c + t.slice(i + 1);
        }
        return reference(t) === hot(t);
      }),
      { numRuns: 3000 },
    );
  });

  test('fixed cases: non-ASCII that Node would read as a base64 letter, padding, standard alphabet', () => {
    const good = `${h}.${b64u('{"a":1}')}.AAAA`;
    assert.equal(hot(good), reference(good));
    // U+0141's low byte is "A": Node's decoder would take it for a valid letter.
    for (const t of [`${h}.${b64u('{"a":1}').slice(0, -1)}\u0141.AAAA`, `${h}.${b64u('{"a":1}')}.AAA\u0141`, `${h}.eyJhIjoxfQ==.AAAA`, `${h}.${b64u('{"a":1}')}.AA+/`, `${h}.${b64u('{"a":1}')}.AB`]) {
      assert.equal(hot(t), 'token_malformed', JSON.stringify(t));
      assert.equal(reference(t), 'token_malformed', JSON.stringify(t));
    }
    assert.equal(hot(42), 'token_malformed');
    assert.equal(hot('a'.repeat(20001)), 'token_too_large');
    assert.equal(hot(`${h}.${b64u(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]))}.AAAA`), 'ok:null');
    assert.equal(problem(() => parseCompactPayload(parseCompactJws(`${h}.${b64u(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]))}.AAAA`))), 'token_malformed');
    assert.equal(problem(() => parseCompactPayload(parseCompactJws(`${h}.${b64u('{"a":1,"a":2}')}.AAAA`))), 'duplicate_member');
  });

  test('signing bytes are rewritten at check time, so interleaved tokens never mix', () => {
    const a = parseCompactJws(`${h}.${b64u('{"n":"first"}')}.${b64u(Buffer.alloc(256, 1))}`);
    const b = parseCompactJws(`${b64u('{"alg":"ES256"}')}.${b64u('{"n":"second, longer payload"}')}.${b64u(Buffer.alloc(64, 2))}`);
    const seen: string[] = [];
    const record = (input: Buffer, sig: Buffer) => {
      seen.push(`${input.toString('latin1')}|${sig.toString('hex')}`);
      return true;
    };
    assert.equal(withSigningBytes(a, record), true);
    assert.equal(withSigningBytes(b, record), true);
    assert.equal(withSigningBytes(a, record), true);
    assert.equal(seen[0], `${a.token.slice(0, a.d2)}|${'01'.repeat(256)}`);
    assert.equal(seen[1], `${b.token.slice(0, b.d2)}|${'02'.repeat(64)}`);
    assert.equal(seen[2], seen[0]);
  });
});

describe('duplicate detection without escapes (counting member names)', () => {
  test('whitespace around the colon, nesting, arrays, digit names', () => {
    for (const t of ['{"a" :1,"a":2}', '{ "a"\n:\t1 , "a" : 2 }', '{"x":{"a" : 1,"a":2}}', '{"x":[1,{"a":1,"a":2}]}', '{"2":1,"1":2,"2":3}', '{"a":{"b":1},"a":{"b":1}}']) {
      assert.equal(problem(() => parseStrictJsonObject(t, LIMITS)), 'duplicate', JSON.stringify(t));
    }
    for (const t of ['{ "a" : 1 , "b" : [ {"a" : 1} ] }', '{"a":"x:y","b":"{["}', '{"a":":","b":":"}']) {
      assert.equal(problem(() => parseStrictJsonObject(t, LIMITS)), 'ok', JSON.stringify(t));
    }
  });

  test('results are deep-frozen on both paths', () => {
    for (const t of ['{"a":{"b":[{"c":1}]}}', '{"a\\u0062":{"b":[{"c":1}]}}']) {
      const v = parseStrictJsonObject(t, LIMITS) as { [k: string]: { b: { c: number }[] } };
      const inner = Object.values(v)[0]!;
      assert.ok(Object.isFrozen(v) && Object.isFrozen(inner) && Object.isFrozen(inner.b) && Object.isFrozen(inner.b[0]), t);
    }
  });

  test('property: the counting path and the name-by-name scan agree on random texts with repeated names', () => {
    const key = fc.constantFrom('a', 'b', 'c', '1', '0', '__proto__', 'x y');
    const ws = fc.constantFrom('', ' ', '\n', '\t ');
    const value: fc.Arbitrary<string> = fc.letrec<{ v: string }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom('1', '"s"', 'null', 'true', '"a:b"', '"{"', '"["'),
        fc.array(tie('v'), { maxLength: 3 }).map((xs) => `[${xs.join(',')}]`),
        fc.array(fc.tuple(key, ws, tie('v')), { maxLength: 4 }).map((ms) => `{${ms.map(([k, w, v]) => `"${k}"${w}:${w}${v}`).join(',')}}`),
      ),
    })).v;
    fc.assert(
      fc.property(fc.array(fc.tuple(key, ws, value), { maxLength: 6 }), (members) => {
        const text = `{${members.map(([k, w, v]) => `"${k}"${w}:${v}`).join(',')}}`;
        const exact = problem(() => scanJson(text, { maxDepth: 64, maxTopLevelMembers: 256, maxStringLength: 8192 }));
        const fast = problem(() => parseStrictJsonObject(text, { maxDepth: 64, maxTopLevelMembers: 256, maxStringLength: 8192 }));
        return exact === fast;
      }),
      { numRuns: 2000 },
    );
  });
});

describe('duplicate detection on the compact hot path (quotes counted from the payload bytes)', () => {
  const h = b64u('{"alg":"RS256"}');
  const GENEROUS = { payload: { maxDepth: 64, maxTopLevelMembers: 256, maxStringLength: 8192 } };
  const hot = (text: string, limits?: typeof GENEROUS): string => problem(() => parseCompactPayload(parseCompactJws(`${h}.${b64u(text)}.AAAA`), limits));

  test('duplicates hidden by whitespace, nesting, arrays, digit names, non-ASCII names', () => {
    for (const t of ['{"a" :1,"a":2}', '{ "a"\n:\t1 , "a" : 2 }', '{"x":{"a" : 1,"a":2}}', '{"x":[1,{"a":1,"a":2}]}', '{"2":1,"1":2,"2":3}', '{"a":{"b":1},"a":{"b":1}}', '{"é":"ü","é":"ü"}', '{"a":"x","a":"x"}', '{"a":[],"a":{}}']) {
      assert.equal(hot(t), 'duplicate_member', JSON.stringify(t));
    }
    for (const t of ['{ "a" : 1 , "b" : [ {"a" : 1} ] }', '{"a":"x:y","b":"{["}', '{"a":":","b":":"}', '{"é":"ü","e":["ü","",""]}', '{"__proto__":{"a":1}}']) {
      assert.equal(hot(t), 'ok', JSON.stringify(t));
    }
  });

  test('a quote in any of the last bytes (the count takes four bytes at a time, then the rest)', () => {
    for (let pad = 0; pad < 8; pad++) {
      const spaces = ' '.repeat(pad);
      assert.equal(hot(`{${spaces}"a":1,"a":2}`), 'duplicate_member', `pad ${pad}`);
      assert.equal(hot(`{${spaces}"a":1,"b":"c"}`), 'ok', `pad ${pad}`);
      assert.equal(hot(`{"a":1${spaces},"a":""}`), 'duplicate_member', `pad ${pad}`);
    }
  });

  test('depth, string length and member caps hold on the kept values', () => {
    assert.equal(hot(`{"a":${'['.repeat(8)}${']'.repeat(8)}}`), 'token_malformed');
    assert.equal(hot(`{"a":${'['.repeat(7)}${']'.repeat(7)}}`), 'ok');
    assert.equal(hot(`{"a":"${'x'.repeat(8193)}"}`), 'token_malformed');
    assert.equal(hot(`{"${'x'.repeat(8193)}":1}`), 'token_malformed');
    assert.equal(hot(`{"a":["${'x'.repeat(8193)}"]}`), 'token_malformed');
    assert.equal(hot(`{"a":"${'x'.repeat(8192)}"}`), 'ok');
    const members = (n: number) => `{${Array.from({ length: n }, (_, i) => `"m${i}":1`).join(',')}}`;
    assert.equal(hot(members(256)), 'ok');
    assert.equal(hot(members(257)), 'token_malformed');
    // Hostile nesting inside a dropped duplicate: refused, without deep recursion.
    assert.equal(hot(`{"a":${'['.repeat(5000)}${']'.repeat(5000)},"a":1}`, GENEROUS), 'duplicate_member');
    assert.equal(hot(`{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`, GENEROUS), 'token_malformed');
  });

  test('payloads with escapes take the name-by-name scan', () => {
    assert.equal(hot('{"a\\u0062":1,"ab":2}'), 'duplicate_member');
    assert.equal(hot('{"a":"\\"","b":"\\""}'), 'ok');
    assert.equal(hot('{"a":"\\"","a":"\\""}'), 'duplicate_member');
  });

  test('property: the hot path and the name-by-name scan agree on random payloads with repeated names', () => {
    const key = fc.constantFrom('a', 'b', 'c', '1', '0', '__proto__', 'x y', 'é', '€');
    const ws = fc.constantFrom('', ' ', '\n', '\t ');
    const value: fc.Arbitrary<string> = fc.letrec<{ v: string }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom('1', '"s"', 'null', 'true', '"a:b"', '"{"', '"["', '"é"', '""', '-0.5e3'),
        fc.array(tie('v'), { maxLength: 3 }).map((xs) => `[${xs.join(',')}]`),
        fc.array(fc.tuple(key, ws, tie('v')), { maxLength: 4 }).map((ms) => `{${ms.map(([k, w, v]) => `"${k}"${w}:${w}${v}`).join(',')}}`),
      ),
    })).v;
    fc.assert(
      fc.property(fc.array(fc.tuple(key, ws, value), { maxLength: 6 }), ws, (members, lead) => {
        const text = `${lead}{${members.map(([k, w, v]) => `"${k}"${w}:${v}`).join(',')}}`;
        const exact = problem(() => scanJson(text, GENEROUS.payload));
        return hot(text, GENEROUS) === (exact === 'ok' ? 'ok' : 'duplicate_member');
      }),
      { numRuns: 3000 },
    );
  });
});
