import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import type { Command } from 'commander';
import { loadKek } from '../../jose/kek.ts';
import { isSigningAlg, type SigningAlg } from '../../jose/keys.ts';
import { expansionVariables, parseJobContext } from '../../issuer/context.ts';
import { CiConfig } from '../../issuer/id-tokens.ts';
import { IssuerCore } from '../../issuer/issuer.ts';
import { createIssuerModule, type IssuerModule } from '../../issuer/module.ts';
import { parseVarsFile } from '../../issuer/vars-file.ts';
import { systemClock } from '../../server/clock.ts';
import { loadConfig, publicBaseUrl, type Config } from '../../server/config.ts';
import type { ServerContext } from '../../server/context.ts';
import { isCiOidcError } from '../../server/errors.ts';
import { createLogger } from '../../server/logger.ts';
import { createMetrics } from '../../server/metrics.ts';
import { openStore } from '../../store/db.ts';
import { CliError, EXIT, colour, printJson, progress } from '../output.ts';

interface StoreOptions {
  config?: string;
  dataDir?: string;
}

function readText(file: string, what: string): string {
  const path = resolve(file);
  if (!existsSync(path)) throw new CliError('usage', `${what} ${path} does not exist`, EXIT.usage);
  return readFileSync(path, 'utf8');
}

function configFor(options: StoreOptions): Config {
  return loadConfig({ file: options.config, overrides: { store: { dataDir: options.dataDir } } }).config;
}

/** The issuer module on the configured store and KEK, without the HTTP server. */
async function withIssuer<T>(options: StoreOptions, body: (issuer: IssuerModule) => Promise<T>): Promise<T> {
  const config = configFor(options);
  const logger = createLogger({ level: 'warn' });
  const store = await openStore({ url: config.store.url, dataDir: config.store.dataDir });
  try {
    const { kek, origin } = loadKek({ envValue: process.env.CI_OIDC_KEK, file: config.kek.file, defaultFile: resolve(config.store.dataDir, 'kek') });
    if (origin === 'generated') process.stderr.write(`${colour('yellow', 'warning')}: generated a key-encryption key in ${config.store.dataDir}; set CI_OIDC_KEK in production\n`);
    const ctx: ServerContext = { config, store, logger, metrics: createMetrics({ defaultMetrics: false }), kek, clock: systemClock, publicUrl: () => publicBaseUrl(config) };
    const issuer = await createIssuerModule(ctx);
    return await body(issuer);
  } finally {
    await store.close();
  }
}

function asCliError(err: unknown): never {
  if (isCiOidcError(err)) throw new CliError(err.code, `${err.message} (${err.code})`, EXIT.rejected);
  throw err;
}

export function decodeToken(token: string): { header: unknown; claims: unknown } {
  const parts = token.trim().split('.');
  if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) {
    throw new CliError('token_malformed', 'not a compact JWS: expected three base64url segments separated by dots', EXIT.usage);
  }
  const part = (s: string, what: string): unknown => {
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(s, 'base64url')));
    } catch {
      throw new CliError('token_malformed', `the ${what} is not base64url-encoded JSON`, EXIT.usage);
    }
  };
  return { header: part(parts[0]!, 'header'), claims: part(parts[1]!, 'payload') };
}

