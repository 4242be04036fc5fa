import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../src/server/errors.ts';
import { RegistrationConflictError } from '../../src/verifier/registry.ts';
import { createVerifier } from '../../src/verifier/verifier.ts';
import { code, gitlabClaims, NOW, signToken, tableResolver, testKey } from './helpers.ts';
import { startTlsServer, type TlsServer } from './tls.ts';

const k1 = testKey('RS256', 'k1');
const k2 = testKey('RS256', 'k2');
const EXPECT = { audiences: ['ours'] };
const SELF = 'https://gitlab.example.test';
const jwks = (...keys: (typeof k1)[]) => ({ keys: keys.map((k) => k.jwk) });
const conflictCode = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof RegistrationConflictError) return err.code;
    throw err;
  }
  return 'none';
};

describe('registrations added and removed at run time', () => {
  const base = () => createVerifier({ issuers: [{ id: 'gitlab.com', issuer: 'https://gitlab.com', profile: 'gitlab', keys: { staticJwks: jwks(k1) } }], clock: () => NOW });

  test('an added registration verifies; once removed its tokens are issuer_unknown', async () => {
    const v = base();
    const token = signToken(gitlabClaims({}, SELF), k2);
    assert.equal(await code(v.verify(token, EXPECT)), 'issuer_unknown');
    const info = v.addRegistration({ id: 'self', issuer: SELF, profile: 'gitlab', keys: { staticJwks: jwks(k2) } });
    assert.equal(info.id, 'self');
    assert.equal(v.isConfigRegistration('self'), false);
    assert.equal(v.isConfigRegistration('gitlab.com'), true);
    assert.equal((await v.verify(token, EXPECT)).registration.id, 'self');
    assert.ok(v.keyStatus().some((s) => s.registration === 'self'));
    assert.equal(v.removeRegistration('self'), true);
    assert.equal(v.removeRegistration('self'), false);
    assert.equal(await code(v.verify(token, EXPECT)), 'issuer_unknown');
    assert.ok(!v.keyStatus().some((s) => s.registration === 'self'), 'the key cache entry is dropped');
    assert.deepEqual(v.registrations().map((r) => r.id), ['gitlab.com']);
    // The config registration still verifies.
    assert.equal(await code(v.verify(signToken(gitlabClaims(), k1), EXPECT)), 'accepted');
  });

  test('config registrations cannot be removed; ids and (iss, tenant) stay unique', () => {
    const v = base();
    assert.equal(conflictCode(() => v.removeRegistration('gitlab.com')), 'issuer_config_defined');
    assert.equal(conflictCode(() => v.addRegistration({ id: 'gitlab.com', issuer: SELF })), 'issuer_id_taken');
    assert.equal(conflictCode(() => v.addRegistration({ id: 'again', issuer: 'https://gitlab.com', keys: { staticJwks: jwks(k1) } })), 'issuer_taken');
    v.addRegistration({ id: 'tenant', issuer: 'https://gitlab.com', tenant: 'acme', keys: { staticJwks: jwks(k1) } });
    assert.throws(() => v.addRegistration({ id: 'bad', issuer: 'https://x.example', leeway: 600, algorithms: ['HS256' as never] }), (e) => e instanceof ConfigError && e.issues.length === 2);
  });

  test('a registration re-added under the same id with new keys never verifies with the old ones', async () => {
    const v = base();
    v.addRegistration({ id: 'self', issuer: SELF, profile: 'gitlab', keys: { staticJwks: jwks(k2) } });
    const old = signToken(gitlabClaims({}, SELF), k2);
    assert.equal(await code(v.verify(old, EXPECT)), 'accepted');
    v.removeRegistration('self');
    v.addRegistration({ id: 'self', issuer: SELF, profile: 'gitlab', keys: { staticJwks: jwks(k1) } });
    assert.notEqual(await code(v.verify(old, EXPECT)), 'accepted');
    assert.equal(await code(v.verify(signToken(gitlabClaims({}, SELF), k1), EXPECT)), 'accepted');
  });
});

describe('removing a discovered registration drops its key cache', () => {
  let tls: TlsServer;
  before(async () => {
    tls = await startTlsServer();
  });
  after(() => tls.close());

  test('re-adding refetches discovery and JWKS instead of reusing cached keys', async () => {
    const issuer = `https://jwks.test:${tls.port}/runtime`;
    tls.json('/runtime/.well-known/openid-configuration', { issuer, jwks_uri: `${issuer}/jwks` });
    tls.json('/runtime/jwks', jwks(k1));
    const v = createVerifier({ issuers: [], resolver: tableResolver({ 'jwks.test': '127.0.0.1' }), clock: () => NOW });
    const reg = { id: 'runtime', issuer, profile: 'gitlab' as const, caCertPem: tls.ca, allowInsecureLoopback: true };
    v.addRegistration(reg);
    const token = signToken(gitlabClaims({}, issuer), k1);
    assert.equal(await code(v.verify(token, EXPECT)), 'accepted');
    assert.equal(await code(v.verify(token, EXPECT)), 'accepted');
    assert.equal(tls.hits.get('/runtime/jwks'), 1);
    v.removeRegistration('runtime');
    v.addRegistration(reg);
    assert.equal(await code(v.verify(token, EXPECT)), 'accepted');
    assert.equal(tls.hits.get('/runtime/jwks'), 2);
    assert.equal(tls.hits.get('/runtime/.well-known/openid-configuration'), 2);
    await v.close();
  });
});
