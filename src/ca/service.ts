import { createHash, type KeyObject } from 'node:crypto';
import { isVerificationError } from '../verifier/errors.ts';
import type { Clock } from '../server/clock.ts';
import { AuthenticationError, type AuthenticatedToken, type CaAuthenticator } from './authenticate.ts';
import { issueLeafAsync, toPem } from './certificate.ts';
import type { CaKeyMaterial } from './ca-keys.ts';
import { assertAlgorithmPermitted, assertStrongKey, ClientKeyError, defaultHash, parseCsr, parsePublicKeyWithSpkiAsync, verifyProofAsync, type ClientHash } from './client-key.ts';
import { buildIdentity, IDENTITY_TOKEN_MESSAGE, IdentityError, type CertificateIdentity, type TemplateTraceEntry } from './identity.ts';
import type { CaIssuer, CompiledMetadata } from './issuer-config.ts';

/** Fulcio's client-facing messages (signing-ca.md §3). */
export const FULCIO_MESSAGES = {
  identityToken: IDENTITY_TOKEN_MESSAGE,
  publicKeyParse: 'The public key supplied in the request could not be parsed',
  insecureKey: 'The public key supplied in the request is insecure',
  signature: 'The signature supplied in the request could not be verified',
  csrParse: 'The certificate signing request could not be parsed',
  caBackend: 'error communicating with CA backend',
  marshalCert: 'Error marshaling code signing certificate',
} as const;

/** A refusal in gRPC terms: `grpcCode` 3 → HTTP 400, 13 → 500. `code` is our stable reason for logs. */
export class FulcioError extends Error {
  constructor(
    readonly grpcCode: 3 | 13,
    readonly clientMessage: string,
    readonly code: string,
    readonly detail?: string,
  ) {
    super(clientMessage);
    this.name = 'FulcioError';
  }

  get httpStatus(): number {
    return this.grpcCode === 3 ? 400 : 500;
  }
}

export interface SigningRequest {
  token: string;
  publicKey?: string | Uint8Array;
  proofOfPossession?: Uint8Array;
  csr?: Uint8Array;
}

export interface SigningResult {
  leafDer: Buffer;
  /** leaf, intermediates..., root. */
  chainPem: string[];
  notBefore: number;
  notAfter: number;
  registration: string;
  iss: string;
  sub: string;
  jti: string | undefined;
  kid: string | undefined;
  /** project_id (GitLab-shaped) or repository_id (GitHub), for the audit line. */
  projectId: string | undefined;
  /** SHA-256 of the certified SPKI, hex. */
  keyFingerprint: string;
}

function keyFail(err: unknown, fallback: string, code: string): never {
  if (err instanceof FulcioError) throw err;
  throw new FulcioError(3, fallback, err instanceof ClientKeyError ? err.code : code, err instanceof Error ? err.message : String(err));
}

/** Fulcio's legacy `gitlab-pipeline` / `github-workflow` principal, compiled from the provider file. */
export interface LegacyPrincipal {
  requiredClaims: readonly string[];
  optionalClaims: readonly string[];
  metadata: CompiledMetadata;
  check(claims: Readonly<Record<string, unknown>>): string | null;
}

export interface CaServiceOptions {
  authenticator: CaAuthenticator;
  keys: () => CaKeyMaterial;
  metadata: ReadonlyMap<string, CompiledMetadata>;
  legacy: Readonly<Record<'gitlab-pipeline' | 'github-workflow', LegacyPrincipal>>;
  clock: Clock;
  clientSigningAlgorithms: readonly string[];
  lenientClaims: boolean;
  /** Maximum leaf lifetime (600 s, Fulcio's). */
  lifetimeSeconds?: number;
  /** Per-issuer authorization policy (ours); false refuses with the identity-token message. */
  authorize?: (issuer: CaIssuer, claims: Readonly<Record<string, unknown>>) => boolean;
  /** Default `url` per issuer URL (our own issuer: its public URL) unless the entry sets one. */
  urlDefaults?: ReadonlyMap<string, string>;
}

const present = (v: unknown): boolean => v !== undefined && v !== null && v !== '';

/**
 * The issuance pipeline of `POST /api/v2/signingCert` (signing-ca.md §2.2): authenticate, parse the key or
 * CSR, reject weak keys, check proof of possession, check the key/hash allow-list, build and sign.
 */
export class CaService {
  constructor(private readonly opts: CaServiceOptions) {}

  /** Maps a verified token to the certificate identity (SAN + extensions). Used by issue() and explain. */
  identityFor(auth: AuthenticatedToken, trace?: TemplateTraceEntry[]): CertificateIdentity {
    const { issuer, iss, sub } = auth;
    const claims = auth.token.claims;
    const overrides: Record<string, string> = { ...issuer.defaultTemplateValues };
    const urlDefault = this.opts.urlDefaults?.get(iss);
    if (urlDefault !== undefined && overrides.url === undefined) overrides.url = urlDefault;
    const lenient = issuer.lenientClaims ?? this.opts.lenientClaims;
    if (issuer.type === 'ci-provider') {
      const metadata = this.opts.metadata.get(issuer.ciProvider!);
      if (!metadata) throw new FulcioError(13, FULCIO_MESSAGES.caBackend, 'metadata_missing', `no metadata ${issuer.ciProvider}`);
      return buildIdentity({ metadata, defaultOverrides: overrides, claims, iss, sub, lenient, ...(trace ? { trace } : {}) });
    }
    const legacy = this.opts.legacy[issuer.type];
    const optional = new Set(legacy.optionalClaims);
    for (const name of legacy.requiredClaims) {
      if (present(claims[name])) continue;
      if (!lenient) {
        trace?.push({ output: 'san', error: `missing ${name} claim in ID token` });
        throw new IdentityError('claim_missing', `missing ${name} claim in ID token`, IDENTITY_TOKEN_MESSAGE);
      }
      optional.add(name);
    }
    const problem = legacy.check(claims);
    if (problem && !(lenient && problem.startsWith('missing '))) {
      trace?.push({ output: 'san', error: problem });
      throw new IdentityError('claim_invalid', problem, IDENTITY_TOKEN_MESSAGE);
    }
    return buildIdentity({
      metadata: legacy.metadata,
      defaultOverrides: overrides,
      claims,
      iss,
      sub,
      optionalClaims: optional,
      lenient,
      legacy: true,
      ...(trace ? { trace } : {}),
    });
  }

