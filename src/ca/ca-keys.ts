import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Kek } from '../jose/kek.ts';
import type { Db } from '../store/db.ts';
import type { Clock } from '../server/clock.ts';
import { createCaCertificate, issuingCa, pemToDerList, toPem, type IssuingCa } from './certificate.ts';
import type { CaKeyTable } from '../store/tables/ca.ts';

/** The CA's key material as the issuance path and the trust-bundle routes need it. */
export interface CaKeyMaterial {
  issuing: IssuingCa;
  /** PEMs after the leaf in a signingCert answer: active intermediate ... root. */
  chainPem: string[];
  /** `GET /api/v2/trustBundle`: one chain per unexpired intermediate, each ending with the root. */
  trustBundle: string[][];
  rootPem: string;
  /** Where the keys came from, for logs. */
  source: 'store' | 'generated' | 'pem';
  activeIntermediateId: string;
}

export class CaKeyError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CaKeyError';
  }
}

export type CaKeyAlgorithm = 'P-256' | 'P-384' | 'P-521';

export interface GeneratedCaOptions {
  db: Db;
  kek: Kek;
  clock: Clock;
  algorithm: CaKeyAlgorithm;
  organization: string;
  commonName: string;
  rootValiditySeconds: number;
  intermediateValiditySeconds: number;
  /** Rotate the active intermediate at start when it has less than this left. */
  rotateBeforeSeconds: number;
}

const sealContext = (id: string): string => `ca_keys:${id}`;

function newKeyPair(algorithm: CaKeyAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: algorithm });
}

const spkiOf = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });
const pkcs8Of = (k: KeyObject): Buffer => k.export({ type: 'pkcs8', format: 'der' });

function serialHex(certPem: string): string {
  return new X509Certificate(certPem).serialNumber.toLowerCase();
}

type Row = CaKeyTable;

function openKey(kek: Kek, row: Row): KeyObject {
  return createPrivateKey({ key: kek.open(row.sealed_private_key, sealContext(row.id)), format: 'der', type: 'pkcs8' });
}

function material(root: Row, intermediates: Row[], active: Row, kek: Kek, now: number, source: CaKeyMaterial['source']): CaKeyMaterial {
  const key = openKey(kek, active);
  const activeDer = pemToDerList(active.certificate_pem)[0]!;
  return {
    issuing: issuingCa(activeDer, key),
    chainPem: [active.certificate_pem, root.certificate_pem],
    trustBundle: intermediates
      .filter((r) => r.state === 'active' || r.not_after > now)
      .sort((a, b) => (a.id === active.id ? -1 : b.id === active.id ? 1 : b.created_at - a.created_at || (a.id < b.id ? -1 : 1)))
      .map((r) => [r.certificate_pem, root.certificate_pem]),
    rootPem: root.certificate_pem,
    source,
    activeIntermediateId: active.id,
  };
}

async function insertIntermediate(opts: GeneratedCaOptions, root: Row): Promise<Row> {
  const now = opts.clock();
  const rootKey = openKey(opts.kek, root);
  const pair = newKeyPair(opts.algorithm);
  const notAfter = Math.min(now + opts.intermediateValiditySeconds, root.not_after);
  const der = createCaCertificate({
    subject: { commonName: `${opts.commonName} intermediate`, organization: opts.organization },
    issuer: { certificateDer: pemToDerList(root.certificate_pem)[0]!, privateKey: rootKey },
    publicKeySpki: spkiOf(pair.publicKey),
    signingKey: rootKey,
    notBefore: now - 60,
    notAfter,
    kind: 'intermediate',
  });
  const pem = toPem(der);
  const id = `intermediate-${serialHex(pem)}`;
  const row: Row = {
    id,
    kind: 'intermediate',
    state: 'active',
    certificate_pem: pem,
    sealed_private_key: opts.kek.seal(pkcs8Of(pair.privateKey), sealContext(id)),
    parent_id: root.id,
    created_at: now,
    not_after: notAfter,
    retired_at: null,
  };
  await opts.db.transaction().execute(async (trx) => {
    await trx.updateTable('ca_keys').set({ state: 'retired', retired_at: now }).where('kind', '=', 'intermediate').where('state', '=', 'active').execute();
    await trx.insertInto('ca_keys').values(row).execute();
  });
  return row;
}

async function readRows(db: Db): Promise<Row[]> {
  return (await db.selectFrom('ca_keys').selectAll().execute()) as Row[];
}

/**
 * Loads the CA from the store, generating a root and an intermediate on first start (ECDSA P-384 by
 * default, as public Fulcio) and rotating the intermediate when it nears expiry. Replicas starting together
 * converge: the root row has a fixed id, so only one insert wins.
 */
