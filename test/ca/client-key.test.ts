import 'reflect-metadata';
import assert from 'node:assert/strict';
import { checkPrimeSync, createPublicKey, ECDH, type KeyObject, generateKeyPairSync, generatePrimeSync, sign as cryptoSign, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import * as x509 from '@peculiar/x509';
import {
  assertAlgorithmPermitted,
  assertStrongKey,
  ClientKeyError,
  DEFAULT_CLIENT_SIGNING_ALGORITHMS,
  defaultHash,
  fermatFactorable,
  parseCsr,
  parsePublicKey,
  parsePublicKeyWithSpki,
  parsePublicKeyWithSpkiAsync,
  verifyProof,
  verifyProofAsync,
  type ClientHash,
} from '../../src/ca/client-key.ts';
import { offloadSignatureWork } from '../../src/ca/offload.ts';

x509.cryptoProvider.set(webcrypto as never);

const insecure = (fn: () => void) => assert.throws(fn, (e: unknown) => e instanceof ClientKeyError && e.code === 'public_key_insecure');

function rsaFromModulus(n: bigint, e = 65537n) {
  const b64 = (v: bigint) => {
    let hex = v.toString(16);
    if (hex.length % 2) hex = '0' + hex;
    return Buffer.from(hex, 'hex').toString('base64url');
  };
  return createPublicKey({ key: { kty: 'RSA', n: b64(n), e: b64(e) }, format: 'jwk' });
}

describe('public key parsing', () => {
  test('PEM SPKI, DER, base64 DER; garbage is refused', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const der = publicKey.export({ type: 'spki', format: 'der' });
    assert.equal(parsePublicKey(pem).asymmetricKeyType, 'ec');
    assert.equal(parsePublicKey(new Uint8Array(der)).asymmetricKeyType, 'ec');
    assert.equal(parsePublicKey(der.toString('base64')).asymmetricKeyType, 'ec');
    for (const bad of ['', 'hello', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', undefined]) {
      assert.throws(() => parsePublicKey(bad), (e: unknown) => e instanceof ClientKeyError && e.code === 'public_key_invalid');
    }
    assert.throws(() => parsePublicKey('A'.repeat(20000)), ClientKeyError);
  });

  test('the SPKI kept for the certificate is the canonical encoding (fast path and re-encode agree)', () => {
    for (const c of ['P-256', 'P-384', 'P-521']) {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: c });
      const der = publicKey.export({ type: 'spki', format: 'der' });
      const parsed = parsePublicKeyWithSpki(publicKey.export({ type: 'spki', format: 'pem' }) as string);
      assert.deepEqual(parsed.spki, der);
      assert.deepEqual(parsed.key.export({ type: 'spki', format: 'der' }), der);
      const off = Buffer.from(der);
      off[off.length - 1]! ^= 1;
      assert.throws(() => parsePublicKeyWithSpki(new Uint8Array(off)), ClientKeyError, 'off-curve point');
    }
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const compressed = ECDH.convertKey(der.subarray(26), 'prime256v1', undefined, undefined, 'compressed') as Buffer;
    const compressedSpki = Buffer.concat([Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'), compressed]);
    assert.deepEqual(parsePublicKeyWithSpki(new Uint8Array(compressedSpki)).spki, der, 'a compressed point is re-encoded uncompressed');
  });
});

describe('public key parsing on the request path (parsePublicKeyWithSpkiAsync)', () => {
  const invalid = (e: unknown) => e instanceof ClientKeyError && e.code === 'public_key_invalid';

  test('NIST keys through the WebCrypto raw import: same canonical SPKI, same key, proofs verify', async () => {
    const msg = Buffer.from('project_path:foo/bar:ref_type:branch:ref:main');
    for (const [c, hash] of [['P-256', 'sha256'], ['P-384', 'sha384'], ['P-521', 'sha512']] as const) {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: c });
      const der = publicKey.export({ type: 'spki', format: 'der' });
      for (const input of [publicKey.export({ type: 'spki', format: 'pem' }) as string, new Uint8Array(der), der.toString('base64')]) {
        const parsed = await parsePublicKeyWithSpkiAsync(input);
        assert.deepEqual(parsed.spki, der);
        assert.deepEqual(parsed.key.export({ type: 'spki', format: 'der' }), der);
        assert.equal(parsed.key.type, 'public');
        assert.deepEqual(parsed.key.asymmetricKeyDetails, publicKey.asymmetricKeyDetails);
        assertStrongKey(parsed.key);
        assert.equal(defaultHash(parsed.key), hash);
        const sig = cryptoSign(hash, msg, privateKey);
        assert.equal(await verifyProofAsync(parsed.key, hash, msg, sig), true);
        assert.equal(await verifyProofAsync(parsed.key, hash, Buffer.from('other'), sig), false);
      }
    }
  });

  test('off-curve points, an unreduced coordinate (x = p) and (0, 0) are refused', async () => {
    for (const c of ['P-256', 'P-384', 'P-521']) {
      const der = generateKeyPairSync('ec', { namedCurve: c }).publicKey.export({ type: 'spki', format: 'der' });
      const off = Buffer.from(der);
      off[off.length - 1]! ^= 1;
      await assert.rejects(parsePublicKeyWithSpkiAsync(new Uint8Array(off)), invalid, `${c} off-curve point`);
    }
    // P-256: x = p (not reduced), and x = y = 0 (no such point; Go encodes infinity this way).
    const prefix = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d03010703420004', 'hex');
    const p = Buffer.from('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff', 'hex');
    const y = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).subarray(59);
    await assert.rejects(parsePublicKeyWithSpkiAsync(new Uint8Array(Buffer.concat([prefix, p, y]))), invalid, 'x = p');
    await assert.rejects(parsePublicKeyWithSpkiAsync(new Uint8Array(Buffer.concat([prefix, Buffer.alloc(64)]))), invalid, 'x = y = 0');
  });

  test('other keys and encodings take the synchronous path: compressed points re-encoded, RSA, Ed25519, secp256k1 (then refused as weak); garbage refused', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const compressed = ECDH.convertKey(der.subarray(26), 'prime256v1', undefined, undefined, 'compressed') as Buffer;
    const compressedSpki = Buffer.concat([Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'), compressed]);
    assert.deepEqual((await parsePublicKeyWithSpkiAsync(new Uint8Array(compressedSpki))).spki, der);
    for (const pair of [generateKeyPairSync('rsa', { modulusLength: 2048 }), generateKeyPairSync('ed25519')]) {
      const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
      const parsed = await parsePublicKeyWithSpkiAsync(pair.publicKey.export({ type: 'spki', format: 'pem' }) as string);
      assert.deepEqual(parsed.spki, spki);
      assert.equal(parsed.key.asymmetricKeyType, pair.publicKey.asymmetricKeyType);
    }
    const k1 = await parsePublicKeyWithSpkiAsync(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ type: 'spki', format: 'pem' }) as string);
    insecure(() => assertStrongKey(k1.key));
    for (const bad of ['', 'hello', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', undefined, 'A'.repeat(20000)]) {
      await assert.rejects(parsePublicKeyWithSpkiAsync(bad), invalid);
    }
  });

  test('thread-pool offload only for slow operations: P-384/P-521 and RSA signing', () => {
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    assert.equal(offloadSignatureWork(p256.privateKey), false);
    assert.equal(offloadSignatureWork(p256.publicKey), false);
    for (const c of ['P-384', 'P-521']) assert.equal(offloadSignatureWork(generateKeyPairSync('ec', { namedCurve: c }).publicKey), true);
    assert.equal(offloadSignatureWork(rsa.privateKey), true);
    assert.equal(offloadSignatureWork(rsa.publicKey), false);
    assert.equal(offloadSignatureWork(generateKeyPairSync('ed25519').publicKey), false);
  });
});

