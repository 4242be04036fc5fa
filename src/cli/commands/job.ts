import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, EXIT, printJson } from '../output.ts';
import { parseVarsFile } from '../../issuer/vars-file.ts';

interface JobStartOptions {
  server: string;
  credential?: string;
  credentialFile?: string;
  vars: string;
  ciConfig?: string;
  format: 'json' | 'env';
}

interface JobStartAnswer {
  job_id: string;
  job_token: string;
  expires_at: number;
  id_tokens: Record<string, string>;
  variables: Record<string, string>;
}

/** The CI system's side of the job API: what a runner integration calls when a job starts and ends. */
export function register(program: Command): void {
  const job = program.command('job').description("a CI system's calls to the issuer's job API (register a job, end it)");
  job
    .command('start')
    .description('register a job with the issuer and print its ID tokens and job variables')
    .requiredOption('--server <url>', 'ci-oidc issuer base URL')
    .requiredOption('--vars <file>', 'the job context: GitLab predefined variables (.env or JSON)')
    .option('--ci-config <file>', 'the pipeline config (.gitlab-ci.yml) holding the job\'s id_tokens')
    .option('--credential <secret>', 'CI-system credential (prefer --credential-file or CI_OIDC_CI_CREDENTIAL)')
    .option('--credential-file <file>', 'file holding the CI-system credential')
    .option('--format <f>', 'json (the API answer) or env (VAR=value lines to give the job)', 'json')
    .option('--json', 'same as --format json')
    .action(async (options: JobStartOptions & { json?: boolean }) => {
      if (options.json) options.format = 'json';
      const answer = await startJob(options);
      if (options.format === 'env') {
        for (const [name, value] of Object.entries(answer.variables)) process.stdout.write(`${name}=${value}\n`);
      } else printJson(answer);
    });
  job
    .command('end')
    .description('end a job: its job token stops working at once')
    .requiredOption('--server <url>', 'ci-oidc issuer base URL')
    .argument('<jobId>', 'the job ID')
    .option('--credential <secret>', 'CI-system credential')
    .option('--credential-file <file>', 'file holding the CI-system credential')
    .option('--json', 'print {"jobId", "ended"} as JSON')
    .action(async (jobId: string, options: { server: string; credential?: string; credentialFile?: string; json?: boolean }) => {
      const res = await request(options.server, `/api/v1/jobs/${encodeURIComponent(jobId)}`, { method: 'DELETE', credential: credentialFrom(options) });
      if (res.status !== 204) throw new CliError('job_end_failed', `the issuer answered HTTP ${res.status}: ${await errorText(res)}`, EXIT.rejected);
      if (options.json) printJson({ jobId, ended: true });
      else process.stdout.write(`job ${jobId} ended\n`);
    });
}

function credentialFrom(options: { credential?: string; credentialFile?: string }): string {
  const value = options.credential ?? (options.credentialFile ? readFileSync(options.credentialFile, 'utf8').trim() : process.env.CI_OIDC_CI_CREDENTIAL);
  if (!value) throw new CliError('usage', 'pass --credential-file FILE (or set CI_OIDC_CI_CREDENTIAL)', EXIT.usage);
  return value;
}

export async function startJob(options: JobStartOptions): Promise<JobStartAnswer> {
  const body: Record<string, unknown> = { variables: parseVarsFile(readFileSync(options.vars, 'utf8'), options.vars) };
  if (options.ciConfig) body.ci_config = readFileSync(options.ciConfig, 'utf8');
  const res = await request(options.server, '/api/v1/jobs', { method: 'POST', credential: credentialFrom(options), body });
  if (res.status !== 201) throw new CliError('job_start_failed', `the issuer answered HTTP ${res.status}: ${await errorText(res)}`, EXIT.rejected);
  return (await res.json()) as JobStartAnswer;
}

async function request(server: string, path: string, init: { method: string; credential: string; body?: unknown }): Promise<Response> {
  const url = `${server.replace(/\/+$/, '')}${path}`;
  try {
    return await fetch(url, {
      method: init.method,
      headers: { authorization: `Bearer ${init.credential}`, ...(init.body ? { 'content-type': 'application/json' } : {}) },
      ...(init.body ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new CliError('unavailable', `could not reach ${url}: ${(err as Error).message}`, EXIT.unavailable);
  }
}

async function errorText(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error?: string; message?: string };
    return `${body.error ?? ''}${body.message ? `: ${body.message}` : ''}`;
  } catch {
    return text.slice(0, 200);
  }
}
