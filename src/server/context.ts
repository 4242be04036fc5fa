import type { FastifyInstance } from 'fastify';
import type { Kek } from '../jose/kek.ts';
import type { Store } from '../store/db.ts';
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

/** What every capability module is built from. */
export interface ServerContext {
  config: Config;
  store: Store;
  logger: Logger;
  metrics: Metrics;
  kek: Kek;
  clock: Clock;
  /**
   * The base URL clients reach this server at (no trailing slash). With port 0 it is known only once
   * the server listens, so call it when you need it rather than caching it at module creation.
   */
  publicUrl(): string;
}

/** A capability plugged into the server. */
export interface CapabilityModule {
  readonly name: string;
  /** Registers routes; called once, inside the module's own fastify scope. */
  routes?(app: FastifyInstance): void | Promise<void>;
  /** Readiness beyond the store ping, e.g. keys loaded. */
  ready?(): boolean | Promise<boolean>;
  /** Background work started once the server listens (key rotation timers, purges). */
  start?(): void | Promise<void>;
  close?(): void | Promise<void>;
}
