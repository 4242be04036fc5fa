import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { renderSub } from '../../src/issuer/sub.ts';
import { resolveCustomClaims, type ClaimLevel } from '../../src/issuer/custom-claims.ts';
import { isValidRefName, parseJobContext } from '../../src/issuer/context.ts';
import { subPairs, decodeSubValue } from '../../src/providers/claim-types.ts';
import { GITLAB_SUB_COMPONENTS } from '../../src/providers/gitlab.ts';
import { f7Variables } from './helpers.ts';
import { hasControlChars } from '../../src/issuer/text.ts';

test('property: any component values render to a sub that parses back to exactly those values (F2)', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.constantFrom(...GITLAB_SUB_COMPONENTS), { minLength: 1, maxLength: 8 }),
      fc.array(fc.string({ unit: 'grapheme', maxLength: 40 }), { minLength: 8, maxLength: 8 }),
      (components, values) => {
        const claims = Object.fromEntries(components.map((c, i) => [c, values[i]!]));
        const sub = renderSub(components, claims);
        const expected = components.filter((c) => claims[c] !== '').map((c) => [c, claims[c]]);
        assert.deepEqual(expected.length === 0 ? [] : subPairs(sub, decodeSubValue), expected);
      },
    ),
    { numRuns: 500 },
  );
});

// Job-controlled levels (3, 4) cannot lock anything: their definitions are always overridable below.
test('property: an immutable claim can never be changed by any lower level', () => {
  const value = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean());
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 }), value, fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), value), { maxLength: 6 }), (lockAt, locked, attempts) => {
      const levels: ClaimLevel[] = Array.from({ length: 5 }, (_, i) => ({ level: `l${String(i)}`, definitions: [], untrusted: i >= 3 }));
      (levels[lockAt]!.definitions as { name: string; value: unknown; mutable?: boolean }[]).push({ name: 'locked_claim', value: locked, mutable: false });
      for (const [at, v] of attempts) {
        if (at !== lockAt && !levels[at]!.definitions.some((d) => d.name === 'locked_claim')) {
          (levels[at]!.definitions as { name: string; value: unknown }[]).push({ name: 'locked_claim', value: v });
        }
      }
      const lowerAttempt = levels.some((l, i) => i > lockAt && l.definitions.some((d) => d.name === 'locked_claim'));
      try {
        const r = resolveCustomClaims(levels);
        assert.ok(!lowerAttempt);
        const upper = levels.slice(0, lockAt).flatMap((l) => l.definitions);
        if (upper.length === 0) assert.deepEqual(r.claims.locked_claim, locked);
      } catch (err) {
        assert.ok(['claim_immutable', 'claim_type_changed'].includes((err as { code?: string }).code ?? ''), String(err));
      }
    }),
    { numRuns: 500 },
  );
});

test('property: hostile branch names never reach a claim unless they are valid git refs without ":"', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (branch) => {
      const vars = { ...f7Variables(), CI_COMMIT_BRANCH: branch, CI_COMMIT_REF_NAME: branch };
      let ctx;
      try {
        ctx = parseJobContext(vars);
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'job_context_invalid');
        return;
      }
      if (branch === '') return;
      assert.ok(isValidRefName(ctx.ref));
      assert.ok(!ctx.ref.includes(':') && !hasControlChars(ctx.ref));
    }),
    { numRuns: 1000 },
  );
});
