import type { IssuerRegistrationInput, JwksDocument, VerifiedToken, VerifyExpectations } from '../verifier/types.ts';
import type { VerifierProfileName } from '../providers/claim-types.ts';
import type { VerifyAlg } from '../jose/verify-signature.ts';
import { findIssuer, type CaIssuer, type CaIssuerConfig } from './issuer-config.ts';

/** The part of the verifier library the CA uses (src/verifier `createVerifier(...)`). */
export interface TokenVerifier {
  verify(token: string, expect: VerifyExpectations): Promise<VerifiedToken>;
  close?(): Promise<void>;
}

export type VerifierFactory = (issuers: IssuerRegistrationInput[]) => TokenVerifier;

export interface AuthenticatedToken {
  issuer: CaIssuer;
  token: VerifiedToken;
  iss: string;
  sub: string;
}

/** Why authentication failed; the client always sees Fulcio's identity-token message. */
export class AuthenticationError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AuthenticationError';
  }
}

const MAX_TOKEN = 20000;

/** Reads `iss` without verifying anything, to pick the issuer entry (Fulcio step 1). */
export function unverifiedIssuer(token: string): string {
  if (token.length === 0) throw new AuthenticationError('token_missing', 'no identity token in the request (body credentials.oidcIdentityToken or Authorization: Bearer)');
  if (token.length > MAX_TOKEN) throw new AuthenticationError('token_too_large', 'the identity token is larger than 20000 characters');
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) {
    throw new AuthenticationError('token_malformed', 'the identity token is not a compact JWS with three base64url segments');
  }
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(parts[1]!, 'base64url')));
  } catch {
    throw new AuthenticationError('token_malformed', 'the identity token payload is not JSON');
  }
  const iss = (payload as { iss?: unknown } | null)?.iss;
  if (typeof iss !== 'string' || iss.length === 0) throw new AuthenticationError('token_malformed', 'the identity token has no string iss');
  return iss;
}

/** Verifier profile for a CA issuer entry: explicit `Profile`, else from the type / metadata name. */
export function profileFor(issuer: CaIssuer): VerifierProfileName {
  if (issuer.profile) return issuer.profile as VerifierProfileName;
  const key = issuer.type === 'ci-provider' ? issuer.ciProvider : issuer.type;
  if (key === 'gitlab-pipeline') return 'gitlab';
  if (key === 'github-workflow') return 'github';
  if (key === 'ci-oidc') return 'ci-oidc';
  return 'generic';
}

export interface AuthenticatorOptions {
  config: CaIssuerConfig;
  makeVerifier: VerifierFactory;
  /** Key sources for issuers served in-process (our own issuer), by issuer URL. */
  localKeySources?: ReadonlyMap<string, () => JwksDocument | Promise<JwksDocument>>;
  /** TEST ONLY: http and loopback issuer URLs for discovery. */
  allowInsecureLoopback?: boolean;
  /** Cache size for meta-issuer verifiers (Fulcio: LRU of 100). */
  metaCacheSize?: number;
}

export function registrationFor(issuer: CaIssuer, iss: string, opts: AuthenticatorOptions): IssuerRegistrationInput {
  const local = opts.localKeySources?.get(iss);
  const keys: IssuerRegistrationInput['keys'] = issuer.staticJwks
    ? { staticJwks: issuer.staticJwks }
    : local
      ? { keySource: local }
      : issuer.jwksUri
        ? { jwksUri: issuer.jwksUri }
        : 'discovery';
  return {
    id: `${issuer.wildcardIssuerUrl ? 'ca-meta' : 'ca'}:${iss}`,
    issuer: iss,
    profile: profileFor(issuer),
    keys,
    ...(issuer.caCert ? { caCertPem: issuer.caCert } : {}),
    ...(issuer.algorithms ? { algorithms: issuer.algorithms as VerifyAlg[] } : {}),
    ...(opts.allowInsecureLoopback ? { allowInsecureLoopback: true } : {}),
  };
}

/**
 * Token authentication for the CA (signing-ca.md §5.1): unverified `iss`, exact issuer then anchored meta
 * patterns (no network I/O for unknown issuers), then the verifier with the issuer's ClientID as the single
 * audience. `jti` reuse is allowed, as in Fulcio.
 */
export class CaAuthenticator {
  private readonly staticVerifier: TokenVerifier | undefined;
  private readonly metaVerifiers = new Map<string, TokenVerifier>();

  constructor(private readonly opts: AuthenticatorOptions) {
    const regs = [...opts.config.oidcIssuers.values()].map((i) => registrationFor(i, i.issuerUrl!, opts));
    this.staticVerifier = regs.length ? opts.makeVerifier(regs) : undefined;
  }

  private verifierFor(issuer: CaIssuer, iss: string): TokenVerifier {
    if (!issuer.wildcardIssuerUrl) return this.staticVerifier!;
    const hit = this.metaVerifiers.get(iss);
    if (hit) {
      this.metaVerifiers.delete(iss);
      this.metaVerifiers.set(iss, hit);
      return hit;
    }
    const v = this.opts.makeVerifier([registrationFor(issuer, iss, this.opts)]);
    this.metaVerifiers.set(iss, v);
    const cap = this.opts.metaCacheSize ?? 100;
    while (this.metaVerifiers.size > cap) this.metaVerifiers.delete(this.metaVerifiers.keys().next().value!);
    return v;
  }

  /** Which issuer entry a token would use, without verifying it. */
  match(token: string): { iss: string; issuer: CaIssuer | undefined } {
    const iss = unverifiedIssuer(token);
    return { iss, issuer: findIssuer(this.opts.config, iss) };
  }

  async authenticate(token: string): Promise<AuthenticatedToken> {
    const { iss, issuer } = this.match(token);
    if (!issuer) throw new AuthenticationError('issuer_unknown', `issuer ${JSON.stringify(iss)} is not configured for the CA`);
    const verified = await this.verifierFor(issuer, iss).verify(token, { audiences: [issuer.clientId], audienceMode: 'single' });
    const sub = verified.claims.sub;
    if (typeof sub !== 'string') throw new AuthenticationError('claim_type_invalid', 'the token has no string sub');
    return { issuer, token: verified, iss, sub };
  }
}
