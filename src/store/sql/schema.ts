/**
 * Table shapes shared by the SQL adapters (Kysely). Portable column types only: text, integer/bigint
 * (epoch ms), integer 0/1 for booleans, JSON as text — so one query layer serves SQLite and PostgreSQL.
 */
import type { Generated } from 'kysely';

export interface DomainsTable {
  id: string; name: string; created_at: number;
  /** Added by migration 0009: 1 = operator domain, 0 = not, NULL = created before flags were recorded (adopted at start). */
  operator: number | null;
}
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
  /** Added by migration 0003 (VeNCrypt endpoints). */
  endpoint_tls_ca: string | null; endpoint_tls_cert: string | null; endpoint_tls_key: string | null;
  /** Added by migration 0006: domain/endpoint-options.ts as canonical JSON. */
  endpoint_options: string | null;
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
  /** Added by migration 0008: refused calls this row stands for (aggregated refusals), else 1. */
  count: Generated<number>;
}
export interface AccessKeysTable {
  access_key: string; user_id: string; domain_id: string; secret_sealed: string; status: string; description: string;
  created_at: number; last_used_at: number | null;
}
export interface AkLockoutsTable { access_key: string; failures: number; locked_until: number | null; updated_at: number }
/** Added by migration 0003. */
export interface EndpointProbesTable {
  resource_id: string; endpoint_generation: number; reachable: number; failure: string | null; rfb_version: string | null;
  checked_at: number; changed_at: number; node_id: string;
  /** Added by migration 0007. */
  reason: string | null;
}

/** Added by migration 0004. */
export interface NodesTable {
  id: string; address: string; version: string; started_at: number; heartbeat_at: number; draining: number; lost_at: number | null;
}

/** Added by migration 0005 (remote assistance). */
export interface AssistSpacesTable {
  id: string; project_id: string; desktop_id: string; active_desktop_id: string | null; name: string; invitation_code: string;
  password_sealed: string; status: string; initiator_type: string; created_by_user_id: string | null; created_by_name: string | null;
  created_at: number; expires_at: number; accepted_at: number | null; opened_at: number | null; closed_at: number | null;
  close_reason: string | null; failed_reason: string | null;
}
export interface AssistHelpersTable {
  id: string; space_id: string; name: string; source_ip: string | null; token_hash: string; session_id: string | null; control: number;
  state: string; joined_at: number; connected_at: number | null; left_at: number | null;
}
export interface AssistPagesTable {
  key_hash: string; session_id: string; project_id: string; resource_id: string; role: string; user_id: string | null; helper_id: string | null; created_at: number;
}
export interface AssistAttemptsTable { key: string; count: number; window_start: number; locked_until: number | null }
/** Added by migration 0007 (each assigned user's consent to a share space). */
export interface AssistConsentsTable { space_id: string; user_name: string; at: number }

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
  endpoint_probes: EndpointProbesTable;
  nodes: NodesTable;
  assist_spaces: AssistSpacesTable;
  assist_helpers: AssistHelpersTable;
  assist_pages: AssistPagesTable;
  assist_attempts: AssistAttemptsTable;
  assist_consents: AssistConsentsTable;
}
