import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeToken, exportDiscovery, lint } from '../../src/cli/commands/issuer.ts';
import { parseVarsFile } from '../../src/issuer/vars-file.ts';
import { parseConfig } from '../../src/server/config.ts';
import { ConfigError } from '../../src/server/errors.ts';
import { buildIssuer, f7Variables } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-issuer-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ci-oidc issue/lint/decode/export helpers', () => {
  test('vars files: .env (export, quotes, comments) and JSON', () => {
    assert.deepEqual(parseVarsFile('# c\nexport A=1\nB="x y"\nC=\'z\'\nD=plain # note\n\n', 'f'), { A: '1', B: 'x y', C: 'z', D: 'plain' });
    assert.deepEqual(parseVarsFile('{"A":"1","B":2}', 'f'), { A: '1', B: '2' });
    assert.throws(() => parseVarsFile('not a line', 'f.env'), /f\.env:1: expected KEY=VALUE/);
    assert.throws(() => parseVarsFile('{"A":{}}', 'f.json'), /A must be a string/);
  });

  test('lint reports every job, with file:line:col, and settings/claim locks when given variables', () => {
    const varsFile = join(dir, 'vars.json');
    writeFileSync(varsFile, JSON.stringify(f7Variables()));
    const cfgFile = join(dir, 'ci-oidc.yaml');
    writeFileSync(cfgFile, 'issuer:\n  issuerUrl: https://ci.example.com\n  groups:\n    acme:\n      claims:\n        - {name: cost_center, value: cc-1}\n');
    const yaml = 'ok:\n  id_tokens:\n    A:\n      aud: a\nbad:\n  id_tokens:\n    A:\n      aud: a\n      extra: 1\nlocked:\n  jwt_claims:\n    cost_center: free\n  id_tokens:\n    A:\n      aud: a\nempty:\n  id_tokens:\n    A:\n      aud: $NOPE\n';
    const plain = lint(yaml, '.gitlab-ci.yml', {});
    assert.deepEqual(plain.map((r) => [r.job, r.ok]), [['ok', true], ['bad', false], ['locked', true], ['empty', true]]);
    assert.match(plain[1]!.message!, /^\.gitlab-ci\.yml:9:7: bad\.id_tokens\.A\.extra: unknown key/);
    const full = lint(yaml, '.gitlab-ci.yml', { vars: varsFile, config: cfgFile });
    assert.deepEqual(full.map((r) => [r.job, r.ok, r.code ?? '']), [['ok', true, ''], ['bad', false, 'id_token_config_error'], ['locked', false, 'claim_immutable'], ['empty', false, 'id_token_config_error']]);
    assert.match(full[2]!.message!, /claim cost_center is locked by group acme/);
    assert.deepEqual(lint('a: [', 'x.yml', {}).map((r) => r.code), ['id_token_config_error']);
  });

  test('decode prints header and claims; malformed input is a usage error', async () => {
    const h = await buildIssuer({});
    const { token } = h.module.mint({ variables: f7Variables(), aud: 'a' });
    const d = decodeToken(token) as { header: Record<string, unknown>; claims: Record<string, unknown> };
    assert.equal(d.header.alg, 'RS256');
    assert.equal(d.claims.project_path, 'acme/platform/api');
    assert.throws(() => decodeToken('a.b'), /three base64url segments/);
    assert.throws(() => decodeToken('e30.%%%.x'), /three base64url segments/);
    await h.close();
  });

  test('issuer export writes both documents and warns when an old copy names another issuer (#429159)', async () => {
    const h = await buildIssuer({ issuer: { algorithms: ['ES256'] } });
    const out = join(dir, 'public');
    const first = exportDiscovery(h.module, out);
    assert.deepEqual(first.warnings, []);
    assert.equal(first.files.length, 3);
    const disc = JSON.parse(readFileSync(join(out, '.well-known', 'openid-configuration'), 'utf8')) as Record<string, unknown>;
    assert.equal(disc.issuer, 'https://ci.example.com');
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'oauth', 'discovery', 'keys'), 'utf8')), h.module.jwks());
    assert.deepEqual(JSON.parse(readFileSync(join(out, '-', 'jwks'), 'utf8')), h.module.jwks());
    writeFileSync(join(out, '.well-known', 'openid-configuration'), JSON.stringify({ issuer: 'https://ci.example.com/' }));
    assert.match(exportDiscovery(h.module, out).warnings.join(), /names issuer https:\/\/ci\.example\.com\/, the tokens carry https:\/\/ci\.example\.com/);
    await h.close();
  });
});

