import type { KeyObject } from 'node:crypto';

/**
 * Whether a signature operation with this key goes to libuv's thread pool. On the 2-core VM the
 * benchmarks run on, offloading the P-256 proof check and leaf signature raised process CPU per
 * certificate from ~250 µs to 320–430 µs: with both cores idle that still bought ~15% more certificates/s,
 * with the other core busy (a CPU hog) it lost ~20%, and one request at a time it halved the rate. P-256 work
 * (~70 µs to verify, ~27 µs to sign) therefore stays inline; P-384 and P-521 operations and RSA signing
 * (~0.6 ms and up on Node 20's OpenSSL) are worth a second core. RSA verification and Ed25519 are cheap.
 */
export function offloadSignatureWork(key: KeyObject): boolean {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'secp384r1' || curve === 'secp521r1';
  }
  return key.asymmetricKeyType === 'rsa' && key.type === 'private';
}
