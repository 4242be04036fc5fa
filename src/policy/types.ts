/**
 * Public types of the policy engine (policy.md, trusted-publishing.md). The broker and the CLI depend
 * on these; keep them stable.
 */

/** Three-valued predicate result (policy.md §1): anything other than `true` denies. */
export type Tri = true | false | 'error';

/** Stable reason codes (policy.md §10). Callers see only these. */
export type ReasonCode =
  | 'allowed'
  | 'issuer-not-trusted'
  | 'audience-mismatch'
  | 'tenant-binding-missing'
  | 'id-mismatch'
  | 'claim-missing'
  | 'claim-type'
  | 'predicate-false'
  | 'cel-error'
  | 'cel-non-bool'
  | 'deny-matched'
  | 'role-not-found'
  | 'role-denied'
  | 'no-role-matched'
  | 'ambiguous-role'
  | 'policy-store-unavailable';

/** Where a leaf's semantics come from (policy.md §2 `origin`, §5 dialect columns). */
export type Dialect = 'native' | 'vault' | 'aws' | 'gcp' | 'k8s' | 'octo-sts';

/** The issuer registration facts the policy engine needs (the verifier owns the full registration). */
export interface PolicyRegistration {
  /** Registration id, e.g. `gitlab.com`. Roles and publishers bind exactly one. */
  readonly id: string;
  /** The exact `iss` string. */
  readonly issuer: string;
  /** Provider profile: `gitlab`, `github`, `ci-oidc`, `buildkite`, `circleci`, `forgejo`, `generic`. */
  readonly profile: string;
  /** Multi-tenant issuer (gitlab.com, GitHub): tenant binding is mandatory (policy.md §8.1). */
  readonly shared: boolean;
  /** Host that appears in GitLab's `ci_config_ref_uri` (trusted-publishing.md §4). Defaults to the issuer host. */
  readonly instanceHost?: string;
  /** Owning tenant; registrations are visible to their tenant only (security-tests.md C3). */
  readonly tenant?: string;
}

