import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { escapeSubValue, renderSub, resolveSubTemplate, subTemplateProblems } from '../../src/issuer/sub.ts';
import { resolveCustomClaims, claimNameProblem, MAX_CUSTOM_CLAIMS, type ClaimLevel } from '../../src/issuer/custom-claims.ts';
import { CiConfig } from '../../src/issuer/id-tokens.ts';
import { expansionVariables, parseJobContext } from '../../src/issuer/context.ts';
import type { IssuerConfigInput } from '../../src/issuer/config.ts';
import { parseConfig } from '../../src/server/config.ts';
import { ConfigError } from '../../src/server/errors.ts';
import { subPairs, decodeSubValue } from '../../src/providers/claim-types.ts';
import { buildIssuer, decodePayload, f7Variables } from './helpers.ts';

function configErrors(issuer: IssuerConfigInput): string[] {
  try {
    parseConfig({ issuer: { issuerUrl: 'https://ci.example.com', ...issuer } });
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues;
  }
}

async function claimsFor(issuer: IssuerConfigInput, yaml = 'deploy:\n  id_tokens:\n    A:\n      aud: a\n', vars: Record<string, string> = f7Variables(), jobVars: Record<string, string> = {}) {
  const h = await buildIssuer({ issuer });
  try {
    const out = h.module.core.issueJob({ context: parseJobContext(vars), job: CiConfig.parse(yaml).jobTokenConfig('deploy'), variables: expansionVariables(vars, jobVars) });
    return decodePayload(out.tokens.A!);
  } finally {
    await h.close();
  }
}

describe('sub (issuer.md §3)', () => {
  test('default is GitLab\'s project_path:…:ref_type:…:ref:…', () => {
    assert.equal(renderSub(['project_path', 'ref_type', 'ref'], { project_path: 'g/p', ref_type: 'branch', ref: 'main' }), 'project_path:g/p:ref_type:branch:ref:main');
  });

  test('empty or absent components are skipped, name and value', () => {
    assert.equal(renderSub(['project_path', 'environment', 'ref'], { project_path: 'g/p', environment: '', ref: 'main' }), 'project_path:g/p:ref:main');
    assert.equal(renderSub(['project_path', 'deployment_tier', 'ref'], { project_path: 'g/p', ref: 'main' }), 'project_path:g/p:ref:main');
  });

  test('values are escaped (% then :) so no component can forge another; the verifier decodes them back', () => {
    assert.equal(escapeSubValue('a:b%3Ac'), 'a%3Ab%253Ac');
    const sub = renderSub(['project_path', 'environment'], { project_path: 'g/p', environment: 'x:ref:main' });
    assert.equal(sub, 'project_path:g/p:environment:x%3Aref%3Amain');
    const pairs = subPairs(sub, decodeSubValue);
    assert.deepEqual(pairs, [['project_path', 'g/p'], ['environment', 'x:ref:main']]);
  });

  test('template validation: allowed components, first component, 1-8, no duplicates', () => {
    assert.deepEqual(subTemplateProblems(['project_id', 'ref']), []);
    assert.match(subTemplateProblems(['ref', 'project_path']).join(), /first sub component must be one of/);
    assert.match(subTemplateProblems(['project_path', 'user_login']).join(), /unknown sub component\(s\) user_login/);
    assert.match(subTemplateProblems(['project_path', 'ref', 'ref']).join(), /must not repeat/);
    assert.match(subTemplateProblems([]).join(), /1 to 8/);
    assert.match(subTemplateProblems(['project_path', 'project_id', 'namespace_path', 'namespace_id', 'job_project_path', 'job_project_id', 'ref_type', 'ref', 'environment']).join(), /1 to 8/);
  });

  test('nearest level wins; the highest locked level wins over lower ones', () => {
    const a = { components: ['project_id'] as const };
    const b = { components: ['project_path'] as const };
    assert.equal(resolveSubTemplate([{ level: 'instance', template: a }, { level: 'project', template: b }]).level, 'project');
    assert.equal(resolveSubTemplate([{ level: 'instance', template: { ...a, locked: true } }, { level: 'project', template: b }]).level, 'instance');
    assert.equal(resolveSubTemplate([]).level, 'default');
  });

  test('group template is inherited by subgroups and projects (F7)', async () => {
    const claims = await claimsFor({ groups: { acme: { subTemplate: { components: ['project_id', 'ref_type', 'ref'] } } } });
    assert.equal(claims.sub, 'project_id:20:ref_type:branch:ref:main');
  });

  test('a project template overrides the group one; instance default applies elsewhere', async () => {
    const claims = await claimsFor({
      subTemplate: { components: ['project_path', 'ref'] },
      groups: { acme: { subTemplate: { components: ['project_id', 'ref_type', 'ref'] } } },
      projects: { 'acme/platform/api': { subTemplate: { components: ['job_project_id', 'environment', 'ref_protected'] } } },
    });
    assert.equal(claims.sub, 'job_project_id:20:ref_protected:true');
  });

  test('config: overriding a locked template is refused with sub_template_locked', () => {
    const issues = configErrors({
      groups: { acme: { subTemplate: { components: ['project_id'], locked: true } } },
      projects: { 'acme/platform/api': { subTemplate: { components: ['project_path'] } } },
    });
    assert.ok(issues.some((i) => /sub_template_locked: project acme\/platform\/api sets a sub template, but group acme locked it/.test(i)), issues.join('\n'));
  });

  test('config: invalid templates are refused with sub_template_invalid', () => {
    const issues = configErrors({ groups: { acme: { subTemplate: { components: ['ref', 'project_path'] } } } });
    assert.ok(issues.some((i) => /sub_template_invalid: issuer\.groups\.acme\.subTemplate: the first sub component/.test(i)), issues.join('\n'));
  });

  test('branch names with %, unicode and long values stay parseable (F2)', async () => {
    const claims = await claimsFor({ projects: { 'acme/platform/api': { subTemplate: { components: ['project_path', 'ref'] } } } }, undefined, { ...f7Variables(), CI_COMMIT_BRANCH: 'feat/%3A-ünï', CI_COMMIT_REF_NAME: 'feat/%3A-ünï' });
    assert.equal(claims.sub, 'project_path:acme/platform/api:ref:feat/%253A-ünï');
    assert.deepEqual(subPairs(String(claims.sub), decodeSubValue), [['project_path', 'acme/platform/api'], ['ref', 'feat/%3A-ünï']]);
  });
});

