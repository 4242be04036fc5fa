import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { importPolicy } from '../../src/policy/importers/index.ts';
import { evalPolicy, lintPolicy } from '../../src/policy/offline.ts';
import { F2, F4 } from './helpers.ts';

type Out = { decision: string; reason: string; cause?: string; lints: { code: string }[]; error?: string };

function run(dialect: Parameters<typeof evalPolicy>[0]['dialect'], policy: unknown, claims: Record<string, unknown>, serviceAudience?: string): { exit: number; out: Out } {
  const r = evalPolicy({ dialect, policyText: typeof policy === 'string' ? policy : JSON.stringify(policy), claimsText: JSON.stringify(claims), serviceAudience });
  return { exit: r.exitCode, out: r.output as Out };
}
const lintCodes = (o: Out) => o.lints.map((l) => l.code);
const GL: Record<string, unknown> = { ...F2, aud: 'https://gitlab.com' };

describe('AWS trust policy (policy.md §11.2)', () => {
  const stmt = (condition: unknown, effect = 'Allow') => ({
    Effect: effect,
    Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/gitlab.com' },
    Action: 'sts:AssumeRoleWithWebIdentity',
    Condition: condition,
  });
  const policy = (...statements: unknown[]) => ({ Version: '2012-10-17', Statement: statements });
  const aud = { 'gitlab.com:aud': 'https://gitlab.com' };

  test("GitLab's sample: StringEquals on sub", () => {
    const p = policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': 'project_path:foo/bar:ref_type:branch:ref:main' } }));
    assert.equal(run('aws', p, GL).exit, 0);
    assert.equal(run('aws', p, { ...GL, sub: 'project_path:foo/bar:ref_type:branch:ref:dev' }).exit, 1);
  });
  test('StringLike * crosses / (the trap), with a lint', () => {
    const p = policy(stmt({ StringEquals: aud, StringLike: { 'gitlab.com:sub': 'project_path:foo/*:ref_type:branch:ref:main' } }));
    const r = run('aws', p, { ...GL, project_path: 'foo/a/b', sub: 'project_path:foo/a/b:ref_type:branch:ref:main' });
    assert.equal(r.exit, 0);
    assert.ok(lintCodes(r.out).includes('glob-crosses-segment'));
  });
  test('StringEquals with a wildcard is literal, linted', () => {
    const p = policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': 'project_path:foo/*' } }));
    const r = run('aws', p, GL);
    assert.equal(r.exit, 1);
    assert.ok(lintCodes(r.out).includes('stringequals-with-wildcard'));
  });
  test('values case-sensitive, IgnoreCase variant, key names case-insensitive', () => {
    const sub = 'project_path:foo/bar:ref_type:branch:ref:main';
    assert.equal(run('aws', policy(stmt({ StringEquals: { ...aud, 'GITLAB.COM:SUB': sub } })), GL).exit, 0);
    assert.equal(run('aws', policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': sub.replace('main', 'MAIN') } })), GL).exit, 1);
    assert.equal(run('aws', policy(stmt({ StringEquals: aud, StringEqualsIgnoreCase: { 'gitlab.com:sub': sub.replace('main', 'MAIN') } })), GL).exit, 0);
  });
  test('several values are OR; several keys and operators AND', () => {
    const p = policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': ['project_path:foo/bar:ref_type:tag:ref:v1', 'project_path:foo/bar:ref_type:branch:ref:main'] } }));
    assert.equal(run('aws', p, GL).exit, 0);
    // One value that binds no tenant makes the whole condition unbound (min over values).
    assert.equal(run('aws', policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': ['x', F2.sub as string] } })), GL).exit, 2);
    const q = policy(stmt({ StringEquals: { 'gitlab.com:aud': 'other', 'gitlab.com:sub': 'project_path:foo/bar:ref_type:branch:ref:main' } }));
    assert.equal(run('aws', q, { ...GL, aud: 'https://gitlab.com' }).exit, 1);
  });
  test('StringNotEquals is true when the key is missing (lint)', () => {
    const p = policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': F2.sub }, StringNotEquals: { 'gitlab.com:amr': 'x' } }));
    const r = run('aws', p, GL);
    assert.equal(r.exit, 0);
    assert.ok(lintCodes(r.out).includes('negated-missing-true'));
  });
  test('ForAllValues is vacuously true on an absent key (lint); ForAnyValue false', () => {
    const all = policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': F2.sub }, 'ForAllValues:StringEquals': { 'gitlab.com:amr': ['mfa'] } }));
    const r = run('aws', all, GL);
    assert.equal(r.exit, 0);
    assert.ok(lintCodes(r.out).includes('forallvalues-vacuous'));
    const any = policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': F2.sub }, 'ForAnyValue:StringEquals': { 'gitlab.com:amr': ['mfa'] } }));
    assert.equal(run('aws', any, GL).exit, 1);
  });
  test('Null operator and Deny statements', () => {
    const p = policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': F2.sub }, Null: { 'gitlab.com:email': 'true' } }));
    assert.equal(run('aws', p, GL).exit, 0);
    const d = policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': F2.sub } }), stmt({ StringLike: { 'gitlab.com:sub': '*ref:main' } }, 'Deny'));
    const r = run('aws', d, GL);
    assert.equal(r.exit, 1);
    assert.equal(r.out.cause, 'deny-matched');
  });
  test('other claims need extendedClaimKeys; unknown providers and operators are import errors', () => {
    assert.equal(run('aws', policy(stmt({ StringEquals: { ...aud, 'gitlab.com:project_path': 'foo/bar' } })), GL).exit, 2);
    assert.equal(run('aws', policy(stmt({ NumericLessThan: { 'gitlab.com:sub': '1' } })), GL).exit, 2);
    assert.equal(run('aws', policy(stmt({ StringLike: { 'gitlab.com:sub': '${aws:username}' } })), GL).exit, 2);
    const r = importPolicy('aws', policy(stmt({ StringEquals: { ...aud, 'gitlab.com:project_path': 'foo/bar' } })), { registrationId: 'r', extendedClaimKeys: true });
    assert.equal(r.roles[0]?.extendedClaimKeys, true);
  });
  test('GitHub provider-specific keys are importable', () => {
    const p = {
      Statement: [{ Effect: 'Allow', Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com' }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringEquals: { 'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com', 'token.actions.githubusercontent.com:repository_id': '74' } } }],
    };
    const r = run('aws', p, { ...F4, aud: 'sts.amazonaws.com' });
    assert.equal(r.exit, 0, 'repository_id binds the repository');
  });
  test('condition-only input and a provider mismatch', () => {
    assert.equal(run('aws', { StringEquals: { ...aud, 'gitlab.com:sub': F2.sub } }, GL).exit, 0);
    assert.equal(run('aws', policy(stmt({ StringEquals: { ...aud, 'gitlab.com:sub': F2.sub } })), { ...GL, iss: 'https://gitlab.example.com' }).exit, 2);
  });
  test('aud-only trust on a shared issuer is refused (tenant-binding-missing)', () => {
    const r = run('aws', policy(stmt({ StringEquals: aud })), GL);
    assert.equal(r.exit, 2);
    assert.equal(r.out.error, 'tenant_binding_missing');
  });
});

describe('Vault JWT role (policy.md §11.1)', () => {
  const recipe = {
    role_type: 'jwt',
    bound_audiences: ['https://gitlab.com'],
    user_claim: 'user_email',
    bound_claims_type: 'glob',
    bound_claims: { project_id: '55235664', ref_protected: 'true', ref_type: 'branch', ref: 'mai*' },
    token_explicit_max_ttl: 60,
    token_policies: ['deploy'],
  };
  test("GitLab's recipe imports and works unchanged", () => {
    assert.equal(run('vault', recipe, GL).exit, 0);
    const r = importPolicy('vault', recipe, { registrationId: 'gitlab.com' });
    assert.equal(r.roles[0]?.grant?.maxTtl, 60);
    assert.deepEqual(r.roles[0]?.grant?.policies, ['deploy']);
  });
  test('glob * crosses / in Vault; ? is literal (lint)', () => {
    const r = run('vault', { ...recipe, bound_claims: { project_id: '55235664', ref: 'release/*' } }, { ...GL, ref: 'release/a/b' });
    assert.equal(r.exit, 0);
    const q = run('vault', { ...recipe, bound_claims: { project_id: '55235664', ref: 'mai?' } }, GL);
    assert.equal(q.exit, 1);
    assert.ok(lintCodes(q.out).includes('question-mark-literal'));
  });
  test('string mode: bool true never equals "true"; 20 never equals "20" (type-never-matches lint)', () => {
    const r = run('vault', { ...recipe, bound_claims_type: 'string', bound_claims: { project_id: 55235664, ref_protected: true } }, GL);
    assert.equal(r.exit, 1);
    assert.ok(lintCodes(r.out).includes('type-never-matches'));
    assert.equal(run('vault', { ...recipe, bound_claims_type: 'string', bound_claims: { project_id: '55235664', ref_protected: 'true' } }, GL).exit, 0);
  });
  test('numeric claims are truncated: runner_id 123 matches 123', () => {
    assert.equal(run('vault', { ...recipe, bound_claims_type: 'string', bound_claims: { project_id: '55235664', runner_id: 123 } }, { ...GL, runner_id: 123.7 }).exit, 0);
  });
  test('glob mode skips non-string claims: runner_id cannot be globbed', () => {
    assert.equal(run('vault', { ...recipe, bound_claims: { project_id: '55235664', runner_id: '*' } }, GL).exit, 1);
  });
  test('list values are any-of; list claims match on any element; pointer keys', () => {
    assert.equal(run('vault', { ...recipe, bound_claims_type: 'string', bound_claims: { project_id: ['1', '55235664'] } }, GL).exit, 0);
    assert.equal(run('vault', { ...recipe, bound_claims_type: 'string', bound_claims: { project_id: '55235664', groups_direct: ['x', 'g/b'] } }, { ...GL, groups_direct: ['g/a', 'g/b'] }).exit, 0);
    assert.equal(run('vault', { ...recipe, bound_claims_type: 'string', bound_claims: { project_id: '55235664', '/user_identities/0/provider': 'github' } }, { ...GL, user_identities: [{ provider: 'github' }] }).exit, 0);
  });
  test('missing claim fails; bound_subject is exact even in glob mode', () => {
    const r = run('vault', { ...recipe, bound_claims: { project_id: '55235664', environment: 'prod' } }, GL);
    assert.equal(r.exit, 1);
    assert.equal(run('vault', { ...recipe, bound_subject: 'project_path:foo/*' }, GL).exit, 1);
    assert.equal(run('vault', { ...recipe, bound_subject: F2.sub }, GL).exit, 0);
  });
  test('audience rule: empty bound_audiences is an import error; oidc role_type refused', () => {
    assert.equal(run('vault', { ...recipe, bound_audiences: [] }, GL).exit, 2);
    assert.equal(run('vault', { ...recipe, role_type: 'oidc' }, GL).exit, 2);
    assert.equal(run('vault', { ...recipe, bound_audiences: ['other'] }, GL).out.cause, 'audience-mismatch');
  });
  test('user_claim must be present and a string', () => {
    const { user_email: _u, ...noEmail } = GL;
    assert.equal(run('vault', recipe, noEmail).exit, 1);
  });
  test('condition part alone (bound_claims map)', () => {
    assert.equal(run('vault', { project_id: '55235664', ref: 'main' }, GL, 'https://gitlab.com').exit, 0);
    assert.equal(run('vault', { project_id: '55235664' }, GL).exit, 2);
  });
  test('no tenant binding on gitlab.com is refused (G6)', () => {
    assert.equal(run('vault', { ...recipe, bound_claims: { ref: 'main' } }, GL).out.error, 'tenant_binding_missing');
  });
});

describe('octo-sts trust policy (policy.md §11.5)', () => {
  const GH = { ...F4, aud: 'octo-sts.dev' };
  test('exact subject and the default audience (service domain)', () => {
    const p = { issuer: 'https://token.actions.githubusercontent.com', subject: F4.sub };
    assert.equal(run('octo-sts', p, GH, 'octo-sts.dev').exit, 0);
    assert.equal(run('octo-sts', p, { ...GH, aud: 'other' }, 'octo-sts.dev').exit, 1);
    assert.equal(run('octo-sts', p, GH).exit, 2, 'no audience and no --service-audience');
  });
  test('^P$ alternation trap reproduced and linted', () => {
    const p = { issuer: 'https://token.actions.githubusercontent.com', subject_pattern: 'repo:octo-org/octo-repo:ref:refs/heads/main|repo:octo-org/octo-repo:environment:prod' };
    const r = run('octo-sts', p, { ...GH, sub: 'repo:octo-org/octo-repo:ref:refs/heads/main-evil' }, 'octo-sts.dev');
    assert.equal(r.exit, 2, 'unanchored alternation leaves no tenant binding on GitHub');
    const lint = lintPolicy({ dialect: 'octo-sts', policyText: JSON.stringify(p), issuerUrl: 'https://token.actions.githubusercontent.com', serviceAudience: 'octo-sts.dev' });
    assert.ok((lint.output as { lints: { code: string }[] }).lints.some((l) => l.code === 'octo-sts-alternation'));
  });
  test('grouped alternation stays anchored', () => {
    const p = { issuer: 'https://token.actions.githubusercontent.com', subject_pattern: 'repo:octo-org/octo-repo:(environment:prod|ref:refs/heads/main)' };
    assert.equal(run('octo-sts', p, GH, 'octo-sts.dev').exit, 0);
    assert.equal(run('octo-sts', p, { ...GH, sub: 'repo:octo-org/octo-repo:environment:prod-evil' }, 'octo-sts.dev').exit, 1);
  });
  test('claim_pattern: bools become strings, other non-strings and missing claims fail, aud any element', () => {
    const base = { issuer: 'https://token.actions.githubusercontent.com', subject: F4.sub, audience: 'octo-sts.dev' };
    assert.equal(run('octo-sts', { ...base, claim_pattern: { flag: 'true' } }, { ...GH, flag: true }).exit, 0);
    assert.equal(run('octo-sts', { ...base, claim_pattern: { n: '1' } }, { ...GH, n: 1 }).exit, 1);
    assert.equal(run('octo-sts', { ...base, claim_pattern: { missing: '.*' } }, GH).exit, 1);
    assert.equal(run('octo-sts', { ...base, claim_pattern: { aud: 'octo.*' } }, { ...GH, aud: ['x', 'octo-sts.dev'] }).exit, 1, 'single-audience mode refuses two audiences');
  });
  test('issuer exactness; mutually exclusive fields; YAML input', () => {
    assert.equal(run('octo-sts', { issuer: 'https://token.actions.githubusercontent.com/', subject: F4.sub }, GH, 'octo-sts.dev').exit, 2);
    assert.equal(run('octo-sts', { issuer: 'https://token.actions.githubusercontent.com', subject: 'a', subject_pattern: 'b' }, GH, 'octo-sts.dev').exit, 2);
    const yaml = `issuer: https://token.actions.githubusercontent.com\nsubject: ${F4.sub}\naudience: octo-sts.dev\n`;
    assert.equal(run('octo-sts', yaml, GH).exit, 0);
  });
  test('subject pre-validation: fix(ci) style subjects are refused', () => {
    const p = { issuer: 'https://token.actions.githubusercontent.com', subject_pattern: 'repo:octo-org/octo-repo:.*' };
    assert.equal(run('octo-sts', p, { ...GH, sub: 'repo:octo-org/octo-repo:ref:refs/heads/fix(ci)' }, 'octo-sts.dev').exit, 1);
  });
});

describe('GCP attribute conditions (policy.md §11.3)', () => {
  const GCP = { ...F2, aud: 'https://gitlab.com' };
  const provider = {
    attributeMapping: { 'google.subject': 'assertion.sub', 'attribute.project_path': 'assertion.project_path', 'attribute.namespace_id': 'assertion.namespace_id' },
    attributeCondition: "assertion.namespace_id == '123' && attribute.project_path == 'foo/bar'",
    oidc: { allowedAudiences: ['https://gitlab.com'] },
  };
  test('immutable-ID condition allows; case-sensitive equality', () => {
    assert.equal(run('gcp', provider, GCP).exit, 0);
    assert.equal(run('gcp', provider, { ...GCP, project_path: 'Foo/Bar' }).exit, 1);
  });
  test("typed literal never matches: assertion.namespace_id == 123", () => {
    const r = run('gcp', { ...provider, attributeCondition: "assertion.namespace_id == 123 && assertion.project_id == '55235664'" }, GCP);
    assert.equal(r.exit, 1);
    assert.ok(lintCodes(r.out).includes('type-never-matches'));
  });
  test('condition string alone, default audience from the provider name', () => {
    assert.equal(run('gcp', JSON.stringify("assertion.namespace_id == '123'"), GCP, 'https://gitlab.com').exit, 0);
    const name = 'projects/1/locations/global/workloadIdentityPools/p/providers/x';
    assert.equal(run('gcp', { name, attributeCondition: "assertion.namespace_id == '123'" }, { ...GCP, aud: `//iam.googleapis.com/${name}` }).exit, 0);
  });
  test('IAM members: one role per principal, exact (no wildcards)', () => {
    const pool = 'principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p';
    const withMember = (m: string) => ({ ...provider, attributeCondition: "assertion.namespace_id == '123'", members: [m] });
    assert.equal(run('gcp', withMember(`${pool}/attribute.project_path/foo/bar`), GCP).exit, 0);
    assert.equal(run('gcp', withMember(`${pool}/attribute.project_path/foo/*`), GCP).exit, 1);
    assert.equal(run('gcp', withMember(`principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/${F2.sub as string}`), GCP).exit, 0);
    assert.equal(run('gcp', withMember(`${pool}/*`), GCP).exit, 0);
    assert.equal(run('gcp', withMember(`${pool}/attribute.nope/x`), GCP).exit, 2);
    const two = importPolicy('gcp', { ...provider, members: [`${pool}/*`, `${pool}/attribute.project_path/foo/bar`] }, { registrationId: 'gitlab.com' });
    assert.equal(two.roles.length, 2);
  });
  test('google.subject over 127 bytes is rejected', () => {
    assert.equal(run('gcp', provider, { ...GCP, sub: 'x'.repeat(127) }).exit, 0);
    assert.equal(run('gcp', provider, { ...GCP, sub: 'x'.repeat(128) }).exit, 1);
    assert.equal(run('gcp', provider, { ...GCP, sub: 'é'.repeat(64) }).exit, 1, 'bytes, not characters');
  });
  test('unmapped attribute is an import error; condition without binding refused on gitlab.com', () => {
    assert.equal(run('gcp', { ...provider, attributeCondition: "attribute.nope == 'x'" }, GCP).exit, 2);
    assert.equal(run('gcp', { ...provider, attributeCondition: "assertion.ref == 'main'" }, GCP).out.error, 'tenant_binding_missing');
  });
  test('matches() in a condition is an unanchored search (lint)', () => {
    const r = run('gcp', { ...provider, attributeCondition: "assertion.namespace_id == '123' && assertion.project_path.matches('foo')" }, GCP);
    assert.equal(r.exit, 0);
    assert.ok(lintCodes(r.out).includes('cel-unanchored-matches'));
  });
});

describe('Kubernetes claimValidationRules (policy.md §11.4)', () => {
  const K: Record<string, unknown> = { ...F2, aud: 'kube' };
  const config = {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'AuthenticationConfiguration',
    jwt: [{ issuer: { url: 'https://gitlab.com', audiences: ['kube'] }, claimValidationRules: [{ claim: 'namespace_id', requiredValue: '123' }, { expression: 'claims.exp - claims.nbf <= 86400' }] }],
  };
  test('requiredValue: present, a JSON string, equal', () => {
    assert.equal(run('k8s', config, K).exit, 0);
    assert.equal(run('k8s', config, { ...K, namespace_id: '124' }).exit, 1);
    const typed = run('k8s', config, { ...K, namespace_id: 123 });
    assert.equal(typed.exit, 1);
    assert.equal(typed.out.cause, 'claim-type');
  });
  test('CEL rule errors deny; several audiences need MatchAny', () => {
    const { nbf: _n, ...noNbf } = K;
    assert.equal(run('k8s', config, noNbf).out.cause, 'cel-error');
    const two = { ...config, jwt: [{ ...config.jwt[0], issuer: { url: 'https://gitlab.com', audiences: ['a', 'b'] } }] };
    assert.equal(run('k8s', two, K).exit, 2);
  });
  test('no tenant binding on gitlab.com is refused (G6)', () => {
    const open = { ...config, jwt: [{ issuer: { url: 'https://gitlab.com', audiences: ['kube'] }, claimValidationRules: [{ claim: 'ref', requiredValue: 'main' }] }] };
    assert.equal(run('k8s', open, K).out.error, 'tenant_binding_missing');
    const viaCel = { ...config, jwt: [{ issuer: { url: 'https://gitlab.com', audiences: ['kube'] }, claimValidationRules: [{ expression: "claims.namespace_id == '123' && claims.ref == 'main'" }] }] };
    assert.equal(run('k8s', viaCel, K).exit, 0, 'top-level CEL equality conjuncts count as bindings');
  });
  test('rules alone; userValidationRules refused rather than ignored', () => {
    assert.equal(run('k8s', [{ claim: 'namespace_id', requiredValue: '123' }], K, 'kube').exit, 0);
    const uvr = { ...config, jwt: [{ ...config.jwt[0], userValidationRules: [{ expression: "!user.username.startsWith('system:')" }] }] };
    assert.equal(run('k8s', uvr, K).exit, 2);
  });
});

describe('policy eval/lint exit codes (CLI contract)', () => {
  test('native: 0 allow, 1 deny, 2 malformed', () => {
    const role = { name: 'deploy', issuer: 'gitlab.com', audiences: ['https://gitlab.com'], when: { all: [{ claim: 'project_id', eq: '55235664' }, { claim: 'ref_protected', eq: true }] } };
    assert.equal(run('native', role, GL).exit, 0);
    assert.equal(run('native', role, { ...GL, ref_protected: 'false' }).exit, 1);
    assert.equal(run('native', { ...role, bogus: 1 }, GL).exit, 2);
    assert.equal(run('native', '{not json', GL).exit, 2);
  });
  test('lint flags a crossing wildcard and a missing binding', () => {
    const r = lintPolicy({ dialect: 'vault', policyText: JSON.stringify({ role_type: 'jwt', bound_audiences: ['a'], user_claim: 'user_email', bound_claims_type: 'glob', bound_claims: { project_path: 'mygroup/*' } }), issuerUrl: 'https://gitlab.com' });
    const codes = (r.output as { lints: { code: string }[] }).lints.map((l) => l.code);
    assert.ok(codes.includes('glob-crosses-segment'));
    const n = lintPolicy({ dialect: 'native', policyText: JSON.stringify({ name: 'r', issuer: 'gitlab.com', audiences: ['a'], when: { claim: 'ref', eq: 'main' } }), issuerUrl: 'https://gitlab.com' });
    assert.ok((n.output as { lints: { code: string }[] }).lints.some((l) => l.code === 'tenant-binding-missing'));
    assert.equal(n.exitCode, 1);
  });
});
