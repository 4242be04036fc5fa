import { buildkiteVerifierProfile } from '../providers/buildkite.ts';
import { ciOidcVerifierProfile } from '../providers/ci-oidc.ts';
import { circleciVerifierProfile } from '../providers/circleci.ts';
import type { VerifierProfile, VerifierProfileName } from '../providers/claim-types.ts';
import { forgejoVerifierProfile } from '../providers/forgejo.ts';
import { genericVerifierProfile } from '../providers/generic.ts';
import { githubVerifierProfile } from '../providers/github.ts';
import { gitlabVerifierProfile } from '../providers/gitlab.ts';
import { checkFetchUrl } from '../jose/fetch.ts';
import { isVerifyAlg, type VerifyAlg } from '../jose/verify-signature.ts';
import { ConfigError } from '../server/errors.ts';
import type { IssuerRegistrationInput, KeySourceInput, RegistrationInfo } from './types.ts';

export const PROFILES: Readonly<Record<VerifierProfileName, VerifierProfile>> = Object.freeze({
  gitlab: gitlabVerifierProfile,
  github: githubVerifierProfile,
  buildkite: buildkiteVerifierProfile,
  circleci: circleciVerifierProfile,
  forgejo: forgejoVerifierProfile,
  'ci-oidc': ciOidcVerifierProfile,
  generic: genericVerifierProfile,
});

export const DEFAULT_LEEWAY = 30;
export const MAX_LEEWAY = 60;
export const DEFAULT_MAX_LIFETIME = 86400;
export const MAX_MAX_LIFETIME = 604800;

/** A validated registration with its profile resolved. */
export interface Registration {
  readonly info: RegistrationInfo;
  readonly id: string;
  readonly issuer: string;
  readonly profile: VerifierProfile;
  readonly tenant: string | null;
  readonly keys: KeySourceInput;
  readonly caCertPem: string | undefined;
  readonly algorithms: readonly VerifyAlg[];
  readonly leeway: number;
  readonly maxLifetime: number;
  readonly requireJti: boolean;
  readonly jwksHosts: readonly string[];
  readonly allowInsecureLoopback: boolean;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

/** Checks an issuer URL for registration: absolute https, no userinfo/query/fragment, and already canonical. */
export function issuerUrlProblem(issuer: string, allowInsecureLoopback: boolean): string | null {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.protocol !== 'https:' && !(allowInsecureLoopback && url.protocol === 'http:')) return 'must use https';
  if (issuer.includes('*')) return 'must not contain wildcards: register each issuer by its exact URL';
  if (!/^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])$/.test(url.hostname)) return 'has an invalid host name';
  if (url.username || url.password || issuer.includes('@')) return 'must not contain userinfo';
  if (url.search || issuer.includes('?')) return 'must not contain a query';
  if (url.hash || issuer.includes('#')) return 'must not contain a fragment';
  // The registered string is matched byte for byte; refuse spellings a URL parser would rewrite, so the
  // operator sees the exact form tokens must carry (no default port, lower-case host).
  const canonical = url.pathname === '/' && !issuer.endsWith('/') ? url.origin : url.origin + url.pathname;
  if (canonical !== issuer) return `is not in canonical form (expected ${JSON.stringify(canonical)})`;
  return null;
}

