import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createVerifier } from '../../src/verifier/verifier.ts';
import { VerificationError } from '../../src/verifier/errors.ts';
import type { IssuerRegistrationInput, VerifyExpectations } from '../../src/verifier/types.ts';
import { code, b64json, b64u, gitlabClaims, NOW, signInput, signRaw, signToken, startServer, testKey } from './helpers.ts';

const rs = testKey('RS256', 'gl-1');
const rsOther = testKey('RS256', 'gl-1', 'other');
const es = testKey('ES256', 'es-1');
const ed = testKey('EdDSA', 'ed-1');
const es384 = testKey('ES384', 'es384-1');

const gitlab: IssuerRegistrationInput = { id: 'gitlab.com', issuer: 'https://gitlab.com', profile: 'gitlab', keys: { staticJwks: { keys: [rs.jwk] } } };
const EXPECT: VerifyExpectations = { audiences: ['ours'] };

function verifierWith(issuers: IssuerRegistrationInput[] = [gitlab], now = NOW) {
  return createVerifier({ issuers, clock: () => now });
}

describe('happy paths per profile', () => {
  test('GitLab (fixture F2 shape) verifies; claims are deeply frozen; result names the registration', async () => {
    const v = verifierWith();
    const token = signToken(gitlabClaims({ groups_direct: ['a/b'], user_identities: [{ provider: 'github', extern_uid: '1' }] }), rs);
    const r = await v.verify(token, EXPECT);
    assert.equal(r.registration.id, 'gitlab.com');
    assert.equal(r.alg, 'RS256');
    assert.equal(r.kid, 'gl-1');
    assert.equal(r.claims.project_path, 'foo/bar');
    assert.ok(Object.isFrozen(r.claims) && Object.isFrozen(r.claims.groups_direct) && Object.isFrozen((r.claims.user_identities as object[])[0]));
    assert.throws(() => {
      (r.claims as Record<string, unknown>).project_path = 'evil';
    });
  });

  test('ES256 and EdDSA opt-in; RS256 default refuses them', async () => {
    const v = verifierWith([
      { id: 'es', issuer: 'https://es.example', algorithms: ['ES256', 'EdDSA'], keys: { staticJwks: { keys: [es.jwk, ed.jwk] } } },
      { id: 'rs-only', issuer: 'https://rs.example', keys: { staticJwks: { keys: [rs.jwk] } } },
    ]);
    const base = { sub: 's', aud: 'ours', iat: NOW, exp: NOW + 300, jti: 'j' };
    assert.equal((await v.verify(signToken({ ...base, iss: 'https://es.example' }, es), EXPECT)).alg, 'ES256');
    assert.equal((await v.verify(signToken({ ...base, iss: 'https://es.example' }, ed), EXPECT)).alg, 'EdDSA');
    assert.equal(await code(v.verify(signToken({ ...base, iss: 'https://rs.example' }, es), EXPECT)), 'alg_not_allowed');
  });

  test('GitHub real token shape (F5) verifies with x5t tolerated; sub checked', async () => {
    const gh = testKey('RS256', 'gh-1');
    const v = verifierWith([{ id: 'github-actions', issuer: 'https://token.actions.githubusercontent.com', profile: 'github', keys: { staticJwks: { keys: [gh.jwk] } } }]);
    const claims = {
      actor: 'GrantBirki', actor_id: '23362539', aud: 'ours', base_ref: 'main', event_name: 'pull_request', exp: NOW + 3600, head_ref: 'release-setup', iat: NOW,
      iss: 'https://token.actions.githubusercontent.com', jti: '4a576b35', nbf: NOW - 300, ref: 'refs/pull/27/merge', ref_protected: 'false', ref_type: 'branch',
      repository: 'github/actions-oidc-debugger', repository_id: '487920697', repository_owner: 'github', repository_owner_id: '9919', run_attempt: '1', run_id: '16055869479',
      run_number: '33', runner_environment: 'github-hosted', sub: 'repo:GitHub/Actions-OIDC-Debugger:pull_request',
    };
    const r = await v.verify(signToken(claims, gh, { x5t: 'example-thumbprint' }), EXPECT);
    assert.equal(r.claims.repository_id, '487920697');
    assert.equal(await code(v.verify(signToken({ ...claims, sub: 'repo:github/other:pull_request' }, gh), EXPECT)), 'sub_inconsistent');
    assert.equal(await code(v.verify(signToken({ ...claims, sub: 'repo:github/actions-oidc-debugger:environment:prod' }, gh), EXPECT)), 'sub_inconsistent');
    assert.equal(await code(v.verify(signToken({ ...claims, repository_id: 487920697 }, gh), EXPECT)), 'claim_type_invalid');
  });

  test('claim types are checked in every claim order (the remembered order never skips a check)', async () => {
    const gh = testKey('RS256', 'gh-order');
    const v = verifierWith([{ id: 'github-actions', issuer: 'https://token.actions.githubusercontent.com', profile: 'github', keys: { staticJwks: { keys: [gh.jwk] } } }]);
    const base: Record<string, unknown> = {
      iss: 'https://token.actions.githubusercontent.com', sub: 'repo:o/r:ref:refs/heads/main', aud: 'ours', iat: NOW, exp: NOW + 300, jti: 'j',
      repository: 'o/r', repository_id: '1', repository_owner_id: '2', run_id: '3', ref: 'refs/heads/main',
    };
    const names = Object.keys(base);
    const value = (n: string) => (n === 'extra_claim' ? 'x' : base[n]);
    const reordered = (order: string[], bad?: string) => Object.fromEntries(order.map((n) => [n, n === bad ? 12 : value(n)]));
    // The same order, reversed, half reversed, one claim more at the end, one fewer.
    const orders = [names, [...names].reverse(), [...names.slice(0, 5), ...names.slice(5).reverse()], [...names, 'extra_claim'], names.filter((n) => n !== 'repository_owner_id')];
    for (let round = 0; round < 2; round++) {
      for (const order of orders) {
        assert.ok((await v.verify(signToken(reordered(order), gh), EXPECT)).claims, `well-typed claims verify in order ${order.join(',')}`);
        for (const bad of ['repository_id', 'repository_owner_id', 'run_id', 'repository'].filter((n) => order.includes(n))) {
          assert.equal(await code(v.verify(signToken(reordered(order, bad), gh), EXPECT)), 'claim_type_invalid', `${bad} in order ${order.join(',')}`);
        }
      }
    }
  });

  test('Buildkite (F6): no jti allowed, null step_key, integer build_number; but never single-use', async () => {
    const bk = testKey('RS256', 'bk-1');
    const v = verifierWith([{ id: 'buildkite', issuer: 'https://agent.buildkite.com', profile: 'buildkite', keys: { staticJwks: { keys: [bk.jwk] } } }]);
    const claims = {
      iss: 'https://agent.buildkite.com', sub: 'organization:planetscale:pipeline:p:ref:refs/heads/x:commit:750339:step:', aud: 'ours', iat: NOW, nbf: NOW, exp: NOW + 300,
      organization_slug: 'planetscale', pipeline_slug: 'p', build_number: 175, step_key: null, job_id: 'j', agent_id: 'a',
    };
    assert.equal((await v.verify(signToken(claims, bk), EXPECT)).claims.build_number, 175);
    assert.equal(await code(v.verify(signToken({ ...claims, build_number: '175' }, bk), EXPECT)), 'claim_type_invalid');
    assert.equal(await code(v.verify(signToken(claims, bk), { ...EXPECT, replay: 'single-use' })), 'jti_missing');
  });

  test('ci-oidc profile decodes %3A/%25 in sub; GitLab does not', async () => {
    const ours = testKey('ES256', 'ours-1');
    const v = verifierWith([
      { id: 'ci-oidc', issuer: 'https://ci.example.com', profile: 'ci-oidc', algorithms: ['ES256'], keys: { keySource: () => ({ keys: [ours.jwk] }) } },
      gitlab,
    ]);
    const claims = gitlabClaims({ iss: 'https://ci.example.com', ref: 'a%b', sub: 'project_id:55235664:ref_type:branch:ref:a%25b' });
    assert.equal((await v.verify(signToken(claims, ours), EXPECT)).registration.profile, 'ci-oidc');
    // GitLab does not escape: a branch literally named a%25b stays raw.
    const raw = gitlabClaims({ ref: 'a%25b', sub: 'project_path:foo/bar:ref_type:branch:ref:a%25b' });
    assert.equal((await v.verify(signToken(raw, rs), EXPECT)).claims.ref, 'a%25b');
  });
});

