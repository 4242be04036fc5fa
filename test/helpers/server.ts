import { createLogger } from '../../src/server/logger.ts';
import { buildServer, type CiOidcServer } from '../../src/server/app.ts';
import { parseConfig, type ConfigInput } from '../../src/server/config.ts';
import { kekFromBytes } from '../../src/jose/kek.ts';
import type { Clock } from '../../src/server/clock.ts';
import type { Store } from '../../src/store/db.ts';
import { randomBytes } from 'node:crypto';

export interface TestServer extends CiOidcServer {
  url: string;
}

/** A real server on 127.0.0.1 with an ephemeral port, silent logs and a throwaway KEK. */
export async function startTestServer(options: { config?: ConfigInput; store: Store; clock?: Clock }): Promise<TestServer> {
  const input = structuredClone(options.config ?? {}) as Record<string, any>;
  input.server = { host: '127.0.0.1', port: 0, logLevel: 'silent', ...(input.server ?? {}) };
  const config = parseConfig(input);
  const server = await buildServer({
    config,
    store: options.store,
    logger: createLogger({ level: 'silent' }),
    kek: kekFromBytes(randomBytes(32)),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const url = await server.listen();
  return Object.assign(server, { url });
}
