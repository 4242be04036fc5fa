import 'reflect-metadata';
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { pemToDerList } from './certificate.ts';
import { OID, OID_CODE_SIGNING } from './oids.ts';

/**
 * Sigstore bundles for `ci-oidc sign` / `verify-blob`: a v0.3 message-signature bundle holding our leaf
 * certificate, and offline verification against our trust bundle with identity and issuer checks.
 */

export const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const BUNDLE_V02 = 'application/vnd.dev.sigstore.bundle+json;version=0.2';

export interface SigstoreBundle {
  mediaType: string;
  verificationMaterial: {
    certificate?: { rawBytes: string };
    x509CertificateChain?: { certificates: Array<{ rawBytes: string }> };
    tlogEntries: unknown[];
    timestampVerificationData?: { rfc3161Timestamps: unknown[] };
  };
  messageSignature: { messageDigest: { algorithm: 'SHA2_256'; digest: string }; signature: string };
}

export function makeBundle(leafDer: Uint8Array, artifact: Uint8Array, signature: Uint8Array): SigstoreBundle {
  return {
    mediaType: BUNDLE_V03,
    verificationMaterial: {
      certificate: { rawBytes: Buffer.from(leafDer).toString('base64') },
      tlogEntries: [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(artifact).digest('base64') },
      signature: Buffer.from(signature).toString('base64'),
    },
  };
}

export class BundleVerificationError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'BundleVerificationError';
  }
}

/** Reads every Sigstore extension: `.1`-`.6` raw bytes, `.8`+ DER UTF8String content. */
export function sigstoreExtensions(certDer: Uint8Array): Map<string, string> {
  const cert = AsnConvert.parse(certDer, Certificate);
  const out = new Map<string, string>();
  for (const ext of cert.tbsCertificate.extensions ?? []) {
    if (!ext.extnID.startsWith('1.3.6.1.4.1.57264.1.')) continue;
    const raw = Buffer.from(ext.extnValue.buffer);
    const n = Number(ext.extnID.split('.').pop());
    if (n >= 1 && n <= 6) out.set(ext.extnID, raw.toString('utf8'));
    else out.set(ext.extnID, decodeUtf8String(raw));
  }
  return out;
}

function decodeUtf8String(der: Buffer): string {
  if (der[0] !== 0x0c) throw new BundleVerificationError('extension_malformed', 'a Sigstore extension is not a DER UTF8String');
  let len = der[1]!;
  let at = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!;
    at += n;
  }
  if (at + len !== der.length) throw new BundleVerificationError('extension_malformed', 'trailing bytes after a Sigstore extension value');
  return der.subarray(at, at + len).toString('utf8');
}

export interface VerifyBundleOptions {
  artifact: Uint8Array;
  bundle: unknown;
  /** CA chains without leaves (trustBundle), each ending with a self-signed root. */
  trustedChains: string[][];
  certificateIdentity: string;
  certificateOidcIssuer: string;
}

export interface VerifiedBundle {
  san: string;
  issuer: string;
  signedAt: number;
  extensions: Map<string, string>;
  /** Set when no trusted timestamp is present: validity was checked at the certificate's notBefore. */
  warning?: string;
}

function leafFrom(bundle: SigstoreBundle): Buffer {
  const vm = bundle.verificationMaterial;
  const b64 = vm?.certificate?.rawBytes ?? vm?.x509CertificateChain?.certificates?.[0]?.rawBytes;
  if (typeof b64 !== 'string') throw new BundleVerificationError('bundle_invalid', 'the bundle holds no certificate');
  return Buffer.from(b64, 'base64');
}

const at = (d: string): number => Math.floor(Date.parse(d) / 1000);

/** Offline verification of a message-signature bundle issued by our CA. */
export function verifyBundle(opts: VerifyBundleOptions): VerifiedBundle {
  const bundle = opts.bundle as SigstoreBundle;
  if (!bundle || typeof bundle !== 'object' || (bundle.mediaType !== BUNDLE_V03 && bundle.mediaType !== BUNDLE_V02)) {
    throw new BundleVerificationError('bundle_invalid', 'not a Sigstore bundle v0.2/v0.3 (mediaType)');
  }
  const ms = bundle.messageSignature;
  if (!ms || typeof ms.signature !== 'string') throw new BundleVerificationError('bundle_invalid', 'the bundle has no messageSignature');
  const leafDer = leafFrom(bundle);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafDer);
  } catch {
    throw new BundleVerificationError('bundle_invalid', 'the bundle certificate does not parse');
  }
  const signedAt = at(leaf.validFrom);
  const ok = (c: X509Certificate): boolean => at(c.validFrom) <= signedAt && signedAt <= at(c.validTo);
  let chained = false;
  for (const chain of opts.trustedChains) {
    const certs = chain.flatMap((p) => pemToDerList(p)).map((d) => new X509Certificate(d));
    if (certs.length === 0) continue;
    let child = leaf;
    let good = true;
    for (const parent of certs) {
      if (!child.checkIssued(parent) || !child.verify(parent.publicKey) || !parent.ca || !ok(parent)) {
        good = false;
        break;
      }
      child = parent;
    }
    const root = certs[certs.length - 1]!;
    if (good && root.checkIssued(root) && root.verify(root.publicKey)) {
      chained = true;
      break;
    }
  }
  if (!chained) throw new BundleVerificationError('chain_untrusted', 'the certificate does not chain to the trusted CA');
  if (!(leaf.keyUsage ?? []).includes(OID_CODE_SIGNING)) throw new BundleVerificationError('certificate_invalid', 'the certificate is not for code signing');
  const extensions = sigstoreExtensions(leafDer);
  const san = /^URI:(.*)$/.exec(leaf.subjectAltName ?? '')?.[1] ?? '';
  if (san !== opts.certificateIdentity) {
    throw new BundleVerificationError('identity_mismatch', `certificate identity ${JSON.stringify(san)} does not equal --certificate-identity`);
  }
  const issuer = extensions.get(OID.issuerV2) ?? extensions.get(OID.issuer) ?? '';
  if (issuer !== opts.certificateOidcIssuer) {
    throw new BundleVerificationError('issuer_mismatch', `certificate OIDC issuer ${JSON.stringify(issuer)} does not equal --certificate-oidc-issuer`);
  }
  const digest = createHash('sha256').update(opts.artifact).digest('base64');
  if (ms.messageDigest && ms.messageDigest.digest !== digest) throw new BundleVerificationError('digest_mismatch', 'the artifact digest does not match the bundle');
  if (!cryptoVerify('sha256', opts.artifact, leaf.publicKey, Buffer.from(ms.signature, 'base64'))) {
    throw new BundleVerificationError('signature_invalid', 'the artifact signature does not verify with the certificate key');
  }
  const hasTimestamp =
    (bundle.verificationMaterial.tlogEntries?.length ?? 0) > 0 || (bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps?.length ?? 0) > 0;
  return {
    san,
    issuer,
    signedAt,
    extensions,
    ...(hasTimestamp
      ? { warning: 'timestamps in the bundle are not verified by verify-blob; validity was checked at the certificate notBefore' }
      : { warning: 'no trusted timestamp in the bundle: validity was checked at the certificate notBefore' }),
  };
}
