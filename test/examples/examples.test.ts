import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CI_OIDC_REGISTRATION_ID } from '../../src/providers/ci-oidc.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

/**
 * Runs every pipeline in examples/ against a real server: the job is registered through the issuer's job
 * API as a CI system would, and each script line / run step executes in bash with the variables the
 * issuer hands the job.
 */
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const examplesDir = join(repo, 'examples');
const ciCredential = randomBytes(32).toString('hex');
const adminToken = randomBytes(32).toString('hex');
const introspectionToken = randomBytes(32).toString('hex');
const ROLE_ARN = 'arn:aws:iam::123456789012:role/examples-deploy';

let store: TestStore;
let server: TestServer;
let index: Server;
let indexUrl: string;
let binDir: string;
const uploads: { active: boolean; scope: string | undefined }[] = [];
let jobCounter = 80000;

function shim(name: string, body: string): void {
  const file = join(binDir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
}

before(async () => {
  store = await openTestStore('sqlite');
  server = await startTestServer({
    store,
    config: {
      issuer: {
        ciSystems: [{ name: 'examples', tokenSha256: createHash('sha256').update(ciCredential).digest('hex') }],
        // GitHub-style jobs get the token request URL (on-demand minting) for the audiences they use.
        projects: { 'examples/app': { idTokensOnDemand: true, allowedAudiences: ['pypi', 'sigstore'] } },
      },
      verifier: { presets: { gitlabCom: false, githubActions: false, buildkite: false } },
      broker: { adminToken, introspectionTokens: [introspectionToken] },
    },
  });
  const engine = server.parts.policy!.engine;
  for (const workflow of ['examples/gitlab/publish-pypi.gitlab-ci.yml', 'examples/github/publish.yml']) {
    await engine.createPublisher(
      { provider: 'gitlab', registration: CI_OIDC_REGISTRATION_ID, owner: 'examples', project: 'app', workflow },
      { actor: 'test', projects: ['example-package'] },
    );
  }
  const when = { all: [{ claim: 'project_path', eq: 'examples/app' }, { claim: 'ref_protected', eq: 'true' }] };
  await engine.saveRole({ name: 'examples-aws', issuer: CI_OIDC_REGISTRATION_ID, audiences: ['sts.amazonaws.com'], when, grant: { type: 'aws', roleArn: ROLE_ARN, maxTtl: 3600 } });
  await engine.saveRole({ name: 'examples-deploy', issuer: CI_OIDC_REGISTRATION_ID, audiences: ['https://vault.example.com'], when, grant: { type: 'vault', policies: ['deploy'] } });

  // A package index that accepts our credentials the way a real one would: RFC 7662 introspection.
  index = createServer((req, res) => {
    const auth = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
    const password = auth.slice(auth.indexOf(':') + 1);
    void fetch(`${server.url}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: `Bearer ${introspectionToken}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: password }),
    })
      .then((r) => r.json() as Promise<{ active: boolean; scope?: string }>)
      .then((info) => {
        uploads.push({ active: info.active, scope: info.scope });
        res.writeHead(info.active ? 200 : 403).end(info.active ? 'accepted' : 'credential not active');
      });
  });
  await new Promise<void>((r) => index.listen(0, '127.0.0.1', r));
  indexUrl = `http://127.0.0.1:${(index.address() as AddressInfo).port}/legacy/`;

  binDir = mkdtempSync(join(tmpdir(), 'ci-oidc-examples-bin-'));
  shim('ci-oidc', `exec node "${repo}/bin/ci-oidc.js" "$@"`);
  shim('npx', `if [ "$1" = ci-oidc ]; then shift; exec node "${repo}/bin/ci-oidc.js" "$@"; fi\necho "npx shim: only ci-oidc" >&2; exit 2`);
  shim('aws', `exec node "${repo}/test/examples/shims/aws.mjs" "$@"`);
  shim('twine', `exec node "${repo}/test/examples/shims/twine.mjs" "$@"`);
});

after(async () => {
  await server?.close();
  await store?.close();
  index?.close();
});

function jobContext(name: string, configPath: string): Record<string, string> {
  jobCounter += 1;
  return {
    CI_PROJECT_ID: '5100',
    CI_PROJECT_PATH: 'examples/app',
    CI_PROJECT_NAMESPACE_ID: '5000',
    CI_PROJECT_NAMESPACE: 'examples',
    CI_PROJECT_VISIBILITY: 'private',
    CI_PIPELINE_ID: String(jobCounter + 1000),
    CI_PIPELINE_SOURCE: 'push',
    CI_JOB_ID: String(jobCounter),
    CI_JOB_NAME: name,
    CI_JOB_TIMEOUT: '1800',
    CI_COMMIT_REF_NAME: 'main',
    CI_COMMIT_BRANCH: 'main',
    CI_COMMIT_REF_PROTECTED: 'true',
    CI_COMMIT_SHA: 'c0ffee0000000000000000000000000000000001',
    CI_CONFIG_PATH: configPath,
    CI_RUNNER_ID: '3',
    GITLAB_USER_ID: '9',
    GITLAB_USER_LOGIN: 'releaser',
    GITLAB_USER_EMAIL: 'releaser@example.com',
  };
}

