import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const bin = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'bin/ci-oidc.js');
const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-cli-'));

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('config check: 0 for a valid file, 2 listing every problem, --json for scripts', async () => {
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'server:\n  port: 9000\n');
  const ok = await run(['config', 'check', '-c', good, '--json']);
  assert.equal(ok.code, 0);
  assert.equal((JSON.parse(ok.stdout) as { ok: boolean }).ok, true);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'server:\n  port: nope\n  colour: red\n');
  const res = await run(['config', 'check', '-c', bad]);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /server\.port/);
  assert.match(res.stderr, /"colour"/);
});

test('config print masks secrets', async () => {
  const res = await run(['config', 'print', '--json'], { CI_OIDC_BROKER_ADMIN_TOKEN: 'a'.repeat(40), DATABASE_URL: 'postgres://u:pw@db/x' });
  assert.equal(res.code, 0);
  assert.doesNotMatch(res.stdout, /aaaaaaaa/);
  assert.doesNotMatch(res.stdout, /:pw@/);
  const shown = JSON.parse(res.stdout) as { broker: { adminToken: string } };
  assert.equal(shown.broker.adminToken, '[set]');
});

test('no token in the environment: exit 1, a hint, and no colour when not a terminal', async () => {
  const res = await run(['token', '--audience', 'pypi', '--json'], { GITHUB_ACTIONS: 'true' });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^error: .*permissions: id-token: write/m);
  assert.ok(!res.stderr.includes("\u001b["), "no ANSI colour codes");
});

test('--json is accepted by every command (a no-op where the output is JSON already)', async () => {
  const res = await run(['decode', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', '--json']);
  assert.equal(res.code, 0);
  assert.deepEqual(JSON.parse(res.stdout), { header: { alg: 'RS256' }, claims: { sub: 'x' } });
});

test('bad usage exits 2', async () => {
  const res = await run(['token']);
  assert.equal(res.code, 2);
});
