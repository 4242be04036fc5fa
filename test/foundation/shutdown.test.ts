import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

test('ci-oidc serve answers, then drains and exits 0 on SIGTERM', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ci-oidc-serve-'));
  const child = spawn(process.execPath, [join(repo, 'bin/ci-oidc.js'), 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'info'], {
    env: { ...process.env, CI_OIDC_VERIFIER_PRESETS: '{gitlabCom: false, githubActions: false, buildkite: false}' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise<string>((ready, fail) => {
    child.stdout.on('data', (c: Buffer) => {
      log += c.toString();
      const m = /"url":"(http:\/\/[^"]+)".*"msg":"ci-oidc listening"/.exec(log);
      if (m) ready(m[1]!);
    });
    child.stderr.on('data', (c: Buffer) => (log += c.toString()));
    child.once('exit', (code) => fail(new Error(`serve exited early (${code}):\n${log}`)));
  });
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  const ready = await fetch(`${url}/readyz`);
  assert.equal(ready.status, 200);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.match(log, /shutting down/);
  assert.match(log, /"msg":"stopped"/);
});

test('a bad config file stops start-up with exit 2 and names the key', async () => {
  const child = spawn(process.execPath, [join(repo, 'bin/ci-oidc.js'), 'serve', '--port', 'eighty'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 2);
  assert.match(err, /--port eighty is not a port number/);
});
