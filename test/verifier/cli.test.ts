import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gitlabClaims, signToken, testKey } from './helpers.ts';

const BIN = fileURLToPath(new URL('../../bin/ci-oidc.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ci-oidc verify', () => {
  const key = testKey('RS256', 'cli-1');
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [key.jwk] }));
  const now = Math.floor(Date.now() / 1000);
  const run = (args: string[], input?: string) => spawnSync(process.execPath, [BIN, 'verify', ...args], { encoding: 'utf8', input, timeout: 60_000 });

  test('prints the claims as JSON for a valid token (token from stdin)', () => {
    const token = signToken(gitlabClaims({ iat: now - 10, nbf: now - 15, exp: now + 300 }, 'https://gitlab.example.com'), key);
    const r = run(['-', '--issuer', 'https://gitlab.example.com', '--audience', 'ours', '--jwks', jwksFile, '--profile', 'gitlab'], token);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).project_path, 'foo/bar');
  });

  test('prints the reason code and exits 1 for a rejected token; never echoes the token', () => {
    const token = signToken(gitlabClaims({ iat: now - 10, nbf: now - 15, exp: now + 300, aud: 'other' }, 'https://gitlab.example.com'), key);
    const r = run([token, '--issuer', 'https://gitlab.example.com', '--audience', 'ours', '--jwks', jwksFile, '--profile', 'gitlab']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /aud_mismatch/);
    assert.equal(r.stderr.includes(token), false);
    assert.equal(r.stdout, '');
  });
});
