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
