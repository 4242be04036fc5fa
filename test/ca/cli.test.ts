import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatExplain } from '../../src/cli/commands/ca.ts';
import { signFile, verifyBlob } from '../../src/cli/commands/sign.ts';
import { CliError } from '../../src/cli/output.ts';
import { assertBundleLatest, bundleFromJSON, bundleToJSON } from '@sigstore/bundle';
import { BUNDLE_V03 } from '../../src/ca/bundle.ts';
import { F2, F5, KEYS, mint, startCa, type RunningCa } from './helpers.ts';

const GITLAB_SAN = 'https://gitlab.com/foo/bar//.gitlab-ci.yml@refs/heads/main';

describe('ci-oidc sign / verify-blob against our CA', () => {
  let ca: RunningCa;
  let dir: string;
  let file: string;
  before(async () => {
    ca = await startCa();
    dir = mkdtempSync(join(tmpdir(), 'ci-oidc-sign-'));
    file = join(dir, 'artifact.tar.gz');
    writeFileSync(file, 'release bytes');
  });
  after(async () => {
    await ca.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('sign writes a v0.3 bundle beside the file; verify-blob checks chain, identity, issuer and signature', async () => {
    const res = await signFile({ file, token: mint(KEYS.gitlab, F2), caUrl: ca.url });
    assert.equal(res.bundlePath, `${file}.sigstore.json`);
    assert.equal(res.san, GITLAB_SAN);
    const bundle = JSON.parse(readFileSync(res.bundlePath, 'utf8'));
    assert.equal(bundle.mediaType, BUNDLE_V03);
    assert.ok(bundle.verificationMaterial.certificate.rawBytes);
    const ok = await verifyBlob({ file, bundle: res.bundlePath, certificateIdentity: GITLAB_SAN, certificateOidcIssuer: 'https://gitlab.com', caUrl: ca.url });
    assert.equal(ok.san, GITLAB_SAN);
    assert.match(ok.warning ?? '', /no trusted timestamp/);

    const tbFile = join(dir, 'trust.json');
    writeFileSync(tbFile, JSON.stringify({ chains: ca.module.keys().trustBundle.map((certificates) => ({ certificates })) }));
    await verifyBlob({ file, bundle: res.bundlePath, certificateIdentity: GITLAB_SAN, certificateOidcIssuer: 'https://gitlab.com', trustBundleFile: tbFile });
  });

  test('verify-blob refuses a wrong identity, a wrong issuer, a changed file, and a foreign CA', async () => {
    const res = await signFile({ file, token: mint(KEYS.github, F5), caUrl: ca.url });
    const base = { file, bundle: res.bundlePath, certificateIdentity: res.san, certificateOidcIssuer: 'https://token.actions.githubusercontent.com', caUrl: ca.url };
    await verifyBlob(base);
    const code = (c: string) => (e: unknown) => e instanceof CliError && e.code === c;
    await assert.rejects(verifyBlob({ ...base, certificateIdentity: GITLAB_SAN }), code('identity_mismatch'));
    await assert.rejects(verifyBlob({ ...base, certificateOidcIssuer: 'https://gitlab.com' }), code('issuer_mismatch'));
    const other = join(dir, 'other.bin');
    writeFileSync(other, 'tampered');
    await assert.rejects(verifyBlob({ ...base, file: other }), code('digest_mismatch'));
    const foreign = await startCa();
    try {
      await assert.rejects(verifyBlob({ ...base, caUrl: foreign.url }), code('chain_untrusted'));
    } finally {
      await foreign.close();
    }
  });

  test('sign reports the CA refusal', async () => {
    await assert.rejects(signFile({ file, token: mint(KEYS.other, F2), caUrl: ca.url }), (e: unknown) => e instanceof CliError && /There was an error processing the identity token/.test(e.message));
  });

  test('ca explain shows the issuer match, verification and each template, without the token', async () => {
    const token = mint(KEYS.gitlab, { ...F2, ci_config_sha: undefined });
    const report = await ca.module.explain(token);
    assert.equal(report.issuerMatch.kind, 'exact');
    assert.equal(report.verification.ok, true);
    assert.equal(report.outcome.ok, false);
    assert.equal(report.outcome.message, 'value <ci_config_sha> not present in either claims or defaults. Issuer: https://gitlab.com');
    assert.ok(report.templates.some((t) => t.output === 'san' && t.value === GITLAB_SAN));
    const text = formatExplain(report);
    assert.ok(!text.includes(token));
    assert.match(text, /build-signer-digest.*error: value <ci_config_sha>/);
    const unknown = await ca.module.explain(mint(KEYS.gitlab, { ...F2, iss: 'https://nope.test' }));
    assert.equal(unknown.issuerMatch.kind, 'none');
    assert.equal(unknown.verification.ok, false);
    const good = await ca.module.explain(mint(KEYS.github, F5));
    assert.equal(good.outcome.ok, true);
    assert.equal(good.templates.filter((t) => t.value !== undefined).length, 22);
  });
});

describe('bundle interoperability with sigstore-js', () => {
  test('our v0.3 bundle passes @sigstore/bundle validation; a sigstore-js bundle passes verify-blob', async () => {
    const { FulcioSigner, MessageSignatureBundleBuilder } = await import('@sigstore/sign');
    const ca = await startCa();
    const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-interop-'));
    try {
      const file = join(dir, 'a.bin');
      writeFileSync(file, 'interop bytes');
      const ours = await signFile({ file, token: mint(KEYS.gitlab, F2), caUrl: ca.url });
      const parsed = bundleFromJSON(ours.bundle);
      assertBundleLatest(parsed);
      const signer = new FulcioSigner({ fulcioBaseURL: ca.url, identityProvider: { getToken: async () => mint(KEYS.gitlab, F2) }, retry: 0 });
      const theirs = await new MessageSignatureBundleBuilder({ signer, witnesses: [] }).create({ data: readFileSync(file) });
      const theirsPath = join(dir, 'theirs.sigstore.json');
      writeFileSync(theirsPath, JSON.stringify(bundleToJSON(theirs)));
      const ok = await verifyBlob({ file, bundle: theirsPath, certificateIdentity: GITLAB_SAN, certificateOidcIssuer: 'https://gitlab.com', caUrl: ca.url });
      assert.equal(ok.san, GITLAB_SAN);
    } finally {
      await ca.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
