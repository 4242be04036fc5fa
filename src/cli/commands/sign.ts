import { generateKeyPairSync, sign as cryptoSign, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { getAmbientToken } from '../ambient.ts';
import { BundleVerificationError, makeBundle, verifyBundle, type SigstoreBundle } from '../../ca/bundle.ts';
import { pemToDerList } from '../../ca/certificate.ts';
import { metaIssuerPattern } from '../../ca/issuer-config.ts';
import { CliError, EXIT, printJson, progress } from '../output.ts';

/** `ci-oidc sign FILE` and `ci-oidc verify-blob FILE`: keyless signing against our Fulcio-compatible CA. */

export interface SignFileOptions {
  file: string;
  /** The CI ID token (audience `sigstore`). */
  token: string;
  /** Base URL of the CA (the ci-oidc server). */
  caUrl: string;
  /** Bundle path; default `<file>.sigstore.json`. */
  output?: string;
  fetch?: typeof fetch;
}

export interface SignFileResult {
  bundlePath: string;
  bundle: SigstoreBundle;
  certificatePem: string;
  san: string;
}

function unverifiedClaims(token: string): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new CliError('token_malformed', 'the token is not a compact JWT (three dot-separated parts)', EXIT.usage);
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    if (typeof claims === 'object' && claims !== null) return claims as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new CliError('token_malformed', 'the token payload is not a JSON object', EXIT.usage);
}

const trimUrl = (u: string): string => u.replace(/\/+$/, '');

async function call(f: typeof fetch, url: string, init?: RequestInit): Promise<Response> {
  try {
    return await f(url, { ...init, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new CliError('ca_unreachable', `cannot reach the CA at ${url}: ${err instanceof Error ? err.message : String(err)}`, EXIT.unavailable);
  }
}

/** The claim the CA wants signed for this issuer (`challengeClaim` from /api/v2/configuration), `sub` by default. */
async function challengeClaimFor(f: typeof fetch, caUrl: string, iss: string): Promise<string> {
  const res = await call(f, `${caUrl}/api/v2/configuration`);
  if (!res.ok) return 'sub';
  const body = (await res.json().catch(() => ({}))) as { issuers?: Array<{ issuerUrl?: string; wildcardIssuerUrl?: string; challengeClaim?: string }> };
  const entry =
    body.issuers?.find((i) => i.issuerUrl === iss) ?? body.issuers?.find((i) => i.wildcardIssuerUrl !== undefined && metaIssuerPattern(i.wildcardIssuerUrl).test(iss));
  return entry?.challengeClaim || 'sub';
}

/** Signs a file with an ephemeral P-256 key certified by our CA for `token`; writes a bundle v0.3 beside it. */
export async function signFile(opts: SignFileOptions): Promise<SignFileResult> {
  const f = opts.fetch ?? fetch;
  const caUrl = trimUrl(opts.caUrl);
  let artifact: Buffer;
  try {
    artifact = await readFile(opts.file);
  } catch {
    throw new CliError('file_unreadable', `cannot read ${opts.file}`, EXIT.usage);
  }
  const claims = unverifiedClaims(opts.token);
  const iss = typeof claims.iss === 'string' ? claims.iss : '';
  const challengeClaim = await challengeClaimFor(f, caUrl, iss);
  const challenge = claims[challengeClaim];
  if (typeof challenge !== 'string' || challenge === '') {
    throw new CliError('token_invalid', `the token has no ${challengeClaim} claim to prove possession over`, EXIT.usage);
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const proof = cryptoSign('sha256', Buffer.from(challenge, 'utf8'), privateKey);
  progress(`requesting a signing certificate from ${caUrl}`);
  const res = await call(f, `${caUrl}/api/v2/signingCert`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      credentials: { oidcIdentityToken: opts.token },
      publicKeyRequest: {
        publicKey: { algorithm: 'ECDSA', content: publicKey.export({ type: 'spki', format: 'pem' }) },
        proofOfPossession: proof.toString('base64'),
      },
    }),
  });
  const body = (await res.json().catch(() => undefined)) as
    | { message?: string; signedCertificateDetachedSct?: { chain?: { certificates?: string[] } }; signedCertificateEmbeddedSct?: { chain?: { certificates?: string[] } } }
    | undefined;
  if (!res.ok || !body) {
    throw new CliError('certificate_refused', `the CA refused the certificate (HTTP ${res.status}): ${body?.message ?? 'no message'}`, EXIT.rejected);
  }
  const chain = (body.signedCertificateEmbeddedSct ?? body.signedCertificateDetachedSct)?.chain?.certificates;
  const leafPem = chain?.[0];
  const leafDer = leafPem ? pemToDerList(leafPem)[0] : undefined;
  if (!leafPem || !leafDer) throw new CliError('ca_response_invalid', 'the CA answered without a certificate chain', EXIT.unavailable);
  const leaf = new X509Certificate(leafDer);
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(publicKey.export({ type: 'spki', format: 'der' }))) {
    throw new CliError('ca_response_invalid', 'the CA certified a different public key', EXIT.rejected);
  }
  const signature = cryptoSign('sha256', artifact, privateKey);
  const bundle = makeBundle(leafDer, artifact, signature);
  const bundlePath = opts.output ?? `${opts.file}.sigstore.json`;
  await writeFile(bundlePath, JSON.stringify(bundle, null, 2) + '\n');
  return { bundlePath, bundle, certificatePem: leafPem, san: /^URI:(.*)$/.exec(leaf.subjectAltName ?? '')?.[1] ?? '' };
}

