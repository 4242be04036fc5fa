/** Tables owned by src/verifier/. */
export interface VerifierReplayTable {
  /** hex SHA-256 of (registration id, iss, jti) */
  key: string;
  registration: string;
  /** seconds; the row blocks reuse until then (exp + leeway + margin) */
  expires_at: number;
}

export interface VerifierTables {
  verifier_replay: VerifierReplayTable;
}
