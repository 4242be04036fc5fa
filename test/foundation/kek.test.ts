import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KekError, kekFromBytes, loadKek, parseKekText } from '../../src/jose/kek.ts';

test('seal/open round-trips and binds the context', () => {
  const kek = kekFromBytes(randomBytes(32));
  const sealed = kek.seal(Buffer.from('private key bytes'), 'issuer-key:abc');
  assert.equal(kek.open(sealed, 'issuer-key:abc').toString(), 'private key bytes');
  assert.throws(() => kek.open(sealed, 'issuer-key:other'), (e: unknown) => e instanceof KekError && e.code === 'sealed_tampered');
});

test('tampering and a wrong KEK are detected with distinct codes', () => {
  const kek = kekFromBytes(randomBytes(32));
  const sealed = kek.seal(Buffer.from('x'), 'c');
  const parts = sealed.split('.');
  parts[4] = Buffer.from('y').toString('base64url');
  assert.throws(() => kek.open(parts.join('.'), 'c'), (e: unknown) => e instanceof KekError && e.code === 'sealed_tampered');
  const other = kekFromBytes(randomBytes(32));
  assert.throws(() => other.open(sealed, 'c'), (e: unknown) => e instanceof KekError && e.code === 'kek_mismatch');
  assert.throws(() => kek.open('garbage', 'c'), (e: unknown) => e instanceof KekError && e.code === 'sealed_malformed');
});

test('KEK text: base64 or hex, exactly 32 bytes', () => {
  const key = randomBytes(32);
  assert.equal(parseKekText(key.toString('base64')).id, parseKekText(key.toString('hex')).id);
  assert.throws(() => parseKekText(randomBytes(16).toString('base64')), /32 bytes/);
});

test('the laptop default is generated once, mode 0600, then reused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-kek-'));
  const file = join(dir, 'sub', 'kek');
  const first = loadKek({ defaultFile: file });
  assert.equal(first.origin, 'generated');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const second = loadKek({ defaultFile: file });
  assert.equal(second.origin, 'default-file');
  assert.equal(second.kek.id, first.kek.id);
  const fromEnv = loadKek({ envValue: readFileSync(file, 'utf8'), defaultFile: join(dir, 'other') });
  assert.equal(fromEnv.origin, 'env');
  assert.equal(fromEnv.kek.id, first.kek.id);
});
