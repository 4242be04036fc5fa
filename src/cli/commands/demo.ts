import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { CI_OIDC_REGISTRATION_ID } from '../../providers/ci-oidc.ts';
import { buildServer, type CiOidcServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { CliError, EXIT, colour } from '../output.ts';

/** The audience the demo role accepts (the demo job's DEMO_BROKER_ID_TOKEN carries it). */
export const DEMO_AUDIENCE = 'demo-broker';
export const DEMO_ROLE = 'demo-deploy';
export const DEMO_PACKAGE = 'demo-package';

interface DemoOptions {
  port?: string;
  host?: string;
  dataDir?: string;
  logLevel?: string;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run issuer, broker and signing CA on SQLite with a demo project, publisher and role, and print a walkthrough (npm start)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '8080')
    .option('--data-dir <dir>', 'data directory', './data')
    .option('--log-level <level>', 'server log level', 'warn')
    .action(async (options: DemoOptions) => {
      await runDemo(options);
    });
}

/** A secret kept in the demo directory (mode 0600), generated on first start. */
function demoSecret(dir: string, name: string): string {
  const file = join(dir, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = randomBytes(32).toString('hex');
  writeFileSync(file, value + '\n', { mode: 0o600 });
  return value;
}

export async function runDemo(options: DemoOptions, hooks: { onReady?: (server: CiOidcServer, walkthrough: string) => void | Promise<void> } = {}): Promise<CiOidcServer> {
  const port = Number(options.port ?? '8080');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError('usage', `--port ${options.port} is not a port number`, EXIT.usage);
  const dataDir = options.dataDir ?? './data';
  const demoDir = resolve(dataDir, 'demo');
  mkdirSync(demoDir, { recursive: true, mode: 0o700 });
  const ciCredential = demoSecret(demoDir, 'ci-credential');
  const adminToken = demoSecret(demoDir, 'admin-token');

  const { config } = loadConfig({
    env: { ...process.env, CI_OIDC_ADMIN_TOKEN: undefined },
    overrides: {
      server: { host: options.host ?? '127.0.0.1', port, logLevel: options.logLevel ?? 'warn', demo: true },
      store: { dataDir },
      issuer: {
        ciSystems: [{ name: 'demo', tokenSha256: createHash('sha256').update(ciCredential).digest('hex'), namespaces: ['demo-group'] }],
      },
      broker: { adminToken, audiences: [DEMO_AUDIENCE] },
      // The public presets (gitlab.com, GitHub) need the internet; the demo trusts only its own issuer.
      verifier: { presets: { gitlabCom: false, githubActions: false, buildkite: false } },
    },
  });
  const server = await buildServer({ config });
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  const url = await server.listen();
  await seed(server, url);
  const text = walkthrough(url, dataDir);
  if (hooks.onReady) await hooks.onReady(server, text);
  else process.stdout.write(text);
  return server;
}

async function seed(server: CiOidcServer, url: string): Promise<void> {
  const engine = server.parts.policy?.engine;
  if (!engine) return;
  const existing = await engine.listPublishers({ registration: CI_OIDC_REGISTRATION_ID });
  if (!existing.some((p) => p.owner === 'demo-group' && p.project === 'demo-project')) {
    await engine.createPublisher(
      { provider: 'gitlab', registration: CI_OIDC_REGISTRATION_ID, owner: 'demo-group', project: 'demo-project', workflow: '.gitlab-ci.yml' },
      { actor: 'demo', projects: [DEMO_PACKAGE] },
    );
  }
  await engine.saveRole(
    {
      name: DEMO_ROLE,
      issuer: CI_OIDC_REGISTRATION_ID,
      audiences: [DEMO_AUDIENCE],
      when: {
        all: [
          { claim: 'namespace_path', eq: 'demo-group' },
          { claim: 'project_path', eq: 'demo-group/demo-project' },
          { claim: 'ref_protected', eq: 'true' },
          { claim: 'ref', glob: 'main' },
        ],
      },
      grant: { type: 'oauth', scopes: ['deploy:staging'], maxTtl: 900 },
    },
    { actor: 'demo' },
  );
  void url;
}

export interface WalkthroughStep {
  title: string;
  commands: string[];
}

/** The walkthrough, as steps: printed by the demo, shown in the README, and run verbatim by a test. */
export function walkthroughSteps(url: string, dataDir: string): WalkthroughStep[] {
  const d = dataDir.replace(/\/+$/, '').replace(/^\.\//, '');
  return [
    {
      title: 'The CI system starts the demo job (examples/demo/) and hands it its ID tokens:',
      commands: [
        `npx ci-oidc job start --server ${url} --credential-file ${d}/demo/ci-credential \\\n    --vars examples/demo/job.env --ci-config examples/demo/.gitlab-ci.yml --format env > ${d}/demo/job.env`,
        `set -a; . ${d}/demo/job.env; set +a`,
      ],
    },
    {
      title: 'Inside the job: trade the token for a 15-minute upload credential (PyPI trusted publishing):',
      commands: [`npx ci-oidc exchange --broker ${url} --pypi`],
    },
    {
      title: "Or for the demo role's credential (RFC 8693 token exchange):",
      commands: [`npx ci-oidc exchange --broker ${url} --role ${DEMO_ROLE} --audience ${DEMO_AUDIENCE}`],
    },
    {
      title: 'Sign a file keylessly with a 10-minute certificate, then verify the bundle:',
      commands: [
        `echo "hello" > ${d}/demo/artifact.txt`,
        `npx ci-oidc sign ${d}/demo/artifact.txt --ca-url ${url}`,
        `npx ci-oidc verify-blob ${d}/demo/artifact.txt --bundle ${d}/demo/artifact.txt.sigstore.json --ca-url ${url} \\\n    --certificate-identity "${url.replace(/^http:/, 'https:')}/demo-group/demo-project//.gitlab-ci.yml@refs/heads/main" --certificate-oidc-issuer ${url}`,
      ],
    },
    {
      title: 'As the operator: why does this token get (or not get) each role?',
      commands: [`CI_OIDC_ADMIN_TOKEN=$(cat ${d}/demo/admin-token) npx ci-oidc explain --broker ${url} --token "$DEMO_BROKER_ID_TOKEN"`],
    },
  ];
}

/** The steps as a bash block (README and demo output share it). */
export function walkthroughScript(url: string, dataDir: string): string {
  return walkthroughSteps(url, dataDir)
    .map((step, i) => `# ${i + 1}. ${step.title}\n${step.commands.join('\n')}`)
    .join('\n\n');
}

export function walkthrough(url: string, dataDir: string): string {
  const d = dataDir.replace(/\/+$/, '').replace(/^\.\//, '');
  const h = (s: string) => colour('bold', s);
  const script = walkthroughScript(url, dataDir)
    .split('\n')
    .map((l) => (l ? `  ${l}` : l))
    .join('\n');
  return `
${h(`ci-oidc demo is running at ${url}`)}: issuer, broker and signing CA on SQLite (${d}/ci-oidc.db).
Discovery: ${url}/.well-known/openid-configuration    Health: ${url}/readyz    Metrics: ${url}/metrics

Try it from another terminal in this directory (bash):

${script}

Stop with Ctrl-C. Data and generated keys stay in ${d}/ (delete it to start over).
`;
}
