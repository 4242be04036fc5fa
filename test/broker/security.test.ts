import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { replayKey } from '../../src/verifier/replay.ts';
import { forEachStore, type TestStore } from '../helpers/store.ts';
import { createTestIssuer, realPolicy, startBroker, testVerifier, type TestBroker, type TestIssuer } from './fixtures.ts';

const BROKER_AUD = 'https://broker.example.test';
const json = { 'content-type': 'application/json' };

forEachStore((kind, open) => {
  let store: TestStore;
  let broker: TestBroker;
  let gitlab: TestIssuer;
  let selfManaged: TestIssuer;
  const now = () => Math.floor(Date.now() / 1000);
  const mint = (token: string, path = '/_/oidc/mint-token') => fetch(`${broker.url}${path}`, { method: 'POST', headers: json, body: JSON.stringify({ token }) });
  const te = (token: string, extra: Record<string, string> = {}) =>
    fetch(`${broker.url}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', ...extra }),
    });

  before(async () => {
    store = await open();
    gitlab = await createTestIssuer();
    selfManaged = await createTestIssuer('https://gitlab.example.test');
    const verifier = testVerifier([gitlab, selfManaged], now);
    const policy = await realPolicy(store, verifier);
    await policy.createPublisher({ provider: 'gitlab', registration: 'gitlab.com', owner: 'mygroup', project: 'myproject', workflow: '.gitlab-ci.yml' }, { projects: ['sampleproject'] });
    await policy.saveRole({ name: 'deploy', issuer: 'gitlab.com', audiences: [BROKER_AUD], when: { all: [{ claim: 'project_id', eq: '20' }] }, grant: { type: 'oauth', audience: ['https://api.example.test'] } });
    broker = await startBroker(store, { verifier, policy });
  });
  after(async () => {
    await broker.close();
    await store.close();
  });

  test(`${kind}: C7 the replay claim outlives exp + leeway + 5 s and is keyed by (registration, iss, jti)`, async () => {
    const claims = gitlab.claims();
    const r = await mint(gitlab.signer.sign(claims));
    assert.equal(r.status, 200);
    const row = await store.db.selectFrom('verifier_replay').selectAll().where('key', '=', replayKey('gitlab.com', 'https://gitlab.com', claims.jti as string)).executeTakeFirstOrThrow();
    assert.ok(row.expires_at >= (claims.exp as number) + 35);
    // Another spelling of the same identity (different iat, same jti) is still a replay.
    const respelled = gitlab.signer.sign({ ...claims, iat: (claims.iat as number) - 1 });
    const again = await mint(respelled);
    assert.equal(((await again.json()) as { errors: { code: string }[] }).errors[0]!.code, 'invalid-reuse-token');
  });

  test(`${kind}: C7 a token past exp but inside the leeway is accepted once, then refused`, async () => {
    const t = now();
    const token = gitlab.mint({ iat: t - 300, nbf: t - 300, exp: t - 10 });
    assert.equal((await mint(token)).status, 200);
    const again = await mint(token);
    assert.equal(((await again.json()) as { errors: { code: string }[] }).errors[0]!.code, 'invalid-reuse-token');
  });

  test(`${kind}: C11 a resurrected namespace (same path, new namespace_id) is refused after the pin`, async () => {
    assert.equal((await mint(gitlab.mint())).status, 200, 'first use pins namespace_id 72 / project_id 20');
    const r = await mint(gitlab.mint({ namespace_id: '999', project_id: '998' }));
    assert.equal(r.status, 422);
    assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0]!.code, 'invalid-publisher');
  });

  test(`${kind}: a denied request does not burn the token`, async () => {
    const token = gitlab.mint({ aud: BROKER_AUD });
    const denied = await te(token, { audience: 'https://evil.example.test' });
    assert.deepEqual(await denied.json(), { error: 'invalid_target', error_description: 'target_not_allowed' });
    const ok = await te(token);
    assert.equal(ok.status, 200);
  });

  test(`${kind}: C1 a self-managed issuer claiming the same project never matches gitlab.com publishers`, async () => {
    const r = await mint(selfManaged.mint());
    assert.equal(r.status, 422);
    assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0]!.code, 'invalid-publisher');
    const t = await te(selfManaged.mint({ aud: BROKER_AUD }));
    assert.equal(((await t.json()) as { error_description: string }).error_description, 'no-role-matched');
  });

  test(`${kind}: G5 issuance is audited with registration, project, jti, kid and role; never the token`, async () => {
    const claims = gitlab.claims({ aud: BROKER_AUD });
    const token = gitlab.signer.sign(claims);
    const r = await te(token);
    const { access_token } = (await r.json()) as { access_token: string };
    const rec = await store.db.selectFrom('broker_audit').selectAll().where('jti', '=', claims.jti as string).executeTakeFirstOrThrow();
    assert.equal(rec.outcome, 'allow');
    assert.equal(rec.registration, 'gitlab.com');
    assert.equal(rec.project_id, '20');
    assert.equal(rec.kid, gitlab.jwks.keys[0]!.kid);
    assert.equal(rec.role, 'deploy');
    assert.match(rec.credential_id!, /^cred_/);
    const all = JSON.stringify(await store.db.selectFrom('broker_audit').selectAll().execute()) + JSON.stringify(await store.db.selectFrom('broker_credentials').selectAll().execute());
    assert.ok(!all.includes(token) && !all.includes(access_token) && !all.includes(token.split('.')[2]!));
  });

  test(`${kind}: RFC 7009 revocation by the holder; the alias mint-token path works`, async () => {
    const r = await mint(gitlab.mint(), '/_/oidc/github/mint-token');
    const { token } = (await r.json()) as { token: string };
    const rev = await fetch(`${broker.url}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token }) });
    assert.equal(rev.status, 200);
    const unknown = await fetch(`${broker.url}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: 'cioidc_unknown' }) });
    assert.equal(unknown.status, 200, 'RFC 7009: unknown tokens are not an error');
    const row = await store.db.selectFrom('broker_credentials').select(['revoked_at']).where('endpoint', '=', 'pypi').orderBy('issued_at', 'desc').execute();
    assert.ok(row.some((x) => x.revoked_at !== null));
  });

  test(`${kind}: never a 5xx, whatever the body`, async () => {
    const paths = ['/_/oidc/mint-token', '/oauth/token', '/token', '/v1/auth/jwt/login', '/', '/oauth/revoke', '/oauth/introspect'];
    const bodies = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.json({ maxDepth: 3 }),
      fc.constantFrom('{"token":{"a":1}}', 'Action=AssumeRoleWithWebIdentity&Version=2011-06-15', '{"jwt":"a.b.c","role":7}', 'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a.b.c&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt'),
    );
    const types = fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', 'application/xml');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths), bodies, types, async (path, body, type) => {
        const r = await fetch(`${broker.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
        await r.arrayBuffer();
        assert.ok(r.status < 500, `${path} ${type} ${JSON.stringify(body).slice(0, 80)} -> ${r.status}`);
      }),
      { numRuns: 60 },
    );
  });
});

forEachStore((kind, open) => {
  test(`${kind}: admin switches answer PyPI's not-enabled`, async () => {
    const store = await open();
    const gitlab = await createTestIssuer();
    const verifier = testVerifier([gitlab], () => Math.floor(Date.now() / 1000));
    const policy = await realPolicy(store, verifier);
    const broker = await startBroker(store, { verifier, policy }, { broker: { pypi: { disabledProviders: ['gitlab'] } } });
    try {
      const r = await fetch(`${broker.url}/_/oidc/mint-token`, { method: 'POST', headers: json, body: JSON.stringify({ token: gitlab.mint() }) });
      assert.deepEqual(await r.json(), { message: 'Token request failed', errors: [{ code: 'not-enabled', description: 'GitLab trusted publishing functionality not enabled' }] });
    } finally {
      await broker.close();
    }
    const off = await startBroker(store, { verifier, policy }, { broker: { pypi: { enabled: false } } });
    try {
      const a = await fetch(`${off.url}/_/oidc/audience`);
      assert.equal(a.status, 403);
      assert.deepEqual(await a.json(), { message: 'Trusted publishing functionality not enabled' });
    } finally {
      await off.close();
      await store.close();
    }
  });
});
