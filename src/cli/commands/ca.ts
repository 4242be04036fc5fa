import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadOrCreateCaKeys, rotateIntermediate, type GeneratedCaOptions } from '../../ca/ca-keys.ts';
import type { CaConfig } from '../../ca/config.ts';
import { createCaExplainer } from '../../ca/module.ts';
import { loadKek } from '../../jose/kek.ts';
import { openStore, type Store } from '../../store/db.ts';
import type { Config } from '../../server/config.ts';
import type { ExplainReport } from '../../ca/explain.ts';
import { systemClock } from '../../server/clock.ts';
import { loadConfig } from '../../server/config.ts';
import { CliError, EXIT, colour, printJson } from '../output.ts';

/** Human-readable explain output: issuer match, verification, then one line per template. */
export function formatExplain(r: ExplainReport): string {
  const lines: string[] = [];
  lines.push(`issuer:        ${r.iss ?? '(unreadable)'}`);
  const m = r.issuerMatch;
  lines.push(
    `issuer match:  ${m.kind === 'none' ? colour('red', 'none (not configured for the CA)') : `${m.kind} ${m.entry} (type ${m.type}${m.ciProvider ? `, ci-provider ${m.ciProvider}` : ''}, challenge ${m.challengeClaim})`}`,
  );
  const v = r.verification;
  lines.push(`verification:  ${v.ok ? colour('green', `ok (registration ${v.registration}, alg ${v.alg}${v.kid ? `, kid ${v.kid}` : ''})`) : colour('red', `failed: ${v.code}${v.detail ? ` (${v.detail})` : ''}`)}`);
  for (const t of r.templates) {
    const name = `${t.output}${t.oid ? ` [${t.oid}]` : ''}`;
    const what = t.error ? colour('red', `error: ${t.error}`) : t.omitted ? colour('dim', `omitted: ${t.omitted}`) : t.value;
    lines.push(`  ${name.padEnd(58)} ${what}${t.template ? colour('dim', `  <- ${t.template}`) : ''}`);
  }
  lines.push(`outcome:       ${r.outcome.ok ? colour('green', 'a certificate would be issued') : colour('red', `refused (400): ${r.outcome.message} [${r.outcome.code}]`)}`);
  return lines.join('\n') + '\n';
}

function generatedOptions(config: Config, store: Store): GeneratedCaOptions {
  const keys: CaConfig['keys'] = config.ca.keys;
  if (keys.source !== 'generate') throw new CliError('usage', 'ca.keys.source is pem: manage the CA files directly (replace chainFile and keyFile, then restart)', EXIT.usage);
  const { kek } = loadKek({ envValue: process.env.CI_OIDC_KEK, file: config.kek.file, defaultFile: resolve(config.store.dataDir, 'kek') });
  return {
    db: store.db,
    kek,
    clock: systemClock,
    algorithm: keys.algorithm,
    organization: keys.organization,
    commonName: keys.commonName,
    rootValiditySeconds: keys.rootValidityDays * 86400,
    intermediateValiditySeconds: keys.intermediateValidityDays * 86400,
    rotateBeforeSeconds: keys.rotateBeforeDays * 86400,
  };
}

async function withStore<T>(configFile: string | undefined, fn: (config: Config, store: Store) => Promise<T>): Promise<T> {
  const { config } = loadConfig({ file: configFile });
  let store: Store;
  try {
    store = await openStore({ url: config.store.url, dataDir: config.store.dataDir, pgPoolSize: 2 });
  } catch (err) {
    throw new CliError('store_unavailable', `cannot open the store: ${err instanceof Error ? err.message : String(err)}`, EXIT.unavailable);
  }
  try {
    return await fn(config, store);
  } finally {
    await store.close();
  }
}

export function register(program: Command): void {
  const ca = program.command('ca').description('signing CA tools');
  ca.command('explain')
    .description('show how the CA would treat a token: issuer match, verification, and every certificate template value')
    .requiredOption('--token <jwt>', 'the ID token to explain (never logged)')
    .option('-c, --config <file>', 'YAML config file (default: ./ci-oidc.yaml when present)')
    .option('--json', 'print the report as JSON')
    .action(async (options: { token: string; config?: string; json?: boolean }) => {
      const { config } = loadConfig({ file: options.config });
      const explainer = createCaExplainer({ config: config.ca, clock: systemClock });
      try {
        const report = await explainer.explain(options.token);
        if (options.json) printJson(report);
        else process.stdout.write(formatExplain(report));
        if (!report.outcome.ok) throw new CliError(report.outcome.code ?? 'refused', `the CA would refuse this token: ${report.outcome.message}`, EXIT.rejected);
      } finally {
        await explainer.close();
      }
    });
  ca.command('trust-bundle')
    .description('print the CA chains (PEM) that verifiers must trust, creating the CA on first use')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print the /api/v2/trustBundle document instead of PEM')
    .action(async (options: { config?: string; json?: boolean }) => {
      await withStore(options.config, async (config, store) => {
        const keys = await loadOrCreateCaKeys(generatedOptions(config, store));
        if (options.json) printJson({ chains: keys.trustBundle.map((certificates) => ({ certificates })) });
        else process.stdout.write([...new Set(keys.trustBundle.flat())].join('\n') + '\n');
      });
    });
  ca.command('rotate-intermediate')
    .description('replace the active intermediate with a new one signed by the root; the old one stays trusted until it expires (restart servers to pick it up)')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print {"activeIntermediate"} as JSON')
    .action(async (options: { config?: string; json?: boolean }) => {
      await withStore(options.config, async (config, store) => {
        const keys = await rotateIntermediate(generatedOptions(config, store));
        if (options.json) printJson({ activeIntermediate: keys.activeIntermediateId });
        else process.stdout.write(`active intermediate: ${keys.activeIntermediateId}\n`);
      });
    });
}
