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

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: 'ci-oidc' },
    },
    options.destination,
  );
}
