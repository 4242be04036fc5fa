import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildIssuer, decodeHeader, decodePayload, f7Variables, testClock, type IssuerHarness } from './helpers.ts';
import { CiConfig } from '../../src/issuer/id-tokens.ts';
import { expansionVariables, parseJobContext } from '../../src/issuer/context.ts';
import { GITLAB_CLAIMS } from '../../src/providers/gitlab.ts';

/** The spec's fixtures (issuer.md §13), reproduced from GitLab variables through the real pipeline. */
const F1 = {"namespace_id":"72","namespace_path":"my-group","project_id":"20","project_path":"my-group/my-project","user_id":"1","user_login":"sample-user","user_email":"sample-user@example.com","user_identities":[{"provider":"github","extern_uid":"2435223452345"},{"provider":"bitbucket","extern_uid":"john.smith"}],"pipeline_id":"574","pipeline_source":"push","job_id":"302","ref":"feature-branch-1","ref_type":"branch","ref_path":"refs/heads/feature-branch-1","ref_protected":"false","groups_direct":["mygroup/mysubgroup","myothergroup/myothersubgroup"],"environment":"test-environment2","environment_protected":"false","deployment_tier":"testing","environment_action":"start","job_source":"push","job_config":{"url":"https://gitlab.example.com/my-group/my-policy-project/-/blob/ab035e64eca9a7a85bd62e485d3593f52a2804ac/.gitlab/security-policies/policy.yml","sha":"ab035e64eca9a7a85bd62e485d3593f52a2804ac"},"runner_id":1,"runner_environment":"self-hosted","sha":"714a629c0b401fdce83e847fc9589983fc6f46bc","project_visibility":"public","ci_config_ref_uri":"gitlab.example.com/my-group/my-project//.gitlab-ci.yml@refs/heads/main","ci_config_sha":"714a629c0b401fdce83e847fc9589983fc6f46bc","jti":"235b3a54-b797-45c7-ae9a-f72d7bc6ef5b","iss":"https://gitlab.example.com","iat":1681395193,"nbf":1681395188,"exp":1681398793,"sub":"project_path:my-group/my-project:ref_type:branch:ref:feature-branch-1","aud":"https://vault.example.com"};
const F2 = {"namespace_id":"123","namespace_path":"foo","project_id":"55235664","project_path":"foo/bar","user_id":"123","user_login":"user","user_email":"user@example.com","user_access_level":"owner","pipeline_id":"123","pipeline_source":"push","job_id":"123","ref":"main","ref_type":"branch","ref_path":"refs/heads/main","ref_protected":"true","runner_id":123,"runner_environment":"gitlab-hosted","sha":"93969f556a29853b507bdcd9dec6b4217a4ea2e7","project_visibility":"private","ci_config_ref_uri":"gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main","ci_config_sha":"93969f556a29853b507bdcd9dec6b4217a4ea2e7","jti":"2a5381a8-baf5-43c5-823d-544a08a067fb","iat":1750405794,"nbf":1750405789,"exp":1750409394,"iss":"https://gitlab.com","sub":"project_path:foo/bar:ref_type:branch:ref:main","aud":"pypi"};
const F3 = {"namespace_id":"1008548","namespace_path":"strideynet","project_id":"39980849","project_path":"strideynet/test-gitlab-jwt","user_id":"842508","user_login":"strideynet","user_email":"redacted","pipeline_id":"659183071","pipeline_source":"push","job_id":"3131574536","ref":"main","ref_type":"branch","ref_protected":"true","jti":"03362687-b43c-404a-b3bd-0a57e2f7b512","iss":"gitlab.com","iat":1664985077,"nbf":1664985072,"exp":1664988677,"sub":"job_3131574536"};
const F7 = {"namespace_id":"72","namespace_path":"acme/platform","project_id":"20","project_path":"acme/platform/api","user_id":"1","user_login":"dev","user_email":"dev@example.com","user_access_level":"developer","job_project_id":"20","job_project_path":"acme/platform/api","job_namespace_id":"72","job_namespace_path":"acme/platform","pipeline_id":"574","pipeline_source":"push","job_id":"302","job_source":"push","ref":"main","ref_type":"branch","ref_path":"refs/heads/main","ref_protected":"true","runner_id":7,"runner_environment":"self-hosted","sha":"714a629c0b401fdce83e847fc9589983fc6f46bc","project_visibility":"private","cost_center":"cc-1234","jti":"9f0c3e0e-4c1b-4a4e-9d55-3c1f2b7a6e10","iss":"https://ci.example.com","iat":1750405794,"nbf":1750405789,"exp":1750406094,"sub":"project_id:20:ref_type:branch:ref:main","aud":["https://broker.example.com"]};

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function withJti<T extends Record<string, unknown>>(fixture: T, jti: unknown): T {
  return { ...fixture, jti };
}


