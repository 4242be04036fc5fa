import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileRole } from '../../src/policy/role.ts';
import { selectRole } from '../../src/policy/decide.ts';
import { CIOIDC, decide, F2, F4, GITHUB, GITLAB, load, outcome, SELF } from './helpers.ts';

describe('typed predicates: coercion and typed literals (policy.md §4)', () => {
  const rows: [string, unknown, Record<string, unknown>, string][] = [
    ['bool literal vs "true"', { claim: 'ref_protected', eq: true }, { ref_protected: 'true' }, 'allow'],
    ['bool literal vs "false"', { claim: 'ref_protected', eq: true }, { ref_protected: 'false' }, 'predicate-false'],
    ['string "true" literal coerced', { claim: 'ref_protected', eq: 'true' }, { ref_protected: 'true' }, 'allow'],
    ['JSON bool claim is a type error (C12)', { claim: 'ref_protected', eq: true }, { ref_protected: true }, 'claim-type'],
    ['id: number literal equals digit string', { claim: 'project_id', eq: 20 }, { project_id: '20' }, 'allow'],
    ['id: string literal', { claim: 'project_id', eq: '20' }, { project_id: '20' }, 'allow'],
    ['id: numeric claim is a type error', { claim: 'project_id', eq: 20 }, { project_id: 20 }, 'claim-type'],
    ['id: leading zero claim is a type error', { claim: 'project_id', eq: 20 }, { project_id: '020' }, 'claim-type'],
    ['id: "72abc" claim is a type error, never parseInt', { claim: 'project_id', eq: 72 }, { project_id: '72abc' }, 'claim-type'],
    ['int: runner_id literal "7" coerced', { claim: 'runner_id', eq: '7' }, { runner_id: 7 }, 'allow'],
    ['int: string runner_id claim is a type error', { claim: 'runner_id', eq: 7 }, { runner_id: '7' }, 'claim-type'],
    ['untyped: "20" != 20', { claim: 'cost_center', eq: 20 }, { cost_center: '20' }, 'predicate-false'],
    ['untyped: exact string', { claim: 'cost_center', eq: 'cc-1' }, { cost_center: 'cc-1' }, 'allow'],
    ['untyped: false is a value, not missing', { claim: 'flag', eq: false }, { flag: false }, 'allow'],
    ['untyped: 0 is a value, not missing', { claim: 'n', eq: 0 }, { n: 0 }, 'allow'],
    ['path: ASCII case-insensitive', { claim: 'project_path', eq: 'Foo/Bar' }, { project_path: 'FOO/bar' }, 'allow'],
    ['string: case-sensitive', { claim: 'ref', eq: 'Main' }, { ref: 'main' }, 'predicate-false'],
    ['string: ignoreCase', { claim: 'ref', eq: 'Main', ignoreCase: true }, { ref: 'main' }, 'allow'],
    ['glob sees the bool string form', { claim: 'ref_protected', glob: 'tr*' }, { ref_protected: 'true' }, 'allow'],
    ['glob sees an int in decimal', { claim: 'runner_id', glob: '1*' }, { runner_id: 123 }, 'allow'],
  ];
  for (const [name, when, claims, expected] of rows) test(name, () => assert.equal(outcome(when, claims), expected));

  test('save-time literal errors', () => {
    for (const when of [
      { claim: 'project_id', eq: '72abc' },
      { claim: 'project_id', eq: 0 },
      { claim: 'project_id', eq: '-1' },
      { claim: 'ref_protected', eq: 'yes' },
      { claim: 'runner_id', eq: '7x' },
      { claim: 'ref', eq: 5 },
      { claim: 'project_path', in: [] },
      { claim: 'ref', in: Array.from({ length: 101 }, (_, i) => `r${i}`) },
    ]) {
      assert.throws(() => load({ name: 'x', when }, SELF), /role_invalid|literal|needs|not/, JSON.stringify(when));
    }
  });

  test('non-ASCII paths: error on shared issuers, plain mismatch elsewhere (C10)', () => {
    const when = { all: [{ claim: 'project_path', eq: 'group/proj' }] };
    for (const evil of ['grоup/proj', 'ｇroup/proj', 'group/pro\u200bj', 'group/proj\u0301']) {
      assert.equal(outcome(when, { project_path: evil }, GITLAB), 'claim-type', evil);
      assert.equal(outcome(when, { project_path: evil }, SELF), 'predicate-false', evil);
    }
    assert.equal(outcome(when, { project_path: 'Group/Proj' }, GITLAB), 'allow');
  });
});

