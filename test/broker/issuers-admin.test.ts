import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Store } from '../../src/store/db.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { forEachStore, openReplica, type TestStore } from '../helpers/store.ts';
import { MAX_ADMIN_ISSUERS } from '../../src/verifier/stored-issuers.ts';
import { createTestIssuer, type TestIssuer } from './fixtures.ts';

/** Issuer registrations through /admin/v1/issuers on the real server: stored, applied, seen by replicas. */
const ADMIN = 'd'.repeat(48);
const SELF_HOSTED = 'https://gitlab.example.test';
const CONFIGURED = 'https://git.corp.example.test';

const serverConfig = (configured: TestIssuer) => ({
  // Two servers share one store here: without the issuer and the CA, no key sealed under one server's KEK
  // has to be read by the other.
  issuer: { enabled: false },
  ca: { enabled: false },
  verifier: {
    presets: { gitlabCom: false, githubActions: false, buildkite: false },
    issuers: [{ id: 'corp-gitlab', issuer: CONFIGURED, profile: 'gitlab' as const, keys: { staticJwks: configured.jwks as unknown as { keys: Record<string, unknown>[] } } }],
    registrationRefreshSeconds: 1,
  },
  broker: { adminToken: ADMIN, rateLimit: { perClient: 10_000, perIssuer: 10_000 } },
});

const registration = (issuer: TestIssuer, id = 'selfhosted', extra: Record<string, unknown> = {}) => ({ id, issuer: issuer.issuer, profile: 'gitlab', keys: { staticJwks: issuer.jwks }, ...extra });

interface MintResult {
  status: number;
  body: { token?: string; errors?: { code: string; description: string }[] };
}