async function registerJob(variables: Record<string, string>, ciConfig: string): Promise<Record<string, string>> {
  const res = await fetch(`${server.url}/api/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ciCredential}`, 'content-type': 'application/json' },
    body: JSON.stringify({ variables, ci_config: ciConfig }),
  });
  const body = (await res.json()) as { variables?: Record<string, string> };
  assert.equal(res.status, 201, JSON.stringify(body));
  return body.variables!;
}

function bash(script: string, env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile('bash', ['-eo', 'pipefail', '-c', script], { cwd, env, timeout: 120_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function serviceEnv(): Record<string, string> {
  return {
    PATH: `${binDir}:${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? '/tmp',
    CI_OIDC_BROKER_URL: server.url,
    CI_OIDC_CA_URL: server.url,
    VAULT_ADDR: server.url,
    PACKAGE_INDEX_URL: indexUrl,
    CI_SERVER_URL: server.url,
    CI_SERVER_FQDN: new URL(server.url).host,
  };
}

describe('GitLab examples', () => {
  const files = readdirSync(join(examplesDir, 'gitlab')).filter((f) => f.endsWith('.yml'));
  test('there are GitLab examples to run', () => assert.ok(files.length >= 4));
  for (const file of files) {
    test(`examples/gitlab/${file}`, async () => {
      const text = readFileSync(join(examplesDir, 'gitlab', file), 'utf8');
      const doc = parseYaml(text) as Record<string, { script?: string[]; variables?: Record<string, string> }>;
      const jobs = Object.entries(doc).filter(([, v]) => v && typeof v === 'object' && Array.isArray(v.script));
      assert.ok(jobs.length > 0, 'the example has a job with a script');
      for (const [name, job] of jobs) {
        const context = jobContext(name, `examples/gitlab/${file}`);
        const issued = await registerJob(context, text);
        const env = { ...serviceEnv(), ...context, ...(job.variables ?? {}), ...issued };
        const work = mkdtempSync(join(tmpdir(), 'ci-oidc-example-'));
        const result = await bash(job.script!.join('\n'), env, work);
        if (process.env.DEBUG_EXAMPLES) console.log(file, JSON.stringify(issued).slice(0, 300), result);
        assert.equal(result.code, 0, `${file} ${name} failed:\n${result.stdout}\n${result.stderr}`);
      }
    });
  }
});

describe('GitHub Actions examples', () => {
  const files = readdirSync(join(examplesDir, 'github')).filter((f) => f.endsWith('.yml'));
  test('there are GitHub examples to run', () => assert.ok(files.length >= 2));
  for (const file of files) {
    test(`examples/github/${file}`, async () => {
      const text = readFileSync(join(examplesDir, 'github', file), 'utf8');
      const doc = parseYaml(text) as { permissions?: Record<string, string>; jobs: Record<string, { env?: Record<string, string>; steps: { run?: string; uses?: string }[] }> };
      assert.equal(doc.permissions?.['id-token'], 'write', 'GitHub examples must ask for id-token: write');
      const vars: Record<string, string> = { CI_OIDC_BROKER_URL: server.url, CI_OIDC_CA_URL: server.url, PACKAGE_INDEX_URL: indexUrl };
      const expand = (s: string) => s.replace(/\$\{\{\s*vars\.([A-Z0-9_]+)\s*\}\}/g, (_, k: string) => vars[k] ?? '');
      for (const [name, job] of Object.entries(doc.jobs)) {
        const context = jobContext(name, `examples/github/${file}`);
        // A GitHub-style runner: no id_tokens, only the token request URL from on-demand minting.
        const issued = await registerJob(context, `${name}:\n  id_tokens_on_demand: true\n  script: [true]\n`);
        assert.ok(issued.ACTIONS_ID_TOKEN_REQUEST_URL, 'the issuer hands out the GitHub-style request URL');
        const work = mkdtempSync(join(tmpdir(), 'ci-oidc-example-'));
        const githubEnv = join(work, '.github_env');
        writeFileSync(githubEnv, '');
        const jobEnv = Object.fromEntries(Object.entries(job.env ?? {}).map(([k, v]) => [k, expand(String(v))]));
        for (const step of job.steps) {
          if (!step.run) continue;
          const fromFile = Object.fromEntries(
            readFileSync(githubEnv, 'utf8')
              .split('\n')
              .filter((l) => l.includes('='))
              .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
          );
          const env = {
            PATH: `${binDir}:${process.env.PATH ?? ''}`,
            HOME: process.env.HOME ?? '/tmp',
            GITHUB_ACTIONS: 'true',
            GITHUB_ENV: githubEnv,
            ACTIONS_ID_TOKEN_REQUEST_URL: issued.ACTIONS_ID_TOKEN_REQUEST_URL!,
            ACTIONS_ID_TOKEN_REQUEST_TOKEN: issued.ACTIONS_ID_TOKEN_REQUEST_TOKEN!,
            ...jobEnv,
            ...fromFile,
          };
          const result = await bash(expand(step.run), env, work);
          assert.equal(result.code, 0, `${file} step "${step.run}" failed:\n${result.stdout}\n${result.stderr}`);
        }
      }
    });
  }
});

test('uploads reached the index with an active, project-scoped credential', () => {
  assert.ok(uploads.length >= 2, `uploads: ${uploads.length}`);
  assert.ok(uploads.every((u) => u.active));
});