describe('issuer configuration is validated at start', () => {
  const issues = (issuer: Record<string, unknown>): string => {
    try {
      parseConfig({ issuer });
      return '';
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.issues.join('\n');
    }
  };
  test('issuerUrl: https, no trailing slash, no query or userinfo (http only on loopback)', () => {
    assert.match(issues({ issuerUrl: 'https://ci.example.com/' }), /issuer\.issuerUrl: must not end with "\/"/);
    assert.match(issues({ issuerUrl: 'http://ci.example.com' }), /must be https/);
    assert.match(issues({ issuerUrl: 'https://ci.example.com?x=1' }), /query/);
    assert.match(issues({ issuerUrl: 'https://u:p@ci.example.com' }), /userinfo/);
    assert.equal(issues({ issuerUrl: 'http://127.0.0.1:8080' }), '');
  });
  test('algorithms: only RS256, ES256, EdDSA (F1)', () => {
    assert.match(issues({ algorithms: ['HS256'] }), /issuer\.algorithms\.0/);
    assert.match(issues({ algorithms: ['none'] }), /issuer\.algorithms\.0/);
    assert.match(issues({ algorithms: [] }), /issuer\.algorithms/);
  });
  test('rotation: pre-publication at least 48 h, retention grace at least 24 h', () => {
    assert.match(issues({ rotation: { prePublishHours: 24 } }), /issuer\.rotation\.prePublishHours/);
    assert.match(issues({ rotation: { retentionGraceHours: 1 } }), /issuer\.rotation\.retentionGraceHours/);
  });
  test('ciSystems: exactly one credential form, unique names, no plaintext secret key', () => {
    assert.match(issues({ ciSystems: [{ name: 'a' }] }), /set exactly one of tokenSha256/);
    assert.match(issues({ ciSystems: [{ name: 'a', token: 'secret' }] }), /unknown key\(s\) "token"/);
    assert.match(issues({ ciSystems: [{ name: 'a', tokenEnv: 'A' }, { name: 'a', tokenEnv: 'B' }] }), /names must be unique/);
    assert.match(issues({ ciSystems: [{ name: 'a', tokenSha256: 'abc' }] }), /64 lowercase hex/);
  });
  test('lifetimes and project pins', () => {
    assert.match(issues({ maxIdTokenLifetime: 30 }), /issuer\.maxIdTokenLifetime/);
    assert.match(issues({ projects: { 'a/b': { id: '0' } } }), /decimal project ID/);
    assert.match(issues({ groups: { 'bad path/x': {} } }), /issuer\.groups\.bad path\/x: Invalid key/);
  });
});

describe('settings pins', () => {
  test('settings pinned to another project ID refuse to mint (settings_id_mismatch)', async () => {
    const h = await buildIssuer({ issuer: { projects: { 'acme/platform/api': { id: '21', subTemplate: { components: ['project_id'] } } } } });
    assert.throws(() => h.module.mint({ variables: f7Variables(), aud: 'a' }), (e: Error & { code?: string; status?: number }) => e.code === 'settings_id_mismatch' && e.status === 403);
    await h.close();
  });
});

describe('CI-system credentials and instance host', () => {
  test('tokenSha256: the credential is compared as a SHA-256 digest; unknown and malformed ones are 401', async () => {
    const { createHash } = await import('node:crypto');
    const secret = 'a-long-ci-system-credential-for-tests-0123456789';
    const h = await buildIssuer({ issuer: { ciSystems: [{ name: 'hashed', tokenSha256: createHash('sha256').update(secret).digest('hex') }, { name: 'short', tokenEnv: 'SHORT' }] }, env: { SHORT: 'too-short' } });
    assert.equal(h.module.service.authenticateCiSystem(`Bearer ${secret}`).name, 'hashed');
    for (const bad of [undefined, '', 'Bearer', `Basic ${secret}`, `Bearer ${secret}x`, 'Bearer too-short']) {
      assert.throws(() => h.module.service.authenticateCiSystem(bad), (e: Error & { code?: string; status?: number }) => e.code === 'ci_system_unauthorized' && e.status === 401, String(bad));
    }
    await h.close();
  });

  test('instanceHost wins for ci_config_ref_uri, and a job reporting another CI_SERVER_HOST is refused', async () => {
    const h = await buildIssuer({ issuer: { instanceHost: 'git.internal.example' } });
    const vars = { ...f7Variables(), CI_CONFIG_PATH: '.gitlab-ci.yml', CI_OIDC_CONFIG_SOURCE: 'repository_source' };
    delete (vars as Record<string, string | undefined>).CI_SERVER_HOST;
    assert.equal(h.module.mint({ variables: vars, aud: 'a' }).claims.ci_config_ref_uri, 'git.internal.example/acme/platform/api//.gitlab-ci.yml@refs/heads/main');
    assert.throws(() => h.module.mint({ variables: { ...vars, CI_SERVER_HOST: 'evil.example' }, aud: 'a' }), /CI_SERVER_HOST is evil\.example, but issuer\.instanceHost is git\.internal\.example/);
    assert.equal(await h.module.ready!(), true);
    await h.close();
  });
});

describe('the ci-oidc binary', () => {
  test('issue prints {"NAME": jwt}; decode and keys list read the same store', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const run = promisify(execFile);
    const work = mkdtempSync(join(tmpdir(), 'ci-oidc-issuer-bin-'));
    try {
      const env = { ...process.env, CI_OIDC_KEK: Buffer.alloc(32, 7).toString('base64'), NO_COLOR: '1' };
      writeFileSync(join(work, 'job.env'), Object.entries(f7Variables()).map(([k, v]) => `${k}=${v}`).join('\n'));
      writeFileSync(join(work, '.gitlab-ci.yml'), 'deploy:\n  id_tokens:\n    VAULT_ID_TOKEN:\n      aud: https://vault.example.com\n');
      const bin = join(process.cwd(), 'bin', 'ci-oidc.js');
      const opts = { cwd: work, env, encoding: 'utf8' as const, timeout: 60000 };
      const issued = JSON.parse((await run(process.execPath, [bin, 'issue', '--vars', 'job.env', '--data-dir', 'data'], opts)).stdout) as Record<string, string>;
      assert.deepEqual(Object.keys(issued), ['VAULT_ID_TOKEN']);
      const decoded = JSON.parse((await run(process.execPath, [bin, 'decode', issued.VAULT_ID_TOKEN!], opts)).stdout) as { header: { kid: string }; claims: { aud: string } };
      assert.equal(decoded.claims.aud, 'https://vault.example.com');
      const keys = JSON.parse((await run(process.execPath, [bin, 'keys', 'list', '--json', '--data-dir', 'data'], opts)).stdout) as { kid: string; state: string }[];
      assert.deepEqual(keys.map((k) => [k.kid, k.state]), [[decoded.header.kid, 'active']]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