describe('A: signatures and algorithms', () => {
  const v = verifierWith();
  const payload = b64json(gitlabClaims());
  const good = signToken(gitlabClaims(), rs);
  const goodSig = good.split('.')[2] as string;

  test('A1: alg none in any case, with an empty or the original signature', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const h = b64json({ alg, typ: 'JWT' });
      assert.equal(await code(v.verify(`${h}.${payload}.`, EXPECT)), 'token_malformed');
      assert.equal(await code(v.verify(`${h}.${payload}.${goodSig}`, EXPECT)), 'alg_not_allowed');
    }
  });

  test('A2: two parts, empty signature, four parts', async () => {
    const [h, p] = good.split('.') as [string, string];
    for (const t of [`${h}.${p}.`, `${h}.${p}`, `${h}.${p}.${goodSig}.`, `${good}.${goodSig}`]) assert.equal(await code(v.verify(t, EXPECT)), 'token_malformed');
  });

  test('A3: HS256 keyed with the public key in every encoding', async () => {
    const { createHmac } = await import('node:crypto');
    const pem = rs.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const secrets: (string | Buffer)[] = [
      pem,
      rs.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string,
      `\n  ${pem}`,
      rs.publicKey.export({ type: 'spki', format: 'der' }) as Buffer,
      JSON.stringify(rs.jwk),
      Buffer.from(rs.jwk.n as string, 'base64url'),
      '',
    ];
    for (const secret of secrets) {
      const input = `${b64json({ alg: 'HS256', typ: 'JWT', kid: 'gl-1' })}.${payload}`;
      const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      assert.equal(await code(v.verify(token, EXPECT)), 'alg_not_allowed');
    }
  });

  test('A4: ES256 psychic signatures (r = s = 0, r/s in {0, 1, n-1, n}, r, s >= n)', async () => {
    const ve = verifierWith([{ id: 'es', issuer: 'https://es.example', algorithms: ['ES256'], keys: { staticJwks: { keys: [es.jwk] } } }]);
    const input = `${b64json({ alg: 'ES256', kid: 'es-1' })}.${b64json({ iss: 'https://es.example', sub: 's', aud: 'ours', iat: NOW, exp: NOW + 60, jti: 'j' })}`;
    const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
    const nMinus1 = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550', 'hex');
    const zero = Buffer.alloc(32);
    const one = Buffer.concat([Buffer.alloc(31), Buffer.from([1])]);
    const ff = Buffer.alloc(32, 0xff);
    const combos = [[zero, zero], [zero, one], [one, zero], [one, one], [n, n], [nMinus1, nMinus1], [n, one], [one, n], [ff, ff], [nMinus1, zero]];
    for (const [r, s] of combos) assert.equal(await code(ve.verify(`${input}.${b64u(Buffer.concat([r as Buffer, s as Buffer]))}`, EXPECT)), 'signature_invalid');
    assert.equal((await ve.verify(`${input}.${signInput(input, es)}`, EXPECT)).alg, 'ES256');
  });

  test('A5/A6: jwk, jku, x5u, x5c headers are rejected and never fetched', async () => {
    const attacker = testKey('RS256', 'gl-1', 'attacker');
    const server = await startServer();
    try {
      server.json('/evil.json', { keys: [attacker.jwk] });
      const headers = [
        { jwk: attacker.jwk },
        { jku: `${server.url}/evil.json` },
        { x5u: `${server.url}/evil.json` },
        { x5c: ['MIIBszCCAVmgAwIBAgIUR'] },
      ];
      for (const h of headers) assert.equal(await code(v.verify(signToken(gitlabClaims(), attacker, h), EXPECT)), 'header_invalid');
      assert.equal(server.total(), 0, 'the attacker listener saw zero requests');
      assert.equal(server.connections, 0);
    } finally {
      await server.close();
    }
  });

  test('A7: RS256 key with a PS256 token and the reverse; ES256 against P-384; DER ECDSA', async () => {
    const ps = testKey('PS256', 'ps-1', 'gl-1');
    const vm = verifierWith([
      { id: 'rs', issuer: 'https://rs.example', algorithms: ['RS256', 'PS256'], keys: { staticJwks: { keys: [rs.jwk] } } },
      { id: 'ps', issuer: 'https://ps.example', algorithms: ['RS256', 'PS256'], keys: { staticJwks: { keys: [{ ...ps.jwk, kid: 'ps-1' }] } } },
      { id: 'ec', issuer: 'https://ec.example', algorithms: ['ES256', 'ES384'], keys: { staticJwks: { keys: [{ ...es384.jwk, kid: 'k' }] } } },
    ]);
    const c = (iss: string) => ({ iss, sub: 's', aud: 'ours', iat: NOW, exp: NOW + 60, jti: 'j' });
    assert.equal(await code(vm.verify(signToken(c('https://rs.example'), rs, { alg: 'PS256' }), EXPECT)), 'key_not_found');
    assert.equal(await code(vm.verify(signToken(c('https://ps.example'), { ...ps, kid: 'ps-1' }, { alg: 'RS256' }), EXPECT)), 'key_not_found');
    assert.equal(await code(vm.verify(signToken(c('https://ec.example'), { ...es, kid: 'k' }), EXPECT)), 'key_not_found');
    const { sign } = await import('node:crypto');
    const input = `${b64json({ alg: 'ES384', kid: 'k' })}.${b64json(c('https://ec.example'))}`;
    const der = sign('sha384', Buffer.from(input), es384.privateKey);
    assert.equal(await code(vm.verify(`${input}.${b64u(der)}`, EXPECT)), 'signature_invalid');
    assert.equal((await vm.verify(`${input}.${signInput(input, es384)}`, EXPECT)).alg, 'ES384');
  });

  test('A8: crit and b64', async () => {
    assert.equal(await code(v.verify(signToken(gitlabClaims(), rs, { crit: ['x-foo'], 'x-foo': 1 }), EXPECT)), 'crit_unsupported');
    assert.equal(await code(v.verify(signToken(gitlabClaims(), rs, { b64: false, crit: ['b64'] }), EXPECT)), 'crit_unsupported');
    assert.equal(await code(v.verify(signToken(gitlabClaims(), rs, { b64: true }), EXPECT)), 'crit_unsupported');
  });

  test('A9: JSON serializations and appended JSON', async () => {
    const [h, p, s] = good.split('.') as [string, string, string];
    const flattened = JSON.stringify({ protected: h, payload: p, signature: s });
    const general = JSON.stringify({ payload: p, signatures: [{ protected: h, signature: s, header: { alg: 'none' } }] });
    for (const t of [flattened, general, `${good}${flattened}`, `${good} `, ` ${good}`, `${good}\n`]) assert.equal(await code(v.verify(t, EXPECT)), 'token_malformed');
    assert.equal(await code(v.verify({ token: good }, EXPECT)), 'token_malformed');
  });

  test('tampered payload and signature', async () => {
    const [h, , s] = good.split('.') as [string, string, string];
    assert.equal(await code(v.verify(`${h}.${b64json(gitlabClaims({ project_path: 'evil/x', sub: 'project_path:evil/x:ref_type:branch:ref:main' }))}.${s}`, EXPECT)), 'signature_invalid');
    const sig = Buffer.from(s, 'base64url');
    sig[10] = (sig[10] as number) ^ 1;
    assert.equal(await code(v.verify(`${h}.${payload}.${b64u(sig)}`, EXPECT)), 'signature_invalid');
  });
});

