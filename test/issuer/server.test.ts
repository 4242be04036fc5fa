import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import * as core from '@actions/core';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { buildIssuer, decodePayload, f7Variables, testClock, type IssuerHarness } from './helpers.ts';
import { openTestStore, storeSkipReason } from '../helpers/store.ts';

const execFileAsync = promisify(execFile);
const CI_SECRET = 'ci-system-credential-0123456789abcdef';
const ISSUER_BASE = {
  ciSystems: [{ name: 'runner', tokenEnv: 'CI_OIDC_TEST_CI_SECRET' }, { name: 'other', tokenEnv: 'CI_OIDC_TEST_OTHER', namespaces: ['other-group'] }],
  onDemandRateLimit: 5,
  projects: { 'acme/platform/api': { allowedAudiences: ['https://extra.example.com'] } },
};
const ENV = { CI_OIDC_TEST_CI_SECRET: CI_SECRET, CI_OIDC_TEST_OTHER: 'other-ci-system-credential-0123456789' };

async function call(h: IssuerHarness, method: string, path: string, options: { body?: unknown; auth?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.auth) headers.authorization = options.auth;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${h.url!}${path}`, { method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
}

let jobCounter = 1000;
function jobVars(extra: Record<string, string> = {}): Record<string, string> {
  return { ...f7Variables(), CI_JOB_ID: String(++jobCounter), ...extra };
}

const CI_YAML = 'default:\n  id_tokens:\n    DEFAULT_TOKEN:\n      aud: https://default.example.com\ndeploy:\n  id_tokens_on_demand: true\n  jwt_claims:\n    team: $TEAM\n  id_tokens:\n    VAULT_ID_TOKEN:\n      aud: https://vault.example.com\n    STS_TOKEN:\n      aud: ["https://sts.example.com", "$AUD_EXTRA"]\n      lifetime: 120\n';

describe('issuer HTTP API', () => {
  let h: IssuerHarness;
  before(async () => {
    h = await buildIssuer({ http: true, issuer: ISSUER_BASE, env: ENV });
  });
  after(async () => h.close());

  test('discovery: issuer equals iss byte for byte, jwks_uri on the same origin, cache headers (F6)', async () => {
    const res = await call(h, 'GET', '/.well-known/openid-configuration');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=3600, must-revalidate');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(res.body.issuer, h.url);
    assert.equal(res.body.jwks_uri, `${h.url!}/oauth/discovery/keys`);
    assert.deepEqual(res.body.response_types_supported, ['id_token']);
    assert.deepEqual(res.body.subject_types_supported, ['public']);
    assert.deepEqual(res.body.id_token_signing_alg_values_supported, ['RS256']);
    assert.ok(res.body.claims_supported.includes('project_path') && res.body.claims_supported.includes('ci_config_sha'));
    const token = h.module.mint({ variables: jobVars(), aud: 'x' }).token;
    assert.equal(decodePayload(token).iss, res.body.issuer);
  });

  test('JWKS at /oauth/discovery/keys and /-/jwks: public members only, with kid, use and alg', async () => {
    const a = await call(h, 'GET', '/oauth/discovery/keys');
    const b = await call(h, 'GET', '/-/jwks');
    assert.deepEqual(a.body, b.body);
    assert.equal(a.headers.get('cache-control'), 'public, max-age=3600, must-revalidate');
    assert.equal(b.headers.get('access-control-allow-origin'), '*');
    for (const k of a.body.keys as Record<string, unknown>[]) {
      assert.equal(k.use, 'sig');
      assert.equal(k.alg, 'RS256');
      assert.equal(typeof k.kid, 'string');
      assert.deepEqual(Object.keys(k).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use']);
    }
  });

  test('POST /api/v1/jobs needs the CI-system credential', async () => {
    const body = { variables: jobVars(), ci_config: CI_YAML };
    assert.equal((await call(h, 'POST', '/api/v1/jobs', { body })).body.error, 'ci_system_unauthorized');
    const wrong = await call(h, 'POST', '/api/v1/jobs', { body, auth: `Bearer ${CI_SECRET}x` });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'ci_system_unauthorized');
    const scoped = await call(h, 'POST', '/api/v1/jobs', { body, auth: `Bearer ${ENV.CI_OIDC_TEST_OTHER}` });
    assert.equal(scoped.status, 403);
    assert.equal(scoped.body.error, 'ci_system_forbidden');
  });

  test('registers a job: one signed token per name, verified with jose through discovery', async () => {
    const res = await call(h, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: jobVars(), job_variables: { AUD_EXTRA: 'https://sts2.example.com' }, ci_config: CI_YAML } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Object.keys(res.body.id_tokens), ['VAULT_ID_TOKEN', 'STS_TOKEN']);
    assert.match(res.body.job_token, /^cioidc_job_/);
    assert.equal(res.body.variables.ACTIONS_ID_TOKEN_REQUEST_URL, `${h.url!}/api/v1/jobs/${String(jobCounter)}/id_token?api-version=1`);
    const jwks = createRemoteJWKSet(new URL(`${h.url!}/oauth/discovery/keys`));
    const now = new Date(h.clock.now() * 1000);
    const vault = await jwtVerify(res.body.id_tokens.VAULT_ID_TOKEN, jwks, { issuer: h.url!, audience: 'https://vault.example.com', currentDate: now, algorithms: ['RS256'] });
    assert.equal(vault.payload.exp! - vault.payload.iat!, 300);
    const sts = await jwtVerify(res.body.id_tokens.STS_TOKEN, jwks, { issuer: h.url!, currentDate: now });
    assert.deepEqual(sts.payload.aud, ['https://sts.example.com', 'https://sts2.example.com']);
    assert.equal(sts.payload.exp! - sts.payload.iat!, 120);
    const sameId = String(jobCounter);
    const dup = await call(h, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: { ...jobVars(), CI_JOB_ID: sameId }, job_variables: { AUD_EXTRA: 'x' }, ci_config: CI_YAML } });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error, 'job_exists');
    assert.match(await h.ctx.metrics.registry.getSingleMetricAsString('ci_oidc_issuer_tokens_minted_total'), /kind="job"} [1-9]/);
  });

  test('configuration errors are 400 with the code and file:line:col; context errors name the variable', async () => {
    const bad = await call(h, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: jobVars(), ci_config: 'deploy:\n  id_tokens:\n    A:\n      aud: a\n      scope: x\n' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'id_token_config_error');
    assert.match(bad.body.message, /^\.gitlab-ci\.yml:5:7: deploy\.id_tokens\.A\.scope/);
    const ctx = await call(h, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: jobVars({ CI_COMMIT_SHA: 'nope' }) } });
    assert.equal(ctx.status, 400);
    assert.equal(ctx.body.error, 'job_context_invalid');
    assert.match(ctx.body.message, /CI_COMMIT_SHA/);
    const shape = await call(h, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: jobVars(), extra: 1 } });
    assert.equal(shape.body.error, 'request_invalid');
    const both = await call(h, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: jobVars(), ci_config: 'a: {}', id_tokens: {} } });
    assert.equal(both.body.error, 'request_invalid');
  });

  test('just the id_tokens, without a CI configuration', async () => {
    const res = await call(h, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: jobVars(), id_tokens: { PYPI: { aud: 'pypi' }, AWS: { aud: ['sts.amazonaws.com'], lifetime: 60 } } } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(decodePayload(res.body.id_tokens.PYPI).aud, 'pypi');
    assert.deepEqual(decodePayload(res.body.id_tokens.AWS).aud, ['sts.amazonaws.com']);
    const none = await call(h, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: jobVars() } });
    assert.deepEqual(none.body.id_tokens, {}, 'a job without id_tokens gets no tokens (legacy variables are off)');
  });

  async function register(ciConfig = CI_YAML, extra: Record<string, string> = {}) {
    const res = await call(h, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: jobVars(extra), job_variables: { AUD_EXTRA: 'https://sts2.example.com', TEAM: 'web' }, ci_config: ciConfig } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { job_id: string; job_token: string; expires_at: number; variables: Record<string, string> };
  }

  test('on-demand API: POST /api/v1/job/id_tokens with a declared audience (R1)', async () => {
    const job = await register();
    const res = await call(h, 'POST', '/api/v1/job/id_tokens', { auth: `Bearer ${job.job_token}`, body: { aud: 'https://vault.example.com', lifetime: 90 } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const claims = decodePayload(res.body.token);
    assert.equal(claims.aud, 'https://vault.example.com');
    assert.equal(res.body.expires_at, claims.exp);
    assert.equal((claims.exp as number) - (claims.iat as number), 90);
    assert.equal(claims.job_id, job.job_id);
    assert.equal(claims.team, 'web', 'job-level jwt_claims (expanded at registration) are carried by on-demand tokens');
    const legacy = await call(h, 'POST', '/api/v4/job/id_token', { headers: { 'job-token': job.job_token }, body: { aud: ['https://extra.example.com'] } });
    assert.equal(legacy.status, 201, 'project allowedAudiences widen the set; JOB-TOKEN header accepted');
    const defaultLife = decodePayload((await call(h, 'POST', '/api/v1/job/id_tokens', { auth: `Bearer ${job.job_token}`, body: { aud: 'https://vault.example.com' } })).body.token);
    assert.equal((defaultLife.exp as number) - (defaultLife.iat as number), 300);
  });

  test('on-demand API errors: aud_required, aud_not_allowed, lifetime_invalid, job_token_invalid', async () => {
    const job = await register();
    const auth = `Bearer ${job.job_token}`;
    assert.equal((await call(h, 'POST', '/api/v1/job/id_tokens', { auth, body: {} })).body.error, 'aud_required');
    const notAllowed = await call(h, 'POST', '/api/v1/job/id_tokens', { auth, body: { aud: 'https://evil.example.com' } });
    assert.equal(notAllowed.status, 403);
    assert.equal(notAllowed.body.error, 'aud_not_allowed');
    assert.equal((await call(h, 'POST', '/api/v1/job/id_tokens', { auth, body: { aud: '*' } })).status, 403);
    assert.equal((await call(h, 'POST', '/api/v1/job/id_tokens', { auth, body: { aud: Array.from({ length: 11 }, () => 'a') } })).status, 400);
    assert.equal((await call(h, 'POST', '/api/v1/job/id_tokens', { auth, body: { aud: 'x'.repeat(10000) } })).status, 400);
    assert.equal((await call(h, 'POST', '/api/v1/job/id_tokens', { auth, body: { aud: 'https://vault.example.com', lifetime: 5 } })).body.error, 'lifetime_invalid');
    const bad = await call(h, 'POST', '/api/v1/job/id_tokens', { auth: 'Bearer cioidc_job_nope', body: { aud: 'https://vault.example.com' } });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error, 'job_token_invalid');
    assert.equal((await call(h, 'POST', '/api/v1/job/id_tokens', { body: { aud: 'a' } })).status, 401);
  });

  test('on-demand minting is opt-in (403 on_demand_disabled)', async () => {
    const job = await register('deploy:\n  id_tokens:\n    A:\n      aud: a\n');
    assert.equal(job.variables.ACTIONS_ID_TOKEN_REQUEST_URL, undefined);
    const res = await call(h, 'POST', '/api/v1/job/id_tokens', { auth: `Bearer ${job.job_token}`, body: { aud: 'a' } });
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'on_demand_disabled');
  });

  test('GitHub-compatible request URL works with the real @actions/core getIDToken()', async () => {
    const job = await register();
    const saved = { url: process.env.ACTIONS_ID_TOKEN_REQUEST_URL, token: process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN };
    process.env.ACTIONS_ID_TOKEN_REQUEST_URL = job.variables.ACTIONS_ID_TOKEN_REQUEST_URL!;
    process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN = job.variables.ACTIONS_ID_TOKEN_REQUEST_TOKEN!;
    // getIDToken() prints ::add-mask:: commands on stdout; keep them out of the test report.
    const write = process.stdout.write.bind(process.stdout);
    const masked: string[] = [];
    process.stdout.write = ((chunk: string | Uint8Array) => {
      masked.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      const token = await core.getIDToken('https://vault.example.com');
      const claims = decodePayload(token);
      assert.equal(claims.aud, 'https://vault.example.com');
      assert.equal(claims.iss, h.url);
      assert.equal(claims.job_id, job.job_id);
      assert.ok(masked.some((l) => l.includes('::add-mask::')));
      const dflt = decodePayload(await core.getIDToken());
      assert.equal(dflt.aud, `${h.url!}/acme/platform`, 'GitHub mode default audience: <instance URL>/<namespace_path>');
      await assert.rejects(core.getIDToken('https://evil.example.com'), /Failed to get ID Token/);
    } finally {
      process.stdout.write = write;
      if (saved.url === undefined) delete process.env.ACTIONS_ID_TOKEN_REQUEST_URL;
      else process.env.ACTIONS_ID_TOKEN_REQUEST_URL = saved.url;
      if (saved.token === undefined) delete process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
      else process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN = saved.token;
    }
    const viaPost = await call(h, 'POST', `/api/v1/jobs/${job.job_id}/id_token?api-version=1&audience=${encodeURIComponent('https://vault.example.com')}&lifetime=120`, { auth: `bearer ${job.job_token}` });
    assert.equal(viaPost.status, 200);
    const c = decodePayload(viaPost.body.value);
    assert.equal((c.exp as number) - (c.iat as number), 120);
    const otherJob = await call(h, 'GET', `/api/v1/jobs/1/id_token?api-version=1&audience=a`, { auth: `bearer ${job.job_token}` });
    assert.equal(otherJob.status, 401);
  });

  test('rate limit: 429 above the per-job limit per minute', async () => {
    const job = await register();
    const auth = `Bearer ${job.job_token}`;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(h, 'POST', '/api/v1/job/id_tokens', { auth, body: { aud: 'https://vault.example.com' } })).status);
    assert.deepEqual(statuses, [201, 201, 201, 201, 201, 429]);
    h.clock.advance(60);
    assert.equal((await call(h, 'POST', '/api/v1/job/id_tokens', { auth, body: { aud: 'https://vault.example.com' } })).status, 201);
  });

  test('job tokens die with the job: DELETE, or the timeout, with no grace period', async () => {
    const job = await register();
    const auth = `Bearer ${job.job_token}`;
    const mint = () => call(h, 'POST', '/api/v1/job/id_tokens', { auth, body: { aud: 'https://vault.example.com' } });
    assert.equal((await mint()).status, 201);
    assert.equal((await call(h, 'DELETE', `/api/v1/jobs/${job.job_id}`, { auth: `Bearer ${CI_SECRET}` })).status, 204);
    assert.equal((await mint()).status, 401);
    assert.equal((await call(h, 'DELETE', `/api/v1/jobs/${job.job_id}`, { auth: `Bearer ${CI_SECRET}` })).status, 404);

    const timed = await register();
    const mint2 = () => call(h, 'POST', '/api/v1/job/id_tokens', { auth: `Bearer ${timed.job_token}`, body: { aud: 'https://vault.example.com' } });
    h.clock.set(timed.expires_at - 1);
    assert.equal((await mint2()).status, 201);
    h.clock.set(timed.expires_at);
    assert.equal((await mint2()).status, 401);

    const self = await register();
    assert.equal((await call(h, 'DELETE', `/api/v1/jobs/${self.job_id}`, { auth: `Bearer ${self.job_token}` })).status, 204, 'a job may end itself');
    assert.equal((await call(h, 'DELETE', `/api/v1/jobs/${job.job_id}`, { auth: `Bearer ${self.job_token}` })).status, 401);
  });

  test('reclaimed-path guard: a new project at an old path gets no tokens unless sub carries an immutable ID', async () => {
    const vars = { CI_PROJECT_PATH: 'acme/platform/reused', CI_PROJECT_ID: '5001' };
    await register('deploy:\n  id_tokens:\n    A:\n      aud: a\n', vars);
    const res = await call(h, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: jobVars({ ...vars, CI_PROJECT_ID: '5002' }), ci_config: 'deploy:\n  id_tokens:\n    A:\n      aud: a\n' } });
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'reclaimed_path');
    assert.match(res.body.message, /previously used by a different project; add project_id or namespace_id to the sub template/);
  });
});

describe('tokens verify with two independent implementations (jose and PyJWT)', () => {
  const python = ['/usr/bin/python3', 'python3'].find((bin) => spawnSync(bin, ['-c', 'import jwt, cryptography'], { stdio: 'ignore' }).status === 0);
  const skip = python ? false : 'PyJWT not installed: apt-get install -y python3-jwt (Debian) to run the cross-implementation check';

  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    test(`${alg}: PyJWT verifies against the published JWKS over HTTP`, { skip }, async () => {
      const h = await buildIssuer({ http: true, issuer: { algorithms: [alg] }, env: ENV });
      try {
        const { token } = h.module.mint({ variables: jobVars(), aud: 'https://vault.example.com' });
        const jwks = createRemoteJWKSet(new URL(`${h.url!}/-/jwks`));
        await jwtVerify(token, jwks, { issuer: h.url!, audience: 'https://vault.example.com', algorithms: [alg], currentDate: new Date(h.clock.now() * 1000) });
        const script = [
          'import json, sys, jwt',
          'url, token, alg, iss, now = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])',
          'client = jwt.PyJWKClient(url)',
          'key = client.get_signing_key_from_jwt(token)',
          // PyJWT has no injectable clock; check the time claims against the test clock ourselves.
          'claims = jwt.decode(token, key.key, algorithms=[alg], audience="https://vault.example.com", issuer=iss, options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "require": ["exp", "iat", "nbf", "jti", "sub"]})',
          'assert claims["nbf"] == claims["iat"] - 5 and claims["iat"] <= now < claims["exp"], claims',
          'print(json.dumps({"sub": claims["sub"], "kid": key.key_id}))',
        ].join('\n');
        const kid = (h.module.jwks().keys[0]!).kid;
        // Asynchronous: python fetches the JWKS from this process's server.
        const run = (t: string) => execFileAsync(python!, ['-c', script, `${h.url!}/oauth/discovery/keys`, t, alg, h.url!, String(h.clock.now())], { encoding: 'utf8', timeout: 30000 });
        const out = await run(token);
        assert.deepEqual(JSON.parse(out.stdout), { sub: 'project_path:acme/platform/api:ref_type:branch:ref:main', kid });
        const tampered = `${token.slice(0, -4)}${token.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
        await assert.rejects(run(tampered), /InvalidSignatureError|Signature verification failed/, 'PyJWT rejects a tampered signature');
      } finally {
        await h.close();
      }
    });
  }
});

