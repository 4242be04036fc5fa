/**
 * Signing-CA key material. One self-signed root and any number of intermediates; exactly one
 * intermediate is `active` (signs leaves), earlier ones stay `retired` in the trust bundle until they
 * expire. Private keys are sealed with the KEK (additional data `ca_keys:<id>`); rows loaded from PEM
 * files are never stored.
 */
export interface CaKeyTable {
  /** `root` for the root; `intermediate-<serial hex>` for intermediates. */
  id: string;
  /** root | intermediate */
  kind: string;
  /** active | retired */
  state: string;
  certificate_pem: string;
  sealed_private_key: string;
  /** The issuing certificate's id (null for the root). */
  parent_id: string | null;
  created_at: number;
  not_after: number;
  retired_at: number | null;
}

export interface CaTables {
  ca_keys: CaKeyTable;
}
