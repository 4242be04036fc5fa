import 'reflect-metadata';
import { createHash, randomBytes, sign as cryptoSign, X509Certificate, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import * as der from './der.ts';
import { offloadSignatureWork } from './offload.ts';
import { OID_CODE_SIGNING, OID_ECDSA_SHA256, OID_ECDSA_SHA384, OID_ECDSA_SHA512, OID_RSA_SHA256, OID_RSA_SHA384, OID_RSA_SHA512 } from './oids.ts';

/** One Sigstore extension value, in emission order. `raw` = .1-.6 (bytes), otherwise a DER UTF8String. */
export interface SigstoreExtension {
  oid: string;
  raw: boolean;
  value: string;
}

export interface LeafSpec {
  /** DER SubjectPublicKeyInfo of the client key. */
  spki: Uint8Array;
  notBefore: number;
  notAfter: number;
  sanUri: string;
  extensions: readonly SigstoreExtension[];
  /** 20 random bytes by default; tests inject it to compare encoders. */
  serial?: Uint8Array;
}

/** The issuing CA as the leaf encoder needs it; the constant DER pieces are computed once. */
export interface IssuingCa {
  readonly certificateDer: Buffer;
  readonly privateKey: KeyObject;
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  readonly sigAlgOid: string;
  /** DER AlgorithmIdentifier for the CA's signatures. */
  readonly sigAlgDer: Buffer;
  /** The CA's subject Name (DER), used as the leaf issuer. */
  readonly subjectDer: Buffer;
  readonly ski: Buffer;
  /** DER of the fixed leaf extensions: KU, EKU (SKI comes next, per leaf), and AKI. */
  readonly fixedHeadDer: Buffer;
  readonly akiDer: Buffer;
  /** The CA certificate's notAfter (seconds): leaves never outlive it. */
  readonly notAfter: number;
}

const ALG_NULL_PARAMS = new Set([OID_RSA_SHA256, OID_RSA_SHA384, OID_RSA_SHA512]);

export function signatureAlgorithm(key: KeyObject): { oid: string; hash: 'sha256' | 'sha384' | 'sha512' } {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    switch (d?.namedCurve) {
      case 'prime256v1':
        return { oid: OID_ECDSA_SHA256, hash: 'sha256' };
      case 'secp384r1':
        return { oid: OID_ECDSA_SHA384, hash: 'sha384' };
      case 'secp521r1':
        return { oid: OID_ECDSA_SHA512, hash: 'sha512' };
    }
  }
  if (key.asymmetricKeyType === 'rsa' && (d?.modulusLength ?? 0) >= 2048) return { oid: OID_RSA_SHA256, hash: 'sha256' };
  throw new Error(`unsupported CA key type ${key.asymmetricKeyType} ${d?.namedCurve ?? d?.modulusLength ?? ''}: use ECDSA P-256/P-384/P-521 or RSA >= 2048`);
}

function algorithmIdentifier(oidDotted: string): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithm: oidDotted, parameters: ALG_NULL_PARAMS.has(oidDotted) ? new Uint8Array([5, 0]).buffer : null });
}

const ser = (v: unknown): Buffer => Buffer.from(AsnConvert.serialize(v));

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Uint8Array): Buffer {
  return createHash('sha1').update(der.spkiPublicKeyBits(spki)).digest();
}

const KU_LEAF = ser(new Extension({ extnID: id_ce_keyUsage, critical: true, extnValue: new OctetString(ser(new KeyUsage(KeyUsageFlags.digitalSignature))) }));
const EKU_CODE_SIGNING = ser(new Extension({ extnID: id_ce_extKeyUsage, critical: false, extnValue: new OctetString(ser(new ExtendedKeyUsage([OID_CODE_SIGNING]))) }));

function akiExtension(ski: Uint8Array): Buffer {
  return ser(
    new Extension({
      extnID: id_ce_authorityKeyIdentifier,
      critical: false,
      extnValue: new OctetString(ser(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(ski) }))),
    }),
  );
}