describe('on-demand rate limit across replicas (PostgreSQL)', { skip: storeSkipReason('postgres') }, () => {
  test('two issuer replicas on one store spend one per-job budget', async () => {
    const store = await openTestStore('postgres');
    const clock = testClock();
    const a = await buildIssuer({ http: true, store, clock, issuer: ISSUER_BASE, env: ENV });
    const b = await buildIssuer({ http: true, store, clock, issuer: ISSUER_BASE, env: ENV });
    try {
      const res = await call(a, 'POST', '/api/v1/jobs', { auth: `Bearer ${CI_SECRET}`, body: { variables: jobVars(), job_variables: { AUD_EXTRA: 'https://sts2.example.com', TEAM: 'web' }, ci_config: CI_YAML } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const { job_id: jobId, job_token: jobToken } = res.body as { job_id: string; job_token: string };
      const mint = (h: IssuerHarness) => call(h, 'POST', '/api/v1/job/id_tokens', { auth: `Bearer ${jobToken}`, body: { aud: 'https://vault.example.com' } });
      for (let i = 0; i < 5; i++) assert.equal((await mint(a)).status, 201);
      const row = await store.db.selectFrom('broker_rate_limits').select('count').where('key', '=', `issuer-on-demand:${jobId}`).executeTakeFirst();
      assert.equal(Number(row?.count), 5, 'counted in the store, not in the replica');
      const other = await mint(b);
      assert.equal(other.status, 429, 'replica b sees the budget a spent');
      assert.equal(other.body.error, 'rate_limited');
    } finally {
      await a.close();
      await b.close();
      await store.close();
    }
  });
});
