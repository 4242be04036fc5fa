import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileGlob, type GlobDialect } from '../../src/policy/glob.ts';
import { compileRegex, hasTopLevelAlternation, regexLiteralPrefix } from '../../src/policy/regex.ts';

describe('glob dialects: policy.md §5 table', () => {
  // [pattern, value, native, vault, aws]; null = not applicable in that dialect
  const rows: [string, string, boolean | null, boolean | null, boolean | null][] = [
    ['mygroup/*', 'mygroup/sub/evil', false, true, true],
    ['mygroup/**', 'mygroup/sub/evil', true, null, null],
    ['mygroup*', 'mygroup-evil', true, true, true],
    ['project_path:mygroup/*:ref_type:branch:ref:main', 'project_path:mygroup/a/b:ref_type:branch:ref:main', false, true, true],
    ['4*', '42', true, true, true],
    ['4*', 'd42', false, false, false],
    ['*2', '42x', false, false, false],
    ['*@*.com', 'test@example.com', true, true, true],
    ['main?', 'main1', true, false, true],
    ['refs/heads/main*', 'refs/heads/main-evil', true, true, true],
  ];
  for (const [pattern, value, native, vault, aws] of rows) {
    for (const [dialect, expected] of [
      ['native', native],
      ['vault', vault],
      ['aws', aws],
    ] as [GlobDialect, boolean | null][]) {
      if (expected === null) continue;
      test(`${dialect}: '${pattern}' vs '${value}' → ${expected}`, () => {
        assert.equal(compileGlob(pattern, dialect).match(value), expected);
      });
    }
  }

  test('vault treats ? as a literal and \\ [ { as literal text', () => {
    assert.equal(compileGlob('main?', 'vault').match('main?'), true);
    assert.equal(compileGlob('a\\b[c]{d}*', 'vault').match('a\\b[c]{d}xyz'), true);
  });

  test('native ? never matches / or :', () => {
    assert.equal(compileGlob('a?b', 'native').match('a/b'), false);
    assert.equal(compileGlob('a?b', 'native').match('a:b'), false);
    assert.equal(compileGlob('a?b', 'native').match('a-b'), true);
  });

  test('native escapes and reserved characters', () => {
    assert.equal(compileGlob('a\\*b', 'native').match('a*b'), true);
    assert.equal(compileGlob('a\\*b', 'native').match('axb'), false);
    for (const bad of ['a[b]', 'x{y}', 'a]', 'trailing\\', '']) assert.throws(() => compileGlob(bad, 'native'), /reserved|lone|empty/);
    assert.equal(compileGlob('a\\[b\\]', 'native').match('a[b]'), true);
  });

  test('aws ${*} ${?} ${$} escapes; other policy variables refused', () => {
    assert.equal(compileGlob('a${*}b', 'aws').match('a*b'), true);
    assert.equal(compileGlob('a${*}b', 'aws').match('axb'), false);
    assert.equal(compileGlob('q${?}', 'aws').match('q?'), true);
    assert.equal(compileGlob('cost${$}', 'aws').match('cost$'), true);
    assert.throws(() => compileGlob('${aws:username}', 'aws'), /policy variable/);
  });

  test('whole-value anchoring in every dialect', () => {
    for (const d of ['native', 'vault', 'aws'] as const) {
      assert.equal(compileGlob('main', d).match('main-evil'), false);
      assert.equal(compileGlob('main', d).match('evil-main'), false);
      assert.equal(compileGlob('*main', d).match('xmain'), true);
    }
  });

  test('case folding compiles literals lowercased (path claims)', () => {
    const g = compileGlob('MyGroup/*', 'native', true);
    assert.equal(g.match('mygroup/x'), true);
  });

  test('literal prefix and literal character count', () => {
    const g = compileGlob('mygroup/sub-*/x', 'native');
    assert.equal(g.literalPrefix, 'mygroup/sub-');
    assert.equal(g.literalChars, 'mygroup/sub-/x'.length);
  });
});