/** A token that already passed verification (verification.md). */
export interface VerifiedToken {
  readonly registrationId: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

// ------------------------------------------------------------------------------------------------
// Role documents (policy.md §2–§3)
// ------------------------------------------------------------------------------------------------

export type Literal = string | number | boolean | null;

export interface LeafNode {
  claim: string;
  eq?: Literal;
  in?: Literal[];
  prefix?: string;
  glob?: string | string[];
  regex?: string;
  contains?: Literal | Literal[];
  exists?: boolean;
  quantifier?: 'any' | 'all';
  onMissing?: 'error' | 'false' | 'true';
  ignoreCase?: boolean;
  dialect?: Dialect;
  /** AWS `ForAllValues`: an empty list counts as true. Set by the AWS importer only. */
  emptyListTrue?: boolean;
}

export type PolicyNode = LeafNode | { all: PolicyNode[] } | { any: PolicyNode[] } | { not: PolicyNode } | { cel: string; dialect?: Dialect };

export interface RolePins {
  namespace_id?: string;
  project_id?: string;
  repository_owner_id?: string;
  repository_id?: string;
}

/** Endpoint-specific credential template (policy.md §12). `type` names the endpoint family. */
export interface RoleGrant {
  type: string;
  scopes?: string[];
  /** Maximum credential lifetime, seconds. */
  maxTtl?: number;
  boundToTokenExpiry?: boolean;
  [key: string]: unknown;
}

export interface RoleDocument {
  name: string;
  issuer: string;
  audiences: string[];
  when: PolicyNode;
  deny?: PolicyNode[];
  pins?: RolePins;
  pinning?: 'tofu' | 'explicit' | 'off';
  claimMappings?: Record<string, string>;
  grant?: RoleGrant;
  origin?: Dialect;
  /** AWS import extension (policy.md §11.2). */
  extendedClaimKeys?: boolean;
}

/** A saved role: the document plus its store identity and recorded pins. */
export interface StoredRole {
  readonly id: string;
  readonly tenant: string;
  readonly document: RoleDocument;
  /** Pins in force (explicit, or recorded on first use). */
  readonly pins: RolePins;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface Lint {
  readonly code: string;
  readonly path: string;
  readonly message: string;
}

// ------------------------------------------------------------------------------------------------
// Decisions and explain (policy.md §10)
// ------------------------------------------------------------------------------------------------

export interface TraceEntry {
  path: string;
  claim?: string;
  op?: string;
  operand?: unknown;
  actual?: unknown;
  actualType?: string;
  coerced?: unknown;
  result: Tri;
  why: string;
}

export type Specificity = [number, number, number, number, number];

export interface CandidateExplain {
  name: string;
  result: 'allow' | 'deny';
  reason: ReasonCode;
  specificity: Specificity;
  pins: RolePins;
  lints: Lint[];
  trace: TraceEntry[];
}

export interface TokenSummary {
  sub?: unknown;
  aud?: unknown;
  jti?: unknown;
  exp?: unknown;
}

export interface RoleDecision {
  decision: 'allow' | 'deny';
  reason: ReasonCode;
  /** For `role-denied` / `no-role-matched`: the candidate's own reason (e.g. `id-mismatch`). */
  cause?: ReasonCode;
  issuer: { registration: string; iss: string };
  tokenSummary: TokenSummary;
  candidates: CandidateExplain[];
  selected?: string;
  /** The winning role (allow only). */
  role?: StoredRole;
  /** Metadata from the role's string `claimMappings`, plus `role` (allow only). */
  metadata?: Record<string, string>;
  /** Explain flags such as `sub-format-changed`. */
  flags?: string[];
}

/** `single`: the token carries one audience (default). `multi`: any of several. `strict-string`: a JSON string (PyPI). */
export type AudienceMode = 'single' | 'multi' | 'strict-string';

export interface DecideRoleOptions {
  /** A named role (Vault `role`, AWS `RoleArn`, RFC 8693 `role:<name>`): only it is evaluated. */
  roleName?: string;
  tenant?: string;
  audienceMode?: AudienceMode;
  /** Only roles whose `grant.type` (default `oauth`) equals this are candidates when no role is named. */
  grantType?: string;
  /** Record TOFU pins on allow (default true). Set false for dry runs and explain. */
  recordPins?: boolean;
}

// ------------------------------------------------------------------------------------------------
// Trusted publishers (trusted-publishing.md)
// ------------------------------------------------------------------------------------------------

export type PublisherProvider = 'gitlab' | 'github';

/** Optional constraints (trusted-publishing.md §7). All off unless set. */
export interface PublisherConstraints {
  require_protected_ref?: boolean;
  ref_type?: 'branch' | 'tag';
  /** anchored native glob over `ref` */
  ref_pattern?: string;
  require_protected_environment?: boolean;
  runner_environment?: string;
  deny_pipeline_sources?: string[];
  require_same_job_project?: boolean;
}

export interface PublisherPins {
  /** GitLab `namespace_id`; GitHub `repository_owner_id`. */
  ownerId?: string | null;
  /** GitLab `project_id`; GitHub `repository_id`. */
  projectId?: string | null;
}

/** Input to create a publisher (normal or pending). */
export interface PublisherInput {
  provider: PublisherProvider;
  /** Issuer registration id. GitHub: only the registration of `https://token.actions.githubusercontent.com`. */
  registration: string;
  /** GitLab namespace (may contain `/`) or GitHub owner login. */
  owner: string;
  /** GitLab project or GitHub repository name. */
  project: string;
  /** GitLab `workflow_filepath` (`ci/release.yml`) or GitHub workflow file name (`release.yml`). */
  workflow: string;
  environment?: string;
  /** Immutable IDs if the owner supplies them (GitHub: `repository_owner_id` is required). */
  ownerId?: string;
  projectId?: string;
  constraints?: PublisherConstraints;
  firstUseDeadlineDays?: number;
  tenant?: string;
}

export interface StoredPublisher {
  readonly id: string;
  readonly tenant: string;
  readonly provider: PublisherProvider;
  readonly registration: string;
  readonly owner: string;
  readonly project: string;
  readonly workflow: string;
  /** `""` means unset. GitHub environments are stored lowercased. */
  readonly environment: string;
  readonly constraints: PublisherConstraints;
  readonly pins: PublisherPins;
  /** Package projects attached to this publisher (the minted token's scope). */
  readonly projects: string[];
  readonly firstUseDeadline: number | null;
  readonly createdAt: number;
}

export interface PendingPublisherInput extends PublisherInput {
  projectName: string;
  addedBy: string;
}

export interface StoredPendingPublisher extends StoredPublisher {
  readonly projectName: string;
  readonly addedBy: string;
  readonly expiresAt: number;
}

/** PyPI mint-token error codes (trusted-publishing.md §10) the publisher stage can produce. */
export type PublisherErrorCode = 'invalid-publisher' | 'invalid-payload' | 'invalid-pending-publisher';

export interface PublisherCheckTrace {
  check: string;
  result: boolean;
  /** Operator detail: may name configured values. Never shown to callers. */
  why: string;
}

export interface PublisherDecision {
  decision: 'allow' | 'deny';
  /** PyPI error code on deny. */
  code?: PublisherErrorCode;
  /** Caller-safe description: PyPI's generic text, never echoing configured values. */
  description?: string;
  reason: ReasonCode;
  kind?: 'pending' | 'normal';
  publisher?: StoredPublisher;
  pending?: StoredPendingPublisher;
  /** Operator-only explanation. */
  explain: {
    registration: string;
    lookupKey?: string;
    considered: { id: string; kind: 'pending' | 'normal'; environment: string }[];
    checks: PublisherCheckTrace[];
    /** The full PyPI-style message including configured values (operators only). */
    operatorMessage?: string;
  };
}

export interface DecidePublisherOptions {
  tenant?: string;
  /** Record TOFU pins on success (default true). */
  recordPins?: boolean;
  /** Skip pending publishers (default: tried first, trusted-publishing.md §5 step 6). */
  skipPending?: boolean;
}

/** An admin action on pins (audited). */
export interface PinResetRequest {
  actor: string;
  reason: string;
}

// ------------------------------------------------------------------------------------------------
// The engine the broker calls
// ------------------------------------------------------------------------------------------------

export interface PolicyEngine {
  /** Role decision (policy.md §1, §10). Never throws for bad input: every failure is a deny with a reason. */
  decideRole(token: VerifiedToken, options?: DecideRoleOptions): Promise<RoleDecision>;
  /** Trusted-publisher decision (trusted-publishing.md §5 steps 6–8). The `jti` claim is the broker's job. */
  decidePublisher(token: VerifiedToken, options?: DecidePublisherOptions): Promise<PublisherDecision>;

