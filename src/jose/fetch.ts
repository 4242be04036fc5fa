import { lookup as dnsLookup } from 'node:dns/promises';
import { rootCertificates } from 'node:tls';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import ipaddr from 'ipaddr.js';
import { Agent, request } from 'undici';
import { parseStrictJsonObject, StrictJsonError, decodeUtf8Strict, type JsonLimits } from './compact.ts';

/**
 * The hardened fetcher for discovery and JWKS documents (verification.md §8). Only https to public
 * unicast addresses; the address check runs inside the connector's `lookup`, so the socket connects to
 * exactly the address that was checked (no DNS rebinding). Redirects only within the same origin, a hard
 * size cap while streaming, one overall deadline, at most 16 requests in flight.
 */

export type FetchErrorCode =
  | 'fetch_url_invalid'
  | 'fetch_address_blocked'
  | 'fetch_redirect_refused'
  | 'fetch_too_large'
  | 'fetch_timeout'
  | 'fetch_status'
  | 'fetch_content_invalid'
  | 'fetch_failed'
  | 'fetch_rate_limited';

export class FetchError extends Error {
  readonly code: FetchErrorCode;

  constructor(code: FetchErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FetchError';
    this.code = code;
  }
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has. Injected in tests to simulate private answers. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) => {
  const answers = await dnsLookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export interface FetcherOptions {
  resolver?: Resolver;
  /**
   * TEST ONLY. Permits loopback addresses, and plain http when the host resolves to loopback.
   * Every other private range stays refused.
   */
  allowLoopback?: boolean;
  /** Whole request, headers and body (default 5000 ms). */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** Body cap, enforced while streaming and after decompression (default 64 KiB). */
  maxBytes?: number;
  maxRedirects?: number;
  maxConcurrent?: number;
  userAgent?: string;
}

export interface FetchJsonOptions {
  /** An extra TLS root for this request only (a registration's `caCertPem`). */
  caCertPem?: string;
  jsonLimits?: JsonLimits;
}

export interface FetchJsonResult {
  /** The URL finally answered (after same-origin redirects). */
  url: string;
  body: Record<string, unknown>;
  /** Cache-Control max-age in seconds, when present and no-store/no-cache are absent. */
  maxAge: number | undefined;
}

export interface HardenedFetcher {
  fetchJson(url: string, options?: FetchJsonOptions): Promise<FetchJsonResult>;
  close(): Promise<void>;
}

const DOCUMENT_LIMITS: JsonLimits = { maxDepth: 8, maxTopLevelMembers: 256, maxStringLength: 8192 };

// Exact ranges from verification.md §8, on top of ipaddr.js's own classification.
const BLOCKED_V4 = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.0.2.0/24',
  '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
].map((c) => ipaddr.IPv4.parseCIDR(c));
const BLOCKED_V6 = ['::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'ff00::/8', '2001:db8::/32', '100::/64', '2001::/23'].map((c) => ipaddr.IPv6.parseCIDR(c));
const NAT64 = ipaddr.IPv6.parseCIDR('64:ff9b::/96');
const NAT64_LOCAL = ipaddr.IPv6.parseCIDR('64:ff9b:1::/48');
const SIX_TO_FOUR = ipaddr.IPv6.parseCIDR('2002::/16');
const LOOPBACK_V4 = ipaddr.IPv4.parseCIDR('127.0.0.0/8');

export type AddressVerdict = 'public' | 'loopback' | 'blocked';

function classifyV4(ip: ipaddr.IPv4): AddressVerdict {
  if (ip.match(LOOPBACK_V4)) return 'loopback';
  if (BLOCKED_V4.some((cidr) => ip.match(cidr))) return 'blocked';
  return ip.range() === 'unicast' ? 'public' : 'blocked';
}

/** Classifies an IP literal: public unicast, loopback, or anything else (blocked). */
export function classifyAddress(address: string): AddressVerdict {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.parse(address);
  } catch {
    return 'blocked';
  }
  if (ip.kind() === 'ipv4') return classifyV4(ip as ipaddr.IPv4);
  const v6 = ip as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return classifyV4(v6.toIPv4Address());
  const b = v6.toByteArray();
  if (v6.match(NAT64)) return classifyV4(new ipaddr.IPv4(b.slice(12, 16)));
  // RFC 6052 /48: the IPv4 bits sit in bytes 6–7 and 9–10 (byte 8 is the reserved u octet).
  if (v6.match(NAT64_LOCAL)) return classifyV4(new ipaddr.IPv4([b[6] as number, b[7] as number, b[9] as number, b[10] as number]));
  if (v6.match(SIX_TO_FOUR)) return classifyV4(new ipaddr.IPv4(b.slice(2, 6)));
  if (v6.toNormalizedString() === '0:0:0:0:0:0:0:1') return 'loopback';
  if (BLOCKED_V6.some((cidr) => v6.match(cidr))) return 'blocked';
  return v6.range() === 'unicast' ? 'public' : 'blocked';
}