async function issue(h: IssuerHarness, vars: Record<string, string>, yaml: string, job: string) {
  const context = parseJobContext(vars);
  return h.module.core.issueJob({ context, job: CiConfig.parse(yaml).jobTokenConfig(job), variables: expansionVariables(vars) });
}

describe('fixtures F1-F7 (issuer.md §13)', () => {
  test('F7: group sub template, immutable group claim, config from another project: byte-for-byte', async () => {
    const h = await buildIssuer({
      clock: testClock(1750405794),
      issuer: {
        groups: { acme: { subTemplate: { components: ['project_id', 'ref_type', 'ref'] }, claims: [{ name: 'cost_center', value: 'cc-1234' }] } },
      },
    });
    const out = await issue(h, f7Variables(), 'deploy:\n  script: [true]\n  id_tokens:\n    BROKER_TOKEN:\n      aud: ["https://broker.example.com"]\n', 'deploy');
    const token = out.tokens.BROKER_TOKEN!;
    const claims = decodePayload(token);
    assert.match(String(claims.jti), UUID_V4);
    assert.equal(JSON.stringify(claims), JSON.stringify(withJti(F7, claims.jti)));
    assert.deepEqual(Object.keys(decodeHeader(token)), ['kid', 'typ', 'alg']);
    await h.close();
  });

  test('F2: gitlab.com-shaped token; ours adds only job_project_*, job_namespace_* and job_source (GitLab 18.4+)', async () => {
    const h = await buildIssuer({ clock: testClock(1750405794), issuer: { issuerUrl: 'https://gitlab.com' } });
    const vars = {
      CI_PROJECT_ID: '55235664', CI_PROJECT_PATH: 'foo/bar', CI_PROJECT_NAMESPACE_ID: '123', CI_PROJECT_NAMESPACE: 'foo',
      CI_PROJECT_VISIBILITY: 'private', CI_PIPELINE_ID: '123', CI_PIPELINE_SOURCE: 'push', CI_JOB_ID: '123', CI_JOB_NAME: 'publish',
      CI_JOB_TIMEOUT: '3600', CI_COMMIT_REF_NAME: 'main', CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_PROTECTED: 'true',
      CI_COMMIT_SHA: '93969f556a29853b507bdcd9dec6b4217a4ea2e7', CI_CONFIG_PATH: '.gitlab-ci.yml', GITLAB_USER_ID: '123',
      GITLAB_USER_LOGIN: 'user', GITLAB_USER_EMAIL: 'user@example.com', CI_OIDC_USER_ACCESS_LEVEL: 'owner', CI_RUNNER_ID: '123',
      CI_OIDC_RUNNER_ENVIRONMENT: 'gitlab-hosted', CI_SERVER_HOST: 'gitlab.com',
    };
    const out = await issue(h, vars, 'publish:\n  id_tokens:\n    PYPI_ID_TOKEN:\n      aud: pypi\n', 'publish');
    const claims = decodePayload(out.tokens.PYPI_ID_TOKEN!);
    const extra = Object.keys(claims).filter((k) => !(k in F2));
    assert.deepEqual(extra.sort(), ['job_namespace_id', 'job_namespace_path', 'job_project_id', 'job_project_path', 'job_source']);
    for (const [k, v] of Object.entries(F2)) if (k !== 'jti') assert.deepEqual(claims[k], v, k);
    assert.equal(claims.aud, 'pypi', 'a YAML string gives a JSON string');
    await h.close();
  });

  test('F1: GitLab docs example with identities, groups_direct, environment and a policy job', async () => {
    const h = await buildIssuer({
      clock: testClock(1681395193),
      issuer: { issuerUrl: 'https://gitlab.example.com', projects: { 'my-group/my-project': { groupsDirect: true } } },
    });
    const vars = {
      CI_PROJECT_ID: '20', CI_PROJECT_PATH: 'my-group/my-project', CI_PROJECT_NAMESPACE_ID: '72', CI_PROJECT_NAMESPACE: 'my-group',
      CI_PROJECT_VISIBILITY: 'public', CI_PIPELINE_ID: '574', CI_PIPELINE_SOURCE: 'push', CI_JOB_ID: '302', CI_JOB_NAME: 'vault',
      CI_JOB_TIMEOUT: '3600', CI_COMMIT_REF_NAME: 'feature-branch-1', CI_COMMIT_BRANCH: 'feature-branch-1', CI_COMMIT_REF_PROTECTED: 'false',
      CI_COMMIT_SHA: '714a629c0b401fdce83e847fc9589983fc6f46bc', GITLAB_USER_ID: '1', GITLAB_USER_LOGIN: 'sample-user',
      GITLAB_USER_EMAIL: 'sample-user@example.com',
      CI_OIDC_USER_IDENTITIES: JSON.stringify(F1.user_identities),
      CI_OIDC_GROUPS_DIRECT: JSON.stringify(F1.groups_direct),
      CI_ENVIRONMENT_NAME: 'test-environment2', CI_ENVIRONMENT_TIER: 'testing', CI_ENVIRONMENT_ACTION: 'start',
      CI_OIDC_JOB_CONFIG_URL: F1.job_config.url, CI_OIDC_JOB_CONFIG_SHA: F1.job_config.sha,
      CI_RUNNER_ID: '1', CI_SERVER_HOST: 'gitlab.example.com',
    };
    const out = await issue(h, vars, 'vault:\n  id_tokens:\n    VAULT_ID_TOKEN:\n      aud: https://vault.example.com\n', 'vault');
    const claims = decodePayload(out.tokens.VAULT_ID_TOKEN!);
    // The docs example omits job_project_*/job_namespace_*, which GitLab lists as always present.
    assert.deepEqual(Object.keys(claims).filter((k) => !(k in F1)).sort(), ['job_namespace_id', 'job_namespace_path', 'job_project_id', 'job_project_path']);
    for (const [k, v] of Object.entries(F1)) {
      if (k === 'jti') continue;
      // The docs example names refs/heads/main in ci_config_ref_uri although its ref is feature-branch-1;
      // a real pipeline reports the pipeline's own ref.
      if (k === 'ci_config_ref_uri') {
        assert.equal(claims[k], 'gitlab.example.com/my-group/my-project//.gitlab-ci.yml@refs/heads/feature-branch-1');
        continue;
      }
      assert.deepEqual(claims[k], v, k);
    }
    assert.equal('user_access_level' in claims, false, 'no role given: omitted, never null');
    await h.close();
  });

  test('F3: legacy CI_JOB_JWT v1 byte-for-byte, and its V2 twin', async () => {
    const h = await buildIssuer({
      clock: testClock(1664985077),
      issuer: { issuerUrl: 'https://gitlab.com', projects: { 'strideynet/test-gitlab-jwt': { legacyJobJwt: true } } },
    });
    const vars = {
      CI_PROJECT_ID: '39980849', CI_PROJECT_PATH: 'strideynet/test-gitlab-jwt', CI_PROJECT_NAMESPACE_ID: '1008548',
      CI_PROJECT_NAMESPACE: 'strideynet', CI_PROJECT_VISIBILITY: 'public', CI_PIPELINE_ID: '659183071', CI_PIPELINE_SOURCE: 'push',
      CI_JOB_ID: '3131574536', CI_JOB_NAME: 'build', CI_JOB_TIMEOUT: '3600', CI_COMMIT_REF_NAME: 'main', CI_COMMIT_BRANCH: 'main',
      CI_COMMIT_REF_PROTECTED: 'true', CI_COMMIT_SHA: '93969f556a29853b507bdcd9dec6b4217a4ea2e7', GITLAB_USER_ID: '842508',
      GITLAB_USER_LOGIN: 'strideynet', GITLAB_USER_EMAIL: 'redacted', CI_RUNNER_ID: '5',
    };
    const out = await issue(h, vars, 'build:\n  script: [make]\n', 'build');
    assert.deepEqual(Object.keys(out.tokens).sort(), ['CI_JOB_JWT', 'CI_JOB_JWT_V1', 'CI_JOB_JWT_V2']);
    const v1 = decodePayload(out.tokens.CI_JOB_JWT!);
    assert.equal(JSON.stringify(v1), JSON.stringify(withJti(F3, v1.jti)));
    const v2 = decodePayload(out.tokens.CI_JOB_JWT_V2!);
    assert.equal(v2.iss, 'https://gitlab.com');
    assert.equal(v2.aud, 'https://gitlab.com');
    assert.equal(v2.sub, 'project_path:strideynet/test-gitlab-jwt:ref_type:branch:ref:main');
    for (const [k, v] of Object.entries(F3)) if (!['jti', 'iss', 'sub'].includes(k)) assert.deepEqual(v2[k], v, k);
    // Jobs with id_tokens never get the legacy variables.
    const withIdTokens = await issue(h, { ...vars, CI_JOB_ID: '3131574537' }, 'build:\n  id_tokens:\n    T:\n      aud: x\n', 'build');
    assert.deepEqual(Object.keys(withIdTokens.tokens), ['T']);
    await h.close();
  });

  test('legacy tokens are off unless the project opts in', async () => {
    const h = await buildIssuer({});
    const out = await issue(h, f7Variables(), 'deploy:\n  script: [true]\n', 'deploy');
    assert.deepEqual(out.tokens, {});
    await h.close();
  });
});