export function register(program: Command): void {
  program
    .command('issue')
    .description('mint the ID tokens of one job from its CI variables and .gitlab-ci.yml; prints {"NAME": "<jwt>", …}')
    .requiredOption('--vars <file>', 'GitLab predefined variables (+ CI_OIDC_* extras) as .env or JSON')
    .option('--ci-config <file>', 'the pipeline configuration', '.gitlab-ci.yml')
    .option('--job <name>', 'job name (default: CI_JOB_NAME from --vars)')
    .option('--job-vars <file>', "the job's own variables for expansion in aud and jwt_claims (.env or JSON)")
    .option('-c, --config <file>', 'ci-oidc config file')
    .option('--data-dir <dir>', 'data directory (store and KEK)')
    .action(async (options: StoreOptions & { vars: string; ciConfig: string; job?: string; jobVars?: string }) => {
      const vars = parseVarsFile(readText(options.vars, '--vars'), options.vars);
      if (options.job) vars.CI_JOB_NAME = options.job;
      const jobVars = options.jobVars ? parseVarsFile(readText(options.jobVars, '--job-vars'), options.jobVars) : {};
      const yaml = readText(options.ciConfig, '--ci-config');
      await withIssuer(options, async (issuer) => {
        try {
          const context = parseJobContext(vars);
          const job = CiConfig.parse(yaml, options.ciConfig).jobTokenConfig(context.jobName);
          printJson(issuer.core.issueJob({ context, job, variables: expansionVariables(vars, jobVars) }).tokens);
        } catch (err) {
          asCliError(err);
        }
      });
    });

  program
    .command('decode')
    .description('print the header and claims of a JWT (no signature check: use `ci-oidc verify` for that)')
    .argument('<token>', 'the token, or - to read it from stdin')
    .action((token: string) => {
      const text = token === '-' ? readFileSync(0, 'utf8') : token;
      printJson(decodeToken(text));
    });

  program
    .command('lint')
    .description('check id_tokens, jwt_claims, sub and custom-claim rules of a CI configuration before a pipeline runs')
    .argument('[file]', 'the pipeline configuration', '.gitlab-ci.yml')
    .option('--vars <file>', 'job variables (.env or JSON): also checks settings, custom-claim locks and aud expansion')
    .option('--job <name>', 'lint one job (default: every job)')
    .option('-c, --config <file>', 'ci-oidc config file (instance/group/project settings)')
    .option('--json', 'print results as JSON')
    .action((file: string, options: { vars?: string; job?: string; config?: string; json?: boolean }) => {
      const results = lint(readText(file, 'CI configuration'), file, options);
      if (options.json) printJson(results);
      else {
        for (const r of results) {
          process.stdout.write(r.ok ? `${colour('green', 'ok')}   ${r.job}: ${r.tokens.join(', ') || 'no ID tokens'}\n` : `${colour('red', 'fail')} ${r.job}: ${r.message} (${r.code})\n`);
        }
      }
      if (results.some((r) => !r.ok)) process.exitCode = EXIT.rejected;
    });

  const keys = program.command('keys').description('issuer signing keys');
  keys
    .command('list')
    .description('list signing keys with their state (next, active, retired, removed)')
    .option('-c, --config <file>', 'ci-oidc config file')
    .option('--data-dir <dir>', 'data directory')
    .option('--json', 'print as JSON')
    .action(async (options: StoreOptions & { json?: boolean }) => {
      await withIssuer(options, async (issuer) => {
        const rows = issuer.keys().map((k) => ({
          kid: k.kid,
          alg: k.alg,
          state: k.state,
          created: iso(k.createdAt),
          activates: k.state === 'next' ? iso(k.activateAt) : null,
          activated: iso(k.activatedAt),
          retired: iso(k.retiredAt),
          removeAt: iso(k.removeAt),
        }));
        if (options.json) printJson(rows);
        else for (const r of rows) process.stdout.write(`${r.state.padEnd(8)} ${r.alg.padEnd(6)} ${r.kid}  created ${r.created ?? '-'}${r.activates ? `  activates ${r.activates}` : ''}${r.removeAt ? `  removed after ${r.removeAt}` : ''}\n`);
      });
    });
  keys
    .command('rotate')
    .description('publish a successor key (it signs after the 48 h pre-publication), or activate one that is due; --emergency withdraws the active key now')
    .option('--alg <alg>', 'RS256, ES256 or EdDSA (default: the first configured algorithm)')
    .option('--emergency', 'remove the active key from the JWKS at once and sign with a new key (compromise)')
    .option('-c, --config <file>', 'ci-oidc config file')
    .option('--data-dir <dir>', 'data directory')
    .option('--json', 'print the actions taken as JSON')
    .action(async (options: StoreOptions & { alg?: string; emergency?: boolean; json?: boolean }) => {
      if (options.alg !== undefined && !isSigningAlg(options.alg)) throw new CliError('usage', '--alg must be RS256, ES256 or EdDSA', EXIT.usage);
      await withIssuer(options, async (issuer) => {
        progress('generating the successor key');
        const actions = await issuer.rotate(options.alg as SigningAlg | undefined, { emergency: options.emergency === true });
        if (options.json) {
          printJson({ actions });
          return;
        }
        if (actions.length === 0) {
          const next = issuer.keys().find((k) => k.state === 'next' && (options.alg === undefined || k.alg === options.alg));
          process.stdout.write(next ? `nothing to do: successor ${next.kid} activates at ${iso(next.activateAt) ?? '?'}\n` : 'nothing to do\n');
        }
        for (const a of actions) process.stdout.write(`${a.type}: ${'kid' in a ? a.kid : a.alg} (${a.reason})\n`);
      });
    });

  const issuerCmd = program.command('issuer').description('issuer discovery documents');
  issuerCmd
    .command('export')
    .description('write .well-known/openid-configuration and the JWKS into DIR for a static public host (private instances)')
    .argument('<dir>', 'output directory')
    .option('-c, --config <file>', 'ci-oidc config file')
    .option('--data-dir <dir>', 'data directory')
    .option('--json', 'print {"files", "warnings"} as JSON')
    .action(async (dir: string, options: StoreOptions & { json?: boolean }) => {
      await withIssuer(options, async (issuer) => {
        const written = exportDiscovery(issuer, dir);
        if (!configFor(options).issuer.issuerUrl) {
          process.stderr.write(`${colour('yellow', 'warning')}: issuer.issuerUrl is not set; the documents name ${issuer.issuerUrl}. Set issuer.issuerUrl to the public URL that will host them\n`);
        }
        if (options.json) {
          printJson(written);
          return;
        }
        for (const w of written.warnings) process.stderr.write(`${colour('yellow', 'warning')}: ${w}\n`);
        for (const f of written.files) process.stdout.write(`wrote ${f}\n`);
      });
    });
}

