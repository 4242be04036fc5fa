import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import Fastify from 'fastify';
import { FulcioSigner, MessageSignatureBundleBuilder } from '@sigstore/sign';
import { createCaModule } from '../../src/ca/module.ts';
import { pemToDerList } from '../../src/ca/certificate.ts';
import { sigstoreExtensions } from '../../src/ca/bundle.ts';
import { OID } from '../../src/ca/oids.ts';
import { createIssuerModule } from '../../src/issuer/module.ts';
import { kekFromBytes } from '../../src/jose/kek.ts';
import { parseConfig } from '../../src/server/config.ts';
import type { ServerContext } from '../../src/server/context.ts';
import { createLogger } from '../../src/server/logger.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { openTestStore } from '../helpers/store.ts';
import { f7Variables, ISSUER, keySource } from '../issuer/helpers.ts';

test('a token minted by our own issuer module gets a certificate through @sigstore/sign (keys in process, no fetch)', async () => {
  const store = await openTestStore('sqlite');
  const ctx: ServerContext = {
    config: parseConfig({ server: { logLevel: 'silent' }, issuer: { issuerUrl: ISSUER } }),
    store,
    logger: createLogger({ level: 'silent' }),
    metrics: createMetrics({ defaultMetrics: false }),
    kek: kekFromBytes(randomBytes(32)),
    clock: () => Math.floor(Date.now() / 1000),
    publicUrl: () => ISSUER,
  };
  const issuer = await createIssuerModule(ctx, { generateKey: keySource() });
  const ca = await createCaModule(ctx, { ownIssuer: { issuerUrl: issuer.issuerUrl, jwks: () => issuer.jwks() } });
  const app = Fastify({ logger: false });
  await app.register(async (scope) => ca.routes!(scope));
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const addr = app.server.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    const variables = { ...f7Variables(), CI_CONFIG_PATH: '.gitlab-ci.yml' } as Record<string, string>;
    delete variables.CI_OIDC_CONFIG_SOURCE;
    const { token, claims } = issuer.mint({ variables, aud: 'sigstore' });
    assert.equal(claims.iss, ISSUER);
    const signer = new FulcioSigner({ fulcioBaseURL: url, identityProvider: { getToken: async () => token }, retry: 0 });
    const bundle = await new MessageSignatureBundleBuilder({ signer, witnesses: [] }).create({ data: Buffer.from('artifact') });
    const vm = bundle.verificationMaterial.content;
    assert.equal(vm.$case, 'x509CertificateChain');
    const leafDer = Buffer.from(vm.$case === 'x509CertificateChain' ? vm.x509CertificateChain.certificates[0]!.rawBytes : []);
    const leaf = new X509Certificate(leafDer);
    const [interPem, rootPem] = ca.keys().trustBundle[0]!;
    const inter = new X509Certificate(pemToDerList(interPem!)[0]!);
    assert.ok(leaf.verify(inter.publicKey) && inter.verify(new X509Certificate(pemToDerList(rootPem!)[0]!).publicKey));
    const exts = sigstoreExtensions(leafDer);
    assert.equal(exts.get(OID.issuerV2), ISSUER);
    assert.equal(exts.get(OID.sourceRepositoryUri), `${ISSUER}/acme/platform/api`);
    assert.equal(exts.get(OID.tokenSubject), claims.sub);
    assert.equal(leaf.subjectAltName, `URI:https://${String(claims.ci_config_ref_uri)}`);
  } finally {
    await app.close();
    await ca.close?.();
    await issuer.close?.();
    await store.close();
  }
});
