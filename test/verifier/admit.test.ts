import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { admitJwks, hasRocaFingerprint, JwksShapeError } from '../../src/jose/admit-key.ts';
import { testKey } from './helpers.ts';

const rs = testKey('RS256', 'r1');
const es = testKey('ES256', 'e1');
const ALL = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const;

describe('JWK admission (V§6, A11, A12)', () => {
  test('A11: weak and unfit keys are refused, the good one stays', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const bad = [
      { ...small, kid: 'small', alg: 'RS256' },
      { ...rs.jwk, kid: 'e1', e: 'AQ' },
      { ...rs.jwk, kid: 'e3', e: 'Aw' },
      { ...rs.jwk, kid: 'even', e: 'AQAC' },
      { ...rs.jwk, kid: 'enc', use: 'enc' },
      { ...rs.jwk, kid: 'ops', key_ops: ['encrypt'] },
      { kty: 'oct', kid: 'oct', k: 'c2VjcmV0' },
      { ...rs.jwk, kid: 'alg-mismatch', alg: 'ES256' },
      { ...es.jwk, kid: 'crv-mismatch', alg: 'ES384' },
      { ...es.jwk, kid: 'off-curve', y: Buffer.alloc(32, 7).toString('base64url') },
      { ...rs.jwk, kid: 'private', d: 'AQAB' },
      { ...rs.jwk, kid: 'n-noncanonical', n: `${rs.jwk.n as string}=` },
      { ...es.jwk, kid: 'short-x', x: 'AAAA' },
      { kty: 'OKP', crv: 'X25519', kid: 'x25519', x: Buffer.alloc(32).toString('base64url') },
      { ...rs.jwk, kid: 'hs', alg: 'HS256' },
    ];
    const set = await admitJwks({ keys: [rs.jwk, ...bad] }, [...ALL]);
    assert.deepEqual(set.keys.map((k) => k.kid), ['r1']);
    for (const k of bad) assert.ok(set.rejectedKids.has(k.kid as string), `${k.kid as string} refused`);
    assert.match(set.rejectedKids.get('e1') as string, /exponent/);
    assert.match(set.rejectedKids.get('small') as string, /2048/);
  });

  test('duplicate kid refuses every key carrying it', async () => {
    const other = testKey('RS256', 'r1', 'other');
    const set = await admitJwks({ keys: [rs.jwk, other.jwk, es.jwk] }, [...ALL]);
    assert.deepEqual(set.keys.map((k) => k.kid), ['e1']);
    assert.match(set.rejectedKids.get('r1') as string, /more than once/);
  });

  test('A12: unknown kty (AKP) is skipped; the good key still verifies', async () => {
    const set = await admitJwks({ keys: [{ kty: 'AKP', kid: 'pq', alg: 'ML-DSA-44', pub: 'AAAA' }, rs.jwk] }, [...ALL]);
    assert.equal(set.keys.length, 1);
    assert.equal(set.rejections[0]?.disposition, 'skipped');
  });

  test('set shape: not an object, no keys array, more than 50 keys', async () => {
    for (const doc of [null, [], 'x', {}, { keys: {} }, { keys: Array.from({ length: 51 }, () => rs.jwk) }]) {
      await assert.rejects(admitJwks(doc, [...ALL]), JwksShapeError);
    }
  });

  test('keys without alg get every allowed algorithm that fits; an alg outside the allow-list refuses the key', async () => {
    const { alg: _a, ...noAlg } = rs.jwk;
    const set = await admitJwks({ keys: [noAlg] }, ['RS256', 'PS256', 'ES256']);
    assert.deepEqual([...(set.keys[0]?.verifiers.keys() ?? [])], ['RS256', 'PS256']);
    const refused = await admitJwks({ keys: [{ ...rs.jwk, alg: 'RS512' }] }, ['RS256']);
    assert.equal(refused.keys.length, 0);
  });

  test('unchanged keys are reused across refreshes (no re-import)', async () => {
    const first = await admitJwks({ keys: [rs.jwk] }, ['RS256']);
    const second = await admitJwks({ keys: [rs.jwk, es.jwk] }, ['RS256', 'ES256'], { previous: first });
    assert.equal(second.keys[0], first.keys[0]);
  });

  test('ROCA fingerprint: generated keys are clean', () => {
    for (let i = 0; i < 3; i++) {
      const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
      assert.equal(hasRocaFingerprint(BigInt(`0x${Buffer.from(jwk.n as string, 'base64url').toString('hex')}`)), false);
    }
  });
});
