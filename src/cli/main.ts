import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../server/errors.ts';
import { register as registerConfig } from './commands/config.ts';
import { register as registerDemo } from './commands/demo.ts';
import { register as registerExplain } from './commands/explain.ts';
import { register as registerJob } from './commands/job.ts';
import { register as registerServe } from './commands/serve.ts';
import { register as registerToken } from './commands/token.ts';
import { register as registerSign } from './commands/sign.ts';
import { register as registerCa } from './commands/ca.ts';
import { register as registerVerify } from './commands/verify.ts';
import { register as registerBroker } from './commands/broker.ts';
import { register as registerPolicy } from './commands/policy.ts';
import { register as registerIssuer } from './commands/issuer.ts';
import { CliError, EXIT, colour } from './output.ts';

const program = new Command();
program
  .name('ci-oidc')
  .description('CI workload identity: issue, verify and exchange CI ID tokens; sign with short-lived certificates')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

registerServe(program);
registerConfig(program);
registerDemo(program);
registerJob(program);
registerToken(program);
registerSign(program);
registerCa(program);
registerVerify(program);
registerBroker(program);
registerPolicy(program);
registerExplain(program);
registerIssuer(program);

acceptJsonEverywhere(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = exitCodeFor(err);
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof CliError) {
    process.stderr.write(`${colour('red', 'error')}: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`${colour('red', 'error')}: ${err.message}\n`);
    return EXIT.usage;
  }
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${colour('red', 'error')}: ${message}${typeof code === 'string' ? ` (${code})` : ''}\n`);
  return EXIT.rejected;
}

/**
 * `--json` works on every command: commands whose output is JSON already accept it as a no-op, so
 * scripts can pass it unconditionally. Long-running servers (serve, demo) have no result to print.
 */
function acceptJsonEverywhere(root: Command): void {
  for (const cmd of root.commands) {
    if (cmd.commands.length > 0) {
      acceptJsonEverywhere(cmd);
      continue;
    }
    if (['serve', 'demo', 'help'].includes(cmd.name())) continue;
    if (!cmd.options.some((o) => o.long === '--json')) cmd.option('--json', 'output is JSON (the default for this command)');
  }
}