describe('glob properties (fast-check)', () => {
  const seg = fc.stringMatching(/^[a-z0-9._-]{0,8}$/);
  test('a native glob without ** never matches across / or : where the pattern has none', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(seg, fc.constant('*'), fc.constant('?')), { minLength: 1, maxLength: 6 }), fc.array(seg, { minLength: 1, maxLength: 4 }), fc.constantFrom('/', ':'), (parts, valueParts, sep) => {
        const pattern = parts.join('');
        fc.pre(pattern.length > 0 && !pattern.includes('**'));
        const value = valueParts.join(sep);
        const patternSeps = (pattern.match(/[/:]/g) ?? []).length;
        const valueSeps = (value.match(/[/:]/g) ?? []).length;
        if (compileGlob(pattern, 'native').match(value)) {
          // Wildcards never consume a separator: every separator in the value is a literal in the pattern.
          assert.equal(valueSeps, patternSeps);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('* in a native glob matches exactly the segment-free strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (s) => {
        assert.equal(compileGlob('x*y', 'native').match(`x${s}y`), !/[/:]/.test(s));
        assert.equal(compileGlob('x**y', 'native').match(`x${s}y`), true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('regex: RE2, anchoring, limits (policy.md §6)', () => {
  test('native anchoring keeps alternation anchored', () => {
    const r = compileRegex('main|release');
    assert.equal(r.source, '^(?:main|release)$');
    assert.equal(r.test('main'), true);
    assert.equal(r.test('release'), true);
    assert.equal(r.test('main-evil'), false);
    assert.equal(r.test('evil-release'), false);
  });

  test('octo-sts dialect reproduces ^P$ (the alternation trap)', () => {
    const r = compileRegex('main|release', 'octo-sts');
    assert.equal(r.source, '^main|release$');
    assert.equal(r.test('main-evil'), true);
    assert.equal(r.test('evil-release'), true);
    assert.equal(compileRegex('(main|release)', 'octo-sts').test('main-evil'), false);
    assert.equal(compileRegex('(123|456)', 'octo-sts').test('123'), true);
  });

  test('backreferences, lookaround and flags other than i are refused', () => {
    for (const bad of ['(a)\\1', 'a(?=b)', 'a(?!b)', '(?<=a)b', '(?<!a)b', '(?s).', '(?m)^a', '(?U)a*', '\\k<x>']) {
      assert.throws(() => compileRegex(bad), /backreference|lookaround|inline flags|unsupported|invalid/, bad);
    }
    assert.equal(compileRegex('(?i)MAIN').test('main'), true);
    assert.equal(compileRegex('(?P<n>a)b').test('ab'), true);
  });

  test('length limits: pattern 512, subject 8192', () => {
    assert.throws(() => compileRegex('a'.repeat(513)), /limit is 512/);
    assert.doesNotThrow(() => compileRegex('a'.repeat(512)));
    const r = compileRegex('a*');
    assert.equal(r.test('a'.repeat(8192)), true);
    assert.equal(r.test('a'.repeat(8193)), 'error');
  });

  test('linear time on a classic ReDoS pattern', () => {
    assert.equal(compileRegex('(a+)+').test('a'.repeat(5000) + '!'), false);
  });

  test('every native regex is anchored (fast-check)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z|]{1,8}$/), fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), (p, pre, post) => {
        fc.pre(!p.startsWith('|') || p.length > 0);
        const r = compileRegex(p);
        assert.ok(r.source.startsWith('^(?:') && r.source.endsWith(')$'));
        const alternatives = p.split('|');
        for (const alt of alternatives) {
          // Whole-value: an alternative with extra text around it never matches unless that text is itself a match.
          const v = `${pre}${alt}${post}`;
          const whole = alternatives.includes(v);
          if (r.test(v) === true) assert.ok(whole, `${p} matched ${JSON.stringify(v)}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('helpers: top-level alternation and literal prefix', () => {
    assert.equal(hasTopLevelAlternation('a|b'), true);
    assert.equal(hasTopLevelAlternation('(a|b)'), false);
    assert.equal(hasTopLevelAlternation('[|]'), false);
    assert.equal(regexLiteralPrefix('repo:org/app:.*'), 'repo:org/app:');
    assert.equal(regexLiteralPrefix('repo:org/ap+'), 'repo:org/a');
    assert.equal(regexLiteralPrefix('a|b'), '');
    assert.equal(regexLiteralPrefix('gitlab\\.com/x'), 'gitlab.com/x');
  });
});

/** ryanuber/go-glob `Glob` (what vault-plugin-auth-jwt calls in glob mode), ported line by line. */
function goGlob(pattern: string, subj: string): boolean {
  if (pattern === '') return subj === pattern;
  if (pattern === '*') return true;
  const parts = pattern.split('*');
  if (parts.length === 1) return subj === pattern;
  const leadingGlob = pattern.startsWith('*');
  const trailingGlob = pattern.endsWith('*');
  const end = parts.length - 1;
  for (let i = 0; i < end; i++) {
    const idx = subj.indexOf(parts[i] as string);
    if (i === 0) {
      if (!leadingGlob && idx !== 0) return false;
    } else if (idx < 0) return false;
    subj = subj.slice(idx + (parts[i] as string).length);
  }
  return trailingGlob || subj.endsWith(parts[end] as string);
}

describe('vault glob reproduces go-glob exactly (fast-check)', () => {
  test('same answer as the go-glob port on random patterns and subjects', () => {
    const alpha = fc.constantFrom('a', 'b', '/', ':', '*', '?');
    fc.assert(
      fc.property(fc.array(alpha, { minLength: 1, maxLength: 7 }), fc.array(fc.constantFrom('a', 'b', '/', ':', '?'), { maxLength: 8 }), (p, s) => {
        const pattern = p.join('');
        const subject = s.join('');
        assert.equal(compileGlob(pattern, 'vault').match(subject), goGlob(pattern, subject), `${pattern} vs ${subject}`);
      }),
      { numRuns: 2000 },
    );
  });
});
