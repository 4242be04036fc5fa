import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml, parseDocument } from 'yaml';
import { z } from 'zod';
import { brokerConfigSchema } from '../broker/config.ts';
import { caConfigSchema } from '../ca/config.ts';
import { issuerConfigSchema } from '../issuer/config.ts';
import { policyConfigSchema } from '../policy/config.ts';
import { verifierConfigSchema } from '../verifier/config.ts';
import { ConfigError } from './errors.ts';

const serverSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8080),
  /** The base URL clients reach us at; the issuer URL and every absolute URL we publish derive from it. */
  publicUrl: z.url({ protocol: /^https?$/ }).optional(),
  trustProxy: z.boolean().default(false),
  bodyLimit: z.number().int().min(1024).max(1024 * 1024).default(64 * 1024),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  shutdownTimeoutSeconds: z.number().int().min(1).max(300).default(10),
  /** Extra demo data (a project, a publisher) for `npm start`; never for production. */
  demo: z.boolean().default(false),
});

const storeSchema = z.strictObject({
  /** `postgres://…` for replicas; empty means the SQLite file `<dataDir>/ci-oidc.db`. Secret: prefer DATABASE_URL. */
  url: z.string().optional(),
  dataDir: z.string().min(1).default('./data'),
  pgPoolSize: z.number().int().min(1).max(200).default(10),
});

const kekSchema = z.strictObject({
  /** File holding the 32-byte key-encryption key (base64 or hex). CI_OIDC_KEK overrides it. */
  file: z.string().optional(),
});

export const configSchema = z.strictObject({
  server: serverSchema.prefault({}),
  store: storeSchema.prefault({}),
  kek: kekSchema.prefault({}),
  issuer: issuerConfigSchema.prefault({}),
  verifier: verifierConfigSchema.prefault({}),
  policy: policyConfigSchema.prefault({}),
  broker: brokerConfigSchema.prefault({}),
  ca: caConfigSchema.prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export const SECTIONS = ['server', 'store', 'kek', 'issuer', 'verifier', 'policy', 'broker', 'ca'] as const;

/** Secrets and conventional variables that map onto config keys. */
const NAMED_ENV: Record<string, string[]> = {
  DATABASE_URL: ['store', 'url'],
  CI_OIDC_KEK_FILE: ['kek', 'file'],
  PORT: ['server', 'port'],
};

export interface LoadConfigOptions {
  /** Path to the YAML file. Missing: `./ci-oidc.yaml` when it exists, otherwise defaults only. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Command-line flags; they win over the file and the environment. */
  overrides?: Record<string, Record<string, unknown>>;
}

export interface LoadedConfig {
  config: Config;
  /** The file read, if any. */
  file: string | undefined;
}

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  let file = options.file ?? env.CI_OIDC_CONFIG;
  if (!file && existsSync('ci-oidc.yaml')) file = 'ci-oidc.yaml';
  let raw: Record<string, unknown> = {};
  if (file) {
    const path = resolve(file);
    if (!existsSync(path)) throw new ConfigError([`config file ${path} does not exist: pass --config with the right path, or omit it to run with defaults`]);
    raw = parseConfigText(readFileSync(path, 'utf8'), path);
  }
  applyEnv(raw, env);
  for (const [section, values] of Object.entries(options.overrides ?? {})) {
    for (const [key, value] of Object.entries(values)) {
      if (value !== undefined) setPath(raw, [section, key], value);
    }
  }
  return { config: parseConfig(raw), file: file ? resolve(file) : undefined };
}

export function parseConfigText(text: string, origin = 'config'): Record<string, unknown> {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${origin}: ${e.message.split('\n')[0]}`));
  }
  const value: unknown = doc.toJS({ maxAliasCount: 50 });
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError([`${origin}: the top level must be a mapping of sections (${SECTIONS.join(', ')})`]);
  return value as Record<string, unknown>;
}

export function parseConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => describeIssue(issue)));
  }
  return result.data;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length > 0 ? `${key}: ` : '';
    return `${where}unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: remove them or check the spelling against docs/configuration.md`;
  }
  return `${key}: ${issue.message}`;
}

/** `CI_OIDC_<SECTION>_<KEY>` sets `<section>.<key>` (KEY in SCREAMING_SNAKE, mapped to camelCase). */
function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [name, path] of Object.entries(NAMED_ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(raw, path, scalar(value));
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('CI_OIDC_') || value === undefined || value === '') continue;
    const rest = name.slice('CI_OIDC_'.length).toLowerCase();
    const section = SECTIONS.find((s) => rest.startsWith(`${s}_`));
    if (!section) continue;
    const key = rest.slice(section.length + 1).replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (key.length > 0) setPath(raw, [section, key], scalar(value));
  }
}

function scalar(value: string): unknown {
  if (/^(true|false)$/.test(value)) return value === 'true';
  if (/^-?\d{1,15}$/.test(value)) return Number(value);
  if (/^[[{]/.test(value)) {
    try {
      return parseYaml(value);
    } catch {
      return value;
    }
  }
  return value;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    if (next === undefined || next === null || typeof next !== 'object') node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/** The base URL the server is reached at, without a trailing slash. */
export function publicBaseUrl(config: Config, listening?: { port: number }): string {
  if (config.server.publicUrl) return config.server.publicUrl.replace(/\/+$/, '');
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const shownHost = host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host;
  return `http://${shownHost}:${listening?.port ?? config.server.port}`;
}
