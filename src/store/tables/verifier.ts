/** Tables owned by src/verifier/. */
export interface VerifierReplayTable {
  /** hex SHA-256 of (registration id, iss, jti) */
  key: string;
  registration: string;
  /** seconds; the row blocks reuse until then (exp + leeway + margin) */
  expires_at: number;
}

/** An issuer registration made through the admin API (migration 007). */
export interface VerifierIssuersTable {
  id: string;
  issuer: string;
  tenant: string | null;
  /** hex SHA-256 of (issuer, tenant); unique */
  issuer_key: string;
  profile: string;
  /** JSON text: the registration in the config entry's shape */
  registration: string;
  created_by: string;
  /** seconds */
  created_at: number;
  updated_at: number;
}

export interface VerifierTables {
  verifier_replay: VerifierReplayTable;
  verifier_issuers: VerifierIssuersTable;
}
