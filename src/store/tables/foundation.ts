/** Small settings the server keeps for itself (e.g. the instance id). */
export interface MetaTable {
  key: string;
  value: string;
  updated_at: number;
}

export interface FoundationTables {
  ci_oidc_meta: MetaTable;
}
