import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createCaCertificate } from '../../src/ca/certificate.ts';

export type Curve = 'P-256' | 'P-384';

export interface TestCaChain {
  rootDer: Buffer;
  interDer: Buffer;
  root: { privateKey: KeyObject; publicKey: KeyObject };
  inter: { privateKey: KeyObject; publicKey: KeyObject };
}

/** A root and an intermediate it signs, made outside the store (tests, benchmarks, PEM loading). */
export function createTestCaChain(options: {
  now: number;
  rootCurve: Curve;
  interCurve?: Curve;
  names: { root: string; intermediate: string };
  organization?: string;
  interLifetime?: number;
}): TestCaChain {
  const { now, organization } = options;
  const subject = (commonName: string) => (organization ? { commonName, organization } : { commonName });
  const root = generateKeyPairSync('ec', { namedCurve: options.rootCurve });
  const rootDer = createCaCertificate({
    subject: subject(options.names.root),
    publicKeySpki: root.publicKey.export({ type: 'spki', format: 'der' }),
    signingKey: root.privateKey,
    notBefore: now - 60,
    notAfter: now + 86400,
    kind: 'root',
  });
  const inter = generateKeyPairSync('ec', { namedCurve: options.interCurve ?? options.rootCurve });
  const interDer = createCaCertificate({
    subject: subject(options.names.intermediate),
    issuer: { certificateDer: rootDer, privateKey: root.privateKey },
    publicKeySpki: inter.publicKey.export({ type: 'spki', format: 'der' }),
    signingKey: root.privateKey,
    notBefore: now - 60,
    notAfter: now + (options.interLifetime ?? 3600),
    kind: 'intermediate',
  });
  return { rootDer, interDer, root, inter };
}
