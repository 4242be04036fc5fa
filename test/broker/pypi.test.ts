import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { forEachStore, type TestStore } from '../helpers/store.ts';
import { createTestIssuer, startPublisherBroker, type TestBroker, type TestIssuer } from './fixtures.ts';

const ADMIN = 'a'.repeat(40);

forEachStore((kind, open) => {
  let store: TestStore;
  let broker: TestBroker;
  let gitlab: TestIssuer;

  before(async () => {
    store = await open();
    ({ broker, gitlab } = await startPublisherBroker(store, { broker: { adminToken: ADMIN } }));
  });
  after(async () => {
    await broker.close();
    await store.close();
  });

  const mint = (body: unknown, raw = false) =>
    fetch(`${broker.url}/_/oidc/mint-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ? (body as string) : JSON.stringify(body) });

  test(`${kind}: GET /_/oidc/audience answers the configured audience`, async () => {
    const r = await fetch(`${broker.url}/_/oidc/audience`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { audience: 'pypi' });
  });

  test(`${kind}: a matching token mints a scoped, checksummed upload token once`, async () => {
    const token = gitlab.mint();
    const r = await mint({ token });
    assert.equal(r.status, 200);
    const body = (await r.json()) as { success: boolean; token: string; expires: number };
    assert.equal(body.success, true);
    assert.match(body.token, /^cioidc_[A-Za-z0-9_-]{43}_[0-9a-f]{8}$/);
    assert.ok(Math.abs(body.expires - (Math.floor(Date.now() / 1000) + 900)) <= 2);
    const again = await mint({ token });
    assert.equal(again.status, 422);
    assert.deepEqual(await again.json(), { message: 'Token request failed', errors: [{ code: 'invalid-reuse-token', description: 'invalid token: already used' }] });
    const stored = await store.db.selectFrom('broker_credentials').selectAll().execute();
    assert.ok(stored.every((row) => row.token_hash !== body.token && !JSON.stringify(row).includes(body.token)));
  });

  test(`${kind}: 50 parallel replays of one token mint exactly once`, async () => {
    const token = gitlab.mint();
    const results = await Promise.all(Array.from({ length: 50 }, () => mint({ token }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }))));
    const ok = results.filter((r) => r.status === 200);
    assert.equal(ok.length, 1);
    for (const r of results.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 422);
      assert.equal((r.body.errors as { code: string }[])[0]!.code, 'invalid-reuse-token');
    }
  });

  test(`${kind}: payload errors use PyPI's codes and 422`, async () => {
    const cases: [unknown, boolean, string][] = [
      ['not json', true, 'invalid-payload'],
      [{ token: 1 }, false, 'invalid-payload'],
      [{}, false, 'invalid-payload'],
      [{ token: 'abc' }, false, 'invalid-payload'],
      [{ token: gitlab.mint({ aud: ['pypi'] }) }, false, 'invalid-token'],
      [{ token: gitlab.mint({ aud: 'other' }) }, false, 'invalid-token'],
      [{ token: gitlab.mint({ exp: Math.floor(Date.now() / 1000) - 120, iat: Math.floor(Date.now() / 1000) - 400, nbf: Math.floor(Date.now() / 1000) - 400 }) }, false, 'invalid-token'],
      [{ token: gitlab.mint({ project_path: 'other/proj', namespace_path: 'other' }) }, false, 'invalid-publisher'],
      [{ token: gitlab.mint({}, { omit: ['jti'] }) }, false, 'invalid-token'],
    ];
    for (const [body, raw, code] of cases) {
      const r = await mint(body, raw);
      assert.equal(r.status, 422, JSON.stringify(body).slice(0, 60));
      const j = (await r.json()) as { message: string; errors: { code: string; description: string }[] };
      assert.equal(j.message, 'Token request failed');
      assert.equal(j.errors[0]!.code, code, JSON.stringify(j));
    }
  });

  test(`${kind}: a pending publisher is reified on first use and scopes the token to its new project`, async () => {
    const created = await fetch(`${broker.url}/admin/v1/pending-publishers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'gitlab', registration: 'gitlab.com', owner: 'pendgroup', project: 'newrepo', workflow: '.gitlab-ci.yml', projectName: 'brand-new', addedBy: 'alice' }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const claims = { namespace_path: 'pendgroup', project_path: 'pendgroup/newrepo', namespace_id: '500', project_id: '501' };
    const r = await mint({ token: gitlab.mint(claims) });
    assert.equal(r.status, 200, await r.clone().text());
    const { token } = (await r.json()) as { token: string };
    const intro = (await (await fetch(`${broker.url}/oauth/introspect`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` }, body: new URLSearchParams({ token }) })).json()) as { scope: string };
    assert.equal(intro.scope, 'project:brand-new');
    const pending = (await (await fetch(`${broker.url}/admin/v1/pending-publishers`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { pending: unknown[] };
    assert.equal(pending.pending.length, 0);
    // The reified publisher now serves later tokens as a normal one.
    assert.equal((await mint({ token: gitlab.mint(claims) })).status, 200);
  });

  test(`${kind}: unknown issuer is invalid-payload`, async () => {
    const other = await createTestIssuer('https://gitlab.example.test');
    const r = await mint({ token: other.mint() });
    const j = (await r.json()) as { errors: { code: string; description: string }[] };
    assert.deepEqual(j.errors[0], { code: 'invalid-payload', description: 'unknown trusted publishing issuer' });
  });

  test(`${kind}: introspection, revocation and the audit trail`, async () => {
    const r = await mint({ token: gitlab.mint() });
    const { token } = (await r.json()) as { token: string };
    const introspect = () =>
      fetch(`${broker.url}/oauth/introspect`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) }).then((x) => x.json() as Promise<Record<string, unknown>>);
    const live = await introspect();
    assert.equal(live.active, true);
    assert.equal(live.scope, 'project:sampleproject');
    const unauth = await fetch(`${broker.url}/oauth/introspect`, { method: 'POST', body: new URLSearchParams({ token }) });
    assert.equal(unauth.status, 401);
    const del = await fetch(`${broker.url}/_/oidc/token`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(del.status, 204);
    assert.deepEqual(await introspect(), { active: false });
    const audit = (await (await fetch(`${broker.url}/admin/v1/audit?endpoint=pypi&limit=1000`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { records: Record<string, unknown>[] };
    assert.ok(audit.records.length > 5);
    const allow = audit.records.find((x) => x.outcome === 'allow' && x.project_id === '20');
    assert.ok(allow, 'issuances are audited with their project id');
    assert.equal(allow.registration, 'gitlab.com');
    assert.equal(allow.reason, 'issued');
    assert.ok(audit.records.some((x) => x.reason === 'replayed'));
    for (const rec of audit.records) assert.ok(!JSON.stringify(rec).includes('eyJ'), 'no token in the audit log');
  });
});
