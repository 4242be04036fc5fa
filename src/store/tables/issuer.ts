/** Issuer signing keys (issuer.md §12). The private key is sealed with the KEK, AAD = row identity. */
export interface IssuerSigningKeyTable {
  kid: string;
  alg: string;
  /** next | active | retired | removed */
  state: string;
  public_jwk: string;
  sealed_private_key: string;
  created_at: number;
  activate_at: number;
  activated_at: number | null;
  retired_at: number | null;
  remove_at: number | null;
  removed_at: number | null;
}

/** Jobs registered through the Job API. Only the SHA-256 of the job token is kept. */
export interface IssuerJobTable {
  job_id: string;
  token_hash: string;
  ci_system: string;
  project_id: string;
  project_path: string;
  /** JSON: the validated job context. */
  context: string;
  on_demand: number;
  /** JSON array of audiences on-demand minting may use. */
  audiences: string;
  /** 1 when the project allows any audience on demand. */
  any_audience: number;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

/** First project seen at each path: the reclaimed-path guard (issuer.md §3). */
export interface IssuerProjectPathTable {
  project_path: string;
  project_id: string;
  first_seen_at: number;
}

export interface IssuerTables {
  issuer_signing_keys: IssuerSigningKeyTable;
  issuer_jobs: IssuerJobTable;
  issuer_project_paths: IssuerProjectPathTable;
}