export async function loadOrCreateCaKeys(opts: GeneratedCaOptions): Promise<CaKeyMaterial> {
  let rows = await readRows(opts.db);
  let source: CaKeyMaterial['source'] = 'store';
  let root = rows.find((r) => r.kind === 'root');
  if (!root) {
    const now = opts.clock();
    const pair = newKeyPair(opts.algorithm);
    const der = createCaCertificate({
      subject: { commonName: `${opts.commonName} root`, organization: opts.organization },
      publicKeySpki: spkiOf(pair.publicKey),
      signingKey: pair.privateKey,
      notBefore: now - 60,
      notAfter: now + opts.rootValiditySeconds,
      kind: 'root',
    });
    const candidate: Row = {
      id: 'root',
      kind: 'root',
      state: 'active',
      certificate_pem: toPem(der),
      sealed_private_key: opts.kek.seal(pkcs8Of(pair.privateKey), sealContext('root')),
      parent_id: null,
      created_at: now,
      not_after: now + opts.rootValiditySeconds,
      retired_at: null,
    };
    try {
      await opts.db.insertInto('ca_keys').values(candidate).execute();
      source = 'generated';
    } catch {
      // Another replica created it first; use theirs.
    }
    rows = await readRows(opts.db);
    root = rows.find((r) => r.kind === 'root');
    if (!root) throw new CaKeyError('ca_root_missing', 'could not create or read the CA root in the store; check the store is writable');
  }
  const now = opts.clock();
  let active = rows.filter((r) => r.kind === 'intermediate' && r.state === 'active').sort((a, b) => b.created_at - a.created_at)[0];
  if (!active || active.not_after - now < opts.rotateBeforeSeconds) {
    await insertIntermediate(opts, root);
    rows = await readRows(opts.db);
    // Replicas racing here each insert one; the last commit is the single active row, and everyone uses it.
    active = rows.filter((r) => r.kind === 'intermediate' && r.state === 'active').sort((a, b) => b.created_at - a.created_at)[0]!;
    if (source === 'store') source = 'generated';
  }
  return material(root, rows.filter((r) => r.kind === 'intermediate'), active, opts.kek, now, source);
}

/** Replaces the active intermediate with a fresh one signed by the root; the old one stays in the bundle. */
export async function rotateIntermediate(opts: GeneratedCaOptions): Promise<CaKeyMaterial> {
  const rows = await readRows(opts.db);
  const root = rows.find((r) => r.kind === 'root');
  if (!root) throw new CaKeyError('ca_root_missing', 'there is no CA root in the store yet: start the server once to generate it');
  const active = await insertIntermediate(opts, root);
  const after = await readRows(opts.db);
  return material(root, after.filter((r) => r.kind === 'intermediate'), active, opts.kek, opts.clock(), 'store');
}

export interface PemCaOptions {
  /** The root certificate (PEM file path). */
  rootCertificateFile: string;
  /** The issuing certificate chain, leaf-most first: the intermediate(s) that sign leaves (PEM). */
  chainFile: string;
  /** PKCS#8 PEM private key of the first certificate in chainFile. */
  keyFile: string;
  clock: Clock;
}

/** Loads an externally managed CA from PEM files and checks the chain and the key. */
export function loadCaKeysFromPem(opts: PemCaOptions): CaKeyMaterial {
  const read = (f: string, what: string): string => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      throw new CaKeyError('ca_pem_unreadable', `cannot read the CA ${what} file ${f}: check ca.keys paths and permissions`);
    }
  };
  const rootDerList = pemToDerList(read(opts.rootCertificateFile, 'root certificate'));
  const chainDer = pemToDerList(read(opts.chainFile, 'chain'));
  if (rootDerList.length !== 1) throw new CaKeyError('ca_pem_invalid', `${opts.rootCertificateFile} must hold exactly one certificate (the root)`);
  if (chainDer.length === 0) throw new CaKeyError('ca_pem_invalid', `${opts.chainFile} holds no certificate`);
  let key: KeyObject;
  try {
    key = createPrivateKey(read(opts.keyFile, 'private key'));
  } catch (err) {
    if (err instanceof CaKeyError) throw err;
    throw new CaKeyError('ca_pem_invalid', `${opts.keyFile} is not an unencrypted PEM private key`);
  }
  const certs = [...chainDer, rootDerList[0]!].map((d) => new X509Certificate(d));
  for (let i = 0; i < certs.length - 1; i++) {
    if (!certs[i]!.checkIssued(certs[i + 1]!) || !certs[i]!.verify(certs[i + 1]!.publicKey)) {
      throw new CaKeyError('ca_pem_invalid', `certificate ${i} of the CA chain is not signed by the next one; order ${opts.chainFile} leaf-most first`);
    }
  }
  const root = certs[certs.length - 1]!;
  if (!root.verify(root.publicKey)) throw new CaKeyError('ca_pem_invalid', 'the root certificate is not self-signed');
  const now = opts.clock();
  for (const c of certs) {
    if (!c.ca) throw new CaKeyError('ca_pem_invalid', `${c.subject} is not a CA certificate (basicConstraints CA:TRUE missing)`);
    if (Date.parse(c.validTo) / 1000 <= now) throw new CaKeyError('ca_pem_invalid', `${c.subject.replace(/\n/g, ', ')} expired on ${c.validTo}`);
  }
  let issuing: IssuingCa;
  try {
    issuing = issuingCa(chainDer[0]!, key);
  } catch (err) {
    throw new CaKeyError('ca_pem_invalid', err instanceof Error ? err.message : String(err));
  }
  createPublicKey(key);
  const chainPem = [...chainDer.map(toPem), toPem(rootDerList[0]!)];
  return {
    issuing,
    chainPem,
    trustBundle: [chainPem],
    rootPem: toPem(rootDerList[0]!),
    source: 'pem',
    activeIntermediateId: `pem-${certs[0]!.serialNumber.toLowerCase()}`,
  };
}
