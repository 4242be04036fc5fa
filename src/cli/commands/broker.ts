import { appendFileSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { getAmbientToken } from '../ambient.ts';
import { CliError, EXIT, printJson } from '../output.ts';

/** `ci-oidc exchange` (a job trading its ID token) and `ci-oidc admin …` (the broker admin API). */
export function register(program: Command): void {
  program
    .command('exchange')
    .description('exchange this job\'s ID token at a ci-oidc broker for a short-lived credential')
    .requiredOption('--broker <url>', 'broker base URL, e.g. https://broker.example.com')
    .option('--role <name>', 'RFC 8693 exchange for this role')
    .option('--pypi', 'PyPI-compatible trusted publishing (mint-token)')
    .option('--audience <aud>', 'audience of the ID token (default: --pypi asks the broker; --role uses the broker URL)')
    .option('--scope <scopes>', 'extra space-separated scopes to request with --role')
    .option('--token <jwt>', 'the ID token (default: detected from the CI environment)')
    .option('--token-env <var>', 'read the ID token from this variable')
    .option('--format <f>', 'raw (the credential only), env (VAR=value lines) or json', 'raw')
    // Not --env-file: Node 20 claims that flag anywhere on the command line, even after the script.
    .option('--append-env <path>', 'append VAR=value lines to this file (e.g. $GITHUB_ENV) instead of printing them')
    .option('--json', 'same as --format json')
    .action(async (o: ExchangeOptions & { json?: boolean }) => {
      if (o.json) o.format = 'json';
      await exchange(o);
    });

  const admin = program
    .command('admin')
    .description('administer a broker over its admin API (token: --admin-token or CI_OIDC_ADMIN_TOKEN)')
    .requiredOption('--broker <url>', 'broker base URL')
    .option('--admin-token <token>', 'admin bearer token (prefer the CI_OIDC_ADMIN_TOKEN variable)');
  const call = (cmd: Command) => adminClient(cmd.optsWithGlobals() as { broker: string; adminToken?: string });

  const roles = admin.command('roles').description('list, show, save, delete or import roles');
  roles.command('list').action(async (_o, cmd: Command) => printJson(await call(cmd)('GET', '/admin/v1/roles')));
  roles.command('get <name>').action(async (name: string, _o, cmd: Command) => printJson(await call(cmd)('GET', `/admin/v1/roles/${enc(name)}`)));
  roles
    .command('put <file>')
    .description('create or replace a role from a JSON or YAML role document')
    .action(async (file: string, _o, cmd: Command) => {
      const doc = readDocument(file) as { name?: unknown };
      if (typeof doc.name !== 'string') throw new CliError('usage', `${file}: the role document needs a "name"`, EXIT.usage);
      printJson(await call(cmd)('PUT', `/admin/v1/roles/${enc(doc.name)}`, doc));
    });
  roles.command('delete <name>').action(async (name: string, _o, cmd: Command) => printJson(await call(cmd)('DELETE', `/admin/v1/roles/${enc(name)}`)));
  roles
    .command('import <file>')
    .description('import AWS trust policies, Vault JWT roles, octo-sts, GCP or Kubernetes files')
    .requiredOption('--format <f>', 'aws | vault | octo-sts | gcp | k8s')
    .option('--options <json>', 'importer options as JSON (e.g. {"registration":"gitlab.com"})', '{}')
    .option('--dry-run', 'show the compiled roles without saving')
    .action(async (file: string, o: { format: string; options: string; dryRun?: boolean }, cmd: Command) => {
      let options: unknown;
      try {
        options = JSON.parse(o.options);
      } catch {
        throw new CliError('usage', '--options must be a JSON object', EXIT.usage);
      }
      const text = readFileSync(file, 'utf8');
      let source: unknown;
      try {
        source = parseYaml(text);
      } catch {
        source = text;
      }
      printJson(await call(cmd)('POST', '/admin/v1/roles/import', { format: o.format, source, options, dryRun: o.dryRun === true }));
    });

  const pubs = admin.command('publishers').description('trusted publishers (normal and pending)');
  pubs.command('list').action(async (_o, cmd: Command) => printJson(await call(cmd)('GET', '/admin/v1/publishers')));
  pubs.command('create <file>').description('create a publisher from a JSON or YAML document').action(async (file: string, _o, cmd: Command) => printJson(await call(cmd)('POST', '/admin/v1/publishers', readDocument(file))));
  pubs.command('delete <id>').action(async (id: string, _o, cmd: Command) => printJson(await call(cmd)('DELETE', `/admin/v1/publishers/${enc(id)}`)));
  pubs.command('pending').description('list pending publishers').action(async (_o, cmd: Command) => printJson(await call(cmd)('GET', '/admin/v1/pending-publishers')));

  const issuers = admin.command('issuers').description('issuer registrations');
  issuers.command('list').action(async (_o, cmd: Command) => printJson(await call(cmd)('GET', '/admin/v1/issuers')));
  issuers
    .command('add <file>')
    .description('register an issuer from a JSON or YAML document (the shape of a verifier.issuers entry; inline staticJwks, no files)')
    .action(async (file: string, _o, cmd: Command) => printJson(await call(cmd)('POST', '/admin/v1/issuers', readDocument(file))));
  issuers
    .command('remove <id>')
    .description('remove an issuer registered through the admin API (config-defined ones are removed in the config)')
    .action(async (id: string, _o, cmd: Command) => printJson(await call(cmd)('DELETE', `/admin/v1/issuers/${enc(id)}`)));

  const keys = admin.command('keys').description('issuer signing keys');
  keys.command('list').action(async (_o, cmd: Command) => printJson(await call(cmd)('GET', '/admin/v1/keys')));
  keys.command('rotate').action(async (_o, cmd: Command) => printJson(await call(cmd)('POST', '/admin/v1/keys/rotate')));

  admin
    .command('audit')
    .description('search the audit log, or export it as JSON lines')
    .option('--since <unix>', 'from this time (seconds)')
    .option('--until <unix>', 'before this time (seconds)')
    .option('--endpoint <e>', 'pypi | oauth | vault | sts')
    .option('--outcome <o>', 'allow | deny | error')
    .option('--reason <code>')
    .option('--registration <id>')
    .option('--sub <sub>')
    .option('--jti <jti>')
    .option('--role <role>')
    .option('--limit <n>', 'records per page (max 1000)')
    .option('--export', 'stream every matching record as JSON lines')
    .action(async (o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const q = new URLSearchParams();
      for (const k of ['since', 'until', 'endpoint', 'outcome', 'reason', 'registration', 'sub', 'jti', 'role', 'limit']) {
        const v = o[k];
        if (typeof v === 'string') q.set(k, v);
      }
      if (o.export) {
        q.delete('limit');
        process.stdout.write(await call(cmd)('GET', `/admin/v1/audit/export?${q}`, undefined, 'text'));
      } else {
        printJson(await call(cmd)('GET', `/admin/v1/audit?${q}`));
      }
    });

  admin
    .command('revoke [credentialId]')
    .description('revoke one credential by id, or every credential minted from one ID token (--registration and --jti)')
    .option('--registration <id>')
    .option('--jti <jti>')
    .option('--reason <text>')
    .action(async (id: string | undefined, o: { registration?: string; jti?: string; reason?: string }, cmd: Command) => {
      const reason = o.reason ? { reason: o.reason } : {};
      if (id) return printJson(await call(cmd)('POST', `/admin/v1/credentials/${enc(id)}/revoke`, reason));
      if (!o.registration || !o.jti) throw new CliError('usage', 'give a credential id, or --registration and --jti', EXIT.usage);
      printJson(await call(cmd)('POST', '/admin/v1/credentials/revoke', { registration: o.registration, jti: o.jti, ...reason }));
    });
}

interface ExchangeOptions {
  broker: string;
  role?: string;
  pypi?: boolean;
  audience?: string;
  scope?: string;
  token?: string;
  tokenEnv?: string;
  format: string;
  appendEnv?: string;
}

const enc = encodeURIComponent;

function baseUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new CliError('usage', `--broker ${raw} is not a URL`, EXIT.usage);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname))) {
    throw new CliError('usage', '--broker must be https (plain http only on loopback)', EXIT.usage);
  }
  return u.toString().replace(/\/+$/, '');
}

