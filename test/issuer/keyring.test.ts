import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { createLocalJWKSet, jwtVerify, calculateJwkThumbprint } from 'jose';
import { Keyring, planRotation, validateRotationPolicy, DEFAULT_ROTATION_POLICY, type RotationPolicy } from '../../src/jose/keyring.ts';
import { kekFromBytes } from '../../src/jose/kek.ts';
import { createJwsSigner } from '../../src/jose/jws.ts';
import { generateSigningKey, type SigningAlg } from '../../src/jose/keys.ts';
import { forEachStore, openReplica } from '../helpers/store.ts';
import { buildIssuer, f7Variables, keySource, memoryBackend, testClock, ISSUER } from './helpers.ts';

const DAY = 86400;
const policy: RotationPolicy = { ...DEFAULT_ROTATION_POLICY, maxTokenLifetime: 3600 };
const kek = kekFromBytes(randomBytes(32));
const sealer = { seal: (p: Buffer, aad: string) => kek.seal(p, aad), open: (s: string, aad: string) => kek.open(s, aad) };

function ring(algs: SigningAlg[] = ['RS256'], clock = testClock(1_000_000_000)) {
  const backend = memoryBackend();
  const keyring = new Keyring({ backend, sealer, algs, policy, clock: clock.now, generateKey: keySource() });
  return { keyring, backend, clock };
}

async function verifies(keyring: Keyring, token: string, now: number): Promise<boolean> {
  try {
    await jwtVerify(token, createLocalJWKSet(keyring.jwks() as never), { currentDate: new Date(now * 1000), issuer: ISSUER });
    return true;
  } catch {
    return false;
  }
}

