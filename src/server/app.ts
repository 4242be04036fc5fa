import { resolve } from 'node:path';
import { createServer } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { loadKek, type Kek } from '../jose/kek.ts';
import { openStore, type Store } from '../store/db.ts';
import { systemClock, type Clock } from './clock.ts';
import { publicBaseUrl, type Config } from './config.ts';
import type { CapabilityModule, ServerContext } from './context.ts';
import { isCiOidcError } from './errors.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { buildModules, type ServerModules } from './modules.ts';

export interface BuildServerOptions {
  config: Config;
  store?: Store;
  logger?: Logger;
  kek?: Kek;
  clock?: Clock;
  metrics?: Metrics;
  env?: NodeJS.ProcessEnv;
}

export interface CiOidcServer {
  app: FastifyInstance;
  ctx: ServerContext;
  modules: CapabilityModule[];
  /** The same modules by name (issuer, verifier, policy, broker, ca). */
  parts: ServerModules;
  /** Listens on config.server.host/port and starts background work; returns the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export async function buildServer(options: BuildServerOptions): Promise<CiOidcServer> {
  const { config } = options;
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger({ level: config.server.logLevel });
  const ownsStore = !options.store;
  const store =
    options.store ??
    (await openStore({ url: config.store.url, dataDir: config.store.dataDir, pgPoolSize: config.store.pgPoolSize }));
  let kek = options.kek;
  if (!kek) {
    const loaded = loadKek({ envValue: env.CI_OIDC_KEK, file: config.kek.file, defaultFile: resolve(config.store.dataDir, 'kek') });
    if (loaded.origin === 'generated') {
      logger.warn({ file: resolve(config.store.dataDir, 'kek') }, 'generated a key-encryption key for this data directory; in production set CI_OIDC_KEK or kek.file and keep a backup of it');
    }
    kek = loaded.kek;
  }
  const metrics = options.metrics ?? createMetrics();
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.server.bodyLimit,
    trustProxy: config.server.trustProxy,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 200 },
  }) as unknown as FastifyInstance;
  // Every absolute URL we publish (the issuer URL above all) must be known before the modules are built,
  // so port 0 is resolved to a concrete free port now rather than at listen time.
  let listeningPort: number | undefined = config.server.port === 0 ? await reservePort(config.server.host) : undefined;
  const ctx: ServerContext = {
    config,
    store,
    logger,
    metrics,
    kek,
    clock: options.clock ?? systemClock,
    publicUrl: () => publicBaseUrl(config, listeningPort === undefined ? undefined : { port: listeningPort }),
  };

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = { method: request.method, route, status: String(reply.statusCode) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isCiOidcError(error)) {
      request.log.info({ code: error.code, detail: error.detail }, 'request rejected');
      return reply.status(error.status).send({ error: error.code, message: error.message });
    }
    if (error.validation) {
      return reply.status(400).send({ error: 'invalid_request', message: error.message });
    }
    const status = error.statusCode ?? 500;
    if (status < 500) {
      return reply.status(status).send({ error: (error.code ?? 'invalid_request').toLowerCase(), message: error.message });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).send({ error: 'internal_error', message: 'internal error; the operator can find it in the server log' });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: 'not_found', message: `no route for ${request.method} ${request.url.split('?')[0]}` });
  });

  const parts = await buildModules(ctx);
  const modules = parts.list;

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const checks: Record<string, string> = {};
    let ok = true;
    try {
      await store.ping();
      checks.store = 'ok';
    } catch {
      checks.store = 'unreachable';
      ok = false;
    }
    for (const mod of modules) {
      if (!mod.ready) continue;
      let ready: boolean;
      try {
        ready = await mod.ready();
      } catch {
        ready = false;
      }
      checks[mod.name] = ready ? 'ok' : 'not ready';
      ok &&= ready;
    }
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks });
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  for (const mod of modules) {
    if (mod.routes) await app.register(async (scope) => mod.routes!(scope));
  }

  let closed = false;
  return {
    app,
    ctx,
    modules,
    parts,
    async listen() {
      await app.listen({ host: config.server.host, port: listeningPort ?? config.server.port });
      const address = app.server.address();
      if (address && typeof address === 'object') listeningPort = address.port;
      for (const mod of modules) await mod.start?.();
      return ctx.publicUrl();
    },
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      for (const mod of [...modules].reverse()) await mod.close?.();
      if (ownsStore) await store.close();
    },
  };
}

function reservePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      const port = address && typeof address === 'object' ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}