export function buildRegistration(input: IssuerRegistrationInput): Registration {
  const problems: string[] = [];
  const where = `verifier issuer ${JSON.stringify(input.id)}`;
  if (typeof input.id !== 'string' || !ID_PATTERN.test(input.id)) problems.push(`${where}: id must be 1-200 characters of letters, digits and ._:/-`);
  const loopback = input.allowInsecureLoopback === true;
  // Keys held in-process (our own issuer, static JWKS) mean no fetch, so an http issuer (a local demo)
  // carries no SSRF risk; it is still matched byte for byte.
  const local = typeof input.keys === 'object' && input.keys !== null && ('keySource' in input.keys || 'staticJwks' in input.keys);
  const urlProblem = typeof input.issuer === 'string' ? issuerUrlProblem(input.issuer, loopback || local) : 'must be a string';
  if (urlProblem) problems.push(`${where}: issuer ${JSON.stringify(input.issuer)} ${urlProblem}`);
  const profileName = input.profile ?? 'generic';
  const profile = Object.hasOwn(PROFILES, profileName) ? PROFILES[profileName] : undefined;
  if (!profile) problems.push(`${where}: unknown profile ${JSON.stringify(profileName)}; use one of ${Object.keys(PROFILES).join(', ')}`);
  const algorithms = input.algorithms ?? ['RS256'];
  if (algorithms.length === 0 || !algorithms.every(isVerifyAlg)) {
    problems.push(`${where}: algorithms must be a non-empty list of RS256/384/512, PS256/384/512, ES256/384/512, EdDSA (never none or HS*)`);
  }
  const leeway = input.leeway ?? DEFAULT_LEEWAY;
  if (!Number.isInteger(leeway) || leeway < 0 || leeway > MAX_LEEWAY) problems.push(`${where}: leeway must be an integer from 0 to ${MAX_LEEWAY} seconds`);
  const maxLifetime = input.maxLifetime ?? DEFAULT_MAX_LIFETIME;
  if (!Number.isInteger(maxLifetime) || maxLifetime < 1 || maxLifetime > MAX_MAX_LIFETIME) {
    problems.push(`${where}: maxLifetime must be an integer from 1 to ${MAX_MAX_LIFETIME} seconds`);
  }
  const requireJti = input.requireJti ?? profile?.requireJti ?? true;
  if (!requireJti && profileName !== 'buildkite') problems.push(`${where}: requireJti may be false only for the buildkite profile`);
  const keys = input.keys ?? 'discovery';
  // URLs we will fetch get the fetcher's own pre-I/O checks now (scheme, userinfo, blocked IP literals).
  const fetched = keys === 'discovery' ? (urlProblem ? null : input.issuer) : typeof keys === 'object' && 'jwksUri' in keys ? keys.jwksUri : null;
  if (fetched !== null) {
    try {
      checkFetchUrl(fetched, loopback);
    } catch (err) {
      problems.push(`${where}: ${keys === 'discovery' ? 'issuer' : 'jwksUri'} cannot be fetched: ${(err as Error).message}`);
    }
  }
  let host = '';
  try {
    host = new URL(input.issuer).hostname;
  } catch {
    // reported above
  }
  const instanceHost = input.instanceHost ?? host;
  if (problems.length > 0 || profile === undefined) throw new ConfigError(problems);
  const tenant = input.tenant ?? null;
  const info: RegistrationInfo = Object.freeze({
    id: input.id,
    issuer: input.issuer,
    profile: profileName,
    tenant,
    shared: input.shared ?? profile.shared,
    instanceHost,
  });
  return Object.freeze({
    info,
    id: input.id,
    issuer: input.issuer,
    profile,
    tenant,
    keys,
    caCertPem: input.caCertPem,
    algorithms: Object.freeze([...algorithms]),
    leeway,
    maxLifetime,
    requireJti,
    jwksHosts: Object.freeze([host, ...(input.jwksHostAllowlist ?? [])].map((h) => h.toLowerCase())),
    allowInsecureLoopback: loopback,
  });
}

/** A registration change the registry refuses; `code` is stable (the admin API answers 409 with it). */
export class RegistrationConflictError extends Error {
  constructor(
    readonly code: 'issuer_id_taken' | 'issuer_taken' | 'issuer_config_defined',
    message: string,
  ) {
    super(message);
    this.name = 'RegistrationConflictError';
  }

  static idTaken(id: string, inConfig: boolean): RegistrationConflictError {
    return new RegistrationConflictError('issuer_id_taken', `an issuer registration with id ${JSON.stringify(id)} exists${inConfig ? ' in the server config' : ''}; choose another id`);
  }

  static issuerTaken(issuer: string, byId: string, tenant: string | null): RegistrationConflictError {
    return new RegistrationConflictError('issuer_taken', `${issuer} is already registered as ${JSON.stringify(byId)}${tenant === null ? '' : ` for tenant ${tenant}`}; an issuer is registered once per tenant`);
  }

