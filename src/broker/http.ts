import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Every broker route parses its own body, so each protocol answers malformed input in its own
 * envelope (PyPI 422, RFC 6749 400, Vault 400, AWS XML) instead of fastify's generic one.
 */
export function rawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
}

export function bodyText(request: FastifyRequest): string {
  return typeof request.body === 'string' ? request.body : '';
}

export function contentType(request: FastifyRequest): string {
  return String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

export function requestMeta(request: FastifyRequest): { clientIp: string; requestId: string } {
  return { clientIp: request.ip, requestId: randomUUID() };
}

export function bearer(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer[ ]+([\x21-\x7e]{1,20000})$/i.exec(h.trim());
  return m?.[1];
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time membership: hashes equalise lengths, and every candidate is compared. */
export function secretMatches(given: string | undefined, secrets: readonly string[]): boolean {
  if (given === undefined) return false;
  const g = digest(given);
  let ok = false;
  for (const s of secrets) ok = timingSafeEqual(g, digest(s)) || ok;
  return ok;
}

export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;