describe('claim types and presence (issuer.md §2)', () => {
  test('every claim has its exact JSON type; nothing is ever null', async () => {
    const h = await buildIssuer({ issuer: { projects: { 'acme/platform/api': { groupsDirect: true } } } });
    const vars = {
      ...f7Variables(), CI_CONFIG_PATH: '.gitlab-ci.yml', CI_OIDC_CONFIG_SOURCE: '', CI_ENVIRONMENT_NAME: 'production',
      CI_ENVIRONMENT_TIER: 'production', CI_ENVIRONMENT_ACTION: 'start', CI_OIDC_ENVIRONMENT_PROTECTED: 'true',
      CI_OIDC_GROUPS_DIRECT: '["acme","acme/platform"]', CI_OIDC_USER_IDENTITIES: '[{"provider":"ldap","extern_uid":"uid=dev"}]',
      CI_OIDC_JOB_CONFIG_URL: 'https://ci.example.com/acme/policies/-/blob/abc/policy.yml', CI_OIDC_JOB_CONFIG_SHA: 'ab035e64eca9a7a85bd62e485d3593f52a2804ac',
    };
    const claims = decodePayload((await issue(h, vars, 'deploy:\n  id_tokens:\n    A:\n      aud: a\n', 'deploy')).tokens.A!);
    for (const spec of GITLAB_CLAIMS) {
      const v = claims[spec.name];
      assert.notEqual(v, undefined, `${spec.name} present in a maximal job`);
      switch (spec.type) {
        case 'id': assert.match(v as string, /^[1-9][0-9]*$/, spec.name); break;
        case 'integer': assert.ok(Number.isSafeInteger(v), spec.name); break;
        case 'boolean_string': assert.ok(v === 'true' || v === 'false', spec.name); break;
        case 'enum': assert.ok(spec.values!.includes(v as string), spec.name); break;
        case 'sha': assert.match(v as string, /^[0-9a-f]{40}$/, spec.name); break;
        case 'string': assert.equal(typeof v, 'string', spec.name); break;
        case 'string_array': assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), spec.name); break;
        case 'identities': assert.deepEqual(v, [{ provider: 'ldap', extern_uid: 'uid=dev' }]); break;
        case 'object': assert.deepEqual(Object.keys(v as object), ['url', 'sha']); break;
      }
    }
    assert.equal(claims.environment_protected, 'true');
    assert.equal(claims.ci_config_ref_uri, 'ci.example.com/acme/platform/api//.gitlab-ci.yml@refs/heads/main');
    assert.equal(claims.nbf, (claims.iat as number) - 5);
    assert.ok(!JSON.stringify(claims).includes('null'));
    assert.equal('email' in claims, false);
    await h.close();
  });

  test('minimal job: no user, no environment, no policy job, no groups: those claims are omitted', async () => {
    const h = await buildIssuer({});
    const vars = f7Variables();
    for (const k of ['GITLAB_USER_ID', 'GITLAB_USER_LOGIN', 'GITLAB_USER_EMAIL', 'CI_OIDC_USER_ACCESS_LEVEL']) delete vars[k];
    const claims = decodePayload((await issue(h, vars, 'deploy:\n  id_tokens:\n    A:\n      aud: a\n', 'deploy')).tokens.A!);
    for (const absent of ['user_id', 'user_login', 'user_email', 'user_access_level', 'user_identities', 'groups_direct', 'environment', 'environment_protected', 'deployment_tier', 'environment_action', 'job_config', 'ci_config_ref_uri', 'ci_config_sha']) {
      assert.equal(absent in claims, false, absent);
    }
    await h.close();
  });

  test('groups_direct needs the project setting and at most 200 groups', async () => {
    const many = JSON.stringify(Array.from({ length: 201 }, (_, i) => `g${String(i)}`));
    const h = await buildIssuer({ issuer: { projects: { 'acme/platform/api': { groupsDirect: true } } } });
    const off = await buildIssuer({});
    const yaml = 'deploy:\n  id_tokens:\n    A:\n      aud: a\n';
    assert.equal('groups_direct' in decodePayload((await issue(h, { ...f7Variables(), CI_OIDC_GROUPS_DIRECT: many }, yaml, 'deploy')).tokens.A!), false);
    assert.equal('groups_direct' in decodePayload((await issue(off, { ...f7Variables(), CI_OIDC_GROUPS_DIRECT: '["acme"]' }, yaml, 'deploy')).tokens.A!), false);
    assert.deepEqual(decodePayload((await issue(h, { ...f7Variables(), CI_OIDC_GROUPS_DIRECT: '["acme"]' }, yaml, 'deploy')).tokens.A!).groups_direct, ['acme']);
    await h.close();
    await off.close();
  });

  test('fork merge-request pipeline: project_* is the fork, job_project_* where the job runs (R9)', async () => {
    const h = await buildIssuer({});
    const vars = {
      ...f7Variables(), CI_PIPELINE_SOURCE: 'merge_request_event', CI_COMMIT_BRANCH: '', CI_COMMIT_REF_NAME: 'fix-1',
      CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'fix-1', CI_COMMIT_REF_PROTECTED: 'false',
      CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '999', CI_MERGE_REQUEST_SOURCE_PROJECT_PATH: 'mallory/api', CI_OIDC_SOURCE_NAMESPACE_ID: '998',
    };
    const claims = decodePayload((await issue(h, vars, 'deploy:\n  id_tokens:\n    A:\n      aud: a\n', 'deploy')).tokens.A!);
    assert.equal(claims.project_id, '999');
    assert.equal(claims.project_path, 'mallory/api');
    assert.equal(claims.namespace_id, '998');
    assert.equal(claims.namespace_path, 'mallory');
    assert.equal(claims.job_project_id, '20');
    assert.equal(claims.job_project_path, 'acme/platform/api');
    assert.equal(claims.job_namespace_path, 'acme/platform');
    assert.equal(claims.ref, 'fix-1');
    assert.equal(claims.ref_protected, 'false');
    assert.equal(claims.sub, 'project_path:mallory/api:ref_type:branch:ref:fix-1');
    const missing = { ...vars } as Record<string, string>;
    delete missing.CI_OIDC_SOURCE_NAMESPACE_ID;
    assert.throws(() => parseJobContext(missing), /CI_OIDC_SOURCE_NAMESPACE_ID is missing/);
    await h.close();
  });

  test('tags: ref_type tag, ref_path refs/tags/<tag>', async () => {
    const h = await buildIssuer({});
    const claims = decodePayload((await issue(h, { ...f7Variables(), CI_COMMIT_TAG: 'v1.2.0', CI_COMMIT_BRANCH: '' }, 'deploy:\n  id_tokens:\n    A:\n      aud: a\n', 'deploy')).tokens.A!);
    assert.equal(claims.ref, 'v1.2.0');
    assert.equal(claims.ref_type, 'tag');
    assert.equal(claims.ref_path, 'refs/tags/v1.2.0');
    assert.equal(claims.sub, 'project_path:acme/platform/api:ref_type:tag:ref:v1.2.0');
    await h.close();
  });

  test('a retried job gets new jtis; 1000 mints have unique UUID v4 jtis', async () => {
    const h = await buildIssuer({});
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const { claims } = h.module.mint({ variables: f7Variables(), aud: 'x' });
      assert.match(String(claims.jti), UUID_V4);
      seen.add(String(claims.jti));
    }
    assert.equal(seen.size, 1000);
    await h.close();
  });
});