describe('signing-key rotation (issuer.md §12, F4)', () => {
  test('policy: pre-publication of at least 48 h and retention grace of at least 24 h', () => {
    assert.throws(() => validateRotationPolicy({ ...policy, prePublish: 47 * 3600 }), /at least 172800/);
    assert.throws(() => validateRotationPolicy({ ...policy, retentionGrace: 3600 }), /24 h/);
    assert.throws(() => validateRotationPolicy({ ...policy, rotationPeriod: policy.prePublish }), /longer than the pre-publication/);
  });

  test('bootstrap creates one active key per algorithm; kid is the RFC 7638 thumbprint', async () => {
    const { keyring } = ring(['RS256', 'ES256', 'EdDSA']);
    const actions = await keyring.tick();
    assert.equal(actions.filter((a) => a.type === 'generate').length, 3);
    const jwks = keyring.jwks().keys;
    assert.equal(jwks.length, 3);
    for (const k of jwks) {
      const { kid, use, alg, ...members } = k;
      assert.equal(use, 'sig');
      assert.ok(alg);
      assert.equal(kid, await calculateJwkThumbprint(members as never));
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(priv in k, false);
    }
    assert.deepEqual(await keyring.tick(), [], 'nothing more to do');
  });

  test('scheduled rotation: next published >= 48 h before it signs; a retired key stays until max lifetime + 24 h', async () => {
    const { keyring, clock } = ring();
    await keyring.tick();
    const first = keyring.signer('RS256')!;
    const t0 = clock.now();
    const token = first.signer.sign({ iss: ISSUER, sub: 's', iat: t0, exp: t0 + 3600 });

    clock.set(t0 + 90 * DAY - 48 * 3600 - 1);
    assert.deepEqual(await keyring.tick(), []);
    clock.advance(1);
    const published = await keyring.tick();
    assert.deepEqual(published.map((a) => a.type), ['generate']);
    const next = keyring.list().find((k) => k.state === 'next')!;
    assert.equal(keyring.jwks().keys.length, 2, 'next key is published');
    assert.equal(keyring.signer('RS256')!.signer.kid, first.signer.kid, 'but does not sign');

    clock.set(next.createdAt + 48 * 3600 - 1);
    assert.deepEqual(await keyring.tick(), []);
    assert.equal(keyring.signer('RS256')!.signer.kid, first.signer.kid);
    clock.advance(1);
    const rotated = await keyring.tick();
    assert.deepEqual(rotated.map((a) => a.type), ['activate', 'retire']);
    assert.equal(keyring.signer('RS256')!.signer.kid, next.kid);
    const retired = keyring.list().find((k) => k.kid === first.signer.kid)!;
    assert.equal(retired.state, 'retired');
    assert.equal(retired.removeAt, clock.now() + 3600 + DAY);

    // A token signed just before the rotation still verifies from the JWKS until it expires.
    const last = first.signer.sign({ iss: ISSUER, sub: 's', iat: clock.now() - 1, exp: clock.now() + 3599 });
    assert.ok(await verifies(keyring, last, clock.now() + 3000));
    assert.ok(!(await verifies(keyring, token, clock.now())), 'the very first token expired long ago');

    clock.set(retired.removeAt! - 1);
    await keyring.tick();
    assert.equal(keyring.jwks().keys.length, 2);
    clock.advance(1);
    assert.deepEqual((await keyring.tick()).map((a) => a.type), ['remove']);
    assert.deepEqual(keyring.jwks().keys.map((k) => k.kid), [next.kid]);
    assert.ok(!(await verifies(keyring, last, clock.now())));
  });

  test('manual rotation publishes a successor that activates only after 48 h', async () => {
    const { keyring, clock } = ring();
    await keyring.tick();
    const kid0 = keyring.signer('RS256')!.signer.kid;
    assert.deepEqual((await keyring.rotate('RS256')).map((a) => a.type), ['generate']);
    assert.deepEqual(await keyring.rotate('RS256'), [], 'too early: nothing changes');
    assert.equal(keyring.signer('RS256')!.signer.kid, kid0);
    clock.advance(48 * 3600);
    assert.deepEqual((await keyring.rotate('RS256')).map((a) => a.type), ['activate', 'retire']);
    assert.notEqual(keyring.signer('RS256')!.signer.kid, kid0);
  });

  test('emergency rotation withdraws the key at once and signs with a new one', async () => {
    const { keyring } = ring();
    await keyring.tick();
    const compromised = keyring.signer('RS256')!.signer.kid;
    await keyring.rotate('RS256', { emergency: true });
    assert.ok(!keyring.jwks().keys.some((k) => k.kid === compromised));
    const now = keyring.signer('RS256')!;
    assert.notEqual(now.signer.kid, compromised);
    // With a pre-published successor, the emergency promotes it (relying parties may have cached it).
    await keyring.rotate('RS256');
    const successor = keyring.list().find((k) => k.state === 'next')!.kid;
    await keyring.rotate('RS256', { emergency: true });
    assert.equal(keyring.signer('RS256')!.signer.kid, successor);
  });

  test('kids are never reused: a colliding key is refused', async () => {
    const { keyring, backend } = ring();
    await keyring.tick();
    const dup = backend.rows[0]!;
    const again = new Keyring({ backend, sealer, algs: ['RS256'], policy, clock: () => 1_000_000_000 + 90 * DAY, generateKey: async () => ({ alg: 'RS256', privateKey: (await import('node:crypto')).createPrivateKey({ key: kek.open(dup.sealedPrivateKey, `issuer_signing_keys:${dup.kid}`), format: 'der', type: 'pkcs8' }) }) });
    await assert.rejects(again.tick(), /collides with an existing kid/);
  });

  test('planRotation retires extra active keys and activates a published next key when none is active', () => {
    const base = { alg: 'RS256' as const, publicJwk: {} as never, activateAt: 0, activatedAt: 0, retiredAt: null, removeAt: null, removedAt: null };
    const plan = planRotation([{ ...base, kid: 'a', state: 'active', createdAt: 0, activatedAt: 10 }, { ...base, kid: 'b', state: 'active', createdAt: 0, activatedAt: 5 }], 'RS256', 100, policy);
    assert.deepEqual(plan.map((a) => [a.type, 'kid' in a ? a.kid : '']), [['retire', 'b']]);
    const plan2 = planRotation([{ ...base, kid: 'n', state: 'next', createdAt: 0, activatedAt: null }], 'RS256', 100, policy);
    assert.deepEqual(plan2.map((a) => a.type), ['activate']);
  });
});

describe('JWS signing on node:crypto', () => {
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    test(`${alg}: jose verifies; header is {kid,typ,alg}; typ can be set per token`, async () => {
      const m = await generateSigningKey(alg);
      const signer = createJwsSigner({ alg, kid: m.kid, privateKey: m.privateKey });
      const jwks = createLocalJWKSet({ keys: [m.publicJwk as never] });
      const t = signer.sign({ iss: ISSUER, sub: 'x', exp: 9999999999, iat: 1 });
      const { protectedHeader } = await jwtVerify(t, jwks, { issuer: ISSUER, algorithms: [alg] });
      assert.deepEqual(protectedHeader, { kid: m.kid, typ: 'JWT', alg });
      const c = signer.sign({ iss: ISSUER, sub: 'x', exp: 9999999999, iat: 1 }, { typ: 'ci-oidc-credential+jwt' });
      assert.equal((await jwtVerify(c, jwks, { typ: 'ci-oidc-credential+jwt' })).protectedHeader.typ, 'ci-oidc-credential+jwt');
      assert.throws(() => signer.sign({}, { typ: 'bad"typ' }), /invalid JWS typ/);
    });
  }
  test('templates: a pre-encoded prefix gives the same payload bytes for every prefix length and UTF-8 split', async () => {
    const m = await generateSigningKey('EdDSA');
    const signer = createJwsSigner({ alg: 'EdDSA', kid: m.kid, privateKey: m.privateKey });
    const jwks = createLocalJWKSet({ keys: [m.publicJwk as never] });
    for (let pad = 0; pad < 7; pad++) {
      const prefix = `{"env":"${'x'.repeat(pad)}ü€😀"`;
      const suffix = `,"iss":"${ISSUER}","sub":"s","exp":9999999999,"iat":1}`;
      const token = signer.template(prefix).sign(suffix);
      assert.equal(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'), prefix + suffix);
      assert.equal(token.split('.')[0], signer.signJson('{}').split('.')[0]);
      const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER });
      assert.equal(payload.env, `${'x'.repeat(pad)}ü€😀`);
    }
  });

  test('a key that does not fit the algorithm is refused (F1: no none/HS*)', async () => {
    const ec = await generateSigningKey('ES256');
    assert.throws(() => createJwsSigner({ alg: 'RS256', kid: 'k', privateKey: ec.privateKey }), /RS256 needs an RSA key/);
    assert.throws(() => createJwsSigner({ alg: 'HS256' as never, kid: 'k', privateKey: ec.privateKey }), /unsupported JWS algorithm HS256/);
    assert.throws(() => createJwsSigner({ alg: 'ES256', kid: 'k', privateKey: ec.publicKey }), /private key/);
  });
});