describe('missing claims, lists, objects, pointers (policy.md §3)', () => {
  const rows: [string, unknown, Record<string, unknown>, string][] = [
    ['missing → error', { claim: 'environment', eq: 'prod' }, {}, 'claim-missing'],
    ['null counts as missing', { claim: 'environment', eq: 'prod' }, { environment: null }, 'claim-missing'],
    ['onMissing false', { claim: 'environment', eq: 'prod', onMissing: 'false' }, {}, 'predicate-false'],
    ['onMissing true', { claim: 'environment', eq: 'prod', onMissing: 'true' }, {}, 'allow'],
    ['exists false', { claim: 'environment', exists: false }, {}, 'allow'],
    ['exists ignores onMissing', { claim: 'environment', exists: true, onMissing: 'true' }, {}, 'predicate-false'],
    ['list any (path fold)', { claim: 'groups_direct', in: ['a/b'] }, { groups_direct: ['x', 'A/B'] }, 'allow'],
    ['list all fails when one differs', { claim: 'groups_direct', glob: 'a/*', quantifier: 'all' }, { groups_direct: ['a/x', 'b/y'] }, 'predicate-false'],
    ['list all', { claim: 'groups_direct', glob: 'a/*', quantifier: 'all' }, { groups_direct: ['a/x', 'a/y'] }, 'allow'],
    ['empty list is false', { claim: 'groups_direct', in: ['a'] }, { groups_direct: [] }, 'predicate-false'],
    ['empty list is false under all', { claim: 'groups_direct', in: ['a'], quantifier: 'all' }, { groups_direct: [] }, 'predicate-false'],
    ['scalar is a one-element list', { claim: 'ref', in: ['main'], quantifier: 'all' }, { ref: 'main' }, 'allow'],
    ['contains every value', { claim: 'groups_direct', contains: ['x', 'y'] }, { groups_direct: ['x', 'y', 'z'] }, 'allow'],
    ['contains fails when one lacks', { claim: 'groups_direct', contains: ['x', 'q'] }, { groups_direct: ['x', 'y'] }, 'predicate-false'],
    ['object claim with eq is a type error', { claim: 'job_config', eq: 'x' }, { job_config: { url: 'u', sha: 's' } }, 'claim-type'],
    ['object claim exists', { claim: 'job_config', exists: true }, { job_config: { url: 'u' } }, 'allow'],
    ['pointer into an object', { claim: '/job_config/sha', eq: 'abc' }, { job_config: { sha: 'abc' } }, 'allow'],
    ['pointer into a list', { claim: '/user_identities/0/provider', eq: 'github' }, { user_identities: [{ provider: 'github' }] }, 'allow'],
    ['pointer ~1 escape', { claim: '/a~1b', eq: 'v' }, { 'a/b': 'v' }, 'allow'],
    ['unresolved pointer is missing', { claim: '/user_identities/5/provider', eq: 'x' }, { user_identities: [] }, 'claim-missing'],
    ['prototype keys are not claims', { claim: 'constructor', exists: true }, {}, 'predicate-false'],
    ['list element of the wrong type errs', { claim: 'groups_direct', in: ['a'] }, { groups_direct: ['a', 5] }, 'claim-type'],
  ];
  for (const [name, when, claims, expected] of rows) test(name, () => assert.equal(outcome(when, claims), expected));
});

