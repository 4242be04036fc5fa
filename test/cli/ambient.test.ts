import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { getAmbientToken } from '../../src/cli/ambient.ts';
import { AmbientTokenError, type AmbientIo } from '../../src/providers/ambient.ts';
import { audienceVariableName } from '../../src/providers/ambient-sources.ts';

function fakeJwt(claims: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc(claims)}.c2ln`;
}

let server: Server;
let base: string;
const seen: { url: string; auth: string | undefined; jobToken: string | undefined; body: string }[] = [];

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', auth: req.headers.authorization, jobToken: req.headers['job-token'] as string | undefined, body });
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/gh/idtoken') {
        if (req.headers.authorization !== 'bearer request-token') {
          res.writeHead(401).end('{}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: fakeJwt({ aud: url.searchParams.get('audience') }) }));
        return;
      }
      if (url.pathname === '/api/v1/job/id_tokens') {
        if (req.headers['job-token'] !== 'job-secret') {
          res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'job_token_invalid', message: 'bad job token' }));
          return;
        }
        const aud = (JSON.parse(body) as { aud: string }).aud;
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ token: fakeJwt({ aud }), expires_at: 1 }));
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

function io(env: NodeJS.ProcessEnv, exec?: AmbientIo['exec']): AmbientIo {
  return { env, fetch: globalThis.fetch, exec: exec ?? (async () => Promise.reject(new Error('not on PATH'))) };
}

const audOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { aud: unknown }).aud;

test('GitHub Actions: request URL (with its own query) plus bearer token and the audience', async () => {
  const got = await getAmbientToken(
    { audience: 'pypi' },
    io({ ACTIONS_ID_TOKEN_REQUEST_URL: `${base}/gh/idtoken?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'request-token' }),
  );
  assert.equal(got.source, 'github-actions');
  assert.equal(audOf(got.token), 'pypi');
  const last = seen.at(-1)!;
  assert.match(last.url, /api-version=2\.0/);
  assert.match(last.url, /audience=pypi/);
});

test('GitHub Actions without id-token permission: the error says what to add', async () => {
  await assert.rejects(getAmbientToken({ audience: 'pypi' }, io({ GITHUB_ACTIONS: 'true' })), (e: unknown) => {
    assert.ok(e instanceof AmbientTokenError);
    assert.equal(e.code, 'ambient_token_missing');
    assert.match(e.message, /permissions: id-token: write/);
    return true;
  });
});

test('Forgejo without OIDC: the hint names enable-openid-connect', async () => {
  await assert.rejects(getAmbientToken({ audience: 'a' }, io({ GITHUB_ACTIONS: 'true', FORGEJO_ACTIONS: 'true' })), /enable-openid-connect: true/);
});

test('GitLab id_tokens: <AUD>_ID_TOKEN as PyPI id names it, then the fallbacks', async () => {
  assert.equal(audienceVariableName('pypi'), 'PYPI_ID_TOKEN');
  assert.equal(audienceVariableName('https://ci.example.com'), 'HTTPS___CI_EXAMPLE_COM_ID_TOKEN');
  const token = fakeJwt({ aud: 'pypi' });
  const got = await getAmbientToken({ audience: 'pypi' }, io({ GITLAB_CI: 'true', PYPI_ID_TOKEN: token }));
  assert.equal(got.source, 'env:PYPI_ID_TOKEN');
  assert.equal(got.warning, undefined);
  const fallback = await getAmbientToken({ audience: 'sigstore' }, io({ SIGSTORE_ID_TOKEN: token }));
  assert.equal(fallback.source, 'env:SIGSTORE_ID_TOKEN');
  assert.match(fallback.warning ?? '', /fixed in the CI config/);
});

test('GitLab without id_tokens: the hint shows the YAML to add', async () => {
  await assert.rejects(getAmbientToken({ audience: 'pypi' }, io({ GITLAB_CI: 'true', CI_JOB_TOKEN: 'x' })), /id_tokens: \{ PYPI_ID_TOKEN/);
});

test('explicit --token and --token-env win over detection', async () => {
  const mine = fakeJwt({ aud: 'x' });
  const env = { ACTIONS_ID_TOKEN_REQUEST_URL: `${base}/gh/idtoken?a=1`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'request-token', MY_TOKEN: mine };
  assert.equal((await getAmbientToken({ audience: 'x', token: mine }, io(env))).token, mine);
  assert.equal((await getAmbientToken({ audience: 'x', tokenEnv: 'MY_TOKEN' }, io(env))).source, 'env:MY_TOKEN');
  await assert.rejects(getAmbientToken({ audience: 'x', tokenEnv: 'NOPE' }, io(env)), /NOPE: the variable is empty/);
});

test('malformed or oversized tokens are refused before use', async () => {
  await assert.rejects(getAmbientToken({ audience: 'x', token: 'not a jwt' }, io({})), (e: unknown) => (e as AmbientTokenError).code === 'ambient_token_malformed');
  await assert.rejects(getAmbientToken({ audience: 'x', token: `${'a'.repeat(20_000)}.b.c` }, io({})), /compact JWT/);
});

test('Buildkite: buildkite-agent oidc request-token with the audience', async () => {
  const calls: string[][] = [];
  const got = await getAmbientToken(
    { audience: 'sts.amazonaws.com' },
    io({ BUILDKITE_AGENT_ACCESS_TOKEN: 't', BUILDKITE_JOB_ID: 'j' }, async (file, args) => {
      calls.push([file, ...args]);
      return fakeJwt({ aud: 'sts.amazonaws.com' }) + '\n';
    }),
  );
  assert.equal(got.source, 'buildkite');
  assert.deepEqual(calls[0], ['buildkite-agent', 'oidc', 'request-token', '--audience', 'sts.amazonaws.com']);
});

test('CircleCI: the injected V2 token when its audience matches, else circleci run oidc get', async () => {
  const orgToken = fakeJwt({ aud: 'org-uuid' });
  const same = await getAmbientToken({ audience: 'org-uuid' }, io({ CIRCLE_OIDC_TOKEN_V2: orgToken, CIRCLE_OIDC_TOKEN: 'x.y.z' }));
  assert.equal(same.source, 'env:CIRCLE_OIDC_TOKEN_V2');
  const other = await getAmbientToken(
    { audience: 'pypi' },
    io({ CIRCLE_OIDC_TOKEN_V2: orgToken }, async (_file, args) => fakeJwt({ aud: (JSON.parse(args[4]!) as { aud: string }).aud })),
  );
  assert.equal(audOf(other.token), 'pypi');
  await assert.rejects(getAmbientToken({ audience: 'pypi' }, io({ CIRCLE_OIDC_TOKEN_V2: orgToken })), /circleci run oidc get/);
});

test('ci-oidc on-demand API: CI_JOB_TOKEN plus CI_OIDC_ISSUER_URL', async () => {
  const got = await getAmbientToken({ audience: 'vault' }, io({ CI_JOB_TOKEN: 'job-secret', CI_OIDC_ISSUER_URL: base }));
  assert.equal(got.source, 'ci-oidc');
  assert.equal(audOf(got.token), 'vault');
  assert.equal(seen.at(-1)!.jobToken, 'job-secret');
  await assert.rejects(getAmbientToken({ audience: 'vault' }, io({ CI_JOB_TOKEN: 'wrong', CI_OIDC_ISSUER_URL: base })), /HTTP 401: bad job token/);
});

test('nothing detected: a generic hint', async () => {
  await assert.rejects(getAmbientToken({ audience: 'a' }, io({})), /pass --token/);
  await assert.rejects(getAmbientToken({ audience: '' }, io({})), /audience/);
});