describe('B: key scoping and selection', () => {
  test('B1: another issuer publishing the same kid cannot sign for gitlab.com', async () => {
    const v = verifierWith([gitlab, { id: 'evil', issuer: 'https://git.evil.test', profile: 'gitlab', keys: { staticJwks: { keys: [rsOther.jwk] } } }]);
    assert.equal(await code(v.verify(signToken(gitlabClaims(), rsOther), EXPECT)), 'signature_invalid');
    assert.equal((await v.verify(signToken(gitlabClaims({}, 'https://git.evil.test'), rsOther), EXPECT)).registration.id, 'evil');
  });

  test('B2: our issuer key cannot sign for a self-managed issuer and the reverse', async () => {
    const ours = testKey('RS256', 'ours', 'ours');
    const self = testKey('RS256', 'self', 'self');
    const v = verifierWith([
      { id: 'ci-oidc', issuer: 'https://ci.example.com', profile: 'ci-oidc', keys: { staticJwks: { keys: [ours.jwk] } } },
      { id: 'self', issuer: 'https://git.self.test', profile: 'gitlab', keys: { staticJwks: { keys: [self.jwk] } } },
    ]);
    assert.equal(await code(v.verify(signToken(gitlabClaims({}, 'https://git.self.test'), ours), EXPECT)), 'key_not_found');
    assert.equal(await code(v.verify(signToken(gitlabClaims({}, 'https://ci.example.com'), { ...self, kid: 'ours' }), EXPECT)), 'signature_invalid');
  });

  test('B7: no kid with one key accepted; with two keys of one type ambiguous', async () => {
    const k2 = testKey('RS256', 'gl-2');
    const one = verifierWith();
    const two = verifierWith([{ ...gitlab, keys: { staticJwks: { keys: [rs.jwk, k2.jwk] } } }]);
    const token = signRaw(JSON.stringify({ alg: 'RS256', typ: 'JWT' }), JSON.stringify(gitlabClaims()), rs);
    assert.equal((await one.verify(token, EXPECT)).kid, undefined);
    assert.equal(await code(two.verify(token, EXPECT)), 'key_ambiguous');
  });

  test('B8: hostile kid values are rejected with no I/O', async () => {
    const v = verifierWith();
    const kids: unknown[] = ['../../../../dev/null', '/dev/null', "x' UNION SELECT '1';--", '|sleep 10', 'k'.repeat(10_000), 42, { a: 1 }, null, '', 'tab\there'];
    for (const kid of kids) {
      const c = await code(v.verify(signRaw(JSON.stringify({ alg: 'RS256', kid }), JSON.stringify(gitlabClaims()), rs), EXPECT));
      assert.ok(['key_not_found', 'header_invalid'].includes(c), `kid ${JSON.stringify(kid)?.slice(0, 20)} → ${c}`);
    }
  });
});