describe('composites, CEL, glob/regex/prefix leaves', () => {
  const rows: [string, unknown, Record<string, unknown>, string][] = [
    ['any: an error child is never absorbed', { any: [{ claim: 'ref', eq: 'main' }, { claim: 'environment', eq: 'x' }] }, { ref: 'main' }, 'claim-missing'],
    ['all: false and error → error', { all: [{ claim: 'ref', eq: 'dev' }, { claim: 'ref_protected', eq: true }] }, { ref: 'main', ref_protected: 1 }, 'claim-type'],
    ['not(error) = error', { not: { claim: 'environment', eq: 'x' } }, {}, 'claim-missing'],
    ['not(false) = true', { not: { claim: 'ref', eq: 'dev' } }, { ref: 'main' }, 'allow'],
    ['cel true', { cel: "claims.ref == 'main'" }, { ref: 'main' }, 'allow'],
    ['cel missing key is an error', { cel: "claims.environment == 'x'" }, {}, 'cel-error'],
    ['cel has() guard', { cel: "has(claims.environment) && claims.environment == 'x'" }, {}, 'predicate-false'],
    ['cel non-bool result', { cel: 'claims.ref' }, { ref: 'main' }, 'cel-non-bool'],
    ['cel typed literal never equals (pitfall 4)', { cel: 'claims.project_id == 72' }, { project_id: '72' }, 'predicate-false'],
    ['cel matches() is unanchored (pitfall 1)', { cel: "claims.project_path.matches('mygroup')" }, { project_path: 'evil/mygroup-x' }, 'allow'],
    ['native glob: * stays in the segment', { claim: 'ref', glob: 'release/*' }, { ref: 'release/1/evil' }, 'predicate-false'],
    ['native glob: ** crosses', { claim: 'ref', glob: 'release/**' }, { ref: 'release/1/x' }, 'allow'],
    ['glob list is OR', { claim: 'ref', glob: ['main', 'release/*'] }, { ref: 'release/2' }, 'allow'],
    ['regex anchored alternation', { claim: 'ref', regex: 'main|release' }, { ref: 'main-evil' }, 'predicate-false'],
    ['regex on a path claim folds case', { claim: 'project_path', regex: 'Foo/.*' }, { project_path: 'foo/bar' }, 'allow'],
    ['prefix on a path claim folds case', { claim: 'project_path', prefix: 'Foo/' }, { project_path: 'foo/bar' }, 'allow'],
    ['prefix does not match a sibling', { claim: 'project_path', prefix: 'foo/' }, { project_path: 'foobar/x' }, 'predicate-false'],
  ];
  for (const [name, when, claims, expected] of rows) test(name, () => assert.equal(outcome(when, claims), expected));

  test('explain trace carries claim value, coercion and why', () => {
    const d = decide({ when: { all: [{ claim: 'ref_protected', eq: true }, { claim: 'ref', glob: 'release/*' }] } }, { aud: 'pypi', ref_protected: 'true', ref: 'release/a/b' }, SELF);
    const trace = d.candidates[0]!.trace;
    const leaf0 = trace.find((t) => t.path === 'when.all[0]')!;
    assert.equal(leaf0.actual, 'true');
    assert.equal(leaf0.actualType, 'string');
    assert.equal(leaf0.coerced, true);
    assert.equal(leaf0.result, true);
    const leaf1 = trace.find((t) => t.path === 'when.all[1]')!;
    assert.equal(leaf1.result, false);
    assert.match(leaf1.why, /does not cross/);
  });
});

