import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { celLints, compileCel } from '../../src/policy/cel.ts';

const claims = { project_id: '72', project_path: 'mygroup-evil/x', ref_protected: 'true', groups: ['a', 'b'], runner_id: 7, exp: 1000, nbf: 10 };

/** policy.md §7 pitfalls (google/cel-spec langdef) plus basics; expected result per the CEL spec. */
const conformance: [string, boolean | 'error' | 'non-bool'][] = [
  ["claims.project_path.matches('mygroup')", true], // 1: unanchored substring search
  ["claims.project_path.matches('^mygroup/')", false],
  ["claims.missing == 'x'", 'error'], // 2: a missing key is an error
  ["has(claims.missing)", false],
  ["claims.missing == 'x' || true", true], // 3: commutative error absorption
  ["true || claims.missing == 'x'", true],
  ["claims.missing == 'x' && false", false],
  ["false && claims.missing == 'x'", false],
  ["claims.missing == 'x' && true", 'error'],
  ['claims.project_id == 72', false], // 4: heterogeneous equality is false
  ["claims.project_id == '72'", true],
  ["claims.ref_protected == true", false],
  ["claims.project_path.startsWith('mygroup')", true], // 5: prefix without boundary
  ["claims.project_path.startsWith('mygroup/')", false],
  ["'a' in claims.groups", true],
  ['claims.runner_id == 7', true],
  ['claims.exp - claims.nbf <= 86400', true], // Kubernetes' lifetime example
  ["claims.project_path", 'non-bool'],
];

describe('CEL pitfalls: both evaluators agree with the spec (policy.md §7)', () => {
  for (const engine of ['cel-js', 'bufbuild'] as const) {
    for (const [expr, expected] of conformance) {
      test(`${engine}: ${expr} → ${String(expected)}`, () => {
        const r = compileCel(expr, engine).evaluate({ claims });
        if (expected === 'error') assert.equal(r.ok ? 'ok' : r.kind, 'cel-error');
        else if (expected === 'non-bool') assert.equal(r.ok ? 'ok' : r.kind, 'cel-non-bool');
        else assert.deepEqual(r, { ok: true, value: expected });
      });
    }
  }
});

describe('regex inside CEL: RE2 semantics decide the engine', () => {
  test('expressions calling matches() run on bufbuild (RE2, linear time)', () => {
    assert.equal(compileCel("claims.project_path.matches('x')").engine, 'bufbuild');
    assert.equal(compileCel("claims.project_path == 'x'").engine, 'cel-js');
  });
  test('RE2 inline (?i) works; backreferences and lookaround are errors', () => {
    assert.deepEqual(compileCel("claims.project_path.matches('(?i)^MYGROUP')").evaluate({ claims }), { ok: true, value: true });
    for (const p of ['(a)\\\\1', 'a(?=b)']) {
      const r = compileCel(`claims.project_path.matches('${p}')`).evaluate({ claims });
      assert.equal(r.ok, false, p);
    }
  });
  test('cel-js alone would run JavaScript RegExp (the reason for the split)', () => {
    // (?i) is not JavaScript syntax: cel-js errors where RE2 matches.
    const r = compileCel("claims.project_path.matches('(?i)^MYGROUP')", 'cel-js').evaluate({ claims });
    assert.equal(r.ok, false);
  });
  test('catastrophic pattern stays linear on the chosen engine', () => {
    const r = compileCel("claims.a.matches('^(a+)+$')").evaluate({ claims: { a: 'a'.repeat(3000) + '!' } });
    assert.deepEqual(r, { ok: true, value: false });
  });
});

describe('CEL compile rules', () => {
  test('compiled once and cached', () => {
    assert.equal(compileCel("claims.ref == 'main'"), compileCel("claims.ref == 'main'"));
  });
  test('refused at save: syntax, unknown variables, non-bool types, length', () => {
    for (const bad of ['claims.ref ==', "request.x == 'y'", '1 + 2', 'x'.repeat(4097)]) assert.throws(() => compileCel(bad), /CEL|characters/, bad.slice(0, 40));
  });
  test('assertion is bound to the same payload (GCP)', () => {
    assert.deepEqual(compileCel("assertion.project_id == '72'").evaluate({ assertion: claims }), { ok: true, value: true });
  });
  test('lints', () => {
    const codes = (e: string) => celLints(e).map((l) => l.code);
    assert.deepEqual(codes("claims.p.matches('mygroup')"), ['cel-unanchored-matches']);
    assert.deepEqual(codes("claims.p.matches('^mygroup/.*$')"), []);
    assert.deepEqual(codes("claims.p.startsWith('mygroup')"), ['prefix-without-boundary']);
    assert.deepEqual(codes('assertion.project_id == 72'), ['type-never-matches']);
  });
});
