import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, parseConfig, parseConfigText, publicBaseUrl } from '../../src/server/config.ts';
import { ConfigError } from '../../src/server/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-config-'));

test('no file: laptop defaults', () => {
  const { config, file } = loadConfig({ env: {}, file: undefined });
  assert.equal(file, undefined);
  assert.equal(config.server.host, '127.0.0.1');
  assert.equal(config.server.port, 8080);
  assert.equal(config.store.dataDir, './data');
});

test('a YAML file is read and validated', () => {
  const path = join(dir, 'ok.yaml');
  writeFileSync(path, 'server:\n  port: 9090\n  publicUrl: https://ci-oidc.example.com\n');
  const { config } = loadConfig({ file: path, env: {} });
  assert.equal(config.server.port, 9090);
  assert.equal(publicBaseUrl(config), 'https://ci-oidc.example.com');
});

test('an unknown key is an error naming the key and the fix', () => {
  assert.throws(
    () => parseConfig({ server: { prot: 1 } }),
    (err: unknown) => err instanceof ConfigError && /server: unknown key\(s\) "prot"/.test(err.message),
  );
  assert.throws(
    () => parseConfig({ sever: {} }),
    (err: unknown) => err instanceof ConfigError && /unknown key\(s\) "sever"/.test(err.message),
  );
});

test('a wrong type names the key', () => {
  assert.throws(
    () => parseConfig({ server: { port: 'eighty' } }),
    (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.startsWith('server.port:')),
  );
});

test('YAML syntax errors and duplicate keys are refused', () => {
  assert.throws(() => parseConfigText('server:\n  port: 1\n  port: 2\n'), ConfigError);
  assert.throws(() => parseConfigText('server: [unclosed'), ConfigError);
  assert.throws(() => parseConfigText('- a list'), ConfigError);
});

test('a missing config file is a clear start-up error', () => {
  assert.throws(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} }), /does not exist/);
});

test('environment overrides: CI_OIDC_<SECTION>_<KEY>, DATABASE_URL, then flags win', () => {
  const env = { CI_OIDC_SERVER_PORT: '7000', CI_OIDC_SERVER_LOG_LEVEL: 'debug', DATABASE_URL: 'postgres://u@h/db' };
  const { config } = loadConfig({ env, file: undefined });
  assert.equal(config.server.port, 7000);
  assert.equal(config.server.logLevel, 'debug');
  assert.equal(config.store.url, 'postgres://u@h/db');
  const flagged = loadConfig({ env, file: undefined, overrides: { server: { port: 7001 } } });
  assert.equal(flagged.config.server.port, 7001);
});
