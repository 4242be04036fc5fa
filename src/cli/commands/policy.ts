import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { evalPolicy, lintPolicy } from '../../policy/offline.ts';
import type { ImportDialect } from '../../policy/importers/index.ts';
import { CliError, EXIT, printJson } from '../output.ts';

const DIALECTS: ImportDialect[] = ['native', 'aws', 'vault', 'octo-sts', 'gcp', 'k8s'];

function read(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError('usage', `cannot read ${what} ${file}: ${(err as Error).message}`, EXIT.usage);
  }
}

function dialectOf(value: string): ImportDialect {
  if (!DIALECTS.includes(value as ImportDialect)) throw new CliError('usage', `--dialect must be one of ${DIALECTS.join(', ')}`, EXIT.usage);
  return value as ImportDialect;
}

export function register(program: Command): void {
  const policy = program.command('policy').description('evaluate and lint role policies offline (native, AWS, Vault, octo-sts, GCP, Kubernetes)');
  policy
    .command('eval')
    .description('decide a claims file against a policy file; prints the decision and its explanation as JSON. Exit 0 allow, 1 deny, 2 malformed policy')
    .requiredOption('--policy <file>', 'policy document (JSON or YAML): the whole native document or just its condition part')
    .requiredOption('--claims <file>', 'decoded token payload (JSON)')
    .option('--dialect <dialect>', DIALECTS.join('|'), 'native')
    .option('--service-audience <aud>', 'audience assumed when the policy names none (octo-sts: its service domain)')
    .option('--profile <profile>', 'issuer profile when it cannot be inferred from iss (gitlab, github, buildkite, generic)')
    .action((o: { policy: string; claims: string; dialect: string; serviceAudience?: string; profile?: string }) => {
      const result = evalPolicy({ dialect: dialectOf(o.dialect), policyText: read(o.policy, 'policy file'), claimsText: read(o.claims, 'claims file'), serviceAudience: o.serviceAudience, profile: o.profile });
      printJson(result.output);
      process.exitCode = result.exitCode;
    });
  policy
    .command('lint')
    .description('report pitfalls (unanchored alternation, wildcards crossing "/", typed literals, missing tenant binding). Exit 0 clean, 1 lints, 2 malformed')
    .argument('<file>', 'policy document (JSON or YAML)')
    .option('--dialect <dialect>', DIALECTS.join('|'), 'native')
    .option('--issuer <url>', 'issuer URL the policy is for (decides the profile and whether it is shared)')
    .option('--profile <profile>', 'issuer profile (default gitlab)')
    .action((file: string, o: { dialect: string; issuer?: string; profile?: string }) => {
      const result = lintPolicy({ dialect: dialectOf(o.dialect), policyText: read(file, 'policy file'), issuerUrl: o.issuer, profile: o.profile });
      printJson(result.output);
      process.exitCode = result.exitCode;
    });
}
