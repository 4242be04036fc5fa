/**
 * Credentials minted by the broker. Only the SHA-256 of the bearer value is kept (`token_hash`); the
 * public `id` names the credential in the audit log, in revocation and as the Vault accessor.
 */
export interface BrokerCredentialTable {
  id: string;
  token_hash: string;
  /** opaque | jwt */
  kind: string;
  /** pypi | oauth | vault | sts */
  endpoint: string;
  registration: string;
  iss: string;
  sub: string;
  /** The exchanged ID token's `jti` (null for issuers without one). */
  subject_jti: string | null;
  /** Role name, or `publisher:<id>` for trusted publishing. */
  role: string;
  /** JSON: what the credential may do (projects, scopes, audience, policies, role ARN). */
  scope: string;
  /** JSON: string metadata from claim mappings. */
  metadata: string;
  /** AWS-shaped access key id for STS credentials, else null. */
  aws_access_key_id: string | null;
  issued_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
}

/** One append-only row per exchange attempt. Never holds a token or credential value. */
export interface BrokerAuditTable {
  /** Time-ordered: 12 hex digits of seconds, then random hex. */
  id: string;
  at: number;
  endpoint: string;
  /** allow | deny | error */
  outcome: string;
  reason: string;
  registration: string | null;
  iss: string | null;
  sub: string | null;
  jti: string | null;
  kid: string | null;
  project_id: string | null;
  job_id: string | null;
  pipeline_id: string | null;
  role: string | null;
  credential_id: string | null;
  client_ip: string | null;
  request_id: string | null;
  /** JSON: operator detail (never the token). */
  detail: string | null;
}

/** Fixed-window counters shared by every replica. */
export interface BrokerRateLimitTable {
  key: string;
  window_start: number;
  count: number;
}

export interface BrokerTables {
  broker_credentials: BrokerCredentialTable;
  broker_audit: BrokerAuditTable;
  broker_rate_limits: BrokerRateLimitTable;
}