describe("GitLab sub filters (policy.md §5 table, native column; §9 pseudo-claims)", () => {
  const sub = (s: string) => ({ sub: s });
  const rows: [string, unknown, Record<string, unknown>, string][] = [
    ['sub glob * does not cross /', { claim: 'sub', glob: 'project_path:mygroup/*:ref_type:branch:ref:main' }, sub('project_path:mygroup/a/b:ref_type:branch:ref:main'), 'predicate-false'],
    ['sub glob matches one level', { claim: 'sub', glob: 'project_path:mygroup/*:ref_type:branch:ref:main' }, sub('project_path:mygroup/a:ref_type:branch:ref:main'), 'allow'],
    ['sub glob * does not cross : (ref_type smuggling)', { claim: 'sub', glob: 'project_path:mygroup/a:ref_type:branch:ref:*' }, sub('project_path:mygroup/a:ref_type:branch:ref:x:y'), 'predicate-false'],
    ['sub ** crosses', { claim: 'sub', glob: 'project_path:mygroup/**' }, sub('project_path:mygroup/a/b:ref_type:tag:ref:v1'), 'allow'],
    ['exact sub', { claim: 'sub', eq: 'project_path:mygroup/myproject:ref_type:branch:ref:main' }, sub('project_path:mygroup/myproject:ref_type:branch:ref:main'), 'allow'],
    ['exact sub fails after a component reorder', { claim: 'sub', eq: 'project_path:g/p:ref_type:branch:ref:main' }, sub('project_path:g/p:ref:main:ref_type:branch'), 'predicate-false'],
    ['pseudo-claim survives the reorder', { all: [{ claim: '$sub.ref_type', eq: 'branch' }, { claim: '$sub.ref', eq: 'main' }] }, sub('project_path:g/p:ref:main:ref_type:branch'), 'allow'],
    ['pseudo-claim missing component', { claim: '$sub.environment', eq: 'prod' }, sub('project_path:g/p:ref_type:branch:ref:main'), 'claim-missing'],
    ['mygroup* also matches mygroup-evil (lint)', { claim: 'namespace_path', glob: 'mygroup*' }, { namespace_path: 'mygroup-evil' }, 'allow'],
    ['sub glob mygroup* stays in its segment', { claim: 'sub', glob: 'project_path:mygroup*' }, sub('project_path:mygroup-evil/x:ref_type:branch:ref:main'), 'predicate-false'],
    ['4* vs 42', { claim: 'x', glob: '4*' }, { x: '42' }, 'allow'],
    ['4* vs d42', { claim: 'x', glob: '4*' }, { x: 'd42' }, 'predicate-false'],
    ['*2 vs 42x', { claim: 'x', glob: '*2' }, { x: '42x' }, 'predicate-false'],
    ['*@*.com', { claim: 'x', glob: '*@*.com' }, { x: 'test@example.com' }, 'allow'],
    ['main? vs main1', { claim: 'ref', glob: 'main?' }, { ref: 'main1' }, 'allow'],
    ['refs/heads/main* vs main-evil (lint)', { claim: 'ref_path', glob: 'refs/heads/main*' }, { ref_path: 'refs/heads/main-evil' }, 'allow'],
  ];
  for (const [name, when, claims, expected] of rows) test(name, () => assert.equal(outcome(when, claims), expected));

  test('ci-oidc sub values are %-decoded for pseudo-claims', () => {
    assert.equal(outcome({ claim: '$sub.environment', eq: 'a:b' }, { sub: 'project_id:20:environment:a%3Ab' }, CIOIDC), 'allow');
  });

  test('sub-format-changed flag on an exact-sub role', () => {
    const d = decide({ when: { claim: 'sub', eq: 'project_path:foo/bar:ref_type:branch:ref:main' } }, { ...F2, sub: 'project_path:foo/bar:ref:main:ref_type:branch' });
    assert.equal(d.decision, 'deny');
    assert.deepEqual(d.flags, ['sub-format-changed']);
  });
});

describe('tenant binding on shared issuers (policy.md §8.1, G6)', () => {
  const ok = (when: unknown, reg = GITLAB) => compileRole({ name: 'r', issuer: reg.id, audiences: ['a'], when }, reg);
  const refused = (when: unknown, reg = GITLAB) => assert.throws(() => ok(when, reg), (e: { code?: string }) => e.code === 'tenant_binding_missing', JSON.stringify(when));

  test('bindings that count, with their strength', () => {
    const rows: [unknown, number][] = [
      [{ claim: 'project_id', eq: '20' }, 3],
      [{ claim: 'project_path', eq: 'g/p' }, 3],
      [{ claim: 'project_path', in: ['g/p', 'g/q'] }, 3],
      [{ claim: 'namespace_id', eq: 72 }, 2],
      [{ claim: 'namespace_path', eq: 'g' }, 2],
      [{ claim: 'project_path', prefix: 'mygroup/' }, 1],
      [{ claim: 'project_path', glob: 'mygroup/*' }, 1],
      [{ claim: 'project_path', glob: 'mygroup/sub/**' }, 1],
      [{ claim: 'sub', eq: 'project_path:g/p:ref_type:branch:ref:main' }, 3],
      [{ claim: 'sub', glob: 'project_path:mygroup/*' }, 1],
      [{ claim: 'sub', glob: 'project_id:72:ref_type:*' }, 3],
      [{ all: [{ claim: 'ref', eq: 'main' }, { all: [{ claim: 'project_id', eq: '1' }] }] }, 3],
    ];
    for (const [when, strength] of rows) assert.equal(ok(when).tenantStrength, strength, JSON.stringify(when));
  });

  test('bindings that do not count are refused', () => {
    for (const when of [
      { claim: 'ref', eq: 'main' },
      { claim: 'aud', eq: 'x' },
      { claim: 'project_path', prefix: 'mygroup' },
      { claim: 'project_path', glob: 'mygroup*' },
      { claim: 'project_path', glob: '*/x' },
      { any: [{ claim: 'project_id', eq: '1' }, { claim: 'ref', eq: 'main' }] },
      { not: { claim: 'project_id', eq: '1' } },
      { claim: 'project_id', eq: '1', onMissing: 'true' },
      { cel: "claims.project_id == '1'" },
      { claim: 'sub', glob: 'project_path:mygroup*' },
      { claim: 'sub', prefix: 'project_path:' },
    ]) {
      refused(when);
    }
  });

  test('GitHub bindings', () => {
    assert.equal(ok({ claim: 'repository_owner_id', eq: '65' }, GITHUB).tenantStrength, 2);
    assert.equal(ok({ claim: 'repository', eq: 'octo-org/octo-repo' }, GITHUB).tenantStrength, 3);
    assert.equal(ok({ claim: 'repository', prefix: 'octo-org/' }, GITHUB).tenantStrength, 1);
    assert.equal(ok({ claim: 'sub', glob: 'repo:octo-org/*' }, GITHUB).tenantStrength, 1);
    refused({ claim: 'job_workflow_ref', glob: 'octo-org/**' }, GITHUB);
    refused({ claim: 'sub', glob: 'repo:*' }, GITHUB);
  });

  test('non-shared issuers need no binding; pinning off only there', () => {
    assert.equal(ok({ claim: 'ref', eq: 'main' }, SELF).tenantStrength, 0);
    assert.throws(() => compileRole({ name: 'r', issuer: 'gitlab.com', audiences: ['a'], pinning: 'off', when: { claim: 'project_id', eq: '1' } }, GITLAB), /pinning "off"/);
    assert.doesNotThrow(() => compileRole({ name: 'r', issuer: 'gl.example', audiences: ['a'], pinning: 'off', when: { claim: 'ref', eq: 'main' } }, SELF));
  });

  test('sub-only binding is linted', () => {
    const c = ok({ claim: 'sub', eq: 'project_path:g/p:ref_type:branch:ref:main' });
    assert.ok(c.lints.some((l) => l.code === 'sub-only-binding'));
  });
});

