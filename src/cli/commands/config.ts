import type { Command } from 'commander';
import { stringify } from 'yaml';
import { loadConfig, parseConfig, type Config } from '../../server/config.ts';
import { redactUrl } from '../../store/db.ts';
import { printJson } from '../output.ts';

/** Keys whose values are secrets: shown as "[set]" when printing the effective configuration. */
const SECRET_KEY = /(token|secret|password|kek|credential|privateKey)/i;

export function redactConfig(config: Config): Record<string, unknown> {
  const walk = (value: unknown, key: string): unknown => {
    if (typeof value === 'string' && SECRET_KEY.test(key)) return value.length > 0 ? '[set]' : value;
    if (typeof value === 'string' && /^postgres(ql)?:\/\//.test(value)) return redactUrl(value);
    if (Array.isArray(value)) return value.map((v) => walk(v, key));
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    return value;
  };
  return walk(config, '') as Record<string, unknown>;
}

export function register(program: Command): void {
  const config = program.command('config').description('check and print the server configuration');
  config
    .command('check')
    .description('validate a config file (and the CI_OIDC_* environment); exit 2 with every problem listed')
    .option('-c, --config <file>', 'YAML config file (default: ./ci-oidc.yaml when present)')
    .option('--json', 'print {"ok", "file"} as JSON')
    .action((options: { config?: string; json?: boolean }) => {
      const { file } = loadConfig({ file: options.config });
      if (options.json) printJson({ ok: true, file: file ?? null });
      else process.stdout.write(`ok: ${file ?? 'defaults (no config file)'} is valid\n`);
    });
  config
    .command('print')
    .description('print the effective configuration as YAML (secrets shown as [set]); --defaults for the built-in defaults')
    .option('-c, --config <file>', 'YAML config file')
    .option('--defaults', 'ignore files and environment; print every default')
    .option('--json', 'print as JSON')
    .action((options: { config?: string; defaults?: boolean; json?: boolean }) => {
      const effective = options.defaults ? parseConfig({}) : loadConfig({ file: options.config }).config;
      const shown = redactConfig(effective);
      if (options.json) printJson(shown);
      else process.stdout.write(stringify(shown));
    });
}
