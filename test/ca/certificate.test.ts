import 'reflect-metadata';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import * as x509 from '@peculiar/x509';
import { encodeLeafTbs, encodeLeafTbsAsn1, issueLeaf, issueLeafAsync, issuingCa, pemToDerList, randomSerial, toPem, type IssuingCa, type SigstoreExtension } from '../../src/ca/certificate.ts';
import { sigstoreExtensions } from '../../src/ca/bundle.ts';
import { OID } from '../../src/ca/oids.ts';
import { createTestCaChain } from './chain.ts';

x509.cryptoProvider.set(webcrypto as never);

function makeCa(curve: 'P-256' | 'P-384') {
  const now = Math.floor(Date.now() / 1000);
  const { rootDer, interDer, inter } = createTestCaChain({ now, rootCurve: curve, names: { root: 'test root', intermediate: 'test intermediate' }, organization: 'ci-oidc' });
  return { rootDer, interDer, issuing: issuingCa(interDer, inter.privateKey), now };
}

const EXTS: SigstoreExtension[] = [
  { oid: OID.issuer, raw: true, value: 'https://gitlab.com' },
  { oid: OID.issuerV2, raw: false, value: 'https://gitlab.com' },
  { oid: OID.buildSignerUri, raw: false, value: 'https://gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main' },
  { oid: OID.tokenSubject, raw: false, value: 'project_path:foo/bar:ref_type:branch:ref:main' },
];

describe('leaf encoder', () => {
  let ca: ReturnType<typeof makeCa>;
  let issuing: IssuingCa;
  before(() => {
    ca = makeCa('P-384');
    issuing = ca.issuing;
  });

  test('the hot-path DER equals @peculiar/asn1-x509 serialisation byte for byte (property)', () => {
    const keys = [
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
      generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey,
      generateKeyPairSync('ed25519').publicKey,
      generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
    ].map((k) => k.export({ type: 'spki', format: 'der' }));
    const ext = fc.record({ n: fc.integer({ min: 1, max: 24 }), value: fc.string({ minLength: 1, maxLength: 300, unit: 'binary' }) });
    fc.assert(
      fc.property(
        fc.constantFrom(...keys),
        fc.array(ext, { maxLength: 24 }),
        fc.stringMatching(/^https:\/\/[a-z]{1,20}\.test\/[A-Za-z0-9/._~-]{0,200}$/),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.integer({ min: 0, max: 4102444800 }),
        (spki, exts, san, serial, nb) => {
          serial[0] = (serial[0]! & 0x7f) | 1;
          const spec = {
            spki,
            notBefore: nb,
            notAfter: nb + 600,
            sanUri: san,
            serial,
            extensions: exts.map((e) => ({ oid: `1.3.6.1.4.1.57264.1.${e.n}`, raw: e.n <= 6, value: e.value })),
          };
          assert.deepEqual(encodeLeafTbs(issuing, spec), encodeLeafTbsAsn1(issuing, spec));
        },
      ),
      { numRuns: 150 },
    );
  });

  test('profile: v3, 20-octet positive serial, empty subject, one critical URI SAN, KU, EKU, SKI/AKI', async () => {
    const client = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = issueLeaf(issuing, {
      spki: client.publicKey.export({ type: 'spki', format: 'der' }),
      notBefore: ca.now,
      notAfter: ca.now + 600,
      sanUri: 'https://gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main',
      extensions: EXTS,
    });
    const cert = new x509.X509Certificate(der);
    assert.equal(cert.subject, '');
    assert.equal(cert.serialNumber.length, 40);
    assert.ok(parseInt(cert.serialNumber.slice(0, 2), 16) < 0x80);
    assert.equal((cert.notAfter.getTime() - cert.notBefore.getTime()) / 1000, 600);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    assert.equal(san.critical, true);
    assert.deepEqual(san.names.items.map((n) => [n.type, n.value]), [['url', 'https://gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main']]);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    assert.equal(ku.critical, true);
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature);
    assert.deepEqual([...cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages], ['1.3.6.1.5.5.7.3.3']);
    assert.equal(cert.getExtension(x509.BasicConstraintsExtension), null);
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)!;
    assert.equal(ski.keyId, await (await x509.SubjectKeyIdentifierExtension.create(await cert.publicKey.export())).keyId);
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)!;
    const inter = new x509.X509Certificate(ca.interDer);
    assert.equal(aki.keyId, inter.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    for (const e of cert.extensions.filter((e) => e.type.startsWith('1.3.6.1.4.1.57264.'))) assert.equal(e.critical, false);
    assert.equal((cert.signatureAlgorithm as unknown as { name: string }).name, 'ECDSA');
    assert.ok(await cert.verify({ publicKey: inter.publicKey }));
    const exts = sigstoreExtensions(der);
    assert.equal(exts.get(OID.issuer), 'https://gitlab.com');
    assert.equal(exts.get(OID.issuerV2), 'https://gitlab.com');
    assert.equal(exts.get(OID.tokenSubject), 'project_path:foo/bar:ref_type:branch:ref:main');
  });

  test('serials: 20 octets, positive, distinct across several refills of the random pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const s = randomSerial();
      assert.equal(s.length, 20);
      assert.ok(s[0]! >= 1 && s[0]! < 0x80);
      seen.add(s.toString('hex'));
    }
    assert.equal(seen.size, 2000);
  });

  test('issueLeafAsync (inline for a P-256 CA, thread pool for P-384) gives leaves that verify under the CA', async () => {
    const client = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (const c of [ca, makeCa('P-256')]) {
      const der = await issueLeafAsync(c.issuing, {
        spki: client.publicKey.export({ type: 'spki', format: 'der' }),
        notBefore: c.now,
        notAfter: c.now + 600,
        sanUri: 'https://gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main',
        extensions: EXTS,
      });
      assert.ok(new X509Certificate(der).verify(new X509Certificate(c.interDer).publicKey));
    }
    await assert.rejects(async () => issueLeafAsync(issuing, { spki: client.publicKey.export({ type: 'spki', format: 'der' }), notBefore: 0, notAfter: 600, sanUri: 'https://a.test/ b', extensions: [] }));
  });

  test('PEM: 64-character lines that decode back to the DER, for every length mod 48', () => {
    for (let n = 1; n <= 200; n++) {
      const der = Buffer.alloc(n, n);
      const backing = Buffer.concat([Buffer.alloc(3), der]);
      const pem = toPem(new Uint8Array(backing.buffer, backing.byteOffset + 3, n));
      const lines = pem.split('\n');
      assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
      assert.equal(lines.at(-1), '-----END CERTIFICATE-----');
      for (const l of lines.slice(1, -2)) assert.equal(l.length, 64);
      assert.ok(lines.at(-2)!.length > 0 && lines.at(-2)!.length <= 64);
      assert.deepEqual(pemToDerList(pem), [der]);
    }
  });

  test('CA certificates: intermediate CA:TRUE pathlen:0 with EKU codeSigning; root without EKU', () => {
    const root = new x509.X509Certificate(ca.rootDer);
    const inter = new x509.X509Certificate(ca.interDer);
    const rbc = root.getExtension(x509.BasicConstraintsExtension)!;
    assert.equal(rbc.ca, true);
    assert.equal(rbc.pathLength, undefined);
    assert.equal(root.getExtension(x509.ExtendedKeyUsageExtension), null);
    const ibc = inter.getExtension(x509.BasicConstraintsExtension)!;
    assert.equal(ibc.ca, true);
    assert.equal(ibc.pathLength, 0);
    assert.deepEqual([...inter.getExtension(x509.ExtendedKeyUsageExtension)!.usages], ['1.3.6.1.5.5.7.3.3']);
    assert.ok(inter.getExtension(x509.SubjectKeyIdentifierExtension));
    assert.ok(new X509Certificate(ca.interDer).checkIssued(new X509Certificate(ca.rootDer)));
  });
});