describe('C: claims, issuers, audiences', () => {
  test('C2: issuer spellings never match and never fetch', async () => {
    const server = await startServer();
    try {
      const v = createVerifier({ issuers: [{ ...gitlab, keys: 'discovery' }], clock: () => NOW });
      const spellings = [
        'https://gitlab.com/', 'http://gitlab.com', 'https://GitLab.com', 'https://gitlab.com:443', 'https://gitlab.com.evil.test',
        'https://evil.test/https://gitlab.com', 'https://gitlab.com?x', 'https://gitlab.com#', 'https://user@gitlab.com', 'https://gitlab.com@evil.test', ` https://gitlab.com`,
      ];
      for (const iss of spellings) assert.equal(await code(v.verify(signToken(gitlabClaims({}, iss), rs), EXPECT)), 'issuer_unknown', iss);
      for (const iss of [42, null, ['https://gitlab.com'], undefined]) assert.equal(await code(v.verify(signToken(gitlabClaims({ iss }), rs), EXPECT)), 'issuer_unknown');
      assert.deepEqual(v.keyStatus(), [], 'no key load was even attempted');
      await v.close();
    } finally {
      await server.close();
    }
  });

  test('C3: a tenant registration is visible only to its tenant', async () => {
    const a = testKey('RS256', 'ta', 'tenant-a');
    const b = testKey('RS256', 'tb', 'tenant-b');
    const v = verifierWith([
      { id: 'a-git', issuer: 'https://git.a.test', tenant: 'A', profile: 'gitlab', keys: { staticJwks: { keys: [a.jwk] } } },
      { id: 'b-git', issuer: 'https://git.a.test', tenant: 'B', profile: 'gitlab', keys: { staticJwks: { keys: [b.jwk] } } },
    ]);
    const ta = signToken(gitlabClaims({}, 'https://git.a.test'), a);
    const tb = signToken(gitlabClaims({}, 'https://git.a.test'), b);
    assert.equal(await code(v.verify(ta, EXPECT)), 'issuer_unknown');
    assert.equal((await v.verify(ta, { ...EXPECT, tenant: 'A' })).registration.id, 'a-git');
    assert.equal(await code(v.verify(ta, { ...EXPECT, tenant: 'B' })), 'key_not_found');
    assert.equal((await v.verify(tb, { ...EXPECT, tenant: 'B' })).registration.tenant, 'B');
    assert.equal(await code(v.verify(tb, { ...EXPECT, tenant: 'A' })), 'key_not_found');
  });

  test('C4: audience rules per mode', async () => {
    const v = verifierWith();
    const t = (aud: unknown) => signToken(gitlabClaims({ aud }), rs);
    assert.equal(await code(v.verify(t(undefined), EXPECT)), 'aud_missing');
    assert.equal(await code(v.verify(t('other'), EXPECT)), 'aud_mismatch');
    assert.equal(await code(v.verify(t(['ours', 'evil']), EXPECT)), 'aud_multi_valued');
    assert.equal(await code(v.verify(t([]), EXPECT)), 'aud_missing');
    assert.equal(await code(v.verify(t('ours '), EXPECT)), 'aud_mismatch');
    assert.equal(await code(v.verify(t(42), EXPECT)), 'claim_type_invalid');
    assert.equal(await code(v.verify(t(['ours', 'ours']), { ...EXPECT, audienceMode: 'any-of' })), 'claim_type_invalid');
    assert.equal(await code(v.verify(t(Array.from({ length: 11 }, (_, i) => `a${i}`)), { ...EXPECT, audienceMode: 'any-of' })), 'claim_type_invalid');
    assert.equal((await v.verify(t(['ours']), EXPECT)).claims.aud?.toString(), 'ours');
    assert.equal(await code(v.verify(t(['ours', 'evil']), { ...EXPECT, audienceMode: 'any-of' })), 'accepted');
    assert.equal(await code(v.verify(t(['ours']), { ...EXPECT, audienceMode: 'strict-string' })), 'aud_mismatch');
    assert.equal(await code(v.verify(t('ours'), { ...EXPECT, audienceMode: 'strict-string' })), 'accepted');
    assert.equal(await code(v.verify(t('b'), { audiences: ['a', 'b'] })), 'accepted');
    await assert.rejects(v.verify(t('ours'), { audiences: [] }), /non-empty/);
  });

  test('C5: typ rules keep credential JWTs out of ID-token endpoints', async () => {
    const v = verifierWith();
    for (const typ of ['JWT', 'jwt', 'application/jwt', undefined]) assert.equal(await code(v.verify(signToken(gitlabClaims(), rs, { typ }), EXPECT)), 'accepted');
    for (const typ of ['ci-oidc-credential+jwt', 'at+jwt', 'JOSE', 42]) assert.equal(await code(v.verify(signToken(gitlabClaims(), rs, { typ }), EXPECT)), 'typ_invalid');
    assert.equal(await code(v.verify(signToken(gitlabClaims(), rs, { typ: 'ci-oidc-credential+jwt' }), { ...EXPECT, typ: 'ci-oidc-credential+jwt' })), 'accepted');
    assert.equal(await code(v.verify(signToken(gitlabClaims(), rs, { typ: 'JWT' }), { ...EXPECT, typ: 'ci-oidc-credential+jwt' })), 'typ_invalid');
  });

  test('C6: time claim types and bounds', async () => {
    const v = verifierWith();
    const t = (o: Record<string, unknown>) => signToken(gitlabClaims(o), rs);
    const cases: [Record<string, unknown>, string][] = [
      [{ exp: undefined }, 'claim_type_invalid'],
      [{ exp: NOW - 31 }, 'expired'],
      [{ exp: String(NOW + 60) }, 'claim_type_invalid'],
      [{ exp: NOW + 60.5 }, 'claim_type_invalid'],
      [{ exp: -1 }, 'claim_type_invalid'],
      [{ exp: [NOW + 60] }, 'claim_type_invalid'],
      [{ nbf: NOW + 31 }, 'not_yet_valid'],
      [{ iat: undefined }, 'claim_type_invalid'],
      [{ iat: NOW + 31, nbf: NOW }, 'iat_in_future'],
      [{ iat: NOW - 100_000, exp: NOW + 60 }, 'lifetime_too_long'],
      [{ exp: 253402300800 }, 'claim_type_invalid'],
      [{ nbf: null }, 'claim_type_invalid'],
      [{ exp: NOW - 60, iat: NOW - 30 }, 'claim_type_invalid'],
    ];
    for (const [o, want] of cases) assert.equal(await code(v.verify(t(o), EXPECT)), want, JSON.stringify(o));
    // 1e400, -0 and 2^53+1 written as raw JSON text.
    const text = JSON.stringify(gitlabClaims());
    for (const raw of ['1e400', '-0', '9007199254740993']) {
      const payload = text.replace(`"exp":${NOW + 3540}`, `"exp":${raw}`);
      assert.notEqual(payload, text);
      assert.equal(await code(v.verify(signRaw(JSON.stringify({ alg: 'RS256', kid: 'gl-1' }), payload, rs), EXPECT)), 'claim_type_invalid', raw);
    }
    // Age cap: an old token with a long lifetime inside the cap is still expired once now - iat > maxLifetime + L.
    const vv = verifierWith([{ ...gitlab, maxLifetime: 3600 }]);
    assert.equal(await code(vv.verify(t({ iat: NOW - 3570, exp: NOW + 30 }), EXPECT)), 'accepted');
    assert.equal(await code(vv.verify(t({ iat: NOW - 3631, exp: NOW - 31 }), EXPECT)), 'expired');
    // expectations may only tighten
    assert.equal(await code(v.verify(t({ iat: NOW - 60, exp: NOW + 3540 }), { ...EXPECT, maxLifetime: 600 })), 'lifetime_too_long');
    assert.equal(await code(v.verify(t({ exp: NOW - 10 }), { ...EXPECT, leeway: 5 })), 'expired');
    assert.equal(await code(v.verify(t({ exp: NOW - 10 }), { ...EXPECT, leeway: 600 })), 'accepted');
  });

  test('C6: boundary property — accepted at now = exp + L - 1, rejected at exp + L', async () => {
    const token = signToken(gitlabClaims({ iat: NOW - 100, exp: NOW, nbf: NOW - 100 }), rs);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 60 }), fc.integer({ min: -200, max: 200 }), async (L, delta) => {
        const now = NOW + delta;
        const v = createVerifier({ issuers: [{ ...gitlab, leeway: L }], clock: () => now });
        const c = await code(v.verify(token, EXPECT));
        if (now >= NOW + L) return c === 'expired';
        if (NOW - 100 > now + L) return c === 'iat_in_future' || c === 'not_yet_valid';
        return c === 'accepted';
      }),
      { numRuns: 120 },
    );
    for (const L of [0, 30, 60]) {
      const at = (now: number) => code(createVerifier({ issuers: [{ ...gitlab, leeway: L }], clock: () => now }).verify(token, EXPECT));
      assert.equal(await at(NOW + L - 1), 'accepted');
      assert.equal(await at(NOW + L), 'expired');
    }
  });

  test('C6/P2: nbf and iat leeway boundaries', async () => {
    const v = verifierWith();
    assert.equal(await code(v.verify(signToken(gitlabClaims({ nbf: NOW + 30, iat: NOW + 30 }), rs), EXPECT)), 'accepted');
    assert.equal(await code(v.verify(signToken(gitlabClaims({ nbf: NOW, iat: NOW + 31 }), rs), EXPECT)), 'iat_in_future');
  });

  test('C8: sub delimiter injection', async () => {
    const v = verifierWith();
    const bad = [
      { sub: 'project_path:a/b:ref_type:branch:ref:main', project_path: 'foo/bar' },
      { sub: 'project_path:foo/bar:ref_type:branch:ref:main', ref: 'evil' },
      { sub: 'project_path:foo/bar:ref_type:branch:ref:main:x' },
      { sub: 'project_path:foo/bar:ref_type:tag:ref:main' },
    ];
    for (const o of bad) assert.equal(await code(v.verify(signToken(gitlabClaims(o), rs), EXPECT)), 'sub_inconsistent', o.sub);
    for (const sub of ['', 'a\nb', 'x'.repeat(1025), 42]) assert.equal(await code(v.verify(signToken(gitlabClaims({ sub }), rs), EXPECT)), 'claim_type_invalid');
  });

  test('C12: GitLab claim types; unknown claims allowed; duplicates refused', async () => {
    const v = verifierWith();
    for (const o of [{ project_path: ['a'] }, { project_path: { a: 1 } }, { project_path: 1 }, { ref_protected: true }, { project_id: 20 }, { project_id: '020' }, { runner_id: '1' }, { runner_id: -1 }, { ref_type: 'tags' }, { groups_direct: 'a' }, { user_identities: ['x'] }, { job_config: [] }]) {
      assert.equal(await code(v.verify(signToken(gitlabClaims(o), rs), EXPECT)), 'claim_type_invalid', JSON.stringify(o));
    }
    assert.equal(await code(v.verify(signToken(gitlabClaims({ anything_new: { x: [1] }, ci_config_ref_uri: null, user_access_level: null }), rs), EXPECT)), 'accepted');
    const dup = JSON.stringify(gitlabClaims()).replace('{', '{"project_path":"gitlab-org/gitlab",');
    assert.equal(await code(v.verify(signRaw(JSON.stringify({ alg: 'RS256', kid: 'gl-1' }), dup, rs), EXPECT)), 'duplicate_member');
  });

  test('jti: required by default, 1..256 chars', async () => {
    const v = verifierWith();
    assert.equal(await code(v.verify(signToken(gitlabClaims({ jti: undefined }), rs), EXPECT)), 'jti_missing');
    for (const jti of ['', 'x'.repeat(257), 42]) assert.equal(await code(v.verify(signToken(gitlabClaims({ jti }), rs), EXPECT)), 'claim_type_invalid');
  });

  test('GitLab v1 CI_JOB_JWT (scheme-less iss, no aud) never verifies', async () => {
    const v = verifierWith();
    const v1 = gitlabClaims({ iss: 'gitlab.com', aud: undefined, sub: 'job_3131574536' });
    assert.equal(await code(v.verify(signToken(v1, rs), EXPECT)), 'issuer_unknown');
  });
});