describe('job context errors name the variable', () => {
  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    ['missing project id', { CI_PROJECT_ID: undefined }, /CI_PROJECT_ID is missing/],
    ['leading zero id', { CI_PROJECT_ID: '020' }, /CI_PROJECT_ID must be a decimal ID/],
    ['namespace mismatch', { CI_PROJECT_NAMESPACE: 'other' }, /CI_PROJECT_NAMESPACE must be the namespace part/],
    ['bad sha', { CI_COMMIT_SHA: 'XYZ' }, /CI_COMMIT_SHA/],
    ['bad visibility', { CI_PROJECT_VISIBILITY: 'secret' }, /CI_PROJECT_VISIBILITY must be one of/],
    ['bad runner id', { CI_RUNNER_ID: '-1' }, /CI_RUNNER_ID/],
    ['missing runner id', { CI_RUNNER_ID: undefined }, /CI_RUNNER_ID is missing/],
    ['ref with colon', { CI_COMMIT_BRANCH: 'a:b' }, /CI_COMMIT_BRANCH is not a valid git ref/],
    ['ref with newline', { CI_COMMIT_BRANCH: 'a\nb' }, /CI_COMMIT_BRANCH is not a valid git ref/],
    ['ref with NUL', { CI_COMMIT_BRANCH: 'a\u0000b' }, /CI_COMMIT_BRANCH is not a valid git ref/],
    ['protected not boolean', { CI_COMMIT_REF_PROTECTED: 'yes' }, /CI_COMMIT_REF_PROTECTED must be "true" or "false"/],
    ['missing protected', { CI_COMMIT_REF_PROTECTED: undefined }, /CI_COMMIT_REF_PROTECTED is missing/],
    ['timeout too small', { CI_JOB_TIMEOUT: '10' }, /CI_JOB_TIMEOUT must be between/],
    ['timeout not a number', { CI_JOB_TIMEOUT: '1h' }, /CI_JOB_TIMEOUT must be a whole number/],
    ['access level', { CI_OIDC_USER_ACCESS_LEVEL: 'admin' }, /CI_OIDC_USER_ACCESS_LEVEL must be one of/],
    ['login without user id', { GITLAB_USER_ID: undefined }, /GITLAB_USER_ID is missing although/],
    ['tier without environment', { CI_ENVIRONMENT_TIER: 'production' }, /CI_ENVIRONMENT_NAME is missing although CI_ENVIRONMENT_TIER/],
    ['environment with colon', { CI_ENVIRONMENT_NAME: 'prod:eu' }, /CI_ENVIRONMENT_NAME may contain only/],
    ['runner environment', { CI_OIDC_RUNNER_ENVIRONMENT: 'cloud' }, /CI_OIDC_RUNNER_ENVIRONMENT must be one of/],
    ['path traversal', { CI_PROJECT_PATH: 'acme/../api', CI_PROJECT_NAMESPACE: 'acme/..' }, /CI_PROJECT_PATH must be a GitLab full path/],
    ['groups not an array', { CI_OIDC_GROUPS_DIRECT: '{"a":1}' }, /CI_OIDC_GROUPS_DIRECT must be a JSON array/],
    ['identities with extra members', { CI_OIDC_USER_IDENTITIES: '[{"provider":"a","extern_uid":"b","x":1}]' }, /CI_OIDC_USER_IDENTITIES entries must be exactly/],
    ['policy sha without url', { CI_OIDC_JOB_CONFIG_SHA: 'ab035e64eca9a7a85bd62e485d3593f52a2804ac' }, /CI_OIDC_JOB_CONFIG_URL is missing/],
    ['long email', { GITLAB_USER_EMAIL: `${'a'.repeat(300)}@x` }, /GITLAB_USER_EMAIL is longer than 255/],
  ];
  for (const [name, patch, pattern] of cases) {
    test(name, () => {
      const vars: Record<string, string | undefined> = { ...f7Variables(), ...patch };
      assert.throws(() => parseJobContext(vars), (err: Error & { code?: string }) => err.code === 'job_context_invalid' && pattern.test(err.message));
    });
  }
});
