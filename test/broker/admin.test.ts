import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { appendAudit } from '../../src/broker/audit.ts';
import { createStoreRateLimiter, createSyncedRateLimiter } from '../../src/store/rate-limit.ts';
import { exchange } from '../../src/cli/commands/broker.ts';
import { forEachStore, type TestStore } from '../helpers/store.ts';
import { startPublisherBroker, type TestBroker, type TestIssuer } from './fixtures.ts';

const ADMIN = 'c'.repeat(48);
const BROKER_AUD = 'https://broker.example.test';

forEachStore((kind, open) => {
  let store: TestStore;
  let broker: TestBroker;
  let gitlab: TestIssuer;
  const admin = (method: string, path: string, body?: unknown, token = ADMIN) =>
    fetch(`${broker.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });

  before(async () => {
    store = await open();
    ({ broker, gitlab } = await startPublisherBroker(store, { broker: { adminToken: ADMIN, rateLimit: { perClient: 40 } } }));
  });
  after(async () => {
    await broker.close();
    await store.close();
  });

  test(`${kind}: admin API needs the bearer token; OpenAPI is served`, async () => {
    assert.equal((await admin('GET', '/admin/v1/roles', undefined, 'wrong')).status, 401);
    assert.equal((await fetch(`${broker.url}/admin/v1/roles`)).status, 401);
    const spec = (await (await fetch(`${broker.url}/admin/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    assert.equal(spec.openapi, '3.1.0');
    assert.ok(spec.paths['/admin/v1/audit'] && spec.paths['/admin/v1/roles/import']);
    const issuers = (await (await admin('GET', '/admin/v1/issuers')).json()) as { issuers: { id: string }[] };
    assert.deepEqual(issuers.issuers.map((i) => i.id), ['gitlab.com']);
  });

  test(`${kind}: roles through the admin API, including a Vault import`, async () => {
    const put = await admin('PUT', '/admin/v1/roles/deploy', { issuer: 'gitlab.com', audiences: [BROKER_AUD], when: { all: [{ claim: 'project_id', eq: '20' }] }, grant: { type: 'oauth' } });
    assert.equal(put.status, 200, await put.clone().text());
    const bad = await admin('PUT', '/admin/v1/roles/loose', { issuer: 'gitlab.com', audiences: [BROKER_AUD], when: { all: [{ claim: 'ref', eq: 'main' }] } });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: string }).error.replace(/_/g, '-'), 'tenant-binding-missing');
    const vault = {
      role_type: 'jwt',
      bound_audiences: ['https://vault.example.test'],
      user_claim: 'user_email',
      bound_claims: { project_id: '20', ref_protected: 'true' },
      token_policies: ['ci'],
      token_explicit_max_ttl: 60,
    };
    const imp = await admin('POST', '/admin/v1/roles/import', { format: 'vault', source: vault, options: { registration: 'gitlab.com', name: 'vault-imported' } });
    assert.equal(imp.status, 200, await imp.clone().text());
    const jwt = gitlab.mint({ aud: 'https://vault.example.test' });
    const login = await fetch(`${broker.url}/v1/auth/jwt/login`, { method: 'POST', body: JSON.stringify({ role: 'vault-imported', jwt }) });
    assert.equal(login.status, 200, await login.clone().text());
    const auth = ((await login.json()) as { auth: { policies: string[]; lease_duration: number } }).auth;
    assert.deepEqual(auth.policies, ['default', 'ci']);
    assert.equal(auth.lease_duration, 60);
  });

  test(`${kind}: GitLab's AWS trust policy imports unchanged and serves STS`, async () => {
    const trust = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/gitlab.com' },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: { StringEquals: { 'gitlab.com:aud': 'https://gitlab.com', 'gitlab.com:sub': 'project_path:mygroup/myproject:ref_type:branch:ref:main' } },
        },
      ],
    };
    const roleArn = 'arn:aws:iam::123456789012:role/imported';
    const imp = await admin('POST', '/admin/v1/roles/import', { format: 'aws', source: trust, options: { registration: 'gitlab.com', name: 'aws-imported', grant: { type: 'aws', roleArn } } });
    assert.equal(imp.status, 200, await imp.clone().text());
    const form = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: roleArn, RoleSessionName: 'job-1', WebIdentityToken: gitlab.mint({ aud: 'https://gitlab.com' }) });
    const r = await fetch(`${broker.url}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    const xml = await r.text();
    assert.equal(r.status, 200, xml);
    assert.match(xml, /<Arn>arn:aws:sts::123456789012:assumed-role\/imported\/job-1<\/Arn>/);
    form.set('WebIdentityToken', gitlab.mint({ aud: 'https://gitlab.com', ref: 'dev' }));
    const denied = await fetch(`${broker.url}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    assert.equal(denied.status, 403);
    assert.match(await denied.text(), /<Code>AccessDenied<\/Code>/);
  });

  test(`${kind}: explain gives operators the trace callers never see`, async () => {
    const r = await admin('POST', '/admin/v1/explain', { token: gitlab.mint({ aud: BROKER_AUD, project_id: '21' }), role: 'deploy' });
    assert.equal(r.status, 200);
    const d = (await r.json()) as { decision: string; reason: string; candidates: { trace: unknown[] }[] };
    assert.equal(d.decision, 'deny');
    assert.equal(d.reason, 'role-denied');
    assert.ok(d.candidates[0]!.trace.length > 0);
    const p = (await (await admin('POST', '/admin/v1/explain', { token: gitlab.mint(), publisher: true })).json()) as { decision: string };
    assert.equal(p.decision, 'allow');
  });

  test(`${kind}: revoke by id, then introspection says inactive`, async () => {
    const r = await fetch(`${broker.url}/_/oidc/mint-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: gitlab.mint() }) });
    const { token } = (await r.json()) as { token: string };
    const creds = (await (await admin('GET', '/admin/v1/credentials?active=true')).json()) as { credentials: { id: string; token_hash?: string; endpoint: string }[] };
    const cred = creds.credentials.find((c) => c.endpoint === 'pypi')!;
    assert.equal(cred.token_hash, undefined, 'listings never include the hash');
    const rev = (await (await admin('POST', `/admin/v1/credentials/${cred.id}/revoke`, { reason: 'test' })).json()) as { revoked: boolean };
    assert.equal(rev.revoked, true);
    const intro = await fetch(`${broker.url}/oauth/introspect`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` }, body: new URLSearchParams({ token }) });
    assert.deepEqual(await intro.json(), { active: false });
  });

  test(`${kind}: revoke every credential minted from one ID token`, async () => {
    const claims = gitlab.claims();
    const r = await fetch(`${broker.url}/_/oidc/mint-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: gitlab.signer.sign(claims) }) });
    const { token } = (await r.json()) as { token: string };
    const rev = (await (await admin('POST', '/admin/v1/credentials/revoke', { registration: 'gitlab.com', jti: claims.jti })).json()) as { revoked: number };
    assert.equal(rev.revoked, 1);
    const intro = await fetch(`${broker.url}/oauth/introspect`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` }, body: new URLSearchParams({ token }) });
    assert.deepEqual(await intro.json(), { active: false });
    assert.equal(((await (await admin('POST', '/admin/v1/credentials/revoke', { registration: 'other', jti: claims.jti })).json()) as { revoked: number }).revoked, 0);
  });

  test(`${kind}: audit search, JSON-lines export and append-only storage`, async () => {
    const page = (await (await admin('GET', '/admin/v1/audit?outcome=allow&limit=1')).json()) as { records: { id: string }[]; next: string };
    assert.equal(page.records.length, 1);
    const next = (await (await admin('GET', `/admin/v1/audit?outcome=allow&after=${page.next}`)).json()) as { records: { id: string }[] };
    assert.ok(next.records.every((x) => x.id > page.next));
    const exp = await admin('GET', '/admin/v1/audit/export');
    assert.equal(exp.headers.get('content-type'), 'application/x-ndjson');
    const lines = (await exp.text()).trim().split('\n').map((l) => JSON.parse(l) as { outcome: string });
    assert.ok(lines.length >= 2 && lines.some((l) => l.outcome === 'allow'));
    assert.equal((await admin('GET', '/admin/v1/audit?outcome=maybe')).status, 400);
    await appendAudit(store.db, { at: 1, endpoint: 'pypi', outcome: 'deny', reason: 'x' });
    await assert.rejects(sql`update broker_audit set reason = 'y'`.execute(store.db), /append-only/);
    await assert.rejects(sql`delete from broker_audit`.execute(store.db), /append-only/);
  });

  test(`${kind}: CLI exchange --pypi writes env lines; --role prints the credential`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-cli-'));
    const envFile = join(dir, 'env');
    writeFileSync(envFile, '');
    await exchange({ broker: broker.url, pypi: true, token: gitlab.mint(), format: 'raw', appendEnv: envFile });
    const env = readFileSync(envFile, 'utf8');
    assert.match(env, /^TWINE_USERNAME=__token__\nTWINE_PASSWORD=cioidc_[A-Za-z0-9_-]{43}_[0-9a-f]{8}\nCI_OIDC_CREDENTIAL_EXPIRES=\d+\n$/);
    let out = '';
    await exchange({ broker: broker.url, role: 'deploy', token: gitlab.mint({ aud: BROKER_AUD }), format: 'raw' }, (s) => (out += s));
    assert.match(out, /^cioidc_\S+\n$/);
    await assert.rejects(exchange({ broker: broker.url, role: 'nope', token: gitlab.mint({ aud: BROKER_AUD }), format: 'raw' }, () => undefined), /invalid_request.*role-not-found/);
  });

  test(`${kind}: ci-oidc admin talks to the admin API`, { skip: kind === 'postgres' ? 'one CLI process is enough' : false }, async () => {
    const bin = new URL('../../bin/ci-oidc.js', import.meta.url).pathname;
    const run = (args: string[], env: Record<string, string> = {}) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [bin, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
      });
    const ok = await run(['admin', '--broker', broker.url, 'audit', '--outcome', 'allow', '--export'], { CI_OIDC_ADMIN_TOKEN: ADMIN });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.stdout.trim().split('\n').every((l) => (JSON.parse(l) as { outcome: string }).outcome === 'allow'));
    const denied = await run(['admin', '--broker', broker.url, 'roles', 'list'], { CI_OIDC_ADMIN_TOKEN: 'x'.repeat(40) });
    assert.equal(denied.code, 2);
    assert.match(denied.stderr, /401/);
  });

  test(`${kind}: per-client rate limit answers PyPI's 429 rate-limited`, async () => {
    let limited: Response | undefined;
    for (let i = 0; i < 60 && !limited; i++) {
      const r = await fetch(`${broker.url}/_/oidc/mint-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'x.y.z' }) });
      if (r.status === 429) limited = r;
    }
    assert.ok(limited, 'the limit was reached');
    assert.equal(limited.headers.get('retry-after'), '60');
    assert.equal(((await limited.json()) as { errors: { code: string }[] }).errors[0]!.code, 'rate-limited');
  });

  test(`${kind}: synced rate limiters share one budget, seen at the next sync`, async () => {
    const a = createSyncedRateLimiter(store.db, { limit: 3, windowSeconds: 60, syncMs: 60_000 });
    const b = createSyncedRateLimiter(store.db, { limit: 3, windowSeconds: 60, syncMs: 60_000 });
    try {
      const local = [(await a.hit('s', 600)).allowed, (await a.hit('s', 600)).allowed, (await b.hit('s', 601)).allowed];
      assert.deepEqual(local, [true, true, true]);
      await a.flush();
      await b.flush();
      await a.flush(); // a learns b's hit
      assert.equal((await a.hit('s', 602)).allowed, false, 'the other replica\'s hit is counted after the sync');
      assert.equal((await b.hit('s', 660)).allowed, true, 'a new window');
    } finally {
      a.close();
      b.close();
    }
  });

  test(`${kind}: store-backed rate limiter shares one budget`, async () => {
    const a = createStoreRateLimiter(store.db, { limit: 2, windowSeconds: 60 });
    const b = createStoreRateLimiter(store.db, { limit: 2, windowSeconds: 60 });
    const got = [(await a.hit('k', 600)).allowed, (await b.hit('k', 600)).allowed, (await a.hit('k', 601)).allowed, (await b.hit('k', 660)).allowed];
    assert.deepEqual(got, [true, true, false, true]);
  });
});
