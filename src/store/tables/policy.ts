/** Rows of the policy tables (src/store/migrations/004_policy.ts). Times are integer seconds. */

export interface PolicyRoleRow {
  id: string;
  tenant: string;
  name: string;
  registration: string;
  /** The role document, JSON. */
  document: string;
  /** GitLab `namespace_id` / GitHub `repository_owner_id`, explicit or recorded on first use. */
  pin_owner_id: string | null;
  /** GitLab `project_id` / GitHub `repository_id`. */
  pin_project_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface PolicyPublisherRow {
  id: string;
  tenant: string;
  provider: string;
  registration: string;
  owner: string;
  owner_lc: string;
  project: string;
  project_lc: string;
  workflow: string;
  environment: string;
  /** JSON object of optional constraints. */
  constraints: string;
  pin_owner_id: string | null;
  pin_project_id: string | null;
  /** JSON array of attached package project names. */
  projects: string;
  first_use_deadline: number | null;
  created_at: number;
}

export interface PolicyPendingPublisherRow extends PolicyPublisherRow {
  project_name: string;
  project_name_norm: string;
  added_by: string;
  expires_at: number;
}

export interface PolicyAdminAuditRow {
  id: string;
  at: number;
  actor: string;
  action: string;
  target_kind: string;
  target_id: string;
  /** JSON. */
  detail: string;
}

export interface PolicyGenerationRow {
  id: number;
  generation: number;
}

/** Tables owned by src/policy/. */
export interface PolicyTables {
  policy_roles: PolicyRoleRow;
  policy_publishers: PolicyPublisherRow;
  policy_pending_publishers: PolicyPendingPublisherRow;
  policy_admin_audit: PolicyAdminAuditRow;
  policy_generation: PolicyGenerationRow;
}