describe('strict role schema', () => {
  const base = { name: 'r', issuer: 'gl.example', audiences: ['a'], when: { claim: 'ref', eq: 'main' } };
  const bad: [string, Record<string, unknown>][] = [
    ['unknown field', { ...base, extra: 1 }],
    ['unknown leaf field', { ...base, when: { claim: 'ref', eq: 'main', typo: true } }],
    ['two ops in a leaf', { ...base, when: { claim: 'ref', eq: 'main', glob: 'm*' } }],
    ['empty audiences', { ...base, audiences: [] }],
    ['eleven audiences', { ...base, audiences: Array.from({ length: 11 }, (_, i) => `a${i}`) }],
    ['bad name', { ...base, name: 'Bad Name' }],
    ['empty all', { ...base, when: { all: [] } }],
    ['depth over 16', { ...base, when: Array.from({ length: 17 }).reduce((n) => ({ not: n }), { claim: 'ref', eq: 'main' }) as object }],
    ['over 256 leaves', { ...base, when: { all: Array.from({ length: 5 }, () => ({ all: Array.from({ length: 60 }, () => ({ claim: 'ref', eq: 'main' })) })) } }],
    ['mapping a non-string claim', { ...base, claimMappings: { runner_id: 'runner' } }],
    ['mapping to the reserved key role', { ...base, claimMappings: { ref: 'role' } }],
    ['two claims to one key', { ...base, claimMappings: { ref: 'k', sha: 'k' } }],
    ['bad regex', { ...base, when: { claim: 'ref', regex: '(a' } }],
    ['bad CEL', { ...base, when: { cel: 'claims.ref ==' } }],
    ['CEL over an unknown variable', { ...base, when: { cel: "request.x == 'y'" } }],
    ['grant maxTtl over 12 h', { ...base, grant: { type: 'oauth', maxTtl: 50_000 } }],
  ];
  for (const [name, doc] of bad) test(`save error: ${name}`, () => assert.throws(() => compileRole(doc, SELF)));

  test('explicit pinning needs the IDs', () => {
    assert.throws(() => compileRole({ name: 'r', issuer: 'gitlab.com', audiences: ['a'], pinning: 'explicit', when: { claim: 'project_path', eq: 'g/p' } }, GITLAB), (e: { code?: string }) => e.code === 'pins_required');
    assert.doesNotThrow(() => compileRole({ name: 'r', issuer: 'gitlab.com', audiences: ['a'], pinning: 'explicit', pins: { namespace_id: '1', project_id: '2' }, when: { claim: 'project_path', eq: 'g/p' } }, GITLAB));
  });
});