forEachStore((kind, open) => {
  test(`${kind}: keys and jobs persist across restarts; private keys are sealed; a wrong KEK fails closed`, async () => {
    const store = await open();
    const clock = testClock();
    const keys = keySource();
    const storeKek = kekFromBytes(randomBytes(32));
    const first = await buildIssuer({ store, clock, kek: storeKek, generateKey: keys, issuer: { algorithms: ['ES256', 'EdDSA'], ciSystems: [{ name: 'ci', tokenEnv: 'CI_TOKEN' }], idTokensOnDemand: true } , env: { CI_TOKEN: 'x'.repeat(40) } });
    const kid = first.module.keys().find((k) => k.state === 'active' && k.alg === 'ES256')!.kid;
    const token = first.module.mint({ variables: f7Variables(), aud: 'a' }).token;
    const job = await first.module.service.registerJob({ ciSystem: 'ci', variables: f7Variables(), job: { id_tokens: { A: { aud: 'a' } } } });
    await first.close();

    const rows = await store.db.selectFrom('issuer_signing_keys').selectAll().execute();
    assert.equal(rows.length, 2);
    for (const r of rows) {
      assert.match(r.sealed_private_key, /^v1\./);
      assert.ok(!r.sealed_private_key.includes('PRIVATE'));
      assert.ok(!('d' in JSON.parse(r.public_jwk)));
    }
    const jobRow = await store.db.selectFrom('issuer_jobs').selectAll().executeTakeFirstOrThrow();
    assert.notEqual(jobRow.token_hash, job.jobToken);
    assert.match(jobRow.token_hash, /^[0-9a-f]{64}$/);

    const second = await buildIssuer({ store, clock, kek: storeKek, generateKey: keys, issuer: { algorithms: ['ES256', 'EdDSA'], idTokensOnDemand: true } });
    assert.equal(second.module.keys().find((k) => k.state === 'active' && k.alg === 'ES256')!.kid, kid, 'same key after restart');
    const jwks = createLocalJWKSet(second.module.jwks() as never);
    await jwtVerify(token, jwks, { issuer: ISSUER, audience: 'a', currentDate: new Date(clock.now() * 1000) });
    const live = await second.module.service.authenticateJob(`Bearer ${job.jobToken}`);
    assert.equal(live.jobId, '302');
    await second.close();

    const replica = await openReplica(store);
    try {
      await assert.rejects(buildIssuer({ store: replica, clock, kek: kekFromBytes(randomBytes(32)), generateKey: keys, issuer: { algorithms: ['ES256', 'EdDSA'] } }), /kek_mismatch|key-encryption key/);
    } finally {
      await replica.close();
    }
    await store.close();
  });

  test(`${kind}: two replicas share one keyring; rotation by one is seen by the other`, async () => {
    const store = await open();
    const clock = testClock();
    const keys = keySource();
    const storeKek = kekFromBytes(randomBytes(32));
    const a = await buildIssuer({ store, clock, kek: storeKek, generateKey: keys, issuer: { algorithms: ['EdDSA'] } });
    const replica = await openReplica(store);
    const b = await buildIssuer({ store: replica, clock, kek: storeKek, generateKey: keys, issuer: { algorithms: ['EdDSA'] } });
    assert.deepEqual(a.module.jwks(), b.module.jwks());
    await a.module.rotate('EdDSA');
    await b.module.tick();
    assert.equal(b.module.jwks().keys.length, 2);
    clock.advance(48 * 3600);
    await b.module.tick();
    await a.module.tick();
    assert.equal(a.module.keyring.signer('EdDSA')!.signer.kid, b.module.keyring.signer('EdDSA')!.signer.kid);
    assert.equal(a.module.keys().filter((k) => k.state === 'active').length, 1);
    await a.close();
    await b.close();
    await replica.close();
    await store.close();
  });
});