/** Prepares an issuing CA (an intermediate, or a root used directly) for the leaf encoder. */
export function issuingCa(certificateDer: Uint8Array, privateKey: KeyObject): IssuingCa {
  const cert = AsnConvert.parse(certificateDer, Certificate);
  const { oid, hash } = signatureAlgorithm(privateKey);
  const spki = ser(cert.tbsCertificate.subjectPublicKeyInfo);
  const x = new X509Certificate(Buffer.from(certificateDer));
  if (!x.checkPrivateKey(privateKey)) throw new Error('the CA private key does not match the CA certificate');
  const ski = keyIdentifier(spki);
  return {
    certificateDer: Buffer.from(certificateDer),
    privateKey,
    hash,
    sigAlgOid: oid,
    sigAlgDer: ser(algorithmIdentifier(oid)),
    subjectDer: ser(cert.tbsCertificate.subject),
    ski,
    fixedHeadDer: Buffer.concat([KU_LEAF, EKU_CODE_SIGNING]),
    akiDer: akiExtension(ski),
    notAfter: Math.floor(cert.tbsCertificate.validity.notAfter.getTime().getTime() / 1000),
  };
}

// One CSPRNG call per 512 serials: on Node 20 each randomBytes call costs ~5 µs whatever its size (a
// 10 KiB call ~12 µs). Every serial is still fresh CSPRNG output; no byte is handed out twice.
const SERIAL_POOL_SIZE = 20 * 512;
let serialPool = Buffer.alloc(0);
let serialAt = SERIAL_POOL_SIZE;

export function randomSerial(): Buffer {
  if (serialAt >= serialPool.length) {
    serialPool = randomBytes(SERIAL_POOL_SIZE);
    serialAt = 0;
  }
  const b = Buffer.from(serialPool.subarray(serialAt, serialAt + 20));
  serialAt += 20;
  // Positive and exactly 20 octets in DER (RFC 5280 §4.1.2.2).
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b;
}

/** SEQUENCE { OID, OCTET STRING { value | UTF8String { value } } } in one allocation (~20 per leaf). */
function sigstoreExtensionDer(e: SigstoreExtension): Buffer {
  const oid = der.oid(e.oid);
  const valueLength = Buffer.byteLength(e.value, 'utf8');
  const octets = e.raw ? valueLength : der.headerLength(valueLength) + valueLength;
  const body = oid.length + der.headerLength(octets) + octets;
  const out = Buffer.allocUnsafe(der.headerLength(body) + body);
  let at = der.writeHeader(out, 0, 0x30, body);
  at += oid.copy(out, at);
  at = der.writeHeader(out, at, 0x04, octets);
  if (!e.raw) at = der.writeHeader(out, at, 0x0c, valueLength);
  out.write(e.value, at, 'utf8');
  return out;
}

function sanExtensionDer(uri: string): Buffer {
  return der.extension(id_ce_subjectAltName, true, der.seq(der.tlv(0x86, Buffer.from(uri, 'ascii'))));
}

/** Encodes the leaf TBSCertificate on the hot path with pre-serialised constant pieces, into one buffer. */
export function encodeLeafTbs(ca: IssuingCa, spec: LeafSpec): Buffer {
  const spki = Buffer.from(spec.spki);
  const head: Uint8Array[] = [
    V3,
    der.integer(spec.serial ?? randomSerial()),
    ca.sigAlgDer,
    ca.subjectDer,
    der.seq(der.time(spec.notBefore), der.time(spec.notAfter)),
    EMPTY_NAME,
    spki,
  ];
  const extensions: Uint8Array[] = [
    ca.fixedHeadDer,
    der.extension(id_ce_subjectKeyIdentifier, false, der.octetString(keyIdentifier(spki))),
    ca.akiDer,
    sanExtensionDer(spec.sanUri),
  ];
  for (const e of spec.extensions) extensions.push(sigstoreExtensionDer(e));
  let extensionsLength = 0;
  for (const e of extensions) extensionsLength += e.byteLength;
  const sequenceLength = der.headerLength(extensionsLength) + extensionsLength;
  let body = der.headerLength(sequenceLength) + sequenceLength;
  for (const p of head) body += p.byteLength;
  const out = Buffer.allocUnsafe(der.headerLength(body) + body);
  let at = der.writeHeader(out, 0, 0x30, body);
  for (const p of head) {
    out.set(p, at);
    at += p.byteLength;
  }
  at = der.writeHeader(out, at, 0xa3, sequenceLength);
  at = der.writeHeader(out, at, 0x30, extensionsLength);
  for (const e of extensions) {
    out.set(e, at);
    at += e.byteLength;
  }
  return out;
}

