import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AssumeRoleWithWebIdentityCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { forEachStore, type TestStore } from '../helpers/store.ts';
import { createTestIssuer, realPolicy, startBroker, testVerifier, type TestBroker, type TestIssuer } from './fixtures.ts';

const ADMIN = 'b'.repeat(40);
const BROKER_AUD = 'https://broker.example.test';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/deploy';

const gate = (extra: Record<string, unknown>[] = []) => ({ all: [{ claim: 'project_id', eq: '20' }, { claim: 'ref_protected', eq: 'true' }, ...extra] });

forEachStore((kind, open) => {
  let store: TestStore;
  let broker: TestBroker;
  let gitlab: TestIssuer;
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    store = await open();
    gitlab = await createTestIssuer();
    const verifier = testVerifier([gitlab], now);
    const policy = await realPolicy(store, verifier);
    await policy.saveRole({ name: 'deploy-prod', issuer: 'gitlab.com', audiences: [BROKER_AUD], when: gate(), claimMappings: { project_path: 'project' }, grant: { type: 'oauth', scopes: ['read', 'write'], audience: ['https://api.example.test'], maxTtl: 600 } });
    await policy.saveRole({ name: 'reusable', issuer: 'gitlab.com', audiences: ['https://reuse.example.test'], when: gate(), grant: { type: 'oauth', singleUse: false } });
    await policy.saveRole({ name: 'vault-ci', issuer: 'gitlab.com', audiences: ['https://vault.example.test'], when: gate(), claimMappings: { project_path: 'project_path', ref: 'ref' }, grant: { type: 'vault', policies: ['ci-read'], token_explicit_max_ttl: 60 } });
    await policy.saveRole({ name: 'aws-deploy', issuer: 'gitlab.com', audiences: ['https://gitlab.com'], when: gate(), grant: { type: 'aws', roleArn: ROLE_ARN, maxTtl: 3600 } });
    broker = await startBroker(store, { verifier, policy }, { broker: { adminToken: ADMIN, vault: { mounts: { jwt: {}, gitlab: { defaultRole: 'vault-ci' } } } } });
  });
  after(async () => {
    await broker.close();
    await store.close();
  });

  const exchange = (params: Record<string, string | string[]>, type = 'form') => {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) form.append(k, x);
    return fetch(`${broker.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': type === 'json' ? 'application/json' : 'application/x-www-form-urlencoded' },
      body: type === 'json' ? JSON.stringify(params) : form,
    });
  };
  const te = (token: string, extra: Record<string, string | string[]> = {}) => ({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: token,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    ...extra,
  });

  test(`${kind}: RFC 8693 exchange selects the role, intersects scopes and is single-use`, async () => {
    const token = gitlab.mint({ aud: BROKER_AUD });
    const r = await exchange(te(token, { scope: 'write', audience: 'https://api.example.test' }));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const j = (await r.json()) as Record<string, unknown>;
    assert.equal(j.token_type, 'Bearer');
    assert.equal(j.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
    assert.equal(j.scope, 'write');
    assert.ok((j.expires_in as number) <= 300 && (j.expires_in as number) > 250, 'bound to the token expiry');
    assert.match(j.access_token as string, /^cioidc_/);
    const again = await exchange(te(token));
    assert.equal(again.status, 400);
    assert.deepEqual(await again.json(), { error: 'invalid_request', error_description: 'replayed' });
  });

  test(`${kind}: RFC 8693 errors are RFC 6749 JSON`, async () => {
    const cases: [Record<string, string | string[]>, string, string?][] = [
      [{ grant_type: 'client_credentials' }, 'unsupported_grant_type'],
      [te(gitlab.mint({ aud: BROKER_AUD }), { subject_token_type: 'urn:x' }), 'invalid_request', 'unsupported_subject_token_type'],
      [te(gitlab.mint({ aud: BROKER_AUD }), { actor_token: 'x', actor_token_type: 'urn:ietf:params:oauth:token-type:jwt' }), 'invalid_request', 'actor_token_unsupported'],
      [te(gitlab.mint({ aud: BROKER_AUD }), { audience: 'https://evil.example.test' }), 'invalid_target', 'target_not_allowed'],
      [te(gitlab.mint({ aud: BROKER_AUD, project_id: '21' })), 'invalid_request', 'no-role-matched'],
      [te(gitlab.mint({ aud: BROKER_AUD }), { scope: 'role:nope' }), 'invalid_request', 'role-not-found'],
      [te(gitlab.mint({ aud: [BROKER_AUD, 'https://evil.example.test'] })), 'invalid_request', 'aud_multi_valued'],
      [te('not-a-jwt'), 'invalid_request', 'token_malformed'],
    ];
    for (const [params, error, description] of cases) {
      const r = await exchange(params);
      assert.equal(r.status, 400);
      const j = (await r.json()) as { error: string; error_description: string };
      assert.equal(j.error, error, JSON.stringify(j));
      if (description) assert.equal(j.error_description, description);
    }
  });

  test(`${kind}: RFC 8693 accepts JSON bodies and roles may opt out of single use`, async () => {
    const token = gitlab.mint({ aud: 'https://reuse.example.test' });
    for (let i = 0; i < 2; i++) {
      const r = await exchange(te(token, { scope: 'role:reusable' }), 'json');
      assert.equal(r.status, 200);
    }
  });

  test(`${kind}: Vault login returns Vault's auth shape with mapped metadata`, async () => {
    const jwt = gitlab.mint({ aud: 'https://vault.example.test' });
    const r = await fetch(`${broker.url}/v1/auth/jwt/login`, { method: 'POST', body: JSON.stringify({ role: 'vault-ci', jwt }) });
    assert.equal(r.status, 200);
    const j = (await r.json()) as { auth: Record<string, unknown>; lease_id: string; renewable: boolean; data: null };
    assert.equal(j.lease_id, '');
    assert.equal(j.data, null);
    assert.deepEqual(j.auth.policies, ['default', 'ci-read']);
    assert.deepEqual(j.auth.metadata, { project_path: 'mygroup/myproject', ref: 'main', role: 'vault-ci' });
    assert.equal(j.auth.lease_duration, 60);
    assert.match(j.auth.accessor as string, /^cred_/);
    // Reuse is allowed by default on Vault (GitLab `secrets:` logs in once per secret).
    const reuse = await fetch(`${broker.url}/v1/auth/gitlab/login`, { method: 'POST', body: JSON.stringify({ jwt }) });
    assert.equal(reuse.status, 200, 'default_role on the gitlab mount');
  });

  test(`${kind}: Vault errors reuse Vault's texts`, async () => {
    const cases: [string, unknown, number, string][] = [
      ['jwt', { role: 'nope', jwt: gitlab.mint({ aud: 'https://vault.example.test' }) }, 400, 'role "nope" could not be found'],
      ['jwt', { jwt: gitlab.mint({ aud: 'https://vault.example.test' }) }, 400, 'missing role'],
      ['jwt', { role: 'vault-ci', jwt: gitlab.mint({ aud: 'https://vault.example.test', project_id: '99' }) }, 400, 'error validating claims: role-denied'],
      ['jwt', { role: 'vault-ci', jwt: gitlab.mint({ aud: 'https://other.example.test' }) }, 400, 'error validating token: aud_mismatch'],
      ['nomount', { role: 'vault-ci', jwt: 'x.y.z' }, 404, 'no handler for route "auth/nomount/login". route entry not found.'],
    ];
    for (const [mount, body, status, text] of cases) {
      const r = await fetch(`${broker.url}/v1/auth/${mount}/login`, { method: 'POST', body: JSON.stringify(body) });
      assert.equal(r.status, status);
      assert.deepEqual(await r.json(), { errors: [text] });
    }
  });

  test(`${kind}: the AWS SDK assumes a role through our STS endpoint`, async () => {
    const client = new STSClient({ region: 'us-east-1', endpoint: broker.url, credentials: { accessKeyId: 'anonymous', secretAccessKey: 'anonymous' }, maxAttempts: 1 });
    try {
      const out = await client.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE_ARN, RoleSessionName: 'ci-job-123456', WebIdentityToken: gitlab.mint({ aud: 'https://gitlab.com' }), DurationSeconds: 1800 }));
      assert.match(out.Credentials!.AccessKeyId!, /^ASIA[A-Z2-7]{16}$/);
      assert.equal(out.Credentials!.SecretAccessKey!.length, 40);
      assert.match(out.Credentials!.SessionToken!, /^cioidc_/);
      const ttl = Math.round(out.Credentials!.Expiration!.getTime() / 1000) - now();
      assert.ok(ttl > 1790 && ttl <= 1800, String(ttl));
      assert.equal(out.AssumedRoleUser!.Arn, 'arn:aws:sts::123456789012:assumed-role/deploy/ci-job-123456');
      assert.equal(out.SubjectFromWebIdentityToken, 'project_path:mygroup/myproject:ref_type:branch:ref:main');
      assert.equal(out.Provider, 'https://gitlab.com');
      assert.equal(out.Audience, 'https://gitlab.com');

      const fail = async (input: ConstructorParameters<typeof AssumeRoleWithWebIdentityCommand>[0]): Promise<STSServiceException> => {
        try {
          await client.send(new AssumeRoleWithWebIdentityCommand(input));
        } catch (err) {
          return err as STSServiceException;
        }
        assert.fail('expected an STS error');
      };
      const denied = await fail({ RoleArn: ROLE_ARN, RoleSessionName: 's1', WebIdentityToken: gitlab.mint({ aud: 'https://gitlab.com', project_id: '99' }) });
      assert.equal(denied.name, 'AccessDenied');
      assert.equal(denied.$metadata.httpStatusCode, 403);
      const unknownRole = await fail({ RoleArn: 'arn:aws:iam::123456789012:role/other', RoleSessionName: 's1', WebIdentityToken: gitlab.mint({ aud: 'https://gitlab.com' }) });
      assert.equal(unknownRole.name, 'AccessDenied');
      const bad = await fail({ RoleArn: ROLE_ARN, RoleSessionName: 's1', WebIdentityToken: gitlab.mint({ aud: 'https://gitlab.com', iss: 'https://gitlab.com' }).slice(0, -4) + 'AAAA' });
      // The SDK models AWS's `InvalidIdentityToken` code as this exception class.
      assert.equal(bad.name, 'InvalidIdentityTokenException');
      assert.equal(bad.$metadata.httpStatusCode, 400);
      const t = now();
      const expired = await fail({ RoleArn: ROLE_ARN, RoleSessionName: 's1', WebIdentityToken: gitlab.mint({ aud: 'https://gitlab.com', iat: t - 1000, nbf: t - 1000, exp: t - 100 }) });
      assert.equal(expired.name, 'ExpiredTokenException');
      const tooLong = await fail({ RoleArn: ROLE_ARN, RoleSessionName: 's1', WebIdentityToken: gitlab.mint({ aud: 'https://gitlab.com' }), DurationSeconds: 7200 });
      assert.equal(tooLong.name, 'ValidationError');
      const badPolicy = await fail({ RoleArn: ROLE_ARN, RoleSessionName: 's1', WebIdentityToken: gitlab.mint({ aud: 'https://gitlab.com' }), Policy: 'not json' });
      assert.equal(badPolicy.name, 'MalformedPolicyDocumentException');
    } finally {
      client.destroy();
    }
  });

  test(`${kind}: metrics count exchanges per endpoint and outcome`, async () => {
    const text = await (await fetch(`${broker.url}/metrics`)).text();
    assert.match(text, /ci_oidc_broker_exchanges_total\{endpoint="sts",outcome="allow",reason="issued"\} 1/);
    assert.match(text, /ci_oidc_broker_exchange_duration_seconds_count\{endpoint="vault",outcome="allow"\}/);
  });
});
