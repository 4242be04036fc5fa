import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { forEachStore, type TestStore } from '../helpers/store.ts';
import { startPublisherBroker, type TestBroker, type TestIssuer } from './fixtures.ts';

// Every column of the audit record, on the allow path and on two deny paths (one after verification,
// one before the decision): one record per attempt, the token's identity on each, a credential id only
// on the issuance.
forEachStore((kind, open) => {
  let store: TestStore;
  let broker: TestBroker;
  let gitlab: TestIssuer;

  before(async () => {
    store = await open();
    ({ broker, gitlab } = await startPublisherBroker(store));
  });
  after(async () => {
    await broker.close();
    await store.close();
  });

  const mint = (token: string) => fetch(`${broker.url}/_/oidc/mint-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  // Ids order records by second only: within one second, tell them apart by outcome.
  const recordsFor = (jti: string) => store.db.selectFrom('broker_audit').selectAll().where('jti', '=', jti).execute();

  test(`${kind}: an issuance and its replay each leave one complete audit record`, async () => {
    const claims = gitlab.claims();
    const token = gitlab.signer.sign(claims);
    const before = Math.floor(Date.now() / 1000);
    assert.equal((await mint(token)).status, 200);
    assert.equal((await mint(token)).status, 422);
    const records = await recordsFor(claims.jti as string);
    assert.equal(records.length, 2, 'one record per attempt');
    const allow = records.find((r) => r.outcome === 'allow');
    const replay = records.find((r) => r.outcome === 'deny');
    const credential = await store.db.selectFrom('broker_credentials').selectAll().where('subject_jti', '=', claims.jti as string).executeTakeFirstOrThrow();
    const identity = {
      endpoint: 'pypi',
      registration: 'gitlab.com',
      iss: claims.iss,
      sub: claims.sub,
      jti: claims.jti,
      kid: gitlab.jwks.keys[0]!.kid,
      project_id: claims.project_id,
      job_id: claims.job_id,
      pipeline_id: claims.pipeline_id,
    };
    assert.ok(allow && replay);
    assert.deepEqual(pick(allow, Object.keys(identity)), identity);
    assert.deepEqual(pick(replay, Object.keys(identity)), identity);
    assert.equal(allow.reason, 'issued');
    assert.match(allow.role!, /^publisher:/);
    assert.equal(allow.credential_id, credential.id);
    assert.equal(JSON.parse(allow.detail!).publisher, allow.role!.slice('publisher:'.length));
    assert.equal(replay.reason, 'replayed');
    assert.equal(replay.role, allow.role);
    assert.equal(replay.credential_id, null);
    assert.equal(replay.detail, null);
    for (const r of [allow, replay]) {
      assert.ok(r.at >= before && r.at <= Math.floor(Date.now() / 1000));
      assert.match(r.client_ip!, /127\.0\.0\.1$/);
      assert.match(r.request_id!, /^[0-9a-f-]{36}$/);
    }
    assert.notEqual(allow.request_id, replay.request_id);
  });

  test(`${kind}: a token without a matching publisher leaves a deny record without role or credential`, async () => {
    const claims = gitlab.claims({ namespace_path: 'othergroup' });
    assert.equal((await mint(gitlab.signer.sign(claims))).status, 422);
    const [deny, ...rest] = await recordsFor(claims.jti as string);
    assert.equal(rest.length, 0);
    assert.ok(deny);
    assert.equal(deny.outcome, 'deny');
    assert.equal(deny.registration, 'gitlab.com');
    assert.equal(deny.sub, claims.sub);
    assert.equal(deny.role, null);
    assert.equal(deny.credential_id, null);
  });

  test(`${kind}: a token that fails verification leaves a deny record without token identity`, async () => {
    const anonymous = () => store.db.selectFrom('broker_audit').selectAll().where('endpoint', '=', 'pypi').where('jti', 'is', null).execute();
    const before = await anonymous();
    assert.equal((await mint('not-a-jwt')).status, 422);
    const added = (await anonymous()).filter((r) => !before.some((b) => b.id === r.id));
    assert.equal(added.length, 1, 'one record per attempt');
    const after = added[0]!;
    assert.equal(after.outcome, 'deny');
    assert.deepEqual(pick(after, ['registration', 'iss', 'sub', 'jti', 'kid', 'role', 'credential_id']), { registration: null, iss: null, sub: null, jti: null, kid: null, role: null, credential_id: null });
    assert.match(after.request_id!, /^[0-9a-f-]{36}$/);
  });
});

function pick(row: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, row[k]]));
}