/** Writes both documents; warns when a copy already in DIR names another issuer (#429159). */
export function exportDiscovery(issuer: IssuerModule, dir: string): { files: string[]; warnings: string[] } {
  const warnings: string[] = [];
  const discoveryFile = join(dir, '.well-known', 'openid-configuration');
  if (existsSync(discoveryFile)) {
    try {
      const old = JSON.parse(readFileSync(discoveryFile, 'utf8')) as { issuer?: unknown };
      if (old.issuer !== issuer.issuerUrl) warnings.push(`the existing copy in ${discoveryFile} names issuer ${String(old.issuer)}, the tokens carry ${issuer.issuerUrl}; relying parties reject tokens when they differ`);
    } catch {
      warnings.push(`the existing ${discoveryFile} is not valid JSON; replacing it`);
    }
  }
  const files: string[] = [];
  const write = (path: string, body: unknown) => {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, JSON.stringify(body, null, 2) + '\n');
    files.push(path);
  };
  write(discoveryFile, issuer.discovery());
  write(join(dir, 'oauth', 'discovery', 'keys'), issuer.jwks());
  write(join(dir, '-', 'jwks'), issuer.jwks());
  return { files, warnings };
}

export interface LintResult {
  job: string;
  ok: boolean;
  tokens: string[];
  code?: string;
  message?: string;
}

/** Everything issuance checks, without keys: YAML rules always; settings, claims and expansion with --vars. */
export function lint(yaml: string, file: string, options: { vars?: string; job?: string; config?: string }): LintResult[] {
  let cfg: CiConfig;
  try {
    cfg = CiConfig.parse(yaml, file);
  } catch (err) {
    if (isCiOidcError(err)) return [{ job: '(file)', ok: false, tokens: [], code: err.code, message: err.message }];
    throw err;
  }
  const vars = options.vars ? parseVarsFile(readText(options.vars, '--vars'), options.vars) : undefined;
  const config = vars ? loadConfig({ file: options.config }).config : undefined;
  const core = config ? new IssuerCore(config.issuer, { issuerUrl: () => config.issuer.issuerUrl ?? publicBaseUrl(config), instanceUrl: () => config.issuer.instanceUrl ?? config.issuer.issuerUrl ?? publicBaseUrl(config) }, { signer: () => undefined }, systemClock) : undefined;
  const jobs = options.job ? [options.job] : cfg.jobNames();
  return jobs.map((job): LintResult => {
    try {
      const jobCfg = cfg.jobTokenConfig(job);
      if (vars && core) {
        const context = parseJobContext({ ...vars, CI_JOB_NAME: job });
        core.validateJob({ context, job: jobCfg, variables: expansionVariables(vars) });
      }
      return { job, ok: true, tokens: jobCfg.idTokens.map((t) => t.name) };
    } catch (err) {
      if (isCiOidcError(err)) return { job, ok: false, tokens: [], code: err.code, message: err.message };
      throw err;
    }
  });
}

function iso(t: number | null): string | null {
  return t === null ? null : new Date(t * 1000).toISOString();
}
