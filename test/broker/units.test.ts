import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { looksLikeCredential, mintSecret, newAwsAccessKeyId } from '../../src/broker/credential.ts';
import { ExchangeError } from '../../src/broker/errors.ts';
import { computeTtl, intersectScopes, selectTargets } from '../../src/broker/grants.ts';
import { createMemoryRateLimiter } from '../../src/store/rate-limit.ts';
import { parseForm, parseTokenExchange, OAuthError } from '../../src/broker/wire/oauth.ts';
import { parseMintTokenBody, PypiError } from '../../src/broker/wire/pypi.ts';
import { parseStsForm, StsError, stsErrorXml, xmlEscape } from '../../src/broker/wire/sts.ts';

test('credentials: prefix, 32 random bytes, CRC32 checksum; only the SHA-256 is stored', () => {
  const { token, hash } = mintSecret();
  assert.match(token, /^cioidc_[A-Za-z0-9_-]{43}_[0-9a-f]{8}$/);
  assert.equal(hash, createHash('sha256').update(token).digest('hex'));
  assert.ok(looksLikeCredential(token, ['cioidc_']));
  const pypi = mintSecret('pypi-').token;
  assert.ok(pypi.startsWith('pypi-') && looksLikeCredential(pypi, ['cioidc_', 'pypi-']));
  // Any single-character change breaks the checksum (or the shape).
  for (let i = 'cioidc_'.length; i < token.length; i++) {
    const c = token[i] === 'A' ? 'B' : 'A';
    assert.equal(looksLikeCredential(token.slice(0, i) + c + token.slice(i + 1), ['cioidc_']), false, `position ${i}`);
  }
  assert.equal(looksLikeCredential(token.slice(0, -1), ['cioidc_']), false);
  assert.equal(looksLikeCredential(token, ['other_']), false);
  assert.equal(looksLikeCredential('x'.repeat(5000), ['cioidc_']), false);
  assert.notEqual(mintSecret().token, mintSecret().token);
  assert.match(newAwsAccessKeyId(), /^ASIA[A-Z2-7]{16}$/);
});

test('G4: credential scope = role ∩ request and lifetime <= role maximum (property)', () => {
  const scope = fc.constantFrom('read', 'write', 'admin', 'deploy', 'x');
  fc.assert(
    fc.property(
      fc.uniqueArray(scope, { maxLength: 5 }).map((a): string[] => a),
      fc.uniqueArray(scope, { maxLength: 5 }).map((a): string[] => a),
      fc.option(fc.integer({ min: 1, max: 86400 }), { nil: undefined }),
      fc.option(fc.integer({ min: 60, max: 43200 }), { nil: undefined }),
      fc.integer({ min: -100, max: 7200 }),
      fc.boolean(),
      (role, requested, req, roleMax, remaining, bound) => {
        try {
          const got = intersectScopes(role, requested);
          for (const s of got) assert.ok(role.includes(s) && (requested.length === 0 || requested.includes(s)));
          if (requested.length === 0) assert.deepEqual(got, role);
        } catch (err) {
          assert.ok(err instanceof ExchangeError && err.code === 'scope_not_granted');
          assert.ok(requested.length > 0 && requested.every((s) => !role.includes(s)));
        }
        const now = 1_000_000;
        try {
          const ttl = computeTtl({ requested: req, roleMaxTtl: roleMax, defaultTtl: 900, deploymentMaxTtl: 43200, boundToTokenExpiry: bound, tokenExp: now + remaining, now });
          assert.ok(ttl >= 1 && ttl <= (roleMax ?? 900));
          if (req !== undefined) assert.ok(ttl <= req);
          if (bound) assert.ok(ttl <= remaining);
        } catch (err) {
          assert.ok(err instanceof ExchangeError && err.code === 'token_expiring' && bound && remaining < 1);
        }
      },
    ),
  );
  assert.deepEqual(selectTargets({ type: 'oauth', audience: ['a', 'b'] }, []), ['a', 'b']);
  assert.deepEqual(selectTargets({ type: 'oauth', audience: 'a' }, ['a']), ['a']);
  assert.throws(() => selectTargets({ type: 'oauth', audience: ['a'] }, ['c']), (e: ExchangeError) => e.kind === 'invalid_target');
  assert.throws(() => selectTargets(undefined, ['a']), (e: ExchangeError) => e.kind === 'invalid_target');
});