function hostLiteral(hostname: string): string | null {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return ipaddr.isValid(bare) && (bare.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(bare)) ? bare : null;
}

/**
 * Parses and checks a fetch URL before any I/O. The WHATWG parser canonicalises `2130706433`,
 * `0x7f.1` and `017700000001` to `127.0.0.1`, so IP literals are classified in their real form.
 */
export function checkFetchUrl(raw: string, allowLoopback: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new FetchError('fetch_url_invalid', `not a valid URL: ${JSON.stringify(raw.slice(0, 200))}`);
  }
  if (url.protocol !== 'https:' && !(allowLoopback && url.protocol === 'http:')) {
    throw new FetchError('fetch_url_invalid', `refusing ${url.protocol} URL ${url.origin}: only https is allowed`);
  }
  if (url.username !== '' || url.password !== '') throw new FetchError('fetch_url_invalid', 'refusing a URL with credentials (userinfo)');
  if (url.hash !== '' || raw.includes('#')) throw new FetchError('fetch_url_invalid', 'refusing a URL with a fragment');
  const literal = hostLiteral(url.hostname);
  if (literal !== null) {
    const verdict = classifyAddress(literal);
    if (verdict === 'blocked' || (verdict === 'loopback' && !allowLoopback)) {
      throw new FetchError('fetch_address_blocked', `refusing ${url.hostname}: not a public unicast address`);
    }
    if (url.protocol === 'http:' && verdict !== 'loopback') throw new FetchError('fetch_url_invalid', 'plain http is allowed only to loopback in test mode');
  }
  return url;
}

function maxAgeOf(cacheControl: string | string[] | undefined): number | undefined {
  const value = Array.isArray(cacheControl) ? cacheControl.join(',') : cacheControl;
  if (value === undefined) return undefined;
  if (/(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)/i.test(value)) return undefined;
  const m = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?\s*(?:,|$)/i.exec(value);
  return m ? Number(m[1]) : undefined;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.active++;
    return () => {
      const next = this.waiters.shift();
      if (next) next();
      else this.active--;
    };
  }
}

