import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let cached: { cert: string; key: string } | undefined;

/** A throwaway self-signed certificate for jwks.test / evil.test / 127.0.0.1 (openssl CLI, EC P-256). */
export function selfSigned(): { cert: string; key: string } {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'ci-oidc-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=jwks.test',
      '-addext', 'subjectAltName=DNS:jwks.test,DNS:other.test,IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    cached = { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TlsServer {
  port: number;
  ca: string;
  hits: Map<string, number>;
  connections: number;
  lastHeaders: IncomingMessage['headers'] | undefined;
  route(path: string, handler: (req: IncomingMessage, res: ServerResponse) => void): void;
  json(path: string, body: unknown, headers?: Record<string, string>): void;
  total(): number;
  close(): Promise<void>;
}

export async function startTlsServer(): Promise<TlsServer> {
  const { cert, key } = selfSigned();
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  const hits = new Map<string, number>();
  const state = { connections: 0, lastHeaders: undefined as IncomingMessage['headers'] | undefined };
  const server = createServer({ cert, key }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    state.lastHeaders = req.headers;
    const handler = routes.get(path);
    if (handler) handler(req, res);
    else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  server.on('secureConnection', () => state.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    ca: cert,
    hits,
    get connections() {
      return state.connections;
    },
    get lastHeaders() {
      return state.lastHeaders;
    },
    route: (path, handler) => routes.set(path, handler),
    json: (path, body, headers = {}) =>
      routes.set(path, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      }),
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