function readDocument(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CliError('usage', `cannot read ${file}`, EXIT.usage);
  }
  try {
    return parseYaml(text) as unknown;
  } catch (err) {
    throw new CliError('usage', `${file} is not valid JSON or YAML: ${(err as Error).message.split('\n')[0]}`, EXIT.usage);
  }
}

async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new CliError('unavailable', `cannot reach ${new URL(url).origin}: ${(err as Error).message}`, EXIT.unavailable);
  }
}

export async function exchange(o: ExchangeOptions, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<void> {
  if (!!o.pypi === !!o.role) throw new CliError('usage', 'give exactly one of --pypi or --role <name>', EXIT.usage);
  if (!['raw', 'env', 'json'].includes(o.format)) throw new CliError('usage', '--format must be raw, env or json', EXIT.usage);
  const base = baseUrl(o.broker);
  let audience = o.audience;
  if (o.pypi && audience === undefined) {
    const r = await request(`${base}/_/oidc/audience`, { method: 'GET' });
    const j = (await r.json().catch(() => ({}))) as { audience?: unknown; message?: string };
    if (r.status !== 200 || typeof j.audience !== 'string') throw new CliError('not_enabled', `the broker does not offer trusted publishing: ${j.message ?? r.status}`, EXIT.rejected);
    audience = j.audience;
  }
  const { token } = await getAmbientToken({ audience: audience ?? base, token: o.token, tokenEnv: o.tokenEnv });
  let credential: string;
  let expires: number | undefined;
  let envName: string;
  const lines: string[] = [];
  if (o.pypi) {
    const r = await request(`${base}/_/oidc/mint-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    const j = (await r.json().catch(() => ({}))) as { token?: string; expires?: number; errors?: { code: string; description: string }[] };
    if (r.status !== 200 || typeof j.token !== 'string') {
      const e = j.errors?.[0];
      throw new CliError(e?.code ?? 'exchange_failed', `mint-token refused (${r.status}): ${e ? `${e.code}: ${e.description}` : 'unexpected answer'}`, EXIT.rejected);
    }
    credential = j.token;
    expires = j.expires;
    envName = 'TWINE_PASSWORD';
    lines.push('TWINE_USERNAME=__token__');
  } else {
    const form = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      scope: [`role:${o.role}`, ...(o.scope ? o.scope.split(' ').filter(Boolean) : [])].join(' '),
    });
    const r = await request(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    const j = (await r.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    if (r.status !== 200 || typeof j.access_token !== 'string') {
      throw new CliError(j.error ?? 'exchange_failed', `token exchange refused (${r.status}): ${j.error ?? 'unexpected answer'}${j.error_description ? ` (${j.error_description})` : ''}`, EXIT.rejected);
    }
    credential = j.access_token;
    expires = typeof j.expires_in === 'number' ? Math.floor(Date.now() / 1000) + j.expires_in : undefined;
    envName = 'CI_OIDC_ACCESS_TOKEN';
  }
  if (/[\r\n]/.test(credential)) throw new CliError('exchange_failed', 'the broker returned a credential with a line break', EXIT.rejected);
  lines.push(`${envName}=${credential}`);
  if (expires !== undefined) lines.push(`CI_OIDC_CREDENTIAL_EXPIRES=${expires}`);
  if (o.appendEnv) {
    appendFileSync(o.appendEnv, lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
    return;
  }
  if (o.format === 'env') out(lines.map((l) => `${l}\n`).join(''));
  else if (o.format === 'json') out(`${JSON.stringify({ credential, expires })}\n`);
  else out(`${credential}\n`);
}

function adminClient(o: { broker: string; adminToken?: string }) {
  const base = baseUrl(o.broker);
  const token = o.adminToken ?? process.env.CI_OIDC_ADMIN_TOKEN;
  if (!token) throw new CliError('usage', 'set CI_OIDC_ADMIN_TOKEN (or pass --admin-token)', EXIT.usage);
  return async (method: string, path: string, body?: unknown, as: 'json' | 'text' = 'json'): Promise<any> => {
    const r = await request(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (r.status === 204) return { ok: true };
    const text = await r.text();
    if (r.status >= 400) {
      let e: { error?: string; message?: string } = {};
      try {
        e = JSON.parse(text) as typeof e;
      } catch {
        /* not JSON */
      }
      throw new CliError(e.error ?? 'admin_failed', `${method} ${path}: ${r.status} ${e.message ?? text.slice(0, 200)}`, r.status === 401 || r.status === 403 ? EXIT.usage : EXIT.rejected);
    }
    return as === 'text' ? text : (JSON.parse(text) as unknown);
  };
}
