/**
 * Minimal DER writer for the per-request parts of a leaf certificate. The constant parts (names,
 * algorithm identifiers, fixed extensions) are serialised once with @peculiar/asn1-x509; tests check the
 * two paths produce identical bytes.
 */

export function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n < 0x1000000) return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  throw new RangeError('DER value too large');
}

function lengthBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4;
}

/** Bytes taken by the tag and length octets of a TLV with `len` content bytes. */
export function headerLength(len: number): number {
  return 1 + lengthBytes(len);
}

/** Writes a tag and length into `out` at `at`; returns the offset of the content. */
export function writeHeader(out: Buffer, at: number, tag: number, len: number): number {
  const lb = lengthBytes(len);
  if (lb === 4 && len >= 0x1000000) throw new RangeError('DER value too large');
  out[at] = tag;
  if (lb === 1) out[at + 1] = len;
  else {
    out[at + 1] = 0x80 | (lb - 1);
    for (let i = lb - 1, v = len; i >= 1; i--, v >>>= 8) out[at + 1 + i] = v & 0xff;
  }
  return at + 1 + lb;
}

/** One TLV in a single allocation (the leaf encoder calls this a few dozen times per certificate). */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of content) len += c.byteLength;
  const lb = lengthBytes(len);
  if (lb === 4 && len >= 0x1000000) throw new RangeError('DER value too large');
  const out = Buffer.allocUnsafe(1 + lb + len);
  out[0] = tag;
  if (lb === 1) out[1] = len;
  else {
    out[1] = 0x80 | (lb - 1);
    for (let i = lb - 1, v = len; i >= 1; i--, v >>>= 8) out[1 + i] = v & 0xff;
  }
  let at = 1 + lb;
  for (const c of content) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export const seq = (...content: Uint8Array[]): Buffer => tlv(0x30, ...content);
export const octetString = (content: Uint8Array): Buffer => tlv(0x04, content);
export const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
export const DER_TRUE = Buffer.from([0x01, 0x01, 0xff]);

const OID_CACHE = new Map<string, Buffer>();

export function oid(dotted: string): Buffer {
  const hit = OID_CACHE.get(dotted);
  if (hit) return hit;
  const der = encodeOid(dotted);
  if (OID_CACHE.size < 256) OID_CACHE.set(dotted, der);
  return der;
}

function encodeOid(dotted: string): Buffer {
  const parts = dotted.split('.').map((p) => Number(p));
  if (parts.length < 2 || parts.some((p) => !Number.isSafeInteger(p) || p < 0)) throw new Error(`bad OID ${dotted}`);
  const bytes: number[] = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack: number[] = [p & 0x7f];
    let v = Math.floor(p / 128);
    while (v > 0) {
      stack.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    bytes.push(...stack);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** A positive INTEGER from big-endian magnitude bytes (leading zero added when the top bit is set). */
export function integer(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = Buffer.from(magnitude.subarray(i));
  return m[0]! & 0x80 ? tlv(0x02, Buffer.from([0]), m) : tlv(0x02, m);
}

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n;

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime after. */
export function time(seconds: number): Buffer {
  const d = new Date(seconds * 1000);
  const y = d.getUTCFullYear();
  const rest = pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) + pad2(d.getUTCHours()) + pad2(d.getUTCMinutes()) + pad2(d.getUTCSeconds()) + 'Z';
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(pad2(y % 100) + rest, 'latin1'));
  return tlv(0x18, Buffer.from(String(y).padStart(4, '0') + rest, 'latin1'));
}

/** Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }. */
export function extension(oidDotted: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? seq(oid(oidDotted), DER_TRUE, octetString(value)) : seq(oid(oidDotted), octetString(value));
}

export function bitString(content: Uint8Array): Buffer {
  return tlv(0x03, Buffer.from([0]), content);
}

/** Returns the content (without unused-bits byte) of the subjectPublicKey BIT STRING in an SPKI. */
export function spkiPublicKeyBits(spki: Uint8Array): Buffer {
  const buf = Buffer.from(spki);
  const readHeader = (at: number): { tag: number; len: number; hdr: number } => {
    const tag = buf[at]!;
    let len = buf[at + 1]!;
    let hdr = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + buf[at + 2 + k]!;
      hdr += n;
    }
    return { tag, len, hdr };
  };
  const outer = readHeader(0);
  const algo = readHeader(outer.hdr);
  const bitsAt = outer.hdr + algo.hdr + algo.len;
  const bits = readHeader(bitsAt);
  if (outer.tag !== 0x30 || algo.tag !== 0x30 || bits.tag !== 0x03) throw new Error('not a SubjectPublicKeyInfo');
  return buf.subarray(bitsAt + bits.hdr + 1, bitsAt + bits.hdr + bits.len);
}