  async authenticate(token: string): Promise<AuthenticatedToken> {
    let auth: AuthenticatedToken;
    try {
      auth = await this.opts.authenticator.authenticate(token);
    } catch (err) {
      if (err instanceof AuthenticationError) throw new FulcioError(3, FULCIO_MESSAGES.identityToken, err.code, err.message);
      if (isVerificationError(err)) throw new FulcioError(3, FULCIO_MESSAGES.identityToken, err.code, err.detail);
      // A verifier failure we did not classify is still the token's problem, never a 5xx (security-tests §1).
      throw new FulcioError(3, FULCIO_MESSAGES.identityToken, 'token_unverifiable', err instanceof Error ? err.message : String(err));
    }
    if (this.opts.authorize && !this.opts.authorize(auth.issuer, auth.token.claims)) {
      throw new FulcioError(3, FULCIO_MESSAGES.identityToken, 'authorization_denied', `issuer ${auth.iss} authorization policy refused the token`);
    }
    return auth;
  }

  async issue(req: SigningRequest): Promise<SigningResult> {
    const auth = await this.authenticate(req.token);
    const challenge = auth.issuer.challengeClaim;
    const challengeValue = auth.token.claims[challenge];

    let key: KeyObject;
    let spki: Buffer;
    let hash: ClientHash;
    if (req.csr && req.csr.length > 0) {
      let csr;
      try {
        csr = parseCsr(req.csr);
      } catch (err) {
        return keyFail(err, FULCIO_MESSAGES.csrParse, 'csr_invalid');
      }
      key = csr.key;
      spki = csr.spki;
      try {
        assertStrongKey(key);
      } catch (err) {
        keyFail(err, FULCIO_MESSAGES.insecureKey, 'public_key_insecure');
      }
      if (!csr.verify()) throw new FulcioError(3, FULCIO_MESSAGES.signature, 'signature_invalid', 'the CSR self-signature does not verify');
      hash = csr.hash;
    } else {
      try {
        ({ key, spki } = await parsePublicKeyWithSpkiAsync(req.publicKey));
      } catch (err) {
        return keyFail(err, FULCIO_MESSAGES.publicKeyParse, 'public_key_invalid');
      }
      try {
        assertStrongKey(key);
      } catch (err) {
        keyFail(err, FULCIO_MESSAGES.insecureKey, 'public_key_insecure');
      }
      hash = defaultHash(key);
      if (typeof challengeValue !== 'string' || challengeValue === '') {
        throw new FulcioError(3, FULCIO_MESSAGES.identityToken, 'challenge_claim_missing', `the token has no string ${challenge} claim to prove possession over`);
      }
      if (!(await verifyProofAsync(key, hash, Buffer.from(challengeValue, 'utf8'), req.proofOfPossession ?? new Uint8Array()))) {
        throw new FulcioError(3, FULCIO_MESSAGES.signature, 'signature_invalid', `proof of possession over ${challenge} does not verify`);
      }
    }
    try {
      assertAlgorithmPermitted(key, hash, this.opts.clientSigningAlgorithms);
    } catch (err) {
      const message = err instanceof Error ? err.message : 'signing algorithm not permitted';
      throw new FulcioError(3, message, 'algorithm_not_permitted', message);
    }

    let identity: CertificateIdentity;
    try {
      identity = this.identityFor(auth);
    } catch (err) {
      if (err instanceof IdentityError) throw new FulcioError(3, err.clientMessage, err.code, err.message);
      throw err;
    }

    const now = this.opts.clock();
    const claims = auth.token.claims;
    const exp = claims.exp as number;
    const keys = this.opts.keys();
    if (keys.issuing.notAfter <= now) throw new FulcioError(13, FULCIO_MESSAGES.caBackend, 'ca_expired', 'the active intermediate has expired; rotate it');
    const notAfter = Math.min(now + (this.opts.lifetimeSeconds ?? 600), exp, keys.issuing.notAfter);
    if (notAfter <= now) throw new FulcioError(3, FULCIO_MESSAGES.identityToken, 'expired', 'the token expires now');
    let leafDer: Buffer;
    try {
      leafDer = await issueLeafAsync(keys.issuing, {
        spki,
        notBefore: now,
        notAfter,
        sanUri: identity.san,
        extensions: identity.extensions,
      });
    } catch (err) {
      throw new FulcioError(13, FULCIO_MESSAGES.caBackend, 'ca_sign_failed', err instanceof Error ? err.message : String(err));
    }
    return {
      leafDer,
      chainPem: [toPem(leafDer), ...keys.chainPem],
      notBefore: now,
      notAfter,
      registration: auth.token.registration.id,
      iss: auth.iss,
      sub: auth.sub,
      jti: typeof claims.jti === 'string' ? claims.jti : undefined,
      kid: auth.token.kid,
      projectId: typeof claims.project_id === 'string' ? claims.project_id : typeof claims.repository_id === 'string' ? claims.repository_id : undefined,
      keyFingerprint: createHash('sha256').update(spki).digest('hex'),
    };
  }
}
