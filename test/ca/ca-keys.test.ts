import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CaKeyError, loadCaKeysFromPem, loadOrCreateCaKeys, rotateIntermediate, type GeneratedCaOptions } from '../../src/ca/ca-keys.ts';
import { issueLeaf, pemToDerList, toPem } from '../../src/ca/certificate.ts';
import { kekFromBytes } from '../../src/jose/kek.ts';
import { forEachStore, openReplica } from '../helpers/store.ts';
import { createTestCaChain } from './chain.ts';

const now = Math.floor(Date.now() / 1000);

function options(db: GeneratedCaOptions['db'], kek = kekFromBytes(randomBytes(32)), clock = () => now): GeneratedCaOptions {
  return {
    db,
    kek,
    clock,
    algorithm: 'P-384',
    organization: 'ci-oidc',
    commonName: 'test CA',
    rootValiditySeconds: 10 * 365 * 86400,
    intermediateValiditySeconds: 365 * 86400,
    rotateBeforeSeconds: 30 * 86400,
  };
}

const cert = (pem: string) => new X509Certificate(pemToDerList(pem)[0]!);

forEachStore((kind, open) => {
  test('first start generates a P-384 root and intermediate, sealed; the next start loads the same ones', async () => {
    const store = await open();
    try {
      const opts = options(store.db);
      const first = await loadOrCreateCaKeys(opts);
      assert.equal(first.source, 'generated');
      const root = cert(first.rootPem);
      const inter = cert(first.chainPem[0]!);
      assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
      assert.equal(inter.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
      assert.ok(inter.checkIssued(root) && inter.verify(root.publicKey));
      const rows = await store.db.selectFrom('ca_keys').selectAll().execute();
      assert.equal(rows.length, 2);
      for (const r of rows) assert.ok(r.sealed_private_key.startsWith('v1.') && !r.sealed_private_key.includes('PRIVATE'));
      const again = await loadOrCreateCaKeys(opts);
      assert.equal(again.source, 'store');
      assert.equal(again.rootPem, first.rootPem);
      assert.equal(again.activeIntermediateId, first.activeIntermediateId);
      await assert.rejects(loadOrCreateCaKeys({ ...opts, kek: kekFromBytes(randomBytes(32)) }), /key-encryption key/);
    } finally {
      await store.close();
    }
  });

  test('two replicas starting together converge on one root', { skip: kind === 'sqlite' ? 'two SQLite connections in one process block each other; replicas share PostgreSQL' : false }, async () => {
    const store = await open();
    const replica = await openReplica(store);
    try {
      const kek = kekFromBytes(randomBytes(32));
      const [a, b] = await Promise.all([loadOrCreateCaKeys(options(store.db, kek)), loadOrCreateCaKeys(options(replica.db, kek))]);
      assert.equal(a.rootPem, b.rootPem);
      const roots = await store.db.selectFrom('ca_keys').select('id').where('kind', '=', 'root').execute();
      assert.equal(roots.length, 1);
    } finally {
      await replica.close();
      await store.close();
    }
  });

  test('rotation: a new active intermediate, the old one stays in the trust bundle; near-expiry rotates at start', async () => {
    const store = await open();
    try {
      const opts = options(store.db);
      const first = await loadOrCreateCaKeys(opts);
      const rotated = await rotateIntermediate(opts);
      assert.notEqual(rotated.activeIntermediateId, first.activeIntermediateId);
      assert.equal(rotated.trustBundle.length, 2);
      assert.equal(rotated.trustBundle[0]![0], rotated.chainPem[0], 'newest chain first');
      assert.ok(rotated.trustBundle.some((c) => c[0] === first.chainPem[0]));
      const states = await store.db.selectFrom('ca_keys').select(['id', 'state']).where('kind', '=', 'intermediate').execute();
      assert.equal(states.filter((s) => s.state === 'active').length, 1);
      const client = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const leaf = new X509Certificate(
        issueLeaf(rotated.issuing, { spki: client.publicKey.export({ type: 'spki', format: 'der' }), notBefore: now, notAfter: now + 600, sanUri: 'https://x.test/a', extensions: [] }),
      );
      assert.ok(leaf.checkIssued(cert(rotated.chainPem[0]!)));
      const later = () => now + 340 * 86400;
      const restarted = await loadOrCreateCaKeys({ ...opts, clock: later });
      assert.notEqual(restarted.activeIntermediateId, rotated.activeIntermediateId);
    } finally {
      await store.close();
    }
  });
});

describe('CA keys from PEM files', () => {
  test('loads a root, an intermediate chain and its key; refuses a mismatched key or a broken chain', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-pem-'));
    try {
      const { rootDer, interDer, inter } = createTestCaChain({ now, rootCurve: 'P-384', interCurve: 'P-256', names: { root: 'ext root', intermediate: 'ext intermediate' } });
      const f = (name: string, text: string) => {
        writeFileSync(join(dir, name), text);
        return join(dir, name);
      };
      const rootFile = f('root.pem', toPem(rootDer));
      const chainFile = f('chain.pem', toPem(interDer));
      const keyFile = f('key.pem', inter.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
      const m = loadCaKeysFromPem({ rootCertificateFile: rootFile, chainFile, keyFile, clock: () => now });
      assert.equal(m.source, 'pem');
      assert.equal(m.chainPem.length, 2);
      assert.equal(m.issuing.hash, 'sha256');
      const wrongKey = f('wrong.pem', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
      assert.throws(() => loadCaKeysFromPem({ rootCertificateFile: rootFile, chainFile, keyFile: wrongKey, clock: () => now }), CaKeyError);
      assert.throws(() => loadCaKeysFromPem({ rootCertificateFile: chainFile, chainFile, keyFile, clock: () => now }), /not signed by the next one/);
      assert.throws(() => loadCaKeysFromPem({ rootCertificateFile: rootFile, chainFile, keyFile, clock: () => now + 7200 }), /expired/);
      assert.throws(() => loadCaKeysFromPem({ rootCertificateFile: join(dir, 'missing.pem'), chainFile, keyFile, clock: () => now }), /cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