describe('selection, audiences, deny, pins (policy.md §1, §8.2, §10)', () => {
  const claims = { ...F2 };
  const project = load({ name: 'project', when: { all: [{ claim: 'project_path', eq: 'foo/bar' }] } });
  const namespace = load({ name: 'namespace', when: { all: [{ claim: 'namespace_path', eq: 'foo' }] } });
  const env = load({ name: 'env', when: { all: [{ claim: 'project_path', eq: 'foo/bar' }, { claim: 'environment', eq: 'prod', onMissing: 'false' }] } });
  const twin = load({ name: 'twin', when: { all: [{ claim: 'project_id', eq: '55235664' }] } });
  const sel = (cands: ReturnType<typeof load>[], c: Record<string, unknown> = claims) => selectRole({ registration: GITLAB, claims: c, candidates: cands, named: false, mode: 'single' }).decision;

  test('the most specific role wins: project over namespace', () => {
    assert.equal(sel([namespace, project]).selected, 'project');
  });
  test('environment-bound role wins when it matches', () => {
    assert.equal(sel([project, env], { ...claims, environment: 'prod' }).selected, 'env');
    assert.equal(sel([project, env]).selected, 'project');
  });
  test('a full tie is ambiguous-role, never an arbitrary pick', () => {
    assert.equal(sel([project, twin]).reason, 'ambiguous-role');
  });
  test('no match', () => {
    const d = sel([load({ name: 'other', when: { all: [{ claim: 'project_path', eq: 'x/y' }] } })]);
    assert.equal(d.reason, 'no-role-matched');
    assert.equal(d.cause, 'predicate-false');
  });
  test('named role: allowed or role-denied with the cause', () => {
    const d = selectRole({ registration: GITLAB, claims: { ...claims, project_path: 'x/y' }, candidates: [project], named: true, mode: 'single' }).decision;
    assert.equal(d.reason, 'role-denied');
    assert.equal(d.cause, 'predicate-false');
    assert.equal(selectRole({ registration: GITLAB, claims, candidates: [], named: true, mode: 'single' }).decision.reason, 'role-not-found');
  });
  test('audience modes', () => {
    const two = { ...claims, aud: ['pypi', 'evil'] };
    assert.equal(decide({ when: { claim: 'project_id', eq: '55235664' } }, two).cause, 'audience-mismatch');
    assert.equal(decide({ when: { claim: 'project_id', eq: '55235664' } }, two, GITLAB, 'multi').decision, 'allow');
    assert.equal(decide({ when: { claim: 'project_id', eq: '55235664' } }, { ...claims, aud: ['pypi'] }).decision, 'allow');
    assert.equal(decide({ when: { claim: 'project_id', eq: '55235664' } }, { ...claims, aud: ['pypi'] }, GITLAB, 'strict-string').cause, 'audience-mismatch');
    assert.equal(decide({ when: { claim: 'project_id', eq: '55235664' } }, { ...claims, aud: [] }).cause, 'audience-mismatch');
    assert.equal(decide({ when: { claim: 'project_id', eq: '55235664' } }, { ...claims, aud: 'pypi ' }).cause, 'audience-mismatch');
  });
  test('a matching deny node removes the role', () => {
    const d = decide({ when: { claim: 'project_id', eq: '55235664' }, deny: [{ claim: 'pipeline_source', eq: 'push' }] }, claims);
    assert.equal(d.cause, 'deny-matched');
  });
  test('resurrection: a differing namespace_id denies id-mismatch even when every path matches (C11)', () => {
    const pinned = load({ name: 'p', when: { all: [{ claim: 'namespace_path', eq: 'acme' }] } }, GITLAB, { owner: '111' });
    const d = selectRole({ registration: GITLAB, claims: { ...claims, namespace_path: 'acme', namespace_id: '999' }, candidates: [pinned], named: true, mode: 'single' }).decision;
    assert.equal(d.cause, 'id-mismatch');
  });
  test('tofu: an unpinned role asks to record the IDs', () => {
    const r = selectRole({ registration: GITLAB, claims, candidates: [project], named: true, mode: 'single' });
    assert.deepEqual(r.winner?.toRecord, { owner: '123', project: '55235664' });
  });
  test('GitHub pins are repository_owner_id and repository_id', () => {
    const role = load({ name: 'gh', audiences: ['https://github.com/octo-org'], when: { all: [{ claim: 'repository', eq: 'octo-org/octo-repo' }] } }, GITHUB, { owner: '65' });
    const ok = selectRole({ registration: GITHUB, claims: F4, candidates: [role], named: true, mode: 'single' });
    assert.equal(ok.decision.decision, 'allow');
    assert.deepEqual(ok.winner?.toRecord, { project: '74' });
    const bad = selectRole({ registration: GITHUB, claims: { ...F4, repository_owner_id: '66' }, candidates: [role], named: true, mode: 'single' });
    assert.equal(bad.decision.cause, 'id-mismatch');
  });
  test('an issuer other than the role registration never matches (C1)', () => {
    const self = load({ name: 'x', when: { all: [{ claim: 'project_path', eq: 'gitlab-org/gitlab' }] } });
    const d = selectRole({ registration: SELF, claims: { ...claims, project_path: 'gitlab-org/gitlab' }, candidates: [self], named: true, mode: 'single' }).decision;
    assert.equal(d.cause, 'issuer-not-trusted');
  });
});