test('PyPI body: StrictStr token, extra members ignored, never echoes the input', () => {
  assert.equal(parseMintTokenBody('{"token":"abc","extra":1}'), 'abc');
  for (const body of ['', 'nope', '[]', '{"token":123}', '{"token":null}', '{"token":["a"]}', '{}', '"str"']) {
    assert.throws(() => parseMintTokenBody(body), (e: PypiError) => e.code === 'invalid-payload' && e.status === 422 && !e.description.includes('123'));
  }
});

test('RFC 8693 parsing: repeated audience/resource, role scope, bounded values', () => {
  const base = 'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt';
  const r = parseTokenExchange(parseForm(`${base}&audience=a&audience=b&resource=r&scope=role%3Adeploy+read+read`));
  assert.deepEqual(r.audiences, ['a', 'b']);
  assert.deepEqual(r.resources, ['r']);
  assert.equal(r.roleName, 'deploy');
  assert.deepEqual(r.scopes, ['read']);
  const bad: [string, string][] = [
    [`${base}&subject_token=u`, 'repeated_parameter:subject_token'],
    [`${base}&scope=role%3Aa+role%3Ab`, 'several_roles_requested'],
    [`${base}&requested_token_type=urn%3Ax`, 'unsupported_requested_token_type'],
    [`${base}${'&audience=x'.repeat(11)}`, 'too_many_values:audience'],
    [base.replace('subject_token=t&', ''), 'missing_parameter:subject_token'],
  ];
  for (const [body, description] of bad) assert.throws(() => parseTokenExchange(parseForm(body)), (e: OAuthError) => e.description === description);
});

test('STS form validation follows AWS bounds', () => {
  const ok = { Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: 'arn:aws:iam::123456789012:role/deploy', RoleSessionName: 'ci', WebIdentityToken: 'a.b.c' };
  assert.equal(parseStsForm(ok).durationSeconds, undefined);
  const cases: [Record<string, string>, string][] = [
    [{ ...ok, Action: 'AssumeRole' }, 'InvalidAction'],
    [{ ...ok, RoleSessionName: 'x' }, 'ValidationError'],
    [{ ...ok, RoleSessionName: 'bad name' }, 'ValidationError'],
    [{ ...ok, DurationSeconds: '899' }, 'ValidationError'],
    [{ ...ok, DurationSeconds: '43201' }, 'ValidationError'],
    [{ ...ok, WebIdentityToken: 'x'.repeat(20001) }, 'ValidationError'],
    [{ ...ok, ProviderId: 'www.amazon.com' }, 'InvalidParameterValue'],
    [{ ...ok, RoleArn: 'short' }, 'ValidationError'],
    [(({ RoleArn: _r, ...rest }) => rest)(ok), 'MissingParameter'],
  ];
  for (const [form, code] of cases) assert.throws(() => parseStsForm(form), (e: StsError) => e.code === code);
  assert.equal(xmlEscape(`<a href="x">&'\u0001`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
  assert.ok(stsErrorXml('AccessDenied', 'a<b', 'r').includes('<Message>a&lt;b</Message>'));
});

test('memory rate limiter: fixed window per key', async () => {
  const rl = createMemoryRateLimiter({ limit: 3, windowSeconds: 60 });
  const results = [];
  for (let i = 0; i < 4; i++) results.push((await rl.hit('k', 120)).allowed);
  assert.deepEqual(results, [true, true, true, false]);
  assert.equal((await rl.hit('other', 120)).allowed, true);
  assert.equal((await rl.hit('k', 180)).allowed, true, 'a new window');
});
