import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { FetchBudget } from '../../src/verifier/fetch-budget.ts';
import { createVerifier } from '../../src/verifier/verifier.ts';
import type { IssuerRegistrationInput } from '../../src/verifier/types.ts';
import type { FetchRateLimits } from '../../src/verifier/fetch-budget.ts';
import { code, gitlabClaims, NOW, signToken, tableResolver, testKey } from './helpers.ts';
import { startTlsServer, type TlsServer } from './tls.ts';

const k1 = testKey('RS256', 'k1');
const k2 = testKey('RS256', 'k2');
const EXPECT = { audiences: ['ours'] };

describe('discovery, JWKS cache, refresh and rotation', () => {
  let tls: TlsServer;
  let issuer: string;
  const resolver = tableResolver({ 'jwks.test': '127.0.0.1', 'other.test': '127.0.0.1' });
  before(async () => {
    tls = await startTlsServer();
    issuer = `https://jwks.test:${tls.port}`;
  });
  after(() => tls.close());

  function setup(path: string, keysSource: 'discovery' | 'jwksUri' = 'discovery', fetchRateLimits?: FetchRateLimits) {
    let now = NOW;
    const reg: IssuerRegistrationInput = {
      id: `reg-${path}`,
      issuer: `${issuer}/${path}`,
      profile: 'gitlab',
      caCertPem: tls.ca,
      allowInsecureLoopback: true,
      keys: keysSource === 'discovery' ? 'discovery' : { jwksUri: `${issuer}/${path}/jwks` },
    };
    tls.json(`/${path}/.well-known/openid-configuration`, { issuer: `${issuer}/${path}`, jwks_uri: `${issuer}/${path}/jwks` });
    const v = createVerifier({ issuers: [reg], resolver, clock: () => now, ...(fetchRateLimits ? { fetchRateLimits } : {}) });
    const token = (key = k1, o: Record<string, unknown> = {}) => signToken(gitlabClaims({ iat: now - 10, nbf: now - 15, exp: now + 300, ...o }, `${issuer}/${path}`), key);
    return {
      v,
      token,
      jwksHits: () => tls.hits.get(`/${path}/jwks`) ?? 0,
      discoveryHits: () => tls.hits.get(`/${path}/.well-known/openid-configuration`) ?? 0,
      advance: (s: number) => {
        now += s;
      },
      serveKeys: (keys: unknown, headers: Record<string, string> = {}) => tls.json(`/${path}/jwks`, typeof keys === 'string' ? keys : { keys }, headers),
    };
  }

  test('discovery → JWKS → verify; the cache serves later tokens without I/O', async () => {
    const s = setup('basic');
    s.serveKeys([k1.jwk], { 'cache-control': 'public, max-age=86400' });
    assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'accepted');
    for (let i = 0; i < 20; i++) assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'accepted');
    assert.equal(s.discoveryHits(), 1);
    assert.equal(s.jwksHits(), 1);
    await s.v.close();
  });

  test('B4: invalid JSON, empty keys, refused-only keys, html and 500 during refresh keep the last good set until max-stale', async () => {
    const s = setup('poison', 'jwksUri');
    s.serveKeys([k1.jwk]);
    assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'accepted');
    const weak = { ...k2.jwk, e: 'AQ' };
    const poisons: (() => void)[] = [
      () => s.serveKeys('{"keys":[', {}),
      () => s.serveKeys([]),
      () => s.serveKeys([weak]),
      () => s.serveKeys('{"keys":[],"keys":[1]}'),
      () => tls.route('/poison/jwks', (_q, res) => {
        res.writeHead(500);
        res.end('boom');
      }),
    ];
    let hits = s.jwksHits();
    for (const poison of poisons) {
      poison();
      s.advance(3601); // past the default refresh interval
      assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'accepted', 'current keys keep verifying while the refresh runs');
      await s.v.idle();
      assert.equal(s.jwksHits(), ++hits, 'one refresh attempt');
      assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'accepted', 'last good keys kept');
    }
    // 5 × 3601 s after the last success: still inside 24 h. Past max-stale the set expires: fail closed.
    s.advance(86400);
    assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'jwks_unavailable');
    // A good answer brings it back (after the failure cooldown).
    s.serveKeys([k1.jwk]);
    s.advance(31);
    assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'accepted');
    await s.v.close();
  });

  test('B5: a flood of random kids costs one fetch per cooldown; shared in-flight fetch; valid tokens keep verifying', async () => {
    const s = setup('flood', 'jwksUri');
    s.serveKeys([k1.jwk]);
    assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'accepted');
    assert.equal(s.jwksHits(), 1);
    const flood = (n: number) => Promise.all(Array.from({ length: n }, () => code(s.v.verify(s.token({ ...k1, kid: randomUUID() }), EXPECT))));
    const first = await Promise.all([flood(500), code(s.v.verify(s.token(), EXPECT))]);
    assert.ok(first[0].every((c) => c === 'key_not_found'));
    assert.equal(first[1], 'accepted');
    assert.equal(s.jwksHits(), 2, 'exactly one kid-miss fetch for 500 concurrent misses');
    s.advance(10);
    await flood(500);
    assert.equal(s.jwksHits(), 2, 'none inside the cooldown');
    s.advance(21);
    await flood(100);
    assert.equal(s.jwksHits(), 3, 'one more after the 30 s cooldown');
    await s.v.close();
  });

  test('fetch rate limit per registration: past the budget a kid miss fetches nothing, current keys keep verifying', async () => {
    const s = setup('budget', 'jwksUri', { perRegistration: { burst: 2, perMinute: 0.5 }, global: { burst: 100, perMinute: 100 } });
    s.serveKeys([k1.jwk]);
    assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'accepted');
    const miss = () => code(s.v.verify(s.token({ ...k1, kid: randomUUID() }), EXPECT));
    s.advance(31);
    assert.equal(await miss(), 'key_not_found');
    assert.equal(s.jwksHits(), 2, 'the second fetch uses the burst');
    s.advance(31);
    assert.equal(await miss(), 'key_not_found');
    assert.equal(s.jwksHits(), 2, 'over the budget: no fetch although the cooldown has passed');
    assert.match(s.v.keyStatus()[0]!.lastError ?? '', /rate limit/);
    assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'accepted', 'the last good keys stay in use');
    s.advance(61);
    assert.equal(await miss(), 'key_not_found');
    assert.equal(s.jwksHits(), 3, 'the bucket refilled');
    await s.v.close();
  });

  test('fetch rate limit across registrations: a cold load over the global budget fails closed without I/O', async () => {
    let now = NOW;
    const regs: IssuerRegistrationInput[] = ['g1', 'g2'].map((path) => {
      tls.json(`/${path}/jwks`, { keys: [k1.jwk] });
      return { id: `reg-${path}`, issuer: `${issuer}/${path}`, profile: 'gitlab', caCertPem: tls.ca, allowInsecureLoopback: true, keys: { jwksUri: `${issuer}/${path}/jwks` } };
    });
    const v = createVerifier({ issuers: regs, resolver, clock: () => now, fetchRateLimits: { perRegistration: { burst: 4, perMinute: 4 }, global: { burst: 1, perMinute: 1 } } });
    const token = (path: string) => signToken(gitlabClaims({ iat: now - 10, nbf: now - 15, exp: now + 300 }, `${issuer}/${path}`), k1);
    assert.equal(await code(v.verify(token('g1'), EXPECT)), 'accepted');
    assert.equal(await code(v.verify(token('g2'), EXPECT)), 'jwks_unavailable');
    assert.equal(tls.hits.get('/g2/jwks') ?? 0, 0);
    now += 61;
    assert.equal(await code(v.verify(token('g2'), EXPECT)), 'accepted', 'after refill (and the failure cooldown)');
    await v.close();
  });

  test('B6: rotation right after the first fetch is picked up after exactly one refetch; removed keys stop at once', async () => {
    const s = setup('rotate', 'jwksUri');
    s.serveKeys([k1.jwk]);
    assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'accepted');
    s.serveKeys([k2.jwk]);
    assert.equal(await code(s.v.verify(s.token(k2), EXPECT)), 'accepted');
    assert.equal(s.jwksHits(), 2);
    assert.equal(await code(s.v.verify(s.token(k1), EXPECT)), 'key_not_found', 'k1 was removed upstream');
    await s.v.close();
  });

  test('Cache-Control max-age is honoured within 300 s – 24 h', async () => {
    const s = setup('maxage', 'jwksUri');
    s.serveKeys([k1.jwk], { 'cache-control': 'max-age=5' });
    await s.v.verify(s.token(), EXPECT);
    s.advance(299);
    await s.v.verify(s.token(), EXPECT);
    await s.v.idle();
    assert.equal(s.jwksHits(), 1, 'max-age 5 is clamped up to 300');
    s.advance(2);
    await s.v.verify(s.token(), EXPECT);
    await s.v.idle();
    assert.equal(s.jwksHits(), 2);
    s.serveKeys([k1.jwk], { 'cache-control': 'max-age=999999' });
    s.advance(301);
    await s.v.verify(s.token(), EXPECT);
    await s.v.idle();
    assert.equal(s.jwksHits(), 3);
    s.advance(86399);
    await s.v.verify(s.token(), EXPECT).catch(() => undefined);
    await s.v.idle();
    assert.equal(s.jwksHits(), 3, 'clamped down to 24 h');
    s.advance(2);
    await s.v.verify(s.token(), EXPECT).catch(() => undefined);
    await s.v.idle();
    assert.equal(s.jwksHits(), 4);
    await s.v.close();
  });

  test('E4/B3: discovery issuer mismatch, foreign or insecure jwks_uri, and cross-host redirects load no keys', async () => {
    const cases: [string, Record<string, unknown> | null][] = [
      ['mismatch', { issuer: `${issuer}/mismatch/`, jwks_uri: `${issuer}/mismatch/jwks` }],
      ['foreignhost', { issuer: `${issuer}/foreignhost`, jwks_uri: `https://other.test:${tls.port}/foreignhost/jwks` }],
      ['insecure', { issuer: `${issuer}/insecure`, jwks_uri: `http://jwks.test:${tls.port}/insecure/jwks` }],
      ['userinfo', { issuer: `${issuer}/userinfo`, jwks_uri: `https://u:p@jwks.test:${tls.port}/userinfo/jwks` }],
      ['redirect', null],
    ];
    for (const [path, doc] of cases) {
      const s = setup(path);
      s.serveKeys([k1.jwk]);
      if (doc) tls.json(`/${path}/.well-known/openid-configuration`, doc);
      else
        tls.route(`/${path}/.well-known/openid-configuration`, (_q, res) => {
          res.writeHead(302, { location: `https://other.test:${tls.port}/${path}/.well-known/openid-configuration` });
          res.end();
        });
      assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'jwks_unavailable', path);
      assert.equal(s.jwksHits(), 0, `${path}: the JWKS was never fetched`);
      assert.match(s.v.keyStatus()[0]?.lastError ?? '', /issuer|jwks_uri|redirect/);
      // The failure starts the cooldown: a retry inside it does no I/O.
      const before = s.discoveryHits();
      assert.equal(await code(s.v.verify(s.token(), EXPECT)), 'jwks_unavailable');
      assert.equal(s.discoveryHits(), before);
      await s.v.close();
    }
  });

  test('E1 through the verifier: an issuer resolving to a private address loads no keys and connects nowhere', async () => {
    const before = tls.connections;
    const v = createVerifier({
      issuers: [{ id: 'internal', issuer: `https://internal.test:${tls.port}`, profile: 'gitlab', caCertPem: tls.ca }],
      resolver: tableResolver({ 'internal.test': '10.0.0.1' }),
      clock: () => NOW,
    });
    const token = signToken(gitlabClaims({}, `https://internal.test:${tls.port}`), k1);
    assert.equal(await code(v.verify(token, EXPECT)), 'jwks_unavailable');
    assert.match(v.keyStatus()[0]?.lastError ?? '', /public unicast/);
    assert.equal(tls.connections, before);
    await v.close();
  });

  test('E7: a cold start with many tokens for several issuers fetches each JWKS once', async () => {
    const paths = ['multi-a', 'multi-b', 'multi-c'];
    for (const p of paths) tls.json(`/${p}/jwks`, { keys: [k1.jwk] });
    const v = createVerifier({
      issuers: paths.map((p) => ({ id: p, issuer: `${issuer}/${p}`, profile: 'gitlab' as const, caCertPem: tls.ca, allowInsecureLoopback: true, keys: { jwksUri: `${issuer}/${p}/jwks` } })),
      resolver,
      clock: () => NOW,
    });
    const tokens = paths.flatMap((p) => Array.from({ length: 20 }, () => signToken(gitlabClaims({}, `${issuer}/${p}`), k1)));
    const results = await Promise.all(tokens.map((t) => code(v.verify(t, EXPECT))));
    assert.ok(results.every((r) => r === 'accepted'));
    for (const p of paths) assert.equal(tls.hits.get(`/${p}/jwks`), 1, p);
    await v.close();
  });

  test('E1 at registration: blocked literals and non-https issuers are refused', () => {
    for (const issuer of ['https://127.0.0.1', 'https://10.0.0.1', 'https://[::1]', 'http://gitlab.example.com', 'https://2130706433']) {
      assert.throws(() => createVerifier({ issuers: [{ id: 'x', issuer }] }), /issuer/);
    }
    assert.throws(() => createVerifier({ issuers: [{ id: 'x', issuer: 'https://ok.example', keys: { jwksUri: 'https://169.254.169.254/keys' } }] }), /jwksUri/);
    assert.throws(() => createVerifier({ issuers: [{ id: 'x', issuer: 'https://GitLab.com' }] }), /canonical/);
    assert.throws(() => createVerifier({ issuers: [{ id: 'x', issuer: 'https://gitlab.com:443' }] }), /canonical/);
    assert.throws(() => createVerifier({ issuers: [{ id: 'x', issuer: 'https://gitlab.com', algorithms: ['HS256' as never] }] }), /algorithms/);
    assert.throws(() => createVerifier({ issuers: [{ id: 'x', issuer: 'https://gitlab.com', leeway: 61 }] }), /leeway/);
    assert.throws(() => createVerifier({ issuers: [{ id: 'x', issuer: 'https://gitlab.com', requireJti: false }] }), /requireJti/);
  });
});

describe('FetchBudget', () => {
  test('burst, refill, the shared bucket, and a per-id bucket that outlives nothing else', () => {
    let now = 1000;
    const b = new FetchBudget({ perRegistration: { burst: 2, perMinute: 6 }, global: { burst: 3, perMinute: 60 } }, () => now);
    assert.deepEqual([b.take('a'), b.take('a'), b.take('a')], [true, true, false]);
    assert.deepEqual([b.take('b'), b.take('b')], [true, false], 'the global burst of 3 is spent');
    now += 10; // +1 per-registration token for a, b; +10 global
    assert.deepEqual([b.take('a'), b.take('a'), b.take('b')], [true, false, true]);
    assert.throws(() => new FetchBudget({ perRegistration: { burst: 0, perMinute: 1 }, global: { burst: 1, perMinute: 1 } }, () => now), /burst >= 1/);
  });
});