describe('weak-key rejection (Fulcio ValidatePubKey + goodkey)', () => {
  test('accepted: ECDSA P-256/384/521, Ed25519, RSA 2048/3072', () => {
    for (const c of ['P-256', 'P-384', 'P-521']) assertStrongKey(generateKeyPairSync('ec', { namedCurve: c }).publicKey);
    assertStrongKey(generateKeyPairSync('ed25519').publicKey);
    assertStrongKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);
  });

  test('refused: secp256k1, Ed448, X25519, RSA 1024 and 2050 bits, e = 3', () => {
    insecure(() => assertStrongKey(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey));
    insecure(() => assertStrongKey(generateKeyPairSync('ed448').publicKey));
    insecure(() => assertStrongKey(generateKeyPairSync('x25519').publicKey));
    insecure(() => assertStrongKey(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey));
    insecure(() => assertStrongKey(generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).publicKey));
  });

  test('refused: a 2048-bit modulus with a small prime factor', () => {
    const q = generatePrimeSync(2046, { bigint: true });
    const n = 3n * q;
    assert.equal(n.toString(2).length, 2048);
    insecure(() => assertStrongKey(rsaFromModulus(n)));
  });

  test('refused: a Fermat-factorable modulus (p, q adjacent primes)', () => {
    const p = generatePrimeSync(1024, { bigint: true });
    let q = p + 2n;
    while (!checkPrimeSync(q)) q += 2n;
    const n = p * q;
    assert.equal(fermatFactorable(n), true);
    assert.equal(fermatFactorable(generatePrimeSync(1024, { bigint: true }) * generatePrimeSync(1024, { bigint: true })), false);
    if (n.toString(2).length === 2048) insecure(() => assertStrongKey(rsaFromModulus(n)));
  });

  test('refused: the Wycheproof ROCA key (json_web_key_test tcId 7)', () => {
    const file = JSON.parse(readFileSync('/work/shared/vectors/wycheproof/testvectors_v1/json_web_key_test.json', 'utf8')) as {
      testGroups: Array<{ comment: string; private?: { keys: Array<{ n: string; e: string }> } }>;
    };
    const group = file.testGroups.find((g) => g.comment === 'jws_rsa_roca_key')!;
    const { n, e } = group.private!.keys[0]!;
    const key = createPublicKey({ key: { kty: 'RSA', n, e }, format: 'jwk' });
    insecure(() => assertStrongKey(key));
  });
});