describe('D: parsing before crypto', () => {
  const v = verifierWith();
  test('D1/D2: oversize and a. floods', async () => {
    assert.equal(await code(v.verify('a'.repeat(20001), EXPECT)), 'token_too_large');
    assert.equal(await code(v.verify(`${'a.'.repeat(100_000)}`, EXPECT)), 'token_too_large');
    assert.equal(await code(v.verify(`${'a.'.repeat(9_000)}a`, EXPECT)), 'token_malformed');
    assert.equal(await code(v.verify('x'.repeat(1 << 20), EXPECT)), 'token_too_large');
  });

  test('a real GitLab token with many groups_direct entries over 8 KiB passes', async () => {
    const groups = Array.from({ length: 200 }, (_, i) => `some-group-${i}/subgroup-${i}`);
    const token = signToken(gitlabClaims({ groups_direct: groups }), rs);
    assert.ok(token.length > 8192 && token.length < 20000);
    assert.equal(await code(v.verify(token, EXPECT)), 'accepted');
  });

  test('D3: duplicate header members', async () => {
    const t = signRaw('{"alg":"none","alg":"RS256","kid":"gl-1"}', JSON.stringify(gitlabClaims()), rs);
    assert.equal(await code(v.verify(t, EXPECT)), 'duplicate_member');
    const escaped = signRaw('{"alg":"RS256","kid":"gl-1","\\u0061lg":"RS256"}', JSON.stringify(gitlabClaims()), rs);
    assert.equal(await code(v.verify(escaped, EXPECT)), 'duplicate_member');
  });

  test('D6: non-object payloads, invalid UTF-8, BOM, lone surrogates', async () => {
    const h = JSON.stringify({ alg: 'RS256', kid: 'gl-1' });
    for (const p of ['[1,2]', 'null', '"str"', '', '\ufeff{}', '{"sub":"\\ud800"}']) assert.equal(await code(v.verify(signRaw(h, p, rs), EXPECT)), 'token_malformed', p);
    const input = `${b64u(h)}.${b64u(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))}`;
    assert.equal(await code(v.verify(`${input}.${signInput(input, rs)}`, EXPECT)), 'token_malformed');
    const headerBytes = `${b64u(Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from(h)]))}.${b64json(gitlabClaims())}`;
    assert.equal(await code(v.verify(`${headerBytes}.${signInput(headerBytes, rs)}`, EXPECT)), 'header_invalid');
  });

  test('D7: JWE in five segments and JWE header members', async () => {
    assert.equal(await code(v.verify('eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d', EXPECT)), 'token_malformed');
    for (const extra of [{ zip: 'DEF' }, { p2c: 2 ** 31 }, { enc: 'A256GCM' }, { epk: {} }]) {
      assert.equal(await code(v.verify(signToken(gitlabClaims(), rs, extra), EXPECT)), 'header_invalid');
    }
  });
});

