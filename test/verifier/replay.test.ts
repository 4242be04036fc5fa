import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { forEachStore } from '../helpers/store.ts';
import { createMemoryReplayStore, createSqlReplayStore, replayKey, type ReplayStore } from '../../src/verifier/replay.ts';
import { createVerifier } from '../../src/verifier/verifier.ts';
import { code, gitlabClaims, NOW, signToken, testKey } from './helpers.ts';

const rs = testKey('RS256', 'gl-1');

function replaySuite(name: string, make: (clock: () => number) => Promise<{ store: ReplayStore; close(): Promise<void> }>) {
  describe(name, () => {
    test('C7: sequential reuse, 50-way parallel reuse, reuse inside the leeway after exp', async () => {
      let now = NOW;
      const { store, close } = await make(() => now);
      try {
        const v = createVerifier({ issuers: [{ id: 'gitlab.com', issuer: 'https://gitlab.com', profile: 'gitlab', keys: { staticJwks: { keys: [rs.jwk] } } }], clock: () => now, replayStore: store });
        const single = { audiences: ['ours'], replay: 'single-use' as const };
        const t1 = signToken(gitlabClaims({ jti: 'seq-1' }), rs);
        assert.equal(await code(v.verify(t1, single)), 'accepted');
        assert.equal(await code(v.verify(t1, single)), 'replayed');
        // Reuse is fine where the endpoint allows it.
        assert.equal(await code(v.verify(t1, { audiences: ['ours'] })), 'accepted');

        const t2 = signToken(gitlabClaims({ jti: 'par-1' }), rs);
        const results = await Promise.all(Array.from({ length: 50 }, () => code(v.verify(t2, single))));
        assert.equal(results.filter((c) => c === 'accepted').length, 1, `exactly one success: ${results.join(',')}`);
        assert.equal(results.filter((c) => c === 'replayed').length, 49);

        // After exp but inside the leeway the token still verifies, so the lock must still hold.
        const exp = NOW + 3540;
        const t3 = signToken(gitlabClaims({ jti: 'late-1', exp }), rs);
        assert.equal(await code(v.verify(t3, single)), 'accepted');
        now = exp + 29;
        assert.equal(await code(v.verify(t3, single)), 'replayed');
        now = exp + 30;
        assert.equal(await code(v.verify(t3, single)), 'expired');

        // A token without jti can never pass single-use.
        now = NOW;
        assert.equal(await code(v.verify(signToken(gitlabClaims({ jti: undefined }), rs), single)), 'jti_missing');
      } finally {
        await close();
      }
    });

    test('claims expire at exp + leeway + 5 s and are purged', async () => {
      let now = NOW;
      const { store, close } = await make(() => now);
      try {
        const key = replayKey('reg', 'https://gitlab.com', 'jti-x');
        assert.equal(await store.claim(key, NOW + 100, 'reg'), true);
        assert.equal(await store.claim(key, NOW + 100, 'reg'), false);
        now = NOW + 99;
        assert.equal(await store.claim(key, NOW + 200, 'reg'), false);
        now = NOW + 100;
        assert.equal(await store.claim(key, NOW + 200, 'reg'), true, 'an expired claim is taken over atomically');
        assert.equal(await store.claim(replayKey('reg', 'https://gitlab.com', 'jti-y'), NOW + 150, 'reg'), true);
        assert.equal(await store.purge(NOW + 150), 1);
        assert.equal(await store.purge(NOW + 201), 1);
      } finally {
        await close();
      }
    });
  });
}

replaySuite('in-memory replay store', async (clock) => ({ store: createMemoryReplayStore({ clock }), close: async () => undefined }));

forEachStore((kind, open) => {
  replaySuite(`SQL replay store (${kind})`, async (clock) => {
    const s = await open();
    return { store: createSqlReplayStore(s.db, { clock }), close: () => s.close() };
  });
});

describe('replay key', () => {
  test('scoped by registration, iss and jti; unambiguous', () => {
    const k = replayKey('a', 'https://x', 'j');
    assert.match(k, /^[0-9a-f]{64}$/);
    assert.notEqual(k, replayKey('b', 'https://x', 'j'));
    assert.notEqual(k, replayKey('a', 'https://y', 'j'));
    assert.notEqual(replayKey('ab', 'c', 'd'), replayKey('a', 'bc', 'd'));
  });
});
