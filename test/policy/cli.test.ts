import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { F2 } from './helpers.ts';

test('ci-oidc policy eval|lint: JSON output and exit codes through the real CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-policy-cli-'));
  const claims = join(dir, 'claims.json');
  writeFileSync(claims, JSON.stringify({ ...F2, aud: 'https://gitlab.com' }));
  const role = join(dir, 'role.json');
  writeFileSync(role, JSON.stringify({ name: 'deploy', issuer: 'gitlab.com', audiences: ['https://gitlab.com'], when: { all: [{ claim: 'project_id', eq: '55235664' }, { claim: 'ref', glob: 'main*' }] } }));
  const octo = join(dir, 'octo.yaml');
  writeFileSync(octo, 'issuer: https://gitlab.com\nsubject: project_path:foo/bar:ref_type:branch:ref:dev\n');
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'policy', ...args], { encoding: 'utf8', cwd: process.cwd() });

  const allow = run('eval', '--policy', role, '--claims', claims);
  assert.equal(allow.status, 0, allow.stderr);
  const out = JSON.parse(allow.stdout) as { decision: string; selected: string; candidates: { trace: unknown[] }[] };
  assert.equal(out.decision, 'allow');
  assert.equal(out.selected, 'deploy');
  assert.ok(out.candidates[0]!.trace.length >= 2);

  const deny = run('eval', '--dialect', 'octo-sts', '--policy', octo, '--claims', claims, '--service-audience', 'https://gitlab.com');
  assert.equal(deny.status, 1, deny.stderr);
  assert.equal((JSON.parse(deny.stdout) as { reason: string }).reason, 'role-denied');

  writeFileSync(role, '{"name": "x", "when": ');
  assert.equal(run('eval', '--policy', role, '--claims', claims).status, 2);
  assert.equal(run('eval', '--dialect', 'bogus', '--policy', role, '--claims', claims).status, 2);

  const lintFile = join(dir, 'lint.json');
  writeFileSync(lintFile, JSON.stringify({ name: 'r', issuer: 'gitlab.com', audiences: ['a'], when: { claim: 'ref', glob: 'main*' } }));
  const lint = run('lint', lintFile, '--issuer', 'https://gitlab.com');
  assert.equal(lint.status, 1);
  const codes = (JSON.parse(lint.stdout) as { lints: { code: string }[] }).lints.map((l) => l.code);
  assert.ok(codes.includes('tenant-binding-missing') && codes.includes('wildcard-after-literal'), codes.join(','));
});
