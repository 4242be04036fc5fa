import type { FetchRateLimits } from './fetch-budget.ts';
import type { VerifierProfileName } from '../providers/claim-types.ts';
import type { HardenedFetcher, Resolver } from '../jose/fetch.ts';
import type { VerifyAlg } from '../jose/verify-signature.ts';
import type { Clock } from '../server/clock.ts';
import type { Logger } from '../server/logger.ts';
import type { ReplayStore } from './replay.ts';

/** A JWKS document as published: `{"keys":[...]}`. */
export type JwksDocument = { keys: unknown[] } | Record<string, unknown>;

/** Where a registration's keys come from (verification.md §2 `keys`). */
export type KeySourceInput =
  | 'discovery'
  | { jwksUri: string }
  | { staticJwks: JwksDocument }
  /** In-process keys, e.g. our own issuer's `jwks()`: no network, re-read on schedule and on a kid miss. */
  | { keySource: () => JwksDocument | Promise<JwksDocument> };

export interface IssuerRegistrationInput {
  id: string;
  /** The exact `iss`, byte for byte. */
  issuer: string;
  profile?: VerifierProfileName;
  /** Owner of a user-registered issuer; null/absent = built-in, visible to every context. */
  tenant?: string | null;
  shared?: boolean;
  keys?: KeySourceInput;
  caCertPem?: string;
  algorithms?: VerifyAlg[];
  leeway?: number;
  maxLifetime?: number;
  requireJti?: boolean;
  instanceHost?: string;
  jwksHostAllowlist?: string[];
  /** TEST ONLY: permits http and loopback addresses for this registration's URLs. */
  allowInsecureLoopback?: boolean;
}

/** The public view of a registration, returned with every verified token. */
export interface RegistrationInfo {
  readonly id: string;
  readonly issuer: string;
  readonly profile: VerifierProfileName;
  readonly tenant: string | null;
  readonly shared: boolean;
  readonly instanceHost: string;
}

export type AudienceMode = 'single' | 'any-of' | 'strict-string';

export interface VerifyExpectations {
  /** Non-empty set of acceptable audiences. */
  audiences: readonly string[];
  audienceMode?: AudienceMode;
  /** Expected `typ`; default: the ID-token rule (absent, JWT or application/jwt). */
  typ?: string;
  replay?: 'none' | 'single-use';
  /** Makes this tenant's user-registered issuers visible besides the built-in ones. */
  tenant?: string;
  /** Only tighten the registration's values. */
  maxLifetime?: number;
  leeway?: number;
}

export interface VerifiedToken {
  readonly registration: RegistrationInfo;
  readonly header: Readonly<Record<string, unknown>>;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly kid: string | undefined;
  readonly alg: VerifyAlg;
}

export interface VerifierOptions {
  issuers: readonly IssuerRegistrationInput[];
  /** Hardened fetcher for discovery/JWKS (default: created from `resolver`). */
  fetcher?: HardenedFetcher;
  /** DNS resolver for the default fetchers (tests simulate private answers with it). */
  resolver?: Resolver;
  replayStore?: ReplayStore;
  clock?: Clock;
  logger?: Logger;
  /** Unknown-kid refetch cooldown in seconds (default 30, minimum 10). */
  kidMissCooldown?: number;
  /** Discovery/JWKS fetch rate limits (default: burst 4 and 4/min per registration, burst 64 and 120/min in all). */
  fetchRateLimits?: FetchRateLimits;
  /** Token length cap (default 20000). */
  maxTokenLength?: number;
}
