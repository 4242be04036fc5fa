import type { Command } from 'commander';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { CliError, EXIT } from '../output.ts';

export interface ServeOptions {
  config?: string;
  host?: string;
  port?: string;
  dataDir?: string;
  logLevel?: string;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the ci-oidc server (issuer, verifier, broker and signing CA, as configured)')
    .option('-c, --config <file>', 'YAML config file (default: ./ci-oidc.yaml when present)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default 8080)')
    .option('--data-dir <dir>', 'directory for the SQLite store and generated keys (default ./data)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
    .action(async (options: ServeOptions) => {
      await serve(options);
    });
}

export async function serve(options: ServeOptions, extra: { demo?: boolean; onListening?: (url: string) => void | Promise<void> } = {}): Promise<void> {
  const port = options.port === undefined ? undefined : Number(options.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new CliError('usage', `--port ${options.port} is not a port number (0-65535)`, EXIT.usage);
  }
  const { config } = loadConfig({
    file: options.config,
    overrides: {
      server: { host: options.host, port, logLevel: options.logLevel, ...(extra.demo ? { demo: true } : {}) },
      store: { dataDir: options.dataDir },
    },
  });
  const server = await buildServer({ config });
  const log = server.ctx.logger;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining in-flight requests');
    const force = setTimeout(() => {
      log.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.server.shutdownTimeoutSeconds * 1000);
    force.unref();
    try {
      await server.close();
      log.info('stopped');
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  const url = await server.listen();
  log.info({ url, store: server.ctx.store.location, modules: server.modules.map((m) => m.name) }, 'ci-oidc listening');
  await extra.onListening?.(url);
}