export function createHardenedFetcher(options: FetcherOptions = {}): HardenedFetcher {
  const resolver = options.resolver ?? systemResolver;
  const allowLoopback = options.allowLoopback === true;
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const maxRedirects = options.maxRedirects ?? 3;
  const userAgent = options.userAgent ?? 'ci-oidc/0.1';
  const semaphore = new Semaphore(options.maxConcurrent ?? 16);

  /** Resolve once, check every answer, hand the connector the first checked address. */
  const checkedLookup = (loopbackOnly: boolean) =>
    function lookup(hostname: string, opts: { all?: boolean }, callback: (...args: any[]) => void): void {
      const check = (answers: ResolvedAddress[]): ResolvedAddress => {
        if (answers.length === 0) throw new FetchError('fetch_failed', `${hostname} has no addresses`);
        for (const a of answers) {
          const verdict = classifyAddress(a.address);
          const ok = loopbackOnly ? verdict === 'loopback' : verdict === 'public' || (verdict === 'loopback' && allowLoopback);
          if (!ok) throw new FetchError('fetch_address_blocked', `refusing ${hostname}: it resolves to ${a.address}, which is not ${loopbackOnly ? 'a loopback address (plain http)' : 'a public unicast address'}`);
        }
        return answers[0] as ResolvedAddress;
      };
      resolver(hostname)
        .then(check)
        .then(
          (first) => {
            if (opts.all) callback(null, [{ address: first.address, family: first.family }]);
            else callback(null, first.address, first.family);
          },
          (err: unknown) => callback(err instanceof FetchError ? err : new FetchError('fetch_failed', `cannot resolve ${hostname}`, { cause: err })),
        );
    };

  const agents = new Map<string, Agent>();
  const agentFor = (protocol: string, caCertPem: string | undefined): Agent => {
    const key = `${protocol}|${caCertPem ?? ''}`;
    let agent = agents.get(key);
    if (!agent) {
      agent = new Agent({
        connect: {
          lookup: checkedLookup(protocol === 'http:'),
          timeout: options.connectTimeoutMs ?? 2000,
          ...(caCertPem ? { ca: [...rootCertificates, caCertPem] } : {}),
        },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        connections: 4,
      });
      agents.set(key, agent);
    }
    return agent;
  };

  async function readCapped(body: AsyncIterable<Buffer> & { on(event: 'error', fn: () => void): unknown; destroy(err?: Error): void }): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += chunk.length;
      if (size > maxBytes) {
        discard(body);
        throw new FetchError('fetch_too_large', `response body exceeds ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, size);
  }

  function decode(raw: Buffer, encoding: string | undefined): Buffer {
    const enc = (encoding ?? 'identity').trim().toLowerCase();
    if (enc === '' || enc === 'identity') return raw;
    const opts = { maxOutputLength: maxBytes };
    try {
      if (enc === 'gzip' || enc === 'x-gzip') return gunzipSync(raw, opts);
      if (enc === 'deflate') return inflateSync(raw, opts);
      if (enc === 'br') return brotliDecompressSync(raw, opts);
    } catch (err) {
      if (err instanceof RangeError || (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new FetchError('fetch_too_large', `decompressed body exceeds ${maxBytes} bytes`);
      }
      throw new FetchError('fetch_content_invalid', `cannot decode ${enc} body`, { cause: err });
    }
    throw new FetchError('fetch_content_invalid', `unsupported content-encoding ${JSON.stringify(enc)}`);
  }

  async function fetchOnce(startUrl: URL, fetchOptions: FetchJsonOptions, signal: AbortSignal): Promise<FetchJsonResult> {
    let url = startUrl;
    for (let hop = 0; ; hop++) {
      const res = await request(url, {
        method: 'GET',
        dispatcher: agentFor(url.protocol, fetchOptions.caCertPem),
        headers: { accept: 'application/json', 'accept-encoding': 'identity', 'user-agent': userAgent },
        signal,
      });
      if (res.statusCode >= 300 && res.statusCode < 400) {
        discard(res.body);
        const location = header(res.headers, 'location');
        if (location === undefined) throw new FetchError('fetch_status', `HTTP ${res.statusCode} without a Location header from ${url.origin}`);
        if (hop >= maxRedirects) throw new FetchError('fetch_redirect_refused', `more than ${maxRedirects} redirects from ${startUrl.origin}`);
        let next: URL;
        try {
          next = checkFetchUrl(new URL(location, url).toString(), allowLoopback);
        } catch (err) {
          throw new FetchError('fetch_redirect_refused', `redirect from ${url.origin} refused: ${(err as Error).message}`);
        }
        if (next.origin !== url.origin) throw new FetchError('fetch_redirect_refused', `redirect from ${url.origin} to another origin (${next.origin}) refused`);
        url = next;
        continue;
      }
      if (res.statusCode !== 200) {
        discard(res.body);
        throw new FetchError('fetch_status', `HTTP ${res.statusCode} from ${url.origin}${url.pathname}`);
      }
      const contentType = header(res.headers, 'content-type') ?? '';
      if (/^\s*text\/html/i.test(contentType)) {
        discard(res.body);
        throw new FetchError('fetch_content_invalid', `${url.origin}${url.pathname} answered text/html, not JSON`);
      }
      const raw = await readCapped(res.body as unknown as Parameters<typeof readCapped>[0]);
      const bytes = decode(raw, header(res.headers, 'content-encoding'));
      const text = decodeUtf8Strict(bytes);
      if (text === null) throw new FetchError('fetch_content_invalid', 'response body is not valid UTF-8');
      let body: Record<string, unknown>;
      try {
        body = parseStrictJsonObject(text, fetchOptions.jsonLimits ?? DOCUMENT_LIMITS);
      } catch (err) {
        if (err instanceof StrictJsonError) throw new FetchError('fetch_content_invalid', `response body is not a strict JSON object: ${err.message}`);
        throw err;
      }
      return { url: url.toString(), body, maxAge: maxAgeOf(res.headers['cache-control']) };
    }
  }

  return {
    async fetchJson(rawUrl, fetchOptions = {}) {
      const url = checkFetchUrl(rawUrl, allowLoopback);
      const release = await semaphore.acquire();
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new FetchError('fetch_timeout', `no complete answer from ${url.origin} within ${timeoutMs} ms`)), timeoutMs);
      try {
        return await fetchOnce(url, fetchOptions, controller.signal);
      } catch (err) {
        if (controller.signal.aborted) throw new FetchError('fetch_timeout', `no complete answer from ${url.origin} within ${timeoutMs} ms`);
        if (err instanceof FetchError) throw err;
        const cause = findFetchError(err);
        if (cause) throw cause;
        throw new FetchError('fetch_failed', `request to ${url.origin} failed: ${(err as Error).message ?? String(err)}`, { cause: err });
      } finally {
        clearTimeout(timer);
        release();
      }
    },
    async close() {
      await Promise.all([...agents.values()].map((a) => a.close().catch(() => undefined)));
      agents.clear();
    },
  };
}

/** Drops a response body; undici emits 'error' on destroy, which must not go unhandled. */
function discard(body: { on(event: 'error', fn: () => void): unknown; destroy(err?: Error): void }): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** undici wraps connector errors; dig out our own address refusal so callers see the real reason. */
function findFetchError(err: unknown): FetchError | undefined {
  let cur: unknown = err;
  for (let i = 0; i < 5 && cur !== null && typeof cur === 'object'; i++) {
    if (cur instanceof FetchError) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
