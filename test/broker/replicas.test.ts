import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openTestStore, storeSkipReason, type TestStore } from '../helpers/store.ts';
import { createTestIssuer, realPolicy, testVerifier, type TestIssuer } from './fixtures.ts';

/** Two broker processes on one PostgreSQL: one jti mints exactly once under 50 parallel replays. */
describe('two broker replicas on one PostgreSQL', { skip: storeSkipReason('postgres') }, () => {
  let store: TestStore;
  let gitlab: TestIssuer;
  const children: ChildProcess[] = [];
  const urls: string[] = [];

  before(async () => {
    store = await openTestStore('postgres');
    gitlab = await createTestIssuer();
    const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(store.db)).rows[0]?.s;
    assert.ok(schema, 'test store schema');
    const policy = await realPolicy(store, testVerifier([gitlab], () => Math.floor(Date.now() / 1000)));
    await policy.createPublisher({ provider: 'gitlab', registration: 'gitlab.com', owner: 'mygroup', project: 'myproject', workflow: '.gitlab-ci.yml' }, { projects: ['sampleproject'] });
    await policy.close();
    for (let i = 0; i < 2; i++) {
      const child = spawn(process.execPath, ['--import', 'tsx', new URL('./replica-child.ts', import.meta.url).pathname], {
        env: { ...process.env, REPLICA_PG_URL: store.url, REPLICA_PG_SCHEMA: schema, REPLICA_JWKS: JSON.stringify(gitlab.jwks) },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.push(child);
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const info = JSON.parse(line) as { url: string; pid: number };
      assert.notEqual(info.pid, process.pid);
      urls.push(info.url);
    }
  });
  after(async () => {
    for (const c of children) {
      c.stdin!.end();
      if (c.exitCode === null) await once(c, 'exit');
    }
    await store.close();
  });

  test('50 parallel replays across both processes: exactly one upload token', async () => {
    const token = gitlab.mint();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        fetch(`${urls[i % 2]}/_/oidc/mint-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) }).then(async (r) => ({ status: r.status, body: (await r.json()) as { errors?: { code: string }[] } })),
      ),
    );
    assert.equal(results.filter((r) => r.status === 200).length, 1);
    for (const r of results.filter((x) => x.status !== 200)) assert.equal(r.body.errors?.[0]?.code, 'invalid-reuse-token');
    const rows = await store.db.selectFrom('broker_credentials').select('id').execute();
    assert.equal(rows.length, 1);
    const audit = await store.db.selectFrom('broker_audit').select(['outcome', 'reason']).execute();
    assert.equal(audit.length, 50);
    assert.equal(audit.filter((a) => a.outcome === 'allow').length, 1);
  });

  test('a second token is served by either replica (all state in the store)', async () => {
    const r = await fetch(`${urls[1]}/_/oidc/mint-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: gitlab.mint() }) });
    assert.equal(r.status, 200);
  });
});