describe('keys, logging and results', () => {
  test('a token naming a refused key gets key_rejected; the refusal is logged without the token', async () => {
    const lines: string[] = [];
    const { createLogger } = await import('../../src/server/logger.ts');
    const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } });
    const weak = { ...rsOther.jwk, kid: 'weak', e: 'AQ' };
    const v = createVerifier({ issuers: [{ ...gitlab, keys: { staticJwks: { keys: [rs.jwk, weak] } } }], clock: () => NOW, logger });
    const token = signToken(gitlabClaims({ extra_claim: 1 }), { ...rsOther, kid: 'weak' });
    assert.equal(await code(v.verify(token, EXPECT)), 'key_rejected');
    const good = signToken(gitlabClaims({ extra_claim: 1 }), rs);
    assert.equal(await code(v.verify(good, EXPECT)), 'accepted');
    const log = lines.join('');
    assert.match(log, /JWKS key not admitted/);
    assert.match(log, /"kid":"weak"/);
    assert.match(log, /unaccounted claims/);
    assert.match(log, /extra_claim/);
    assert.equal(log.includes(token.split('.')[1] as string), false, 'no token in logs');
    assert.equal(log.includes(good.split('.')[2] as string), false);
  });

  test('C1: a self-managed issuer minting gitlab.com-looking claims is reported as itself', async () => {
    const self = testKey('RS256', 'self-c1', 'self');
    const v = verifierWith([gitlab, { id: 'self-managed', issuer: 'https://git.self.test', profile: 'gitlab', keys: { staticJwks: { keys: [self.jwk] } } }]);
    const r = await v.verify(signToken(gitlabClaims({ project_path: 'gitlab-org/gitlab', namespace_path: 'gitlab-org', sub: 'project_path:gitlab-org/gitlab:ref_type:branch:ref:main' }, 'https://git.self.test'), self), EXPECT);
    assert.equal(r.registration.id, 'self-managed');
    assert.equal(r.registration.issuer, 'https://git.self.test');
    assert.equal(r.registration.shared, true);
    assert.equal(r.claims.iss, 'https://git.self.test');
  });

  test('a static set with no usable key fails closed with jwks_unavailable', async () => {
    const v = verifierWith([{ ...gitlab, keys: { staticJwks: { keys: [{ ...rs.jwk, e: 'AQ' }] } } }]);
    assert.equal(await code(v.verify(signToken(gitlabClaims(), rs), EXPECT)), 'jwks_unavailable');
    assert.match(v.keyStatus()[0]?.lastError ?? '', /no usable keys/);
  });

  test('every rejection is a VerificationError with a stable code, an operator message and a non-5xx status', async () => {
    const v = verifierWith();
    for (const t of ['x', 'a'.repeat(30000), signToken(gitlabClaims({ aud: 'no' }), rs)]) {
      try {
        await v.verify(t, EXPECT);
        assert.fail('accepted');
      } catch (err) {
        assert.ok(err instanceof VerificationError);
        assert.match(err.code, /^[a-z_]+$/);
        assert.ok(err.message.length > 20);
        assert.ok(err.status === 400 || err.status === 401);
      }
    }
  });
});