const V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
const EMPTY_NAME = Buffer.from([0x30, 0x00]);

export function signTbs(ca: IssuingCa, tbs: Buffer): Buffer {
  const signature = cryptoSign(ca.hash, tbs, ca.privateKey);
  return der.seq(tbs, ca.sigAlgDer, der.bitString(signature));
}

/** signTbs on libuv's thread pool. */
export function signTbsAsync(ca: IssuingCa, tbs: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    cryptoSign(ca.hash, tbs, ca.privateKey, (err, signature) => {
      if (err) reject(err);
      else resolve(der.seq(tbs, ca.sigAlgDer, der.bitString(signature)));
    });
  });
}

/** issueLeaf with the signature computed off the event loop when the CA key is slow (offloadSignatureWork). */
export function issueLeafAsync(ca: IssuingCa, spec: LeafSpec): Promise<Buffer> {
  assertAscii(spec.sanUri);
  const tbs = encodeLeafTbs(ca, spec);
  return offloadSignatureWork(ca.privateKey) ? signTbsAsync(ca, tbs) : Promise.resolve(signTbs(ca, tbs));
}

/** Builds and signs a leaf certificate; returns DER. */
export function issueLeaf(ca: IssuingCa, spec: LeafSpec): Buffer {
  assertAscii(spec.sanUri);
  return signTbs(ca, encodeLeafTbs(ca, spec));
}

function assertAscii(s: string): void {
  if (!/^[\x21-\x7e]+$/.test(s)) throw new Error('the SAN URI must be printable ASCII');
}

/**
 * The same TBSCertificate built entirely with @peculiar/asn1-x509 objects. The hot path must produce
 * identical bytes; tests and the benchmark use this as the reference encoder.
 */
export function encodeLeafTbsAsn1(ca: IssuingCa, spec: LeafSpec): Buffer {
  const issuerCert = AsnConvert.parse(ca.certificateDer, Certificate);
  const spki = Buffer.from(spec.spki);
  const exts = new Extensions([
    new Extension({ extnID: id_ce_keyUsage, critical: true, extnValue: new OctetString(ser(new KeyUsage(KeyUsageFlags.digitalSignature))) }),
    new Extension({ extnID: id_ce_extKeyUsage, critical: false, extnValue: new OctetString(ser(new ExtendedKeyUsage([OID_CODE_SIGNING]))) }),
    new Extension({ extnID: id_ce_subjectKeyIdentifier, critical: false, extnValue: new OctetString(ser(new SubjectKeyIdentifier(keyIdentifier(spki)))) }),
    new Extension({
      extnID: id_ce_authorityKeyIdentifier,
      critical: false,
      extnValue: new OctetString(ser(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(ca.ski) }))),
    }),
    new Extension({
      extnID: id_ce_subjectAltName,
      critical: true,
      extnValue: new OctetString(ser(new SubjectAlternativeName([new GeneralName({ uniformResourceIdentifier: spec.sanUri })]))),
    }),
    ...spec.extensions.map(
      (e) =>
        new Extension({
          extnID: e.oid,
          critical: false,
          extnValue: new OctetString(e.raw ? Buffer.from(e.value, 'utf8') : ser(new AttributeValue({ utf8String: e.value }))),
        }),
    ),
  ]);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(der.integer(spec.serial ?? randomSerial()).subarray(2)).buffer,
    signature: algorithmIdentifier(ca.sigAlgOid),
    issuer: issuerCert.tbsCertificate.subject,
    validity: new Validity({ notBefore: new Date(spec.notBefore * 1000), notAfter: new Date(spec.notAfter * 1000) }),
    subject: new Name(),
    subjectPublicKeyInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo),
    extensions: exts,
  });
  return ser(tbs);
}

