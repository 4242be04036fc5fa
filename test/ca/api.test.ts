import 'reflect-metadata';
import assert from 'node:assert/strict';
import { generateKeyPairSync, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { CIContextProvider, FulcioSigner, MessageSignatureBundleBuilder } from '@sigstore/sign';
import { X509Certificate as CoreX509 } from '@sigstore/core';
import { pemToDerList } from '../../src/ca/certificate.ts';
import { OID } from '../../src/ca/oids.ts';
import { F2, F5, F7, KEYS, LEGACY_GITLAB, mint, nowSeconds, OURS, postJson, signingRequest, startCa, testIssuerDocument, type RunningCa } from './helpers.ts';

const IDENTITY = 'There was an error processing the identity token';

/** Runs the real sigstore-js client against our CA and returns the leaf and the bundle signature. */
async function sigstoreSign(ca: RunningCa, token: string, data = Buffer.from('hello artifact')) {
  const signer = new FulcioSigner({ fulcioBaseURL: ca.url, identityProvider: { getToken: async () => token }, retry: 0 });
  const bundle = await new MessageSignatureBundleBuilder({ signer, witnesses: [] }).create({ data });
  const vm = bundle.verificationMaterial.content;
  assert.equal(vm.$case, 'x509CertificateChain');
  const leafDer = vm.$case === 'x509CertificateChain' ? vm.x509CertificateChain.certificates[0]!.rawBytes : Buffer.alloc(0);
  const sig = bundle.content.$case === 'messageSignature' ? bundle.content.messageSignature.signature : Buffer.alloc(0);
  return { leafDer: Buffer.from(leafDer), signature: Buffer.from(sig), data };
}

function chainVerifies(ca: RunningCa, leafDer: Buffer): void {
  const leaf = new X509Certificate(leafDer);
  const [intermediatePem, rootPem] = ca.module.keys().trustBundle[0]!;
  const inter = new X509Certificate(pemToDerList(intermediatePem!)[0]!);
  const root = new X509Certificate(pemToDerList(rootPem!)[0]!);
  assert.ok(leaf.checkIssued(inter) && leaf.verify(inter.publicKey), 'leaf is signed by the intermediate');
  assert.ok(inter.checkIssued(root) && inter.verify(root.publicKey), 'intermediate is signed by the root');
  assert.ok(root.verify(root.publicKey), 'root is self-signed');
}

function utf8Ext(der: Buffer, oid: string): string | undefined {
  const ext = CoreX509.parse(Buffer.from(der) as Buffer<ArrayBuffer>).extension(oid);
  return ext?.valueObj.subs[0]?.value.toString('utf8');
}

describe('Fulcio-compatible API with the real @sigstore/sign client', () => {
  let ca: RunningCa;
  before(async () => {
    ca = await startCa();
  });
  after(async () => ca.close());

  test('a gitlab.com-shaped token (F2, static test keys) gets a certificate that chains to the trust bundle', async () => {
    const token = mint(KEYS.gitlab, F2);
    const { leafDer, signature, data } = await sigstoreSign(ca, token);
    chainVerifies(ca, leafDer);
    const leaf = new X509Certificate(leafDer);
    assert.equal(leaf.subjectAltName, 'URI:https://gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main');
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.3']);
    assert.equal((Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000, 600);
    assert.ok(cryptoVerify('sha256', data, leaf.publicKey, new Uint8Array(signature)));
    assert.equal(utf8Ext(leafDer, OID.issuerV2), 'https://gitlab.com');
    assert.equal(utf8Ext(leafDer, OID.sourceRepositoryUri), 'https://gitlab.com/foo/bar');
    assert.equal(utf8Ext(leafDer, OID.tokenSubject), F2.sub);
    assert.equal(CoreX509.parse(leafDer as Buffer<ArrayBuffer>).extension(OID.issuer)?.value.toString('utf8'), 'https://gitlab.com');
  });

  test('a GitHub token (F5) gets the GitHub extensions, including the raw legacy .2-.6', async () => {
    const { leafDer } = await sigstoreSign(ca, mint(KEYS.github, F5));
    chainVerifies(ca, leafDer);
    const leaf = new X509Certificate(leafDer);
    assert.equal(leaf.subjectAltName, 'URI:https://github.com/github/actions-oidc-debugger/.github/workflows/action-test.yml@refs/pull/27/merge');
    const c = CoreX509.parse(leafDer as Buffer<ArrayBuffer>);
    assert.equal(c.extension(OID.githubWorkflowName)?.value.toString('utf8'), 'Test Debugger Action');
    assert.equal(utf8Ext(leafDer, OID.runInvocationUri), 'https://github.com/github/actions-oidc-debugger/actions/runs/16055869479/attempts/1');
  });

  test('a token from our own issuer (F7-shaped, keys from the in-process key source) gets a certificate', async () => {
    const { leafDer } = await sigstoreSign(ca, mint(KEYS.ours, F7));
    chainVerifies(ca, leafDer);
    assert.equal(new X509Certificate(leafDer).subjectAltName, 'URI:https://ci.example.com/acme/platform/api//.gitlab-ci.yml@refs/heads/main');
    assert.equal(utf8Ext(leafDer, OID.sourceRepositoryUri), `${OURS}/acme/platform/api`);
    assert.equal(utf8Ext(leafDer, OID.buildSignerDigest), undefined, 'no ci_config_sha: .10 omitted for our issuer');
    assert.equal(utf8Ext(leafDer, OID.issuerV2), OURS);
  });

  test('CIContextProvider picks the token from SIGSTORE_ID_TOKEN, as GitLab jobs provide it', async () => {
    const saved = { ...process.env };
    delete process.env.ACTIONS_ID_TOKEN_REQUEST_URL;
    delete process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
    process.env.SIGSTORE_ID_TOKEN = mint(KEYS.gitlab, F2);
    try {
      const signer = new FulcioSigner({ fulcioBaseURL: ca.url, identityProvider: new CIContextProvider('sigstore'), retry: 0 });
      const bundle = await new MessageSignatureBundleBuilder({ signer, witnesses: [] }).create({ data: Buffer.from('x') });
      assert.equal(bundle.verificationMaterial.content.$case, 'x509CertificateChain');
    } finally {
      process.env = saved;
    }
  });

  test('the v2 answer has the detached-SCT shape with an empty SCT and a leaf..root chain', async () => {
    const { body } = signingRequest(mint(KEYS.gitlab, F2));
    const res = await postJson(`${ca.url}/api/v2/signingCert`, body);
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.json), ['signedCertificateDetachedSct']);
    assert.equal(res.json.signedCertificateDetachedSct.signedCertificateTimestamp, '');
    const certs: string[] = res.json.signedCertificateDetachedSct.chain.certificates;
    assert.equal(certs.length, 3);
    for (const c of certs) assert.equal(c, c.trim());
    assert.deepEqual(certs.slice(1), ca.module.keys().trustBundle[0]);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
  });

  test('the token may come as a Bearer header only (sigstore-go), and snake_case fields are accepted', async () => {
    const token = mint(KEYS.gitlab, F2);
    const { body } = signingRequest(token);
    const snake = {
      public_key_request: {
        public_key: body.publicKeyRequest.publicKey,
        proof_of_possession: body.publicKeyRequest.proofOfPossession.replace(/\+/g, '-').replace(/\//g, '_'),
      },
    };
    const res = await postJson(`${ca.url}/api/v2/signingCert`, snake, { authorization: `Bearer ${token}` });
    assert.equal(res.status, 200, res.text);
  });

  test('a CSR instead of a public key is accepted; its self-signature is the proof', async () => {
    const { body } = await csrRequest(mint(KEYS.gitlab, F2));
    const res = await postJson(`${ca.url}/api/v2/signingCert`, body);
    assert.equal(res.status, 200, res.text);
  });

  test('legacy v1 answers 201 with a PEM chain and takes the token from the Bearer header only', async () => {
    const token = mint(KEYS.gitlab, F2);
    const { body } = signingRequest(token);
    const v1 = {
      publicKey: { algorithm: 'ecdsa', content: Buffer.from(body.publicKeyRequest.publicKey.content as string).toString('base64') },
      signedEmailAddress: body.publicKeyRequest.proofOfPossession,
    };
    const res = await postJson(`${ca.url}/api/v1/signingCert`, v1, { authorization: `Bearer ${token}` });
    assert.equal(res.status, 201, res.text);
    assert.match(res.headers.get('content-type') ?? '', /application\/pem-certificate-chain/);
    assert.equal(pemToDerList(res.text).length, 3);
    const noBearer = await postJson(`${ca.url}/api/v1/signingCert`, { ...v1, credentials: { oidcIdentityToken: token } });
    assert.equal(noBearer.status, 400);
    assert.deepEqual(noBearer.json, { code: 3, message: IDENTITY, details: [] });
  });

  test('trustBundle, rootCert and configuration have Fulcio shapes', async () => {
    const tb = (await (await fetch(`${ca.url}/api/v2/trustBundle`)).json()) as any;
    assert.equal(tb.chains.length, 1);
    assert.equal(tb.chains[0].certificates.length, 2);
    const root = await (await fetch(`${ca.url}/api/v1/rootCert`)).text();
    assert.equal(pemToDerList(root).length, 2);
    const cfg = (await (await fetch(`${ca.url}/api/v2/configuration`)).json()) as any;
    const gitlab = cfg.issuers.find((i: any) => i.issuerUrl === 'https://gitlab.com');
    assert.deepEqual(gitlab, {
      issuerUrl: 'https://gitlab.com',
      audience: 'sigstore',
      challengeClaim: 'sub',
      spiffeTrustDomain: '',
      issuerType: 'ci-provider',
      subjectDomain: '',
      skipEmailVerification: false,
    });
    const meta = cfg.issuers.find((i: any) => i.wildcardIssuerUrl);
    assert.equal(meta.wildcardIssuerUrl, 'https://token.actions.githubusercontent.com/*');
    assert.equal('issuerUrl' in meta, false);
    assert.ok(cfg.issuers.some((i: any) => i.issuerUrl === OURS));
    assert.equal(await ca.module.ready!(), true);
  });
});

async function csrRequest(token: string) {
  const x509 = await import('@peculiar/x509');
  const { webcrypto } = await import('node:crypto');
  x509.cryptoProvider.set(webcrypto as never);
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=ignored', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
  return { body: { credentials: { oidcIdentityToken: token }, certificateSigningRequest: Buffer.from(csr.toString('pem')).toString('base64') }, csr };
}

describe('refusals answer 400 with Fulcio messages (signing-ca.md §11.6)', () => {
  let ca: RunningCa;
  before(async () => {
    ca = await startCa();
  });
  after(async () => ca.close());

  const expect400 = async (body: unknown, message: string, headers: Record<string, string> = {}) => {
    const res = await postJson(`${ca.url}/api/v2/signingCert`, body, headers);
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(res.json, { code: 3, message, details: [] });
  };

  test('a bad proof of possession', async () => {
    const { body } = signingRequest(mint(KEYS.gitlab, F2), { challenge: 'project_path:foo/other:ref_type:branch:ref:main' });
    await expect400(body, 'The signature supplied in the request could not be verified');
  });

  test('a proof made with a different key than the one presented (G2)', async () => {
    const { body } = signingRequest(mint(KEYS.gitlab, F2));
    body.publicKeyRequest.publicKey.content = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    await expect400(body, 'The signature supplied in the request could not be verified');
  });

  test('a CSR whose self-signature was made by another key (G2)', async () => {
    const { csr } = await csrRequest(mint(KEYS.gitlab, F2));
    const der = Buffer.from(csr.rawData);
    der[der.length - 3]! ^= 0x01;
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----`;
    await expect400({ credentials: { oidcIdentityToken: mint(KEYS.gitlab, F2) }, certificateSigningRequest: Buffer.from(pem).toString('base64') }, 'The signature supplied in the request could not be verified');
  });

  test('a wrong aud, an expired token, an unknown iss, a missing token, a bad signature', async () => {
    await expect400(signingRequest(mint(KEYS.gitlab, { ...F2, aud: 'pypi' })).body, IDENTITY);
    await expect400(signingRequest(mint(KEYS.gitlab, F2, { now: nowSeconds() - 7200 })).body, IDENTITY);
    await expect400(signingRequest(mint(KEYS.gitlab, { ...F2, iss: 'https://gitlab.evil.test' })).body, IDENTITY);
    await expect400(signingRequest(mint(KEYS.other, F2)).body, IDENTITY);
    await expect400(signingRequest(mint(KEYS.gitlab, { ...F2, aud: ['sigstore', 'evil'] })).body, IDENTITY);
    const { body } = signingRequest(mint(KEYS.gitlab, F2));
    await expect400({ publicKeyRequest: body.publicKeyRequest }, IDENTITY);
  });

  test('a token with an email claim: the client signs the email, so the PoP over sub fails', async () => {
    const token = mint(KEYS.gitlab, { ...F2, email: 'dev@example.com' });
    await expect400(signingRequest(token, { challenge: 'dev@example.com' }).body, 'The signature supplied in the request could not be verified');
  });

  test('an RSA-1024 key is insecure', async () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 1024 });
    await expect400(signingRequest(mint(KEYS.gitlab, F2), { key }).body, 'The public key supplied in the request is insecure');
  });

  test('a public key that does not parse', async () => {
    const { body } = signingRequest(mint(KEYS.gitlab, F2));
    body.publicKeyRequest.publicKey.content = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----';
    await expect400(body, 'The public key supplied in the request could not be parsed');
  });

  test('a CSR that does not parse', async () => {
    await expect400({ credentials: { oidcIdentityToken: mint(KEYS.gitlab, F2) }, certificateSigningRequest: Buffer.from('not a csr').toString('base64') }, 'The certificate signing request could not be parsed');
  });

  test('a GitLab ci-provider token without ci_config_sha gives the raw template error', async () => {
    const { ci_config_sha: _drop, ...noSha } = F2;
    await expect400(signingRequest(mint(KEYS.gitlab, noSha)).body, 'value <ci_config_sha> not present in either claims or defaults. Issuer: https://gitlab.com');
  });

  test('the legacy gitlab-pipeline type issues without ci_config_sha but refuses a missing project_path', async () => {
    const { ci_config_sha: _drop, ...noSha } = F2;
    const ok = await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(mint(KEYS.legacy, { ...noSha, iss: LEGACY_GITLAB })).body);
    assert.equal(ok.status, 200, ok.text);
    const { project_path: _p, ...noPath } = F2;
    await expect400(signingRequest(mint(KEYS.legacy, { ...noPath, iss: LEGACY_GITLAB, sub: 'x' })).body, IDENTITY);
  });

  test('a body over 64 KiB', async () => {
    await expect400(JSON.stringify({ pad: 'x'.repeat(70 * 1024) }), 'request body too large');
  });

  test('malformed JSON and a wrong field type are 400 code 3, never 5xx', async () => {
    const bad = await postJson(`${ca.url}/api/v2/signingCert`, '{"credentials":');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, 3);
    const wrong = await postJson(`${ca.url}/api/v2/signingCert`, { credentials: { oidcIdentityToken: 7 } });
    assert.equal(wrong.status, 400);
    const badB64 = await postJson(`${ca.url}/api/v2/signingCert`, { credentials: { oidcIdentityToken: mint(KEYS.gitlab, F2) }, certificateSigningRequest: '***' });
    assert.equal(badB64.status, 400);
  });

  test('an ECDSA P-256 CSR signed with SHA-384 is outside the allow-list', async () => {
    const x509 = await import('@peculiar/x509');
    const { webcrypto } = await import('node:crypto');
    x509.cryptoProvider.set(webcrypto as never);
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=x', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } });
    await expect400(
      { credentials: { oidcIdentityToken: mint(KEYS.gitlab, F2) }, certificateSigningRequest: Buffer.from(csr.toString('pem')).toString('base64') },
      'signing algorithm not permitted: *ecdsa.PublicKey, SHA-384',
    );
  });
});

describe('validity is capped by the token (G3)', () => {
  test('a token expiring in 60 s gets notAfter = exp', async () => {
    const ca = await startCa();
    try {
      const now = nowSeconds();
      const token = mint(KEYS.gitlab, F2, { now, ttl: 60 });
      const res = await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(token).body);
      assert.equal(res.status, 200, res.text);
      const leaf = new X509Certificate(pemToDerList(res.json.signedCertificateDetachedSct.chain.certificates[0])[0]!);
      const nb = Date.parse(leaf.validFrom) / 1000;
      const na = Date.parse(leaf.validTo) / 1000;
      assert.ok(na <= now + 60, 'notAfter <= token exp');
      assert.ok(na - nb <= 600);
    } finally {
      await ca.close();
    }
  });
});

describe('more request shapes', () => {
  let ca: RunningCa;
  let denied = 0;
  before(async () => {
    ca = await startCa({
      deps: {
        authorize: (_issuer, claims) => {
          if (claims.namespace_id === '666') {
            denied++;
            return false;
          }
          return true;
        },
      },
    });
  });
  after(async () => ca.close());

  test('a GHEC enterprise-slug issuer matches the anchored meta issuer', async () => {
    const token = mint(KEYS.github, { ...F5, iss: 'https://token.actions.githubusercontent.com/octocat-inc' });
    const res = await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(token).body);
    assert.equal(res.status, 200, res.text);
    const leaf = pemToDerList(res.json.signedCertificateDetachedSct.chain.certificates[0])[0]!;
    assert.equal(utf8Ext(leaf, OID.issuerV2), 'https://token.actions.githubusercontent.com/octocat-inc');
    const bad = mint(KEYS.github, { ...F5, iss: 'https://token.actions.githubusercontent.com/a/b' });
    assert.equal((await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(bad).body)).status, 400);
  });

  test('Ed25519, RSA-2048 and P-384 client keys with their default PoP hashes', async () => {
    const token = mint(KEYS.gitlab, F2);
    for (const [key, hash] of [
      [generateKeyPairSync('ed25519'), null],
      [generateKeyPairSync('rsa', { modulusLength: 2048 }), 'sha256'],
      [generateKeyPairSync('ec', { namedCurve: 'P-384' }), 'sha384'],
    ] as const) {
      const res = await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(token, { key, hash }).body);
      assert.equal(res.status, 200, `${key.publicKey.asymmetricKeyType}: ${res.text}`);
      const leaf = new X509Certificate(pemToDerList(res.json.signedCertificateDetachedSct.chain.certificates[0])[0]!);
      assert.ok(leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(key.publicKey.export({ type: 'spki', format: 'der' })));
    }
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const wrongHash = await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(token, { key: p384, hash: 'sha256' }).body);
    assert.equal(wrongHash.status, 400, 'P-384 proofs use SHA-384');
  });

  test('the per-issuer authorization policy refuses with the identity-token message', async () => {
    const res = await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(mint(KEYS.gitlab, { ...F2, namespace_id: '666' })).body);
    assert.equal(res.status, 400);
    assert.equal(res.json.message, IDENTITY);
    assert.equal(denied, 1);
  });

  test('legacy v1 with a CSR', async () => {
    const token = mint(KEYS.gitlab, F2);
    const { body } = await csrRequest(token);
    const res = await postJson(`${ca.url}/api/v1/signingCert`, { certificateSigningRequest: body.certificateSigningRequest }, { authorization: `Bearer ${token}` });
    assert.equal(res.status, 201, res.text);
  });

  test('CORS preflight answers any origin', async () => {
    const res = await fetch(`${ca.url}/api/v2/signingCert`, { method: 'OPTIONS', headers: { origin: 'https://x.test', 'access-control-request-method': 'POST' } });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
  });

  test('intermediate rotation: new leaves chain to the new intermediate, the bundle keeps both', async () => {
    const before = ca.module.keys().activeIntermediateId;
    await ca.module.rotateIntermediate();
    assert.notEqual(ca.module.keys().activeIntermediateId, before);
    const tb = (await (await fetch(`${ca.url}/api/v2/trustBundle`)).json()) as { chains: Array<{ certificates: string[] }> };
    assert.equal(tb.chains.length, 2);
    const { leafDer } = await sigstoreSign(ca, mint(KEYS.gitlab, F2));
    chainVerifies(ca, leafDer);
  });

  test('random JSON bodies never produce a 5xx', async () => {
    const fc = (await import('fast-check')).default;
    const token = mint(KEYS.gitlab, F2);
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), fc.boolean(), async (body, withBearer) => {
        const res = await postJson(`${ca.url}/api/v2/signingCert`, JSON.stringify(body), withBearer ? { authorization: `Bearer ${token}` } : {});
        assert.ok(res.status === 400 || res.status === 200, `${res.status} ${res.text}`);
        assert.equal(res.json.code === undefined || res.json.code === 3, true);
      }),
      { numRuns: 60 },
    );
  });
});

describe('Authorization trees in the issuer configuration (ours)', () => {
  test('an issuer policy allows only the listed namespaces; a bad tree is a load error', async () => {
    const doc = testIssuerDocumentWith({ Authorization: { any: [{ claim: 'namespace_id', in: ['123', '72'] }] } });
    const ca = await startCa({ ca: { issuerConfig: doc } });
    try {
      assert.equal((await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(mint(KEYS.gitlab, F2)).body)).status, 200);
      const other = await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(mint(KEYS.gitlab, { ...F2, namespace_id: '999' })).body);
      assert.equal(other.status, 400);
      assert.equal(other.json.message, IDENTITY);
      const explained = await ca.module.explain(mint(KEYS.gitlab, { ...F2, namespace_id: '999' }));
      assert.equal(explained.outcome.code, 'authorization_denied');
    } finally {
      await ca.close();
    }
    await assert.rejects(startCa({ ca: { issuerConfig: testIssuerDocumentWith({ Authorization: { claim: 'namespace_id', nope: 1 } }) } }), /Authorization/);
  });
});

function testIssuerDocumentWith(extra: Record<string, unknown>): Record<string, unknown> {
  const doc = testIssuerDocument() as { OIDCIssuers: Record<string, Record<string, unknown>> };
  doc.OIDCIssuers['https://gitlab.com'] = { ...doc.OIDCIssuers['https://gitlab.com'], ...extra };
  return doc;
}

describe('audit log (G5)', () => {
  test('issuance logs registration, jti, kid, project and key fingerprint; refusals log the code; never the token', async () => {
    const lines: string[] = [];
    const ca = await startCa({ logLines: lines });
    try {
      const token = mint(KEYS.gitlab, F2);
      assert.equal((await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(token).body)).status, 200);
      const bad = mint(KEYS.other, F2);
      assert.equal((await postJson(`${ca.url}/api/v2/signingCert`, signingRequest(bad).body, { authorization: `Bearer ${bad}` })).status, 400);
      const issued = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'signing certificate issued');
      assert.ok(issued, lines.join('\n'));
      assert.equal(issued.registration, 'ca:https://gitlab.com');
      assert.equal(issued.jti, F2.jti);
      assert.equal(issued.projectId, F2.project_id);
      assert.match(issued.keyFingerprint, /^[0-9a-f]{64}$/);
      assert.equal(issued.kid, KEYS.gitlab.kid);
      const refused = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'signing certificate refused');
      assert.equal(refused.code, 'key_not_found');
      const all = lines.join('\n');
      for (const t of [token, bad]) {
        assert.equal(all.includes(t), false);
        assert.equal(all.includes(t.split('.')[2]!), false);
      }
    } finally {
      await ca.close();
    }
  });
});
