import type { Command } from 'commander';
import { AmbientTokenError } from '../../providers/ambient.ts';
import { getAmbientToken } from '../ambient.ts';
import { CliError, EXIT, colour, printJson } from '../output.ts';

export function register(program: Command): void {
  program
    .command('token')
    .description('print an ID token for AUDIENCE from the CI environment (GitHub Actions, GitLab, Buildkite, CircleCI, ci-oidc)')
    .requiredOption('-a, --audience <aud>', 'the audience the token is for')
    .option('--token-env <name>', 'read the token from this environment variable')
    .option('--json', 'print {"token", "source", "warning"} as JSON')
    .action(async (options: { audience: string; tokenEnv?: string; json?: boolean }) => {
      try {
        const got = await getAmbientToken({ audience: options.audience, tokenEnv: options.tokenEnv });
        if (options.json) printJson(got);
        else {
          if (got.warning) process.stderr.write(`${colour('yellow', 'warning')}: ${got.warning}\n`);
          process.stdout.write(got.token + '\n');
        }
      } catch (err) {
        if (err instanceof AmbientTokenError) throw new CliError(err.code, err.message, EXIT.rejected);
        throw err;
      }
    });
}