export interface CaCertificateSpec {
  subject: { commonName: string; organization?: string };
  /** The signer's certificate; absent for a self-signed root. */
  issuer?: { certificateDer: Uint8Array; privateKey: KeyObject };
  publicKeySpki: Uint8Array;
  /** Self-signed roots sign with their own key. */
  signingKey: KeyObject;
  notBefore: number;
  notAfter: number;
  /** Intermediates: `pathlen:0` and EKU codeSigning; roots: neither. */
  kind: 'root' | 'intermediate';
}

function nameFor(subject: CaCertificateSpec['subject']): Name {
  const rdns: RelativeDistinguishedName[] = [];
  if (subject.organization) {
    rdns.push(new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.10', value: new AttributeValue({ printableString: subject.organization }) })]));
  }
  rdns.push(new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: subject.commonName }) })]));
  return new Name(rdns);
}

/** Creates a root or intermediate CA certificate (DER) with @peculiar/asn1-x509. */
export function createCaCertificate(spec: CaCertificateSpec): Buffer {
  const subject = nameFor(spec.subject);
  const issuerName = spec.issuer ? AsnConvert.parse(spec.issuer.certificateDer, Certificate).tbsCertificate.subject : subject;
  const issuerSpki = spec.issuer ? ser(AsnConvert.parse(spec.issuer.certificateDer, Certificate).tbsCertificate.subjectPublicKeyInfo) : spec.publicKeySpki;
  const { oid, hash } = signatureAlgorithm(spec.signingKey);
  const bc = new BasicConstraints({ cA: true });
  if (spec.kind === 'intermediate') bc.pathLenConstraint = 0;
  const exts: Extension[] = [
    new Extension({
      extnID: id_ce_keyUsage,
      critical: true,
      extnValue: new OctetString(ser(new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign))),
    }),
  ];
  if (spec.kind === 'intermediate') {
    exts.push(new Extension({ extnID: id_ce_extKeyUsage, critical: false, extnValue: new OctetString(ser(new ExtendedKeyUsage([OID_CODE_SIGNING]))) }));
  }
  exts.push(
    new Extension({ extnID: id_ce_basicConstraints, critical: true, extnValue: new OctetString(ser(bc)) }),
    new Extension({ extnID: id_ce_subjectKeyIdentifier, critical: false, extnValue: new OctetString(ser(new SubjectKeyIdentifier(keyIdentifier(spec.publicKeySpki)))) }),
  );
  if (spec.issuer) {
    exts.push(
      new Extension({
        extnID: id_ce_authorityKeyIdentifier,
        critical: false,
        extnValue: new OctetString(ser(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyIdentifier(issuerSpki)) }))),
      }),
    );
  }
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(der.integer(randomSerial()).subarray(2)).buffer,
    signature: algorithmIdentifier(oid),
    issuer: issuerName,
    validity: new Validity({ notBefore: new Date(spec.notBefore * 1000), notAfter: new Date(spec.notAfter * 1000) }),
    subject,
    subjectPublicKeyInfo: AsnConvert.parse(spec.publicKeySpki, SubjectPublicKeyInfo),
    extensions: new Extensions(exts),
  });
  const tbsDer = ser(tbs);
  const signature = cryptoSign(hash, tbsDer, spec.signingKey);
  return der.seq(tbsDer, ser(algorithmIdentifier(oid)), der.bitString(signature));
}

export function toPem(certDer: Uint8Array): string {
  const b64 = Buffer.from(certDer.buffer, certDer.byteOffset, certDer.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += (i === 0 ? '' : '\n') + b64.slice(i, i + 64);
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`;
}

export function pemToDerList(pem: string): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  return out;
}

