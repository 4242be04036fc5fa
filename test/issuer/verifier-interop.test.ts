import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createVerifier } from '../../src/verifier/verifier.ts';
import { buildIssuer, f7Variables } from './helpers.ts';

/** Our tokens pass the project's own strict verifier (verification.md), the way other capabilities use them. */
describe('issuer tokens pass the strict verifier', () => {
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    test(`${alg}: in-process key source, profile ci-oidc, sub consistency, single audience`, async () => {
      const h = await buildIssuer({ issuer: { algorithms: [alg], subTemplate: { components: ['project_path', 'environment', 'ref_type', 'ref'] } } });
      const verifier = createVerifier({
        issuers: [{ id: 'ci-oidc', issuer: h.module.issuerUrl, profile: 'ci-oidc', algorithms: [alg], keys: { keySource: () => h.module.jwks() as never } }],
        clock: h.clock.now,
      });
      try {
        const { token } = h.module.mint({ variables: { ...f7Variables(), CI_ENVIRONMENT_NAME: 'prod eu' }, aud: 'https://broker.example.com' });
        const ok = await verifier.verify(token, { audiences: ['https://broker.example.com'] });
        assert.equal(ok.claims.project_path, 'acme/platform/api');
        assert.equal(ok.kid, h.module.jwks().keys[0]!.kid);
        await assert.rejects(verifier.verify(token, { audiences: ['other'] }), /aud/);
      } finally {
        await verifier.close();
        await h.close();
      }
    });
  }

  test('rotation (B6/F4): the successor is published before it signs, and old tokens keep verifying until they expire', async () => {
    const h = await buildIssuer({ issuer: { algorithms: ['ES256'], maxIdTokenLifetime: 3600 } });
    const verifier = createVerifier({
      issuers: [{ id: 'ci-oidc', issuer: h.module.issuerUrl, profile: 'ci-oidc', algorithms: ['ES256'], keys: { keySource: () => h.module.jwks() as never } }],
      clock: h.clock.now,
    });
    try {
      const before = h.module.mint({ variables: { ...f7Variables(), CI_JOB_TIMEOUT: '3600' }, aud: 'a' }).token;
      await verifier.verify(before, { audiences: ['a'] });
      await h.module.rotate('ES256');
      const published = h.module.keys().find((k) => k.state === 'next')!;
      assert.ok(h.module.jwks().keys.some((k) => k.kid === published.kid), 'published');
      assert.notEqual(h.module.core.signJwt({}).kid, published.kid, 'not signing yet');
      h.clock.advance(48 * 3600);
      await h.module.tick();
      const after = h.module.mint({ variables: { ...f7Variables(), CI_JOB_TIMEOUT: '3600' }, aud: 'a' }).token;
      assert.equal((await verifier.verify(after, { audiences: ['a'] })).kid, published.kid);
      const lastOld = h.module.keys().find((k) => k.state === 'retired')!;
      assert.ok(h.module.jwks().keys.some((k) => k.kid === lastOld.kid), 'retired key still published');
    } finally {
      await verifier.close();
      await h.close();
    }
  });

  test('signJwt tokens with their own typ never pass as ID tokens (C5)', async () => {
    const h = await buildIssuer({});
    const verifier = createVerifier({
      issuers: [{ id: 'ci-oidc', issuer: h.module.issuerUrl, profile: 'ci-oidc', keys: { keySource: () => h.module.jwks() as never } }],
      clock: h.clock.now,
    });
    try {
      const now = h.clock.now();
      const { token } = h.module.signJwt({ iss: h.module.issuerUrl, sub: 'x', aud: 'a', iat: now, exp: now + 60, jti: 'j' }, { typ: 'ci-oidc-credential+jwt' });
      await assert.rejects(verifier.verify(token, { audiences: ['a'] }), /typ/);
    } finally {
      await verifier.close();
      await h.close();
    }
  });
});

describe('optional github claim profile (issuer.md §9.4)', () => {
  test('GitHub claim names and default sub; passes the verifier github profile; iss stays ours', async () => {
    const h = await buildIssuer({ issuer: { projects: { 'acme/platform/api': { claimProfile: 'github', claims: [{ name: 'cost_center', value: 'cc' }] } } } });
    const verifier = createVerifier({
      issuers: [{ id: 'ours-github', issuer: h.module.issuerUrl, profile: 'github', keys: { keySource: () => h.module.jwks() as never } }],
      clock: h.clock.now,
    });
    try {
      const { claims, token } = h.module.mint({ variables: { ...f7Variables(), CI_CONFIG_PATH: '.gitlab-ci.yml', CI_OIDC_CONFIG_SOURCE: 'repository_source' }, aud: 'a' });
      assert.equal(claims.iss, h.module.issuerUrl);
      assert.equal(claims.sub, 'repo:acme/platform/api:ref:refs/heads/main');
      assert.equal(claims.repository, 'acme/platform/api');
      assert.equal(claims.repository_owner_id, '72');
      assert.equal(claims.ref, 'refs/heads/main');
      assert.equal(claims.run_id, '574');
      assert.equal(claims.actor, 'dev');
      assert.equal(claims.workflow_ref, 'acme/platform/api/.gitlab-ci.yml@refs/heads/main');
      assert.equal(claims.cost_center, 'cc');
      assert.equal('project_path' in claims, false);
      await verifier.verify(token, { audiences: ['a'] });
      const env = h.module.mint({ variables: { ...f7Variables(), CI_ENVIRONMENT_NAME: 'prod' }, aud: 'a' }).claims;
      assert.equal(env.sub, 'repo:acme/platform/api:environment:prod');
      assert.equal('workflow_ref' in env, false, 'config from another project: no workflow_ref');
      const mr = h.module.mint({ variables: { ...f7Variables(), CI_PIPELINE_SOURCE: 'merge_request_event' }, aud: 'a' }).claims;
      assert.equal(mr.sub, 'repo:acme/platform/api:pull_request');
      assert.ok(h.module.discovery().claims_supported.includes('repository_owner_id'));
    } finally {
      await verifier.close();
      await h.close();
    }
  });
});
