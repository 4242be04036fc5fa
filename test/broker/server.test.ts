import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { kekFromBytes } from '../../src/jose/kek.ts';
import { buildServer } from '../../src/server/app.ts';
import { parseConfig } from '../../src/server/config.ts';
import { CI_OIDC_REGISTRATION_ID } from '../../src/providers/ci-oidc.ts';
import { f7Variables } from '../issuer/helpers.ts';
import { openTestStore } from '../helpers/store.ts';

const ADMIN = 'd'.repeat(40);

/** The whole server as `ci-oidc serve` builds it: our issuer's token through the broker wired in app.ts. */
test('server wiring: admin role, RFC 8693 exchange of our own ID token, JWT access token from our JWKS', async () => {
  const store = await openTestStore('sqlite');
  const config = parseConfig({ server: { host: '127.0.0.1', port: 0, logLevel: 'silent' }, broker: { adminToken: ADMIN, audiences: [] } });
  const server = await buildServer({ config, store, kek: kekFromBytes(randomBytes(32)), env: {} });
  try {
    const url = await server.listen();
    assert.deepEqual(await (await fetch(`${url}/_/oidc/audience`)).json(), { audience: 'pypi' });
    const put = await fetch(`${url}/admin/v1/roles/api`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ issuer: CI_OIDC_REGISTRATION_ID, audiences: [url], when: { all: [{ claim: 'project_id', eq: '20' }] }, grant: { type: 'oauth', audience: 'https://api.example.test' } }),
    });
    assert.equal(put.status, 200, await put.clone().text());
    const { token } = server.parts.issuer!.mint({ variables: { ...f7Variables(), CI_SERVER_HOST: new URL(url).host }, aud: url });
    const r = await fetch(`${url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        requested_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      }),
    });
    const j = (await r.json()) as { access_token: string; token_type: string; issued_token_type: string };
    assert.equal(r.status, 200, JSON.stringify(j));
    assert.equal(j.token_type, 'N_A');
    assert.equal(j.issued_token_type, 'urn:ietf:params:oauth:token-type:jwt');
    const jwks = createLocalJWKSet(server.parts.issuer!.jwks() as never);
    const { payload } = await jwtVerify(j.access_token, jwks, { issuer: server.parts.issuer!.issuerUrl, audience: 'https://api.example.test', typ: 'at+jwt' });
    assert.equal(payload.client_id, 'api');
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /ci_oidc_broker_exchanges_total\{endpoint="oauth",outcome="allow",reason="issued"\} 1/);
  } finally {
    await server.close();
    await store.close();
  }
});