export interface VerifyBlobOptions {
  file: string;
  bundle: string;
  certificateIdentity: string;
  certificateOidcIssuer: string;
  /** A trustBundle JSON document or a PEM file of the CA chain; otherwise fetched from caUrl. */
  trustBundleFile?: string;
  caUrl?: string;
  fetch?: typeof fetch;
}

async function trustedChains(opts: VerifyBlobOptions): Promise<string[][]> {
  let text: string;
  if (opts.trustBundleFile) {
    try {
      text = await readFile(opts.trustBundleFile, 'utf8');
    } catch {
      throw new CliError('file_unreadable', `cannot read ${opts.trustBundleFile}`, EXIT.usage);
    }
  } else if (opts.caUrl) {
    const res = await call(opts.fetch ?? fetch, `${trimUrl(opts.caUrl)}/api/v2/trustBundle`);
    if (!res.ok) throw new CliError('ca_unreachable', `the CA trust bundle is unavailable (HTTP ${res.status})`, EXIT.unavailable);
    text = await res.text();
  } else {
    throw new CliError('usage', 'pass --trust-bundle FILE or --ca-url URL (or set CI_OIDC_CA_URL)', EXIT.usage);
  }
  if (text.trimStart().startsWith('{')) {
    const doc = JSON.parse(text) as { chains?: Array<{ certificates?: string[] }> };
    return (doc.chains ?? []).map((c) => c.certificates ?? []);
  }
  return [pemToDerList(text).map((d) => `-----BEGIN CERTIFICATE-----\n${d.toString('base64')}\n-----END CERTIFICATE-----`)];
}

export async function verifyBlob(opts: VerifyBlobOptions): Promise<ReturnType<typeof verifyBundle>> {
  let artifact: Buffer;
  let bundle: unknown;
  try {
    artifact = await readFile(opts.file);
    bundle = JSON.parse(await readFile(opts.bundle, 'utf8'));
  } catch {
    throw new CliError('file_unreadable', `cannot read ${opts.file} or the bundle ${opts.bundle} (JSON)`, EXIT.usage);
  }
  try {
    return verifyBundle({
      artifact,
      bundle,
      trustedChains: await trustedChains(opts),
      certificateIdentity: opts.certificateIdentity,
      certificateOidcIssuer: opts.certificateOidcIssuer,
    });
  } catch (err) {
    if (err instanceof BundleVerificationError) throw new CliError(err.code, err.message, EXIT.rejected);
    throw err;
  }
}

export function register(program: Command): void {
  program
    .command('sign')
    .description('sign FILE keylessly: ephemeral key, certificate from the ci-oidc CA for the CI ID token, Sigstore bundle v0.3 beside the file')
    .argument('<file>', 'the artifact to sign')
    .option('--token <jwt>', 'the ID token (audience sigstore); default: detected from the CI environment')
    .option('--token-env <name>', 'read the ID token from this environment variable')
    .option('--ca-url <url>', 'base URL of the ci-oidc CA (default: $CI_OIDC_CA_URL)')
    .option('-o, --output <path>', 'bundle path (default FILE.sigstore.json)')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, options: { token?: string; tokenEnv?: string; caUrl?: string; output?: string; json?: boolean }) => {
      const caUrl = options.caUrl ?? process.env.CI_OIDC_CA_URL;
      if (!caUrl) throw new CliError('usage', 'pass --ca-url URL or set CI_OIDC_CA_URL', EXIT.usage);
      const ambient = await getAmbientToken({ audience: 'sigstore', token: options.token, tokenEnv: options.tokenEnv });
      const result = await signFile({ file, token: ambient.token, caUrl, ...(options.output ? { output: options.output } : {}) });
      if (options.json) printJson({ ok: true, bundle: result.bundlePath, identity: result.san, tokenSource: ambient.source });
      else process.stdout.write(`signed ${file} as ${result.san}\nbundle: ${result.bundlePath}\n`);
    });
  program
    .command('verify-blob')
    .description('verify FILE against a Sigstore bundle from the ci-oidc CA: chain to our root, identity and issuer in the certificate')
    .argument('<file>', 'the artifact')
    .requiredOption('--bundle <path>', 'the Sigstore bundle (v0.2 or v0.3)')
    .requiredOption('--certificate-identity <uri>', 'expected SAN URI, e.g. https://gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main')
    .requiredOption('--certificate-oidc-issuer <url>', 'expected token issuer, e.g. https://gitlab.com')
    .option('--trust-bundle <file>', 'the CA trust bundle (trustBundle JSON or PEM); default: fetched from --ca-url')
    .option('--ca-url <url>', 'base URL of the ci-oidc CA (default: $CI_OIDC_CA_URL)')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        file: string,
        options: { bundle: string; certificateIdentity: string; certificateOidcIssuer: string; trustBundle?: string; caUrl?: string; json?: boolean },
      ) => {
        const caUrl = options.caUrl ?? process.env.CI_OIDC_CA_URL;
        const result = await verifyBlob({
          file,
          bundle: options.bundle,
          certificateIdentity: options.certificateIdentity,
          certificateOidcIssuer: options.certificateOidcIssuer,
          ...(options.trustBundle ? { trustBundleFile: options.trustBundle } : {}),
          ...(caUrl ? { caUrl } : {}),
        });
        if (options.json) printJson({ ok: true, identity: result.san, issuer: result.issuer, signedAt: result.signedAt, warning: result.warning ?? null });
        else process.stdout.write(`Verified OK: ${result.san} (issuer ${result.issuer})\n${result.warning ? `warning: ${result.warning}\n` : ''}`);
      },
    );
}