describe('proof of possession with each key type\'s default hash', () => {
  const msg = Buffer.from('project_path:foo/bar:ref_type:branch:ref:main');
  const cases: Array<[string, { privateKey: KeyObject; publicKey: KeyObject }, ClientHash]> = [
    ['P-256', generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'sha256'],
    ['P-384', generateKeyPairSync('ec', { namedCurve: 'P-384' }), 'sha384'],
    ['P-521', generateKeyPairSync('ec', { namedCurve: 'P-521' }), 'sha512'],
    ['RSA', generateKeyPairSync('rsa', { modulusLength: 2048 }), 'sha256'],
    ['Ed25519', generateKeyPairSync('ed25519'), null],
  ];
  for (const [name, pair, hash] of cases) {
    test(`${name}: ${hash ?? 'pure'}; wrong message, wrong hash and empty signature fail`, () => {
      assert.equal(defaultHash(pair.publicKey), hash);
      const sig = cryptoSign(hash, msg, pair.privateKey);
      assert.equal(verifyProof(pair.publicKey, hash, msg, sig), true);
      assert.equal(verifyProof(pair.publicKey, hash, Buffer.from('other'), sig), false);
      assert.equal(verifyProof(pair.publicKey, hash, msg, new Uint8Array()), false);
      if (hash !== null && hash !== 'sha512') assert.equal(verifyProof(pair.publicKey, hash, msg, cryptoSign('sha512', msg, pair.privateKey)), false);
      assertAlgorithmPermitted(pair.publicKey, hash, DEFAULT_CLIENT_SIGNING_ALGORITHMS);
    });
  }

  test('ECDSA proof in IEEE P1363 form is refused (DER only, as Go VerifyASN1)', () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const raw = cryptoSign('sha256', msg, { key: pair.privateKey, dsaEncoding: 'ieee-p1363' });
    assert.equal(verifyProof(pair.publicKey, 'sha256', msg, raw), false);
  });
});

describe('CSRs and the allow-list', () => {
  async function csr(alg: { name: string; namedCurve?: string }, signing: { name: string; hash?: string }) {
    const keys = (await webcrypto.subtle.generateKey(alg as never, true, ['sign', 'verify'])) as never;
    const req = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=ignored, O=anything', keys, signingAlgorithm: signing });
    return req;
  }

  test('ECDSA P-256/SHA-256 CSR: key, hash and self-signature; tampering breaks it', async () => {
    const req = await csr({ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' });
    const parsed = parseCsr(Buffer.from(req.toString('pem')));
    assert.equal(parsed.hash, 'sha256');
    assert.equal(parsed.verify(), true);
    assert.equal(parseCsr(Buffer.from(req.rawData)).verify(), true, 'DER is accepted too');
    const der = Buffer.from(req.rawData);
    der[der.length - 5]! ^= 0x40;
    assert.equal(parseCsr(der).verify(), false);
  });

  test('Ed25519 CSR is verified with pure Ed25519', async () => {
    const req = await csr({ name: 'Ed25519' }, { name: 'Ed25519' });
    const parsed = parseCsr(Buffer.from(req.toString('pem')));
    assert.equal(parsed.hash, null);
    assert.equal(parsed.verify(), true);
    assertAlgorithmPermitted(parsed.key, parsed.hash, DEFAULT_CLIENT_SIGNING_ALGORITHMS);
  });

  test('garbage is csr_invalid', () => {
    assert.throws(() => parseCsr(Buffer.from('nope')), (e: unknown) => e instanceof ClientKeyError && e.code === 'csr_invalid');
    assert.throws(() => parseCsr(new Uint8Array()), ClientKeyError);
  });

  test("pairs outside the list give Fulcio's message with Go type and hash names", () => {
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    assert.throws(() => assertAlgorithmPermitted(p256, 'sha384', DEFAULT_CLIENT_SIGNING_ALGORITHMS), { message: 'signing algorithm not permitted: *ecdsa.PublicKey, SHA-384' });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    assert.throws(() => assertAlgorithmPermitted(rsa, 'sha512', DEFAULT_CLIENT_SIGNING_ALGORITHMS), { message: 'signing algorithm not permitted: *rsa.PublicKey, SHA-512' });
    assert.throws(() => assertAlgorithmPermitted(p256, 'sha256', ['ed25519']), { message: 'signing algorithm not permitted: *ecdsa.PublicKey, SHA-256' });
  });
});