describe('custom claims (issuer.md §7, R3)', () => {
  const lvl = (level: string, defs: ClaimLevel['definitions'], untrusted = false): ClaimLevel => ({ level, definitions: defs, untrusted });

  test('inherited by every job below; deepest mutable definition wins', () => {
    const r = resolveCustomClaims([
      lvl('instance', [{ name: 'tier', value: 'std', mutable: true }]),
      lvl('group acme', [{ name: 'tier', value: 'gold', mutable: true }, { name: 'cost_center', value: 'cc-1' }]),
      lvl('project acme/api', [{ name: 'tier', value: 'platinum' }]),
    ]);
    assert.deepEqual(r.claims, { tier: 'platinum', cost_center: 'cc-1' });
  });

  test('immutable by default: a lower level may not change it, and the message names the locking level', () => {
    assert.throws(
      () => resolveCustomClaims([lvl('group acme', [{ name: 'cost_center', value: 'cc-1' }]), lvl('job deploy', [{ name: 'cost_center', value: 'free' }], true)]),
      (e: Error & { code?: string }) => e.code === 'claim_immutable' && /job deploy: claim cost_center is locked by group acme/.test(e.message),
    );
  });

  test('a mutable value must keep its JSON type', () => {
    assert.throws(
      () => resolveCustomClaims([lvl('instance', [{ name: 'n', value: 1, mutable: true }]), lvl('project p', [{ name: 'n', value: '1' }])]),
      (e: Error & { code?: string }) => e.code === 'claim_type_changed',
    );
  });

  test('built-in, registered, OIDC and GitHub names are reserved (F8)', () => {
    for (const name of ['iss', 'sub', 'aud', 'exp', 'jti', 'project_path', 'ref_protected', 'runner_id', 'email', 'email_verified', 'nonce', 'repository_owner_id', 'job_workflow_ref', 'repo_property_x', 'target_audience']) {
      assert.match(claimNameProblem(name) ?? '', /reserved/, name);
      assert.throws(() => resolveCustomClaims([lvl('instance', [{ name, value: 'x' }])]), (e: Error & { code?: string }) => e.code === 'claim_reserved', name);
    }
  });

  test('names: lowercase identifiers or https URIs of at most 256 chars', () => {
    assert.equal(claimNameProblem('cost_center'), undefined);
    assert.equal(claimNameProblem('https://aws.amazon.com/tags'), undefined);
    assert.match(claimNameProblem('CostCenter') ?? '', /must match/);
    assert.match(claimNameProblem(`https://x/${'a'.repeat(260)}`) ?? '', /at most 256/);
    assert.match(claimNameProblem('a'.repeat(65)) ?? '', /must match/);
  });

  test('values: string <= 256, safe integer, boolean, <= 50 strings, AWS tags object only for its URI', () => {
    const ok = (value: unknown, name = 'c') => resolveCustomClaims([lvl('instance', [{ name, value }])]);
    ok('x'.repeat(256));
    ok(42);
    ok(true);
    ok(Array.from({ length: 50 }, () => 'v'));
    ok({ principal_tags: { team: ['web'] }, transitive_tag_keys: ['team'] }, 'https://aws.amazon.com/tags');
    for (const bad of ['x'.repeat(257), 1.5, 2 ** 60, null, { a: 1 }, Array.from({ length: 51 }, () => 'v'), [1], 'a\nb']) {
      assert.throws(() => ok(bad), (e: Error & { code?: string }) => e.code === 'claim_invalid', JSON.stringify(bad)?.slice(0, 40));
    }
    assert.throws(() => ok({ principal_tags: { team: 'web' } }, 'https://aws.amazon.com/tags'), /one-element array/);
    assert.throws(() => ok({ principal_tags: {}, transitive_tag_keys: ['x'] }, 'https://aws.amazon.com/tags'), /transitive_tag_keys/);
  });

  test(`at most ${String(MAX_CUSTOM_CLAIMS)} claims and 4 KiB per token`, () => {
    const defs = Array.from({ length: 21 }, (_, i) => ({ name: `c${String(i)}`, value: 'v' }));
    assert.throws(() => resolveCustomClaims([lvl('a', defs.slice(0, 11)), lvl('b', defs.slice(11))]), (e: Error & { code?: string }) => e.code === 'claims_too_many');
    const big = Array.from({ length: 20 }, (_, i) => ({ name: `c${String(i)}`, value: 'v'.repeat(250) }));
    assert.throws(() => resolveCustomClaims([lvl('a', big)]), (e: Error & { code?: string }) => e.code === 'claims_too_large');
  });

  test('config: a group or project save that overrides an immutable claim is refused with claim_immutable', () => {
    const issues = configErrors({
      claims: [{ name: 'tier', value: 'std', mutable: true }],
      groups: { acme: { claims: [{ name: 'cost_center', value: 'cc-1' }] } },
      projects: { 'acme/platform/api': { claims: [{ name: 'cost_center', value: 'free' }, { name: 'tier', value: 'gold' }] } },
    });
    assert.equal(issues.filter((i) => i.includes('claim_immutable')).length, 1, issues.join('\n'));
    assert.match(issues.join('\n'), /project acme\/platform\/api: claim cost_center is locked by group acme/);
  });

  test('config: reserved names at any level are refused', () => {
    assert.match(configErrors({ groups: { acme: { claims: [{ name: 'project_id', value: '1' }] } } }).join('\n'), /claim_reserved/);
  });

  test('jobs add claims and override mutable ones, with expansion; never immutable or built-in ones', async () => {
    const issuer: IssuerConfigInput = { claims: [{ name: 'tier', value: 'std', mutable: true }], groups: { acme: { claims: [{ name: 'cost_center', value: 'cc-1234' }] } } };
    const yaml = 'deploy:\n  jwt_claims:\n    team: $TEAM\n    tier: gold\n  id_tokens:\n    A:\n      aud: a\n      jwt_claims:\n        purpose: deploy\n        team: override\n';
    const claims = await claimsFor(issuer, yaml, f7Variables(), { TEAM: 'web' });
    assert.equal(claims.cost_center, 'cc-1234');
    assert.equal(claims.tier, 'gold');
    assert.equal(claims.team, 'override');
    assert.equal(claims.purpose, 'deploy');
    await assert.rejects(claimsFor(issuer, 'deploy:\n  jwt_claims:\n    cost_center: free\n  id_tokens:\n    A:\n      aud: a\n'), /job deploy: claim cost_center is locked by group acme/);
    await assert.rejects(claimsFor(issuer, 'deploy:\n  jwt_claims:\n    ref_protected: "true"\n  id_tokens:\n    A:\n      aud: a\n'), /reserved/);
  });

  test('job variables cannot forge built-in claims (F2): claims come from the context only', async () => {
    const claims = await claimsFor({}, 'deploy:\n  id_tokens:\n    A:\n      aud: a\n', f7Variables(), { CI_PROJECT_PATH: 'victim/repo', CI_COMMIT_REF_PROTECTED: 'true' });
    assert.equal(claims.project_path, 'acme/platform/api');
  });

  test('claims_supported lists instance and group claims, never job claims', async () => {
    const h = await buildIssuer({ issuer: { claims: [{ name: 'tier', value: 'x' }], groups: { acme: { claims: [{ name: 'cost_center', value: 'cc' }] } }, projects: { 'acme/api': { claims: [{ name: 'proj_only', value: 'x' }] } } } });
    const supported = h.module.discovery().claims_supported;
    assert.ok(supported.includes('tier') && supported.includes('cost_center'));
    assert.ok(!supported.includes('proj_only'));
    assert.ok(supported.includes('ci_config_ref_uri') && supported.includes('job_project_id') && supported.includes('runner_id'));
    await h.close();
  });
});
