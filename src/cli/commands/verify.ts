import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { BUILDKITE_ISSUER } from '../../providers/buildkite.ts';
import type { VerifierProfileName } from '../../providers/claim-types.ts';
import { GITHUB_ACTIONS_ISSUER } from '../../providers/github.ts';
import { GITLAB_COM_PRESET } from '../../providers/gitlab.ts';
import { isVerifyAlg, VERIFY_ALGS, type VerifyAlg } from '../../jose/verify-signature.ts';
import { isVerificationError } from '../../verifier/errors.ts';
import { PROFILES } from '../../verifier/registry.ts';
import type { AudienceMode, JwksDocument } from '../../verifier/types.ts';
import { createVerifier } from '../../verifier/verifier.ts';
import { CliError, EXIT, printJson } from '../output.ts';

interface VerifyOptions {
  issuer: string;
  audience: string[];
  jwks?: string;
  profile?: string;
  alg?: string[];
  audienceMode?: string;
  tenant?: string;
  allowInsecureLoopback?: boolean;
}

const KNOWN_PROFILES: Record<string, VerifierProfileName> = {
  [GITLAB_COM_PRESET.issuer]: 'gitlab',
  [GITHUB_ACTIONS_ISSUER]: 'github',
  [BUILDKITE_ISSUER]: 'buildkite',
};

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function readToken(arg: string): string {
  // "-" reads stdin, so the token need not appear in the process list or shell history.
  const raw = arg === '-' ? readFileSync(0, 'utf8') : arg;
  return raw.trim();
}

export function register(program: Command): void {
  program
    .command('verify')
    .description('verify a CI ID token against one issuer and print its claims as JSON (exit 1 with the reason code when rejected)')
    .argument('<token>', 'the ID token, or - to read it from stdin')
    .requiredOption('--issuer <url>', 'the exact issuer URL (iss), byte for byte')
    .requiredOption('-a, --audience <aud>', 'an accepted audience (repeatable)', collect)
    .option('--jwks <file>', 'verify against this JWKS file instead of fetching discovery (air-gapped)')
    .option('--profile <name>', `claim profile: ${Object.keys(PROFILES).join(', ')} (default: from the issuer, else generic)`)
    .option('--alg <alg>', `allowed algorithm (repeatable; default RS256): ${VERIFY_ALGS.join(', ')}`, collect)
    .option('--audience-mode <mode>', 'single (default), any-of or strict-string')
    .option('--tenant <tenant>', 'tenant context for a user-registered issuer')
    .option('--allow-insecure-loopback', 'TEST ONLY: allow http and loopback addresses for discovery/JWKS')
    .action(async (tokenArg: string, options: VerifyOptions) => {
      const profile = (options.profile ?? KNOWN_PROFILES[options.issuer] ?? 'generic') as VerifierProfileName;
      if (!(profile in PROFILES)) throw new CliError('usage', `unknown --profile ${JSON.stringify(options.profile)}; use one of ${Object.keys(PROFILES).join(', ')}`, EXIT.usage);
      const algorithms = (options.alg ?? ['RS256']).map((a) => {
        if (!isVerifyAlg(a)) throw new CliError('usage', `--alg ${JSON.stringify(a)} is not accepted; use ${VERIFY_ALGS.join(', ')} (never none or HS*)`, EXIT.usage);
        return a as VerifyAlg;
      });
      const mode = (options.audienceMode ?? 'single') as AudienceMode;
      if (!['single', 'any-of', 'strict-string'].includes(mode)) throw new CliError('usage', '--audience-mode must be single, any-of or strict-string', EXIT.usage);
      let keys: 'discovery' | { staticJwks: JwksDocument } = 'discovery';
      if (options.jwks) {
        let text: string;
        try {
          text = readFileSync(options.jwks, 'utf8');
        } catch (err) {
          throw new CliError('usage', `cannot read --jwks ${options.jwks}: ${(err as Error).message}`, EXIT.usage);
        }
        try {
          keys = { staticJwks: JSON.parse(text) as JwksDocument };
        } catch {
          throw new CliError('usage', `--jwks ${options.jwks} is not JSON; it must hold {"keys":[...]}`, EXIT.usage);
        }
      }
      const verifier = createVerifier({
        issuers: [
          {
            id: 'cli',
            issuer: options.issuer,
            profile,
            keys,
            algorithms,
            ...(options.tenant ? { tenant: options.tenant } : {}),
            allowInsecureLoopback: options.allowInsecureLoopback === true,
          },
        ],
      });
      try {
        const result = await verifier.verify(readToken(tokenArg), {
          audiences: options.audience,
          audienceMode: mode,
          ...(options.tenant ? { tenant: options.tenant } : {}),
        });
        printJson(result.claims);
      } catch (err) {
        if (isVerificationError(err)) {
          if (err.code === 'jwks_unavailable') {
            const reason = verifier.keyStatus()[0]?.lastError;
            throw new CliError(err.code, `${err.code}: ${err.message}${reason ? ` (${reason})` : ''}`, EXIT.rejected);
          }
          throw new CliError(err.code, `${err.code}: ${err.message}${err.detail ? ` (${err.detail})` : ''}`, EXIT.rejected);
        }
        throw err;
      } finally {
        await verifier.close();
      }
    });
}
