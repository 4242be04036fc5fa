import type { Command } from 'commander';
import { CliError, EXIT, colour, printJson } from '../output.ts';

interface ExplainOptions {
  broker: string;
  token?: string;
  tokenEnv?: string;
  role?: string;
  publisher?: boolean;
  audience?: string[];
  adminToken?: string;
  json?: boolean;
}

interface TraceLine {
  path: string;
  claim?: string;
  op?: string;
  operand?: unknown;
  actual?: unknown;
  result: string;
  why: string;
}

interface ExplainAnswer {
  decision: 'allow' | 'deny';
  reason: string;
  cause?: string;
  stage?: string;
  selected?: string;
  issuer?: { registration: string; iss: string };
  candidates?: { name: string; result: string; reason: string; trace?: TraceLine[] }[];
}

/** `ci-oidc explain` and `ci-oidc policy explain`: the operator's view of a decision, role by role. */
export function register(program: Command): void {
  const configure = (cmd: Command) =>
    cmd
      .description("operators: why a token would or would not get a credential, role by role (the broker's admin API; no pin is recorded)")
      .requiredOption('--broker <url>', 'broker base URL')
      .option('--token <jwt>', 'the ID token to explain')
      .option('--token-env <name>', 'read the ID token from this environment variable')
      .option('--role <name>', 'explain only this role')
      .option('--publisher', 'explain the trusted-publisher decision (PyPI mint-token) instead of roles')
      .option('--audience <aud...>', 'audiences to accept (default: every audience the broker knows)')
      .option('--admin-token <token>', 'admin bearer token (prefer the CI_OIDC_ADMIN_TOKEN variable)')
      .option('--json', 'print the full explanation as JSON')
      .action(async (options: ExplainOptions) => {
        const answer = await explain(options);
        if (options.json) printJson(answer);
        else process.stdout.write(render(answer));
        if (answer.decision !== 'allow') process.exitCode = EXIT.rejected;
      });
  configure(program.command('explain'));
  const policy = program.commands.find((c) => c.name() === 'policy');
  if (policy) configure(policy.command('explain'));
}

export async function explain(options: ExplainOptions): Promise<ExplainAnswer> {
  const token = options.token ?? (options.tokenEnv ? process.env[options.tokenEnv] : undefined);
  if (!token) throw new CliError('usage', 'pass --token JWT or --token-env NAME', EXIT.usage);
  const adminToken = options.adminToken ?? process.env.CI_OIDC_ADMIN_TOKEN;
  if (!adminToken) throw new CliError('usage', 'explain uses the admin API: set CI_OIDC_ADMIN_TOKEN (or --admin-token)', EXIT.usage);
  const url = `${options.broker.replace(/\/+$/, '')}/admin/v1/explain`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        token,
        ...(options.role ? { role: options.role } : {}),
        ...(options.publisher ? { publisher: true } : {}),
        ...(options.audience?.length ? { audiences: options.audience } : {}),
      }),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new CliError('unavailable', `could not reach ${url}: ${(err as Error).message}`, EXIT.unavailable);
  }
  const body = (await res.json().catch(() => ({}))) as ExplainAnswer & { error?: string; message?: string };
  if (!res.ok) throw new CliError(body.error ?? 'explain_failed', `the broker answered HTTP ${res.status}${body.message ? `: ${body.message}` : ''}`, res.status === 401 ? EXIT.usage : EXIT.rejected);
  return body;
}

function show(value: unknown): string {
  if (value === undefined) return '(missing)';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function render(answer: ExplainAnswer): string {
  const lines: string[] = [];
  const verdict = answer.decision === 'allow' ? colour('green', 'ALLOW') : colour('red', 'DENY');
  lines.push(`${verdict} ${answer.reason}${answer.cause ? ` (${answer.cause})` : ''}${answer.selected ? `: role ${answer.selected}` : ''}`);
  if (answer.stage === 'verify') lines.push('  the token did not verify, so no role was evaluated');
  if (answer.issuer) lines.push(`  issuer ${answer.issuer.iss} (registration ${answer.issuer.registration})`);
  for (const c of answer.candidates ?? []) {
    lines.push(`  ${c.result === 'allow' ? colour('green', '✓') : colour('red', '✗')} ${c.name}: ${c.reason}`);
    for (const t of c.trace ?? []) {
      if (!t.claim) continue;
      const mark = (t.result as unknown) === true ? '✓' : '✗';
      lines.push(`      ${mark} ${t.claim} ${t.op ?? ''} ${show(t.operand)}: saw ${show(t.actual)} (${t.why})`);
    }
  }
  return lines.join('\n') + '\n';
}
