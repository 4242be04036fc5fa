import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytesPooled } from '../../src/broker/random.ts';

test('pooled random bytes: right length, never handed out twice, across refills', () => {
  const seen = new Set<string>();
  // 3,000 draws of 16 bytes cross the 4 KiB pool boundary many times.
  for (let i = 0; i < 3000; i++) {
    const b = randomBytesPooled(16);
    assert.equal(b.length, 16);
    const hex = b.toString('hex');
    assert.ok(!seen.has(hex), 'a draw repeated');
    seen.add(hex);
  }
});

test('pooled random bytes: the returned buffer is a copy, not a view of the pool', () => {
  const a = randomBytesPooled(32);
  const copy = Buffer.from(a);
  randomBytesPooled(32);
  assert.deepEqual(a, copy);
});

test('pooled random bytes: bounds are enforced', () => {
  assert.throws(() => randomBytesPooled(0), RangeError);
  assert.throws(() => randomBytesPooled(4097), RangeError);
  assert.throws(() => randomBytesPooled(1.5), RangeError);
});
