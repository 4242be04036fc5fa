import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { issuerSignerPort } from '../../src/broker/module.ts';
import { createVerifier } from '../../src/verifier/verifier.ts';
import { buildIssuer, f7Variables, ISSUER, testClock, type IssuerHarness } from '../issuer/helpers.ts';
import { forEachStore, type TestStore } from '../helpers/store.ts';
import { realPolicy, startBroker, type TestBroker } from './fixtures.ts';

const BROKER_AUD = 'https://broker.example.test';
const API = 'https://api.example.test';

/** Tokens minted by our own issuer (#2), exchanged at the broker; JWT access tokens signed on its key. */
forEachStore((kind, open) => {
  let store: TestStore;
  let issuer: IssuerHarness;
  let broker: TestBroker;
  const vars = () => ({ ...f7Variables(), CI_CONFIG_PATH: '.gitlab-ci.yml', CI_OIDC_CONFIG_SOURCE: '' });

  before(async () => {
    store = await open();
    const clock = testClock(Math.floor(Date.now() / 1000));
    issuer = await buildIssuer({ store, clock });
    const verifier = createVerifier({ issuers: [{ id: 'ci-oidc', issuer: ISSUER, profile: 'ci-oidc', keys: { keySource: () => issuer.module.jwks() } }], clock: clock.now });
    const policy = await realPolicy(store, verifier);
    await policy.saveRole({ name: 'api-deploy', issuer: 'ci-oidc', audiences: [BROKER_AUD], when: { all: [{ claim: 'project_id', eq: '20' }, { claim: 'ref', eq: 'main' }] }, grant: { type: 'oauth', tokenFormat: 'jwt', audience: [API], scopes: ['deploy'] } });
    await policy.createPublisher({ provider: 'gitlab', registration: 'ci-oidc', owner: 'acme/platform', project: 'api', workflow: '.gitlab-ci.yml' }, { projects: ['acme-api'] });
    broker = await startBroker(store, { verifier, policy, signer: issuerSignerPort(issuer.module) }, {}, clock.now);
  });
  after(async () => {
    await broker.close();
    await issuer.close();
    await store.close();
  });

  const exchange = (token: string) =>
    fetch(`${broker.url}/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });

  test(`${kind}: our issuer's token becomes a JWT access token verifiable from our JWKS`, async () => {
    const { token, claims } = issuer.module.mint({ variables: vars(), aud: BROKER_AUD });
    const r = await exchange(token);
    assert.equal(r.status, 200);
    const j = (await r.json()) as { access_token: string; token_type: string; issued_token_type: string; scope: string };
    assert.equal(j.token_type, 'Bearer');
    assert.equal(j.scope, 'deploy');
    const { payload, protectedHeader } = await jwtVerify(j.access_token, createLocalJWKSet(issuer.module.jwks() as never), { issuer: ISSUER, audience: API, typ: 'at+jwt' });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.sub, claims.sub);
    assert.equal(payload.client_id, 'api-deploy');
    assert.match(String(payload.jti), /^cred_/);

    // C5: our own access token is not an ID token and is refused at the exchange.
    const back = await exchange(j.access_token);
    assert.equal(back.status, 400);
    const e = (await back.json()) as { error: string; error_description: string };
    assert.equal(e.error, 'invalid_request');
  });

  test(`${kind}: PyPI trusted publishing with our issuer's token`, async () => {
    const { token } = issuer.module.mint({ variables: vars(), aud: 'pypi' });
    const r = await fetch(`${broker.url}/_/oidc/mint-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    const j = (await r.json()) as Record<string, unknown>;
    assert.equal(r.status, 200, JSON.stringify(j));
    assert.equal(j.success, true);
  });
});