describe('openssl accepts the certificates', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ci-oidc-ca-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const curve of ['P-384', 'P-256'] as const) {
    test(`openssl x509 -text and openssl verify (CA ${curve})`, () => {
      const ca = makeCa(curve);
      const client = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const leaf = issueLeaf(ca.issuing, {
        spki: client.publicKey.export({ type: 'spki', format: 'der' }),
        notBefore: ca.now,
        notAfter: ca.now + 600,
        sanUri: 'https://github.com/o/r/.github/workflows/w.yml@refs/heads/main',
        extensions: [...EXTS, { oid: OID.githubWorkflowName, raw: true, value: 'Build and test' }],
      });
      writeFileSync(join(dir, 'root.pem'), toPem(ca.rootDer) + '\n');
      writeFileSync(join(dir, 'inter.pem'), toPem(ca.interDer) + '\n');
      writeFileSync(join(dir, 'leaf.pem'), toPem(leaf) + '\n');
      const text = execFileSync('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text'], { encoding: 'utf8' });
      assert.match(text, /X509v3 Subject Alternative Name: critical\s+URI:https:\/\/github\.com\/o\/r\/\.github\/workflows\/w\.yml@refs\/heads\/main/);
      assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature/);
      assert.match(text, /X509v3 Extended Key Usage:\s*\n\s+Code Signing/);
      assert.match(text, /1\.3\.6\.1\.4\.1\.57264\.1\.1:\s*\n\s+https:\/\/gitlab\.com/);
      assert.match(text, /Subject: *\n/);
      const out = execFileSync(
        'openssl',
        ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'inter.pem'), '-purpose', 'any', '-x509_strict', join(dir, 'leaf.pem')],
        { encoding: 'utf8' },
      );
      assert.match(out, /leaf\.pem: OK/);
      const intOut = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-x509_strict', join(dir, 'inter.pem')], { encoding: 'utf8' });
      assert.match(intOut, /OK/);
    });
  }
});
