import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { CredentialScope } from './credentials.ts';

/**
 * What the broker needs from the verifier, the policy engine and the issuer. module.ts adapts the real
 * implementations to these shapes, so the exchange core and its tests depend on nothing else.
 */
export type AudienceMode = 'single' | 'any-of' | 'strict-string';

export interface VerifyExpectation {
  audiences: string[];
  audienceMode: AudienceMode;
}

export interface VerifiedRegistration {
  id: string;
  issuer: string;
  profile: string;
}

export interface VerifiedToken {
  registration: VerifiedRegistration;
  header: Readonly<Record<string, unknown>>;
  claims: Readonly<Record<string, unknown>>;
  kid: string | undefined;
  alg: string;
}

export interface TokenVerifierPort {
  /** Throws an error with a string `code` (verification.md §11) on any failure. */
  verify(token: string, expect: VerifyExpectation): Promise<VerifiedToken>;
}

export interface ReplayPort {
  /**
   * Atomically records (registration, iss, jti) until `expiresAt`; false when it was already recorded.
   * `db` is the open transaction when the store allows the claim to join it.
   */
  claim(key: { registration: string; iss: string; jti: string }, expiresAt: number, db: Kysely<Database>): Promise<boolean>;
}

/** A decision turned into what to mint. */
export interface Grant {
  /** Role name, or `publisher:<id>`. */
  role: string;
  singleUse: boolean;
  /** Lifetime in seconds, already capped by the role and the request. */
  ttl: number;
  scope: CredentialScope;
  metadata: Record<string, string>;
  format: 'opaque' | 'jwt';
  /** Audit detail for operators (never a token). */
  detail?: Record<string, unknown>;
  /**
   * Runs inside the mint transaction after the replay claim (e.g. publisher ID pins). Throwing an
   * ExchangeError aborts the mint.
   */
  inTransaction?(db: Kysely<Database>): Promise<void>;
}

export interface JwtSignerPort {
  /** The `iss` of access tokens we sign. */
  issuer(): string;
  sign(payload: Record<string, unknown>, typ: string): string;
}

/** Optional admin capabilities owned by other modules (issuer registrations, signing keys, importers). */
export interface AdminPorts {
  issuers?: {
    list(): Promise<unknown[]> | unknown[];
    /** Validates and stores a registration; throws a CiOidcError (400 invalid, 409 taken). */
    register?(input: unknown, options?: { actor?: string }): Promise<unknown>;
    /** False when unknown; throws a 409 CiOidcError for a config-defined registration. */
    remove?(id: string): Promise<boolean>;
  };
  keys?: {
    list(): Promise<unknown[]> | unknown[];
    rotate?(): Promise<unknown>;
  };
  /** Compiles a foreign role file (aws, vault, octo-sts, gcp, k8s) into native role documents. */
  importRoles?(format: string, source: unknown, options: Record<string, unknown>): Promise<{ roles: unknown[]; lints?: unknown[] }>;
}
