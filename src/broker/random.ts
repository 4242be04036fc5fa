import { randomFillSync } from 'node:crypto';

/**
 * CSPRNG bytes drawn from a pooled buffer: one randomFillSync per POOL_BYTES instead of one per id or
 * secret (a mint takes three draws, and each synchronous call costs more than the bytes). Every byte is
 * handed out once and wiped from the pool as it is taken, so no two callers share bytes and the pool
 * never keeps a copy of a secret it has issued.
 */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let offset = POOL_BYTES;

export function randomBytesPooled(n: number): Buffer {
  if (!Number.isInteger(n) || n <= 0 || n > POOL_BYTES) throw new RangeError(`randomBytesPooled: ${n} is not between 1 and ${POOL_BYTES}`);
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.allocUnsafe(n);
  pool.copy(out, 0, offset, offset + n);
  pool.fill(0, offset, offset + n);
  offset += n;
  return out;
}
