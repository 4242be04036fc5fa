import 'reflect-metadata';
import { createHash, generateKeyPairSync, randomBytes, sign as cryptoSign, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { CaAuthenticator } from '../src/ca/authenticate.ts';
import type { CaKeyMaterial } from '../src/ca/ca-keys.ts';
import { encodeLeafTbsAsn1, issuingCa, signTbs, toPem } from '../src/ca/certificate.ts';
import { compileIssuerConfig } from '../src/ca/issuer-config.ts';
import { builtinMetadata, legacyPrincipals } from '../src/ca/module.ts';
import { CaService, type SigningRequest } from '../src/ca/service.ts';
import { createVerifier } from '../src/verifier/verifier.ts';
import type { BenchHarness } from './harness.ts';
import { GITLAB_F2 } from '../test/helpers/fixtures.ts';
import { createTestCaChain } from '../test/ca/chain.ts';

/**
 * Certificates per second through the whole issuance path in process (token verify + proof of possession
 * + template evaluation + build + sign), beside raw ECDSA signing, the asn1-x509 reference encoder and
 * @peculiar/x509's generator, all in the same run.
 */

const { user_id: _u, user_login: _l, user_email: _e, user_access_level: _a, jti: _j, ...F2 } = GITLAB_F2;

function caMaterial(curve: 'P-256' | 'P-384', now: number): CaKeyMaterial {
  const { rootDer, interDer, inter } = createTestCaChain({ now, rootCurve: curve, names: { root: 'bench root', intermediate: 'bench intermediate' }, interLifetime: 86400 });
  const chainPem = [toPem(interDer), toPem(rootDer)];
  return { issuing: issuingCa(interDer, inter.privateKey), chainPem, trustBundle: [chainPem], rootPem: chainPem[1]!, source: 'generated', activeIntermediateId: 'bench' };
}

export default async function (h: BenchHarness): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const issuerKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...issuerKey.publicKey.export({ format: 'jwk' }), kid: 'bench', use: 'sig', alg: 'RS256' };
  const config = compileIssuerConfig(
    { OIDCIssuers: { 'https://gitlab.com': { ClientID: 'sigstore', Type: 'ci-provider', CIProvider: 'gitlab-pipeline', StaticJWKS: { keys: [jwk] } } } },
    builtinMetadata(),
  );
  const verifiers: Array<{ close(): Promise<void> }> = [];
  const authenticator = new CaAuthenticator({
    config,
    makeVerifier: (issuers) => {
      const v = createVerifier({ issuers });
      verifiers.push(v);
      return v;
    },
  });

  // A pool of distinct requests: tokens with distinct jti, each with its own P-256 key and proof.
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const requests: SigningRequest[] = Array.from({ length: 64 }, () => {
    const input = `${enc({ alg: 'RS256', typ: 'JWT', kid: 'bench' })}.${enc({ ...F2, aud: 'sigstore', iat: now, nbf: now - 5, exp: now + 3600, jti: randomBytes(16).toString('hex') })}`;
    const token = `${input}.${cryptoSign('sha256', Buffer.from(input), issuerKey.privateKey).toString('base64url')}`;
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return {
      token,
      publicKey: key.publicKey.export({ type: 'spki', format: 'pem' }) as string,
      proofOfPossession: cryptoSign('sha256', Buffer.from(F2.sub), key.privateKey),
    };
  });

  const service = (curve: 'P-256' | 'P-384') => {
    const keys = caMaterial(curve, now);
    return new CaService({
      authenticator,
      keys: () => keys,
      metadata: config.metadata,
      legacy: legacyPrincipals(),
      clock: () => now,
      clientSigningAlgorithms: ['ecdsa-sha2-256-nistp256'],
      lenientClaims: false,
    });
  };
  const s256 = service('P-256');
  const s384 = service('P-384');
  // Sanity: both issue.
  await s256.issue(requests[0]!);
  await s384.issue(requests[0]!);

  let i = 0;
  // Process CPU per certificate (main thread and thread pool), warm-up included.
  const withCpu = async (name: string, svc: CaService, concurrency: number) => {
    let calls = 0;
    const start = process.cpuUsage();
    const result = await h.measureAsync(
      name,
      () => {
        calls++;
        return svc.issue(requests[i++ & 63]!);
      },
      { concurrency },
    );
    const used = process.cpuUsage(start);
    return { result, cpuMicros: (used.user + used.system) / calls };
  };
  const e2e256 = await withCpu('issue (P-256 CA)', s256, 16);
  const e2e384 = await withCpu('issue (P-384 CA)', s384, 16);
  const e2eSerial = await withCpu('issue (P-256 CA), one at a time', s256, 1);
  const cpuNote = (m: { cpuMicros: number }) => `${m.cpuMicros.toFixed(0)} µs process CPU per certificate`;
  const target = 3000;

  const tbs = randomBytes(700);
  const k256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const k384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const raw256 = await h.measure('raw ECDSA P-256 sign', () => cryptoSign('sha256', tbs, k256));
  const raw384 = await h.measure('raw ECDSA P-384 sign', () => cryptoSign('sha384', tbs, k384), { batch: 10 });

  // The same leaf through the @peculiar/asn1-x509 reference encoder + node:crypto signing.
  const ca256 = caMaterial('P-256', now).issuing;
  const client = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spec = {
    spki: client.publicKey.export({ type: 'spki', format: 'der' }),
    notBefore: now,
    notAfter: now + 600,
    sanUri: 'https://gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main',
    extensions: Array.from({ length: 17 }, (_, n) => ({ oid: `1.3.6.1.4.1.57264.1.${n + 8}`, raw: false, value: createHash('sha1').update(String(n)).digest('hex') })),
  };
  const asn1 = await h.measure('asn1-x509 + node:crypto (P-256 CA)', () => signTbs(ca256, encodeLeafTbsAsn1(ca256, spec)), { batch: 10 });

  x509.cryptoProvider.set(webcrypto as never);
  const caKeys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as unknown as { privateKey: never };
  const leafPub = await webcrypto.subtle.importKey('spki', spec.spki, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
  const exts = [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.3']),
    new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spec.sanUri }], true),
    ...spec.extensions.map((e) => new x509.Extension(e.oid, false, Buffer.from([0x0c, e.value.length, ...Buffer.from(e.value)]))),
  ];
  const peculiar = await h.measureAsync(
    '@peculiar/x509 generator (P-256 CA)',
    () =>
      x509.X509CertificateGenerator.create({
        serialNumber: randomBytes(20).toString('hex').replace(/^./, '1'),
        issuer: 'CN=bench intermediate',
        subject: '',
        notBefore: new Date(now * 1000),
        notAfter: new Date((now + 600) * 1000),
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        publicKey: leafPub as never,
        signingKey: caKeys.privateKey,
        extensions: exts,
      }),
    { concurrency: 4 },
  );

  const met = e2e256.result.opsPerSec >= target ? 'met' : 'missed';
  h.report('Signing CA: certificates issued per second (in process)', [
    {
      label: 'issue: token verify + PoP + templates + build + sign (P-256 CA key)',
      ours: e2e256.result,
      baseline: raw256,
      note: `target >= ${target.toLocaleString('en-US')} certs/s: ${met}; ${cpuNote(e2e256)}`,
    },
    { label: 'issue (P-256 CA key), one request at a time', ours: e2eSerial.result, baseline: raw256, note: cpuNote(e2eSerial) },
    {
      label: 'issue: same, default P-384 CA key (as public Fulcio)',
      ours: e2e384.result,
      baseline: raw384,
      note: `bounded by P-384 signing on Node 20 (signed on the thread pool); ${cpuNote(e2e384)}`,
    },
    { label: 'issue (P-256 CA) vs @peculiar/asn1-x509 encoder + node:crypto sign', ours: e2e256.result, baseline: asn1 },
    { label: 'issue (P-256 CA) vs @peculiar/x509 generator', ours: e2e256.result, baseline: peculiar },
  ]);
  await Promise.all(verifiers.map((v) => v.close()));
}