describe('CircleCI and Forgejo profiles', () => {
  test('CircleCI: per-org issuer, typed context-ids and ssh-rerun', async () => {
    const { circleciIssuer } = await import('../../src/providers/circleci.ts');
    const iss = circleciIssuer('c7b2a8f0-1234-4abc-9def-0123456789ab');
    const k = testKey('RS256', 'cc-1');
    const v = verifierWith([{ id: 'circle-acme', issuer: iss, profile: 'circleci', keys: { staticJwks: { keys: [k.jwk] } } }]);
    const base = {
      iss, aud: 'ours', iat: NOW, exp: NOW + 3600, jti: 'j', sub: 'org/o/project/p/user/u',
      'oidc.circleci.com/project-id': 'p', 'oidc.circleci.com/context-ids': ['a'], 'oidc.circleci.com/ssh-rerun': false,
    };
    assert.equal((await v.verify(signToken(base, k), EXPECT)).registration.shared, false);
    assert.equal(await code(v.verify(signToken({ ...base, 'oidc.circleci.com/ssh-rerun': 'false' }, k), EXPECT)), 'claim_type_invalid');
    assert.equal(await code(v.verify(signToken({ ...base, 'oidc.circleci.com/context-ids': 'a' }, k), EXPECT)), 'claim_type_invalid');
    assert.throws(() => circleciIssuer('../evil'));
  });

  test('Forgejo: GitHub-style types, sub not checked (IDs embedded)', async () => {
    const { forgejoIssuer } = await import('../../src/providers/forgejo.ts');
    const iss = forgejoIssuer('https://codeberg.org');
    assert.equal(iss, 'https://codeberg.org/api/actions');
    const k = testKey('RS256', 'fj-1');
    const v = verifierWith([{ id: 'codeberg', issuer: iss, profile: 'forgejo', keys: { staticJwks: { keys: [k.jwk] } } }]);
    const base = { iss, aud: 'ours', iat: NOW, exp: NOW + 600, jti: 'j', sub: 'repo:owner-12/repo-34:ref:refs/heads/main', repository: 'owner/repo', repository_id: '34', ref: 'refs/heads/main' };
    assert.equal(await code(v.verify(signToken(base, k), EXPECT)), 'accepted');
    assert.equal(await code(v.verify(signToken({ ...base, repository_id: 34 }, k), EXPECT)), 'claim_type_invalid');
  });

  test('GitHub issuer variants are exact URLs', async () => {
    const { githubEnterpriseSlugIssuer, gheComIssuer, ghesIssuer } = await import('../../src/providers/github.ts');
    assert.equal(githubEnterpriseSlugIssuer('octocat-inc'), 'https://token.actions.githubusercontent.com/octocat-inc');
    assert.equal(gheComIssuer('acme', 'ent'), 'https://token.actions.acme.ghe.com/ent');
    assert.equal(ghesIssuer('github.example.com'), 'https://github.example.com/_services/token');
    for (const bad of ['*', 'a/b', '', '-x']) assert.throws(() => githubEnterpriseSlugIssuer(bad));
    assert.throws(() => ghesIssuer('evil.test/x'));
  });
});

describe('GitHub sub case folding', () => {
  test('ASCII case-insensitive only: the Kelvin sign does not fold to k', async () => {
    const gh = testKey('RS256', 'gh-k');
    const v = verifierWith([{ id: 'gh', issuer: 'https://token.actions.githubusercontent.com', profile: 'github', keys: { staticJwks: { keys: [gh.jwk] } } }]);
    const base = { iss: 'https://token.actions.githubusercontent.com', aud: 'ours', iat: NOW, exp: NOW + 300, jti: 'j', repository: 'kube/x', ref: 'refs/heads/main' };
    assert.equal(await code(v.verify(signToken({ ...base, sub: 'repo:KUBE/X:ref:refs/heads/main' }, gh), EXPECT)), 'accepted');
    assert.equal(await code(v.verify(signToken({ ...base, sub: 'repo:\u212Aube/x:ref:refs/heads/main' }, gh), EXPECT)), 'sub_inconsistent');
    assert.equal(await code(v.verify(signToken({ ...base, sub: 'repo:kube/x:ref:refs/heads/evil' }, gh), EXPECT)), 'sub_inconsistent');
  });
});