async function poll<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  // Generous bound, no timing assertion: the refresh interval is 1 s.
  for (let i = 0; i < 300; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

forEachStore((kind, open) => {
  let store: TestStore;
  let server: TestServer;
  let selfHosted: TestIssuer;
  let configured: TestIssuer;
  const admin = (method: string, path: string, body?: unknown, base = server.url) =>
    fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const mint = async (token: string, base = server.url): Promise<MintResult> => {
    const r = await fetch(`${base}/_/oidc/mint-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    return { status: r.status, body: (await r.json()) as MintResult['body'] };
  };
  const problemsOf = async (body: unknown): Promise<{ status: number; error: string; problems: string[] }> => {
    const r = await admin('POST', '/admin/v1/issuers', body);
    const j = (await r.json()) as { error: string; problems?: string[] };
    return { status: r.status, error: j.error, problems: j.problems ?? [] };
  };
  // A refused token is audited without its (unverified) claims: count the records with the reason.
  const auditCount = async (reason: string): Promise<number> => {
    const r = (await (await admin('GET', `/admin/v1/audit?reason=${reason}&limit=1000`)).json()) as { records: unknown[] };
    return r.records.length;
  };

  before(async () => {
    store = await open();
    selfHosted = await createTestIssuer(SELF_HOSTED);
    configured = await createTestIssuer(CONFIGURED);
    server = await startTestServer({ store, config: serverConfig(configured) });
  });
  after(async () => {
    await server.close();
    await store.close();
  });

  test(`${kind}: an issuer registered through the admin API exchanges tokens until it is removed`, async () => {
    const before = mint(selfHosted.mint());
    assert.equal((await before).body.errors?.[0]?.description, 'unknown trusted publishing issuer');

    const created = await admin('POST', '/admin/v1/issuers', registration(selfHosted));
    assert.equal(created.status, 201, await created.clone().text());
    const view = ((await created.json()) as { issuer: { id: string; issuer: string; source: string; createdAt: number; registration: { keys: unknown } } }).issuer;
    assert.equal(view.id, 'selfhosted');
    assert.equal(view.issuer, SELF_HOSTED);
    assert.equal(view.source, 'admin');
    assert.equal(typeof view.createdAt, 'number');
    assert.deepEqual(view.registration.keys, { staticJwks: selfHosted.jwks });
    const row = await store.db.selectFrom('verifier_issuers').selectAll().where('id', '=', 'selfhosted').executeTakeFirstOrThrow();
    assert.equal(row.issuer, SELF_HOSTED);
    assert.equal(row.created_by, 'admin@127.0.0.1');

    const list = ((await (await admin('GET', '/admin/v1/issuers')).json()) as { issuers: { id: string; source: string }[] }).issuers;
    assert.deepEqual(list.map((i) => [i.id, i.source]).sort(), [['corp-gitlab', 'config'], ['selfhosted', 'admin']]);

    const pub = await admin('POST', '/admin/v1/publishers', { provider: 'gitlab', registration: 'selfhosted', owner: 'mygroup', project: 'myproject', workflow: '.gitlab-ci.yml', projects: ['sampleproject'] });
    assert.equal(pub.status, 201, await pub.clone().text());
    const ok = await mint(selfHosted.mint());
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.match(ok.body.token ?? '', /^cioidc_/);

    const removed = await admin('DELETE', '/admin/v1/issuers/selfhosted');
    assert.equal(removed.status, 204);
    const unknownBefore = await auditCount('issuer_unknown');
    const after = await mint(selfHosted.mint());
    assert.notEqual(after.status, 200);
    assert.equal(after.body.errors?.[0]?.code, 'invalid-payload');
    assert.equal(after.body.errors?.[0]?.description, 'unknown trusted publishing issuer');
    await poll('the audit record', async () => ((await auditCount('issuer_unknown')) > unknownBefore ? true : undefined));
    assert.equal(await store.db.selectFrom('verifier_issuers').select('id').where('id', '=', 'selfhosted').executeTakeFirst(), undefined);

    const again = await admin('DELETE', '/admin/v1/issuers/selfhosted');
    assert.equal(again.status, 404);
    assert.equal(((await again.json()) as { error: string }).error, 'not_found');

    // Registered again under the same id: verifies again (fresh key cache, same keys here).
    assert.equal((await admin('POST', '/admin/v1/issuers', registration(selfHosted))).status, 201);
    assert.equal((await mint(selfHosted.mint())).status, 200);
    assert.equal((await admin('DELETE', '/admin/v1/issuers/selfhosted')).status, 204);
  });

  test(`${kind}: invalid registrations answer 400 with every problem`, async () => {
    const missing = await problemsOf({ id: 'x' });
    assert.equal(missing.status, 400);
    assert.equal(missing.error, 'issuer_invalid');
    assert.ok(missing.problems.some((p) => p.startsWith('issuer:')), missing.problems.join('\n'));

    const several = await problemsOf(registration(selfHosted, 'several', { leeway: 100, algorithms: ['HS256'], profile: 'nope' }));
    assert.equal(several.status, 400);
    assert.ok(several.problems.length >= 3, several.problems.join('\n'));

    const unknownField = await problemsOf(registration(selfHosted, 'extra', { audiences: ['pypi'] }));
    assert.equal(unknownField.status, 400);

    const tooLax = await problemsOf(registration(selfHosted, 'lax', { requireJti: false }));
    assert.equal(tooLax.status, 400);
    assert.match(tooLax.problems.join('\n'), /requireJti may be false only for the buildkite profile/);

    const notCanonical = await problemsOf(registration(selfHosted, 'case', { issuer: 'https://GitLab.example.test' }));
    assert.equal(notCanonical.status, 400);
    assert.match(notCanonical.problems.join('\n'), /canonical/);

    assert.equal((await admin('POST', '/admin/v1/issuers', [1, 2])).status, 400);
    const list = ((await (await admin('GET', '/admin/v1/issuers')).json()) as { issuers: { id: string }[] }).issuers;
    assert.deepEqual(list.map((i) => i.id), ['corp-gitlab']);
    assert.equal(Number((await store.db.selectFrom('verifier_issuers').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n), 0);
  });

  test(`${kind}: duplicate ids and issuers answer 409; config-defined issuers cannot be removed`, async () => {
    assert.equal((await admin('POST', '/admin/v1/issuers', registration(selfHosted, 'dup'))).status, 201);
    try {
      const refused = async (body: unknown, code: string) => {
        const res = await admin('POST', '/admin/v1/issuers', body);
        assert.equal(res.status, 409);
        assert.equal(((await res.json()) as { error: string }).error, code);
      };
      await refused({ ...registration(selfHosted, 'dup'), issuer: 'https://other.example.test' }, 'issuer_id_taken');
      await refused(registration(selfHosted, 'dup2'), 'issuer_taken');
      await refused({ ...registration(selfHosted, 'corp-gitlab'), issuer: 'https://third.example.test' }, 'issuer_id_taken');
      await refused(registration(configured, 'corp-again'), 'issuer_taken');
      // The same iss for another tenant is a different registration.
      const tenant = await admin('POST', '/admin/v1/issuers', registration(selfHosted, 'dup-tenant', { tenant: 'acme' }));
      assert.equal(tenant.status, 201, await tenant.clone().text());
      assert.equal((await admin('DELETE', '/admin/v1/issuers/dup-tenant')).status, 204);
    } finally {
      assert.equal((await admin('DELETE', '/admin/v1/issuers/dup')).status, 204);
    }

    const refused = await admin('DELETE', '/admin/v1/issuers/corp-gitlab');
    assert.equal(refused.status, 409);
    const body = (await refused.json()) as { error: string; message: string };
    assert.equal(body.error, 'issuer_config_defined');
    assert.match(body.message, /server config/);
    // Still trusted: the config issuer's tokens reach policy (no publisher, so the decision is a deny).
    const r = await mint(configured.mint());
    assert.equal(r.body.errors?.[0]?.code, 'invalid-publisher');
    assert.equal((await admin('DELETE', '/admin/v1/issuers/nope')).status, 404);
  });

  test(`${kind}: the number of admin-registered issuers is bounded`, async () => {
    // Rows as another replica would have written them (this server refuses to apply them: no keys).
    const rows = Array.from({ length: MAX_ADMIN_ISSUERS }, (_, i) => ({
      id: `filler-${String(i)}`,
      issuer: `https://filler-${String(i)}.example.test`,
      tenant: null,
      issuer_key: `filler-${String(i)}`,
      profile: 'generic',
      registration: '{}',
      created_by: 'test',
      created_at: 0,
      updated_at: 0,
    }));
    await store.db.insertInto('verifier_issuers').values(rows).execute();
    try {
      const r = await admin('POST', '/admin/v1/issuers', registration(selfHosted, 'one-too-many'));
      assert.equal(r.status, 409);
      assert.equal(((await r.json()) as { error: string }).error, 'issuer_limit_reached');
    } finally {
      await store.db.deleteFrom('verifier_issuers').where('id', 'like', 'filler-%').execute();
    }
  });

  test(`${kind}: admin registrations cannot reach around the SSRF rules`, async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['http issuer with static keys', { issuer: 'http://gitlab.example.test' }, /https/],
      ['loopback literal (discovery)', { issuer: 'https://127.0.0.1', keys: 'discovery' }, /cannot be fetched/],
      ['private literal (discovery)', { issuer: 'https://10.1.2.3', keys: 'discovery' }, /cannot be fetched/],
      ['link-local jwksUri', { keys: { jwksUri: 'https://169.254.169.254/jwks' } }, /cannot be fetched/],
      ['http jwksUri', { keys: { jwksUri: 'http://gitlab.example.test/jwks' } }, /jwksUri/],
      ['test-only loopback switch', { allowInsecureLoopback: true }, /allowInsecureLoopback/],
      ['server file as JWKS', { keys: { staticJwksFile: '/etc/passwd' } }, /keys/],
      ['server file as CA', { caCertFile: '/etc/passwd' }, /caCertFile|Unrecognized/i],
      ['userinfo', { issuer: 'https://user@gitlab.example.test' }, /userinfo/],
    ];
    for (const [what, extra, expected] of cases) {
      const r = await problemsOf(registration(selfHosted, 'ssrf', extra));
      assert.equal(r.status, 400, what);
      assert.match(r.problems.join('\n'), expected, `${what}: ${r.problems.join('; ')}`);
    }

    // A host name that resolves to loopback passes the literal checks, but the hardened fetcher refuses
    // the address before connecting: the exchange fails closed and nothing reaches the local port.
    let connections = 0;
    const trap: Server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const port = (trap.address() as { port: number }).port;
    const sneaky = await createTestIssuer(`https://localhost:${port}`);
    try {
      const created = await admin('POST', '/admin/v1/issuers', { id: 'sneaky', issuer: sneaky.issuer, profile: 'gitlab', keys: 'discovery' });
      assert.equal(created.status, 201, await created.clone().text());
      const unavailableBefore = await auditCount('jwks_unavailable');
      const r = await mint(sneaky.mint());
      assert.notEqual(r.status, 200);
      await poll('the audit record', async () => ((await auditCount('jwks_unavailable')) > unavailableBefore ? true : undefined));
      assert.equal(connections, 0);
    } finally {
      await admin('DELETE', '/admin/v1/issuers/sneaky');
      await new Promise((r) => trap.close(r));
    }
  });

  test(`${kind}: a second server on the same store sees registrations and removals after its refresh`, async () => {
    let replica: Store | undefined;
    let second: TestServer | undefined;
    try {
      replica = await openReplica(store);
      second = await startTestServer({ store: replica, config: serverConfig(configured) });
      const other = second.url;
      const created = await admin('POST', '/admin/v1/issuers', registration(selfHosted, 'shared-reg'));
      assert.equal(created.status, 201, await created.clone().text());
      const pub = await admin('POST', '/admin/v1/publishers', { provider: 'gitlab', registration: 'shared-reg', owner: 'sharedgroup', project: 'myproject', workflow: '.gitlab-ci.yml', projects: ['shared-package'] });
      assert.equal(pub.status, 201, await pub.clone().text());

      await poll('the registration on the second server', async () => {
        const list = ((await (await admin('GET', '/admin/v1/issuers', undefined, other)).json()) as { issuers: { id: string; source: string }[] }).issuers;
        return list.find((i) => i.id === 'shared-reg' && i.source === 'admin');
      });
      // The second server exchanges with it (its policy index refreshes on its own interval).
      await poll('an exchange on the second server', async () => {
        const r = await mint(selfHosted.mint({ namespace_path: 'sharedgroup' }), other);
        return r.status === 200 ? r : undefined;
      });
      // Removal through the second server reaches the first.
      assert.equal((await admin('DELETE', '/admin/v1/issuers/shared-reg', undefined, other)).status, 204);
      await poll('the removal on the first server', async () => {
        const r = await mint(selfHosted.mint({ namespace_path: 'sharedgroup' }));
        return r.body.errors?.[0]?.description === 'unknown trusted publishing issuer' ? r : undefined;
      });
      // Once removed on one replica, the id is free again everywhere.
      const again = await admin('POST', '/admin/v1/issuers', registration(selfHosted, 'shared-reg'));
      assert.equal(again.status, 201);
      assert.equal((await admin('DELETE', '/admin/v1/issuers/shared-reg')).status, 204);
    } finally {
      await second?.close();
      await replica?.close();
    }
  });

  test(`${kind}: ci-oidc admin issuers add, list and remove`, { skip: kind === 'postgres' ? 'one CLI process is enough' : false }, async () => {
    const bin = new URL('../../bin/ci-oidc.js', import.meta.url).pathname;
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [bin, 'admin', '--broker', server.url, 'issuers', ...args], { env: { ...process.env, CI_OIDC_ADMIN_TOKEN: ADMIN } }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-issuers-'));
    const file = join(dir, 'issuer.json');
    writeFileSync(file, JSON.stringify(registration(selfHosted, 'from-cli')));
    const added = await run(['add', file]);
    assert.equal(added.code, 0, added.stderr);
    assert.equal((JSON.parse(added.stdout) as { issuer: { id: string } }).issuer.id, 'from-cli');
    const listed = await run(['list']);
    assert.ok((JSON.parse(listed.stdout) as { issuers: { id: string }[] }).issuers.some((i) => i.id === 'from-cli'));
    const refused = await run(['remove', 'corp-gitlab']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /409/);
    const removed = await run(['remove', 'from-cli']);
    assert.equal(removed.code, 0, removed.stderr);
  });
});