describe('attack rows C9 and lints', () => {
  test("C9: role group/* against group/sub/evil, group-evil/x, group/../x, GROUP/x", () => {
    const when = { all: [{ claim: 'project_path', glob: 'group/*' }] };
    const rows: [string, string][] = [
      ['group/sub/evil', 'predicate-false'],
      ['group-evil/x', 'predicate-false'],
      ['group/../x', 'predicate-false'],
      ['GROUP/x', 'allow'],
      ['group/x', 'allow'],
    ];
    for (const [path, expected] of rows) assert.equal(outcome(when, { project_path: path }, GITLAB), expected, path);
    assert.equal(outcome({ all: [{ claim: 'namespace_id', eq: '1' }, { claim: 'ref', glob: 'main*' }] }, { ref: 'main-evil' }, GITLAB), 'allow');
  });

  test('lint codes', () => {
    const lints = (when: unknown, origin?: string) => compileRole({ name: 'r', issuer: 'gl.example', audiences: ['a'], when, ...(origin ? { origin } : {}) }, SELF).lints.map((l) => l.code);
    assert.ok(lints({ claim: 'ci_config_ref_uri', regex: 'gitlab.com/g/.*' }).includes('unescaped-dot'));
    assert.ok(!lints({ claim: 'ci_config_ref_uri', regex: 'gitlab\\.com/g/.*' }).includes('unescaped-dot'));
    assert.ok(lints({ claim: 'namespace_path', glob: 'mygroup*' }).includes('prefix-without-boundary'));
    assert.ok(lints({ claim: 'ref', glob: 'main*' }).includes('wildcard-after-literal'));
    assert.ok(lints({ claim: 'project_path', prefix: 'mygroup' }).includes('prefix-without-boundary'));
    assert.ok(lints({ claim: 'cost_center', eq: 20 }).includes('untyped-literal'));
    assert.ok(lints({ claim: 'ref_protected', in: [true], dialect: 'vault' }).includes('type-never-matches'));
    assert.ok(lints({ claim: 'sub', regex: 'a|b', dialect: 'octo-sts' }).includes('octo-sts-alternation'));
    assert.ok(lints({ cel: "claims.ref.matches('main')" }).includes('cel-unanchored-matches'));
  });
});

describe('tenant binding on other shared issuers', () => {
  const BK = { id: 'buildkite', issuer: 'https://agent.buildkite.com', profile: 'buildkite', shared: true };
  test('Buildkite: organization binds, a pipeline slug alone does not', () => {
    assert.doesNotThrow(() => compileRole({ name: 'r', issuer: 'buildkite', audiences: ['a'], when: { claim: 'organization_slug', eq: 'planetscale' } }, BK));
    assert.doesNotThrow(() => compileRole({ name: 'r', issuer: 'buildkite', audiences: ['a'], when: { claim: 'sub', glob: 'organization:planetscale:pipeline:*' } }, BK));
    assert.throws(() => compileRole({ name: 'r', issuer: 'buildkite', audiences: ['a'], when: { claim: 'pipeline_slug', eq: 'deploy' } }, BK), (e: { code?: string }) => e.code === 'tenant_binding_missing');
  });
});
