import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { Resolver } from '../../src/jose/fetch.ts';
import type { VerifyAlg } from '../../src/jose/verify-signature.ts';
import { GITLAB_F2 } from '../helpers/fixtures.ts';
import { VerificationError } from '../../src/verifier/errors.ts';

export const b64u = (v: string | Buffer | Uint8Array): string => Buffer.from(v).toString('base64url');
export const b64json = (v: unknown): string => b64u(JSON.stringify(v));

export interface TestKey {
  alg: VerifyAlg;
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: Record<string, unknown>;
}

const cache = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>();

/** Key pairs are cached per (alg, slot) so suites stay fast; RSA generation is the slow part. */
export function testKey(alg: VerifyAlg, kid: string, slot = kid): TestKey {
  const id = `${alg}|${slot}`;
  let pair = cache.get(id);
  if (!pair) {
    if (alg.startsWith('RS') || alg.startsWith('PS')) pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    else if (alg === 'ES256') pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    else if (alg === 'ES384') pair = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    else if (alg === 'ES512') pair = generateKeyPairSync('ec', { namedCurve: 'P-521' });
    else pair = generateKeyPairSync('ed25519');
    cache.set(id, pair);
  }
  const jwk = { ...(pair.publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid, alg, use: 'sig' };
  return { alg, kid, ...pair, jwk };
}

const HASH: Record<string, string | null> = { RS256: 'sha256', RS384: 'sha384', RS512: 'sha512', PS256: 'sha256', PS384: 'sha384', PS512: 'sha512', ES256: 'sha256', ES384: 'sha384', ES512: 'sha512', EdDSA: null };

/** Signs arbitrary header/payload JSON text (so tests can send duplicates, odd types, …). */
export function signRaw(headerJson: string, payloadJson: string, key: TestKey, alg: string = key.alg): string {
  const input = `${b64u(headerJson)}.${b64u(payloadJson)}`;
  return `${input}.${signInput(input, key, alg)}`;
}

export function signInput(input: string, key: TestKey, alg: string = key.alg): string {
  const hash = HASH[alg] ?? null;
  let k: any = key.privateKey;
  if (alg.startsWith('ES')) k = { key: key.privateKey, dsaEncoding: 'ieee-p1363' };
  if (alg.startsWith('PS')) k = { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 };
  return b64u(sign(hash, Buffer.from(input, 'latin1'), k));
}

export function signToken(claims: Record<string, unknown>, key: TestKey, header: Record<string, unknown> = {}): string {
  return signRaw(JSON.stringify({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header }), JSON.stringify(claims), key, (header.alg as string | undefined) ?? key.alg);
}

export const NOW = 1_750_000_000;

export function gitlabClaims(overrides: Record<string, unknown> = {}, iss = 'https://gitlab.com'): Record<string, unknown> {
  return {
    ...GITLAB_F2,
    iat: NOW - 60,
    nbf: NOW - 65,
    exp: NOW + 3540,
    iss,
    aud: 'ours',
    ...overrides,
  };
}

export interface TestServer {
  url: string;
  port: number;
  /** Requests per path. */
  hits: Map<string, number>;
  connections: number;
  total(): number;
  /** Replaces the handler for a path. */
  route(path: string, handler: (req: IncomingMessage, res: ServerResponse) => void): void;
  json(path: string, body: unknown, headers?: Record<string, string>): void;
  close(): Promise<void>;
}

/** A loopback HTTP server that counts every request and connection. */
export async function startServer(): Promise<TestServer> {
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  const hits = new Map<string, number>();
  let connections = 0;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const handler = routes.get(path);
    if (handler) handler(req, res);
    else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const ts: TestServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    hits,
    get connections() {
      return connections;
    },
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
    route: (path, handler) => routes.set(path, handler),
    json: (path, body, headers = {}) =>
      routes.set(path, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return ts;
}

/** A resolver with a fixed table; counts lookups per name. Unknown names fail like NXDOMAIN. */
export function tableResolver(table: Record<string, string | string[]>): Resolver & { calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const fn = (async (hostname: string) => {
    calls.set(hostname, (calls.get(hostname) ?? 0) + 1);
    const entry = table[hostname];
    if (entry === undefined) throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return (Array.isArray(entry) ? entry : [entry]).map((address) => ({ address, family: address.includes(':') ? (6 as const) : (4 as const) }));
  }) as Resolver & { calls: Map<string, number> };
  fn.calls = calls;
  return fn;
}

/** The rejection code of a verification, or `accepted`. */
export async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    if (err instanceof VerificationError) return err.code;
    throw err;
  }
}