  /** Validate, lint and save a role (create or replace by name). Throws CiOidcError on a save error. */
  saveRole(document: unknown, options?: { tenant?: string; actor?: string }): Promise<{ role: StoredRole; lints: Lint[] }>;
  getRole(name: string, options?: { tenant?: string }): Promise<StoredRole | undefined>;
  listRoles(options?: { tenant?: string; registration?: string }): Promise<StoredRole[]>;
  deleteRole(name: string, options?: { tenant?: string; actor?: string }): Promise<boolean>;
  /** Audited admin reset of a role's recorded pins (policy.md §8.2). */
  resetRolePins(name: string, request: PinResetRequest & { tenant?: string }): Promise<StoredRole>;

  createPublisher(input: PublisherInput, options?: { actor?: string; projects?: string[] }): Promise<StoredPublisher>;
  getPublisher(id: string): Promise<StoredPublisher | undefined>;
  listPublishers(options?: { tenant?: string; registration?: string; project?: string }): Promise<StoredPublisher[]>;
  deletePublisher(id: string, options?: { actor?: string }): Promise<boolean>;
  /** Attach or detach a package project to a publisher (the token scope). */
  setPublisherProjects(id: string, projects: string[], options?: { actor?: string }): Promise<StoredPublisher>;
  /** Audited admin reset of a publisher's ID pins (trusted-publishing.md §6.4). */
  resetPublisherPins(id: string, request: PinResetRequest): Promise<StoredPublisher>;

  createPendingPublisher(input: PendingPublisherInput, options?: { maxPerUser?: number }): Promise<StoredPendingPublisher>;
  listPendingPublishers(options?: { tenant?: string; addedBy?: string }): Promise<StoredPendingPublisher[]>;
  deletePendingPublisher(id: string): Promise<boolean>;
  /**
   * First use of a pending publisher (trusted-publishing.md §8): reuses or creates the normal publisher,
   * attaches `projectName`, deletes the pending row and other pending rows for the same normalized name,
   * and records ID pins from `claims`. Returns the normal publisher and the deleted pending rows (to notify).
   */
  reifyPendingPublisher(pendingId: string, claims: Readonly<Record<string, unknown>>): Promise<{ publisher: StoredPublisher; removedPending: StoredPendingPublisher[] }>;
  /** Remove expired pending publishers; returns those removed (to email and log). */
  expirePendingPublishers(): Promise<StoredPendingPublisher[]>;

  /** Re-read roles and publishers from the store now (cache invalidation; see docs/policy.md). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}
