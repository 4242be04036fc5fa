import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { toAuditRow } from '../../src/broker/audit.ts';
import { mintSecret, newCredentialId } from '../../src/broker/credential.ts';
import { openFastMintWriter } from '../../src/broker/sqlite-writer.ts';
import type { BrokerCredentialTable } from '../../src/store/tables/broker.ts';
import { openTestStore } from '../helpers/store.ts';

const row = (): BrokerCredentialTable => ({
  id: newCredentialId(),
  token_hash: mintSecret().hash,
  kind: 'opaque',
  endpoint: 'pypi',
  registration: 'gitlab.com',
  iss: 'https://gitlab.com',
  sub: 's',
  subject_jti: 'j',
  role: 'r',
  scope: '{}',
  metadata: '{}',
  aws_access_key_id: null,
  issued_at: 100,
  expires_at: 1000,
  revoked_at: null,
  revoked_reason: null,
});
const audit = () => toAuditRow({ at: 100, endpoint: 'pypi', outcome: 'allow', reason: 'issued' });

test('SQLite group commit: one claim per jti per batch, busy instead of waiting, nothing written on replay', async () => {
  const store = await openTestStore('sqlite');
  const writer = openFastMintWriter(store.location)!;
  try {
    const claim = { key: 'k1', registration: 'gitlab.com', expiresAt: 2000, now: 100 };
    // Same event-loop turn: one transaction, items in order.
    const results = await Promise.all([writer.write(claim, row(), audit()), writer.write(claim, row(), audit()), writer.write(null, row(), audit())]);
    assert.deepEqual(results, ['ok', 'replayed', 'ok']);
    assert.equal((await store.db.selectFrom('broker_credentials').select('id').execute()).length, 2);
    assert.equal((await store.db.selectFrom('broker_audit').select('id').execute()).length, 2);

    // Another writer holds the lock: the hot path reports busy at once (the caller takes the kysely path).
    const holder = new Database(store.location.slice('sqlite:'.length));
    holder.exec('BEGIN IMMEDIATE');
    assert.equal(await writer.write({ ...claim, key: 'k2' }, row(), audit()), 'busy');
    holder.exec('COMMIT');
    holder.close();
    assert.equal(await writer.write({ ...claim, key: 'k2' }, row(), audit()), 'ok');
    // An expired claim is taken over.
    assert.equal(await writer.write({ ...claim, now: 2001, expiresAt: 3000 }, row(), audit()), 'ok');
  } finally {
    writer.close();
    await store.close();
  }
  assert.equal(openFastMintWriter('sqlite::memory:'), undefined);
});
