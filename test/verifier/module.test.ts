import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseConfig } from '../../src/server/config.ts';
import type { ServerContext } from '../../src/server/context.ts';
import { ConfigError } from '../../src/server/errors.ts';
import { createLogger } from '../../src/server/logger.ts';
import { createVerifierModule, registrationsFromConfig } from '../../src/verifier/module.ts';
import { VerificationError } from '../../src/verifier/errors.ts';
import { openTestStore } from '../helpers/store.ts';
import { gitlabClaims, NOW, signToken, testKey } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-vmod-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function ctxFor(verifier: unknown, store: ServerContext['store']): ServerContext {
  return {
    config: parseConfig({ verifier }),
    store,
    logger: createLogger({ level: 'silent' }),
    metrics: undefined as never,
    kek: undefined as never,
    clock: () => NOW,
    publicUrl: () => 'http://127.0.0.1:8080',
  };
}

describe('verifier module and config', () => {
  test('presets, explicit registrations and our own issuer (keys read in-process)', () => {
    const cfg = parseConfig({ verifier: { issuers: [{ id: 'self', issuer: 'https://git.example.com', profile: 'gitlab' }] } }).verifier;
    const regs = registrationsFromConfig(cfg, { issuerUrl: 'https://ci.example.com', jwks: () => ({ keys: [] }) });
    assert.deepEqual(regs.map((r) => r.id), ['gitlab.com', 'github-actions', 'self', 'ci-oidc']);
    assert.equal(regs[1]?.issuer, 'https://token.actions.githubusercontent.com');
    const noPresets = parseConfig({ verifier: { presets: { gitlabCom: false, githubActions: false }, trustOwnIssuer: false } }).verifier;
    assert.deepEqual(registrationsFromConfig(noPresets, { issuerUrl: 'https://x', jwks: () => ({ keys: [] }) }), []);
  });

  test('config rejects wildcard-looking or non-canonical issuers at start-up with the reason', async () => {
    const store = await openTestStore('sqlite');
    try {
      for (const issuer of ['https://*.gitlab.com', 'https://GitLab.example.com', 'http://git.example.com']) {
        assert.throws(() => createVerifierModule(ctxFor({ presets: { gitlabCom: false, githubActions: false }, issuers: [{ id: 'x', issuer }] }, store)), ConfigError, issuer);
      }
      assert.throws(() => parseConfig({ verifier: { issuers: [{ id: 'x', issuer: 'https://a', algorithms: ['HS256'] }] } }), ConfigError);
    } finally {
      await store.close();
    }
  });

  test('end to end: static JWKS file registration, our issuer, single-use on the SQL store', async () => {
    const self = testKey('RS256', 'self-1');
    const ours = testKey('ES256', 'ours-1');
    const jwksFile = join(dir, 'self.json');
    writeFileSync(jwksFile, JSON.stringify({ keys: [self.jwk] }));
    const store = await openTestStore('sqlite');
    const mod = createVerifierModule(
      ctxFor({ presets: { gitlabCom: false, githubActions: false }, issuers: [{ id: 'self', issuer: 'https://git.example.com', profile: 'gitlab', keys: { staticJwksFile: jwksFile } }] }, store),
      { ownIssuer: { issuerUrl: 'http://127.0.0.1:8080', jwks: () => ({ keys: [ours.jwk] }), algorithms: ['ES256'] } },
    );
    try {
      const r1 = await mod.verifier.verify(signToken(gitlabClaims({}, 'https://git.example.com'), self), { audiences: ['ours'] });
      assert.equal(r1.registration.id, 'self');
      const token = signToken(gitlabClaims({ sub: 'project_path:foo/bar:ref_type:branch:ref:main' }, 'http://127.0.0.1:8080'), ours);
      const r2 = await mod.verifier.verify(token, { audiences: ['ours'], replay: 'single-use' });
      assert.equal(r2.registration.profile, 'ci-oidc');
      await assert.rejects(mod.verifier.verify(token, { audiences: ['ours'], replay: 'single-use' }), (e: VerificationError) => e.code === 'replayed');
      assert.deepEqual(mod.verifier.registrations().map((r) => r.id), ['self', 'ci-oidc']);
    } finally {
      await mod.close?.();
      await store.close();
    }
  });
});
