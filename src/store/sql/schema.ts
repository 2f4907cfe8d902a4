/**
 * Table shapes shared by the SQL adapters (Kysely). Portable column types only: text, integer/bigint
 * (epoch ms), integer 0/1 for booleans, JSON as text — so one query layer serves SQLite and PostgreSQL.
 */
export interface DomainsTable { id: string; name: string; created_at: number }
export interface ProjectsTable { id: string; domain_id: string; name: string; created_at: number }
export interface UsersTable {
  id: string; domain_id: string; name: string; password_hash: string; domain_admin: number; disabled: number;
  password_expires_at: number | null; created_at: number;
}
export interface RoleBindingsTable { user_id: string; project_id: string; role: string }
export interface IamTokensTable { token_hash: string; user_id: string; project_id: string | null; domain_id: string; methods: string; issued_at: number; expires_at: number }
export interface ResourcesTable {
  id: string; project_id: string; kind: string; name: string; status: string; attributes: string;
  endpoint_host: string | null; endpoint_port: number | null; endpoint_security: string | null;
  endpoint_password: string | null; endpoint_zone: string | null; endpoint_generation: number;
  created_at: number; updated_at: number;
}
export interface ConsoleTokensTable {
  token_hash: string; project_id: string; resource_id: string; resource_kind: string; endpoint_generation: number;
  purpose: string; zone: string; user_id: string | null; view_only: number; created_at: number; expires_at: number;
  redeemed_at: number | null; revoked_at: number | null;
}
export interface ConsoleSessionsTable {
  id: string; token_hash: string; project_id: string; resource_id: string; resource_kind: string; user_id: string | null;
  node_id: string; source_ip: string | null; started_at: number; ended_at: number | null;
  bytes_to_client: number; bytes_to_backend: number; close_code: number | null; close_reason: string | null;
}
export interface AuditEventsTable {
  id: string; at: number; request_id: string | null; actor_user_id: string | null; actor_name: string | null; actor_ak: string | null;
  action: string; resource_kind: string | null; resource_id: string | null; project_id: string | null; source_ip: string | null;
  user_agent: string | null; result: string; code: string | null; detail: string | null;
  /** Added by migration 0002. */
  domain_id: string | null;
}
export interface AccessKeysTable {
  access_key: string; user_id: string; domain_id: string; secret_sealed: string; status: string; description: string;
  created_at: number; last_used_at: number | null;
}
export interface AkLockoutsTable { access_key: string; failures: number; locked_until: number | null; updated_at: number }

export interface Database {
  domains: DomainsTable;
  projects: ProjectsTable;
  users: UsersTable;
  role_bindings: RoleBindingsTable;
  iam_tokens: IamTokensTable;
  resources: ResourcesTable;
  console_tokens: ConsoleTokensTable;
  console_sessions: ConsoleSessionsTable;
  audit_events: AuditEventsTable;
  access_keys: AccessKeysTable;
  ak_lockouts: AkLockoutsTable;
}
