import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Paths that could hold a token, a credential or a key; pino replaces them before anything is written. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'token',
  'jwt',
  'password',
  'secret',
  'credential',
  'privateKey',
  '*.token',
  '*.jwt',
  '*.password',
  '*.secret',
  '*.credential',
  '*.privateKey',
];

/** A request URL as logged: the path only. A client may put a token in the query (`?jwt=`, AWS STS's
 * `WebIdentityToken`), and the query reaches the request log before any route can refuse it. */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?[query redacted]`;
}

interface LoggableRequest {
  method?: string;
  url?: string;
  host?: string;
  hostname?: string;
  ip?: string;
  socket?: { remoteAddress?: string; remotePort?: number };
}

function serializeRequest(req: LoggableRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? loggableUrl(req.url) : undefined,
    host: req.host ?? req.hostname,
    remoteAddress: req.ip ?? req.socket?.remoteAddress,
    remotePort: req.socket?.remotePort,
  };
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { req: serializeRequest },
      base: { service: 'ci-oidc' },
    },
    options.destination,
  );
}
