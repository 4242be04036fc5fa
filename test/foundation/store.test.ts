import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { forEachStore, openReplica, type TestStore } from '../helpers/store.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { isPostgresUrl, redactUrl } from '../../src/store/db.ts';

forEachStore((kind, open) => {
  let store: TestStore;
  before(async () => {
    store = await open();
  });
  after(async () => {
    await store.close();
  });

  test(`${kind}: migrations are applied once and re-running is a no-op`, async () => {
    const again = await migrateToLatest(store.db, store.dialect, store.pgSchema);
    assert.deepEqual(again, []);
    const names = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(store.db);
    assert.ok(names.rows.some((r) => r.name === '001_foundation'));
  });

  test(`${kind}: bigint seconds come back as numbers`, async () => {
    const now = 1_800_000_000_123;
    await store.db.insertInto('ci_oidc_meta').values({ key: 'k1', value: 'v', updated_at: now }).execute();
    const row = await store.db.selectFrom('ci_oidc_meta').selectAll().where('key', '=', 'k1').executeTakeFirstOrThrow();
    assert.equal(row.updated_at, now);
    assert.equal(typeof row.updated_at, 'number');
  });

  test(`${kind}: a second pool sees the same data (replicas)`, async () => {
    await store.db.insertInto('ci_oidc_meta').values({ key: 'shared', value: 'yes', updated_at: 1 }).execute();
    const replica = await openReplica(store);
    try {
      const row = await replica.db.selectFrom('ci_oidc_meta').select('value').where('key', '=', 'shared').executeTakeFirst();
      assert.equal(row?.value, 'yes');
    } finally {
      await replica.close();
    }
  });

  test(`${kind}: primary keys are enforced`, async () => {
    await store.db.insertInto('ci_oidc_meta').values({ key: 'dup', value: 'a', updated_at: 1 }).execute();
    await assert.rejects(store.db.insertInto('ci_oidc_meta').values({ key: 'dup', value: 'b', updated_at: 1 }).execute());
  });
});

test('store URLs: postgres detection and password redaction', () => {
  assert.equal(isPostgresUrl('postgres://u@h/db'), true);
  assert.equal(isPostgresUrl('postgresql://u@h/db'), true);
  assert.equal(isPostgresUrl('sqlite:./x.db'), false);
  assert.equal(isPostgresUrl(undefined), false);
  assert.equal(redactUrl('postgres://u:secret@h:5432/db'), 'postgres://u:***@h:5432/db');
});
