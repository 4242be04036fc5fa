import type { Command } from 'commander';
import { createCaExplainer } from '../../ca/module.ts';
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
}