  static configDefined(id: string): RegistrationConflictError {
    return new RegistrationConflictError('issuer_config_defined', `issuer registration ${JSON.stringify(id)} comes from the server config; remove it there and restart`);
  }
}

/**
 * Exact-`iss` lookup. A registration is visible when it is built-in (tenant null) or owned by the
 * context's tenant; a tenant's own registration of an issuer shadows the built-in one for that tenant.
 */
export class IssuerRegistry {
  private readonly byIssuer = new Map<string, Registration[]>();
  private readonly byId = new Map<string, Registration>();
  /** Ids given to the constructor (config, presets, our issuer): never removed at run time. */
  private readonly fixed = new Set<string>();

  constructor(inputs: readonly IssuerRegistrationInput[]) {
    const problems: string[] = [];
    for (const input of inputs) {
      let reg: Registration;
      try {
        reg = buildRegistration(input);
      } catch (err) {
        if (err instanceof ConfigError) {
          problems.push(...err.issues);
          continue;
        }
        throw err;
      }
      if (this.byId.has(reg.id)) {
        problems.push(`verifier issuer ${JSON.stringify(reg.id)}: the id is used twice; give each registration its own id`);
        continue;
      }
      const list = this.byIssuer.get(reg.issuer) ?? [];
      if (list.some((r) => r.tenant === reg.tenant)) {
        problems.push(`verifier issuer ${JSON.stringify(reg.id)}: ${reg.issuer} is already registered${reg.tenant === null ? ' as built-in' : ` for tenant ${reg.tenant}`}`);
        continue;
      }
      list.push(reg);
      this.byIssuer.set(reg.issuer, list);
      this.byId.set(reg.id, reg);
    }
    if (problems.length > 0) throw new ConfigError(problems);
    for (const id of this.byId.keys()) this.fixed.add(id);
  }

  /**
   * Adds a run-time registration, validated like a config entry (throws ConfigError). Lists are replaced,
   * never mutated, so lookup() stays a Map get over an immutable list.
   */
  add(input: IssuerRegistrationInput): Registration {
    const reg = buildRegistration(input);
    if (this.byId.has(reg.id)) {
      throw RegistrationConflictError.idTaken(reg.id, this.fixed.has(reg.id));
    }
    const list = this.byIssuer.get(reg.issuer) ?? [];
    const clash = list.find((r) => r.tenant === reg.tenant);
    if (clash) {
      throw RegistrationConflictError.issuerTaken(reg.issuer, clash.id, reg.tenant);
    }
    this.byIssuer.set(reg.issuer, [...list, reg]);
    this.byId.set(reg.id, reg);
    return reg;
  }

  /** Removes a run-time registration; undefined when unknown. Config-defined ones are refused. */
  remove(id: string): Registration | undefined {
    const reg = this.byId.get(id);
    if (reg === undefined) return undefined;
    if (this.fixed.has(id)) {
      throw RegistrationConflictError.configDefined(id);
    }
    this.byId.delete(id);
    const rest = (this.byIssuer.get(reg.issuer) ?? []).filter((r) => r !== reg);
    if (rest.length === 0) this.byIssuer.delete(reg.issuer);
    else this.byIssuer.set(reg.issuer, rest);
    return reg;
  }

  /** True for registrations from the config (or presets, or our own issuer). */
  isFixed(id: string): boolean {
    return this.fixed.has(id);
  }

  /** The registration for an unverified `iss` in a tenant context; never normalises. */
  lookup(iss: unknown, tenant: string | undefined): Registration | undefined {
    if (typeof iss !== 'string') return undefined;
    const list = this.byIssuer.get(iss);
    if (list === undefined) return undefined;
    let builtIn: Registration | undefined;
    for (const reg of list) {
      if (reg.tenant === null) builtIn = reg;
      else if (tenant !== undefined && reg.tenant === tenant) return reg;
    }
    return builtIn;
  }

  get(id: string): Registration | undefined {
    return this.byId.get(id);
  }

  all(): Registration[] {
    return [...this.byId.values()];
  }
}
