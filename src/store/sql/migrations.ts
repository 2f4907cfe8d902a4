/**
 * Versioned schema migrations, written with Kysely's schema builder in portable types so the same
 * list runs on SQLite and PostgreSQL. Append only: never edit a migration that has shipped.
 */
import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';

const migrations: Record<string, Migration> = {
  '0001_core': {
    async up(db: Kysely<unknown>) {
      await db.schema.createTable('domains')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createTable('projects')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('domain_id', 'text', (c) => c.notNull().references('domains.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('projects_domain_name', ['domain_id', 'name'])
        .execute();
      await db.schema.createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('domain_id', 'text', (c) => c.notNull().references('domains.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('domain_admin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('password_expires_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('users_domain_name', ['domain_id', 'name'])
        .execute();
      await db.schema.createTable('role_bindings')
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id').onDelete('cascade'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('role_bindings_pk', ['user_id', 'project_id'])
        .execute();
      await db.schema.createTable('iam_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('project_id', 'text')
        .addColumn('domain_id', 'text', (c) => c.notNull())
        .addColumn('methods', 'text', (c) => c.notNull())
        .addColumn('issued_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('iam_tokens_expires').on('iam_tokens').column('expires_at').execute();
      await db.schema.createTable('resources')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attributes', 'text', (c) => c.notNull())
        .addColumn('endpoint_host', 'text')
        .addColumn('endpoint_port', 'integer')
        .addColumn('endpoint_security', 'text')
        .addColumn('endpoint_password', 'text')
        .addColumn('endpoint_zone', 'text')
        .addColumn('endpoint_generation', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('resources_project_kind').on('resources').columns(['project_id', 'kind']).execute();
      await db.schema.createTable('console_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('resource_id', 'text', (c) => c.notNull())
        .addColumn('resource_kind', 'text', (c) => c.notNull())
        .addColumn('endpoint_generation', 'integer', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('zone', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('view_only', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('redeemed_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('console_tokens_resource').on('console_tokens').column('resource_id').execute();
      await db.schema.createIndex('console_tokens_expires').on('console_tokens').column('expires_at').execute();
      await db.schema.createTable('console_sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('resource_id', 'text', (c) => c.notNull())
        .addColumn('resource_kind', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('source_ip', 'text')
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('bytes_to_client', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('bytes_to_backend', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('close_code', 'integer')
        .addColumn('close_reason', 'text')
        .execute();
      await db.schema.createIndex('console_sessions_resource').on('console_sessions').column('resource_id').execute();
      await db.schema.createIndex('console_sessions_node_open').on('console_sessions').columns(['node_id', 'ended_at']).execute();
      await db.schema.createTable('audit_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('request_id', 'text')
        .addColumn('actor_user_id', 'text')
        .addColumn('actor_name', 'text')
        .addColumn('actor_ak', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('resource_kind', 'text')
        .addColumn('resource_id', 'text')
        .addColumn('project_id', 'text')
        .addColumn('source_ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('code', 'text')
        .addColumn('detail', 'text')
        .execute();
      await db.schema.createIndex('audit_events_at').on('audit_events').column('at').execute();
    },
  },
  '0002_identity': {
    async up(db: Kysely<unknown>) {
      await db.schema.createTable('access_keys')
        .addColumn('access_key', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('domain_id', 'text', (c) => c.notNull())
        .addColumn('secret_sealed', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .execute();
      await db.schema.createIndex('access_keys_user').on('access_keys').column('user_id').execute();
      await db.schema.createIndex('access_keys_domain').on('access_keys').column('domain_id').execute();
      await db.schema.createTable('ak_lockouts')
        .addColumn('access_key', 'text', (c) => c.primaryKey())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('locked_until', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.alterTable('audit_events').addColumn('domain_id', 'text').execute();
      await db.schema.createIndex('audit_events_domain_at').on('audit_events').columns(['domain_id', 'at']).execute();
      await db.schema.createIndex('audit_events_project_at').on('audit_events').columns(['project_id', 'at']).execute();
    },
  },
  '0003_inventory': {
    async up(db: Kysely<unknown>) {
      // VeNCrypt endpoints: CA and client certificate (PEM, public) and the client key (sealed).
      await db.schema.alterTable('resources').addColumn('endpoint_tls_ca', 'text').execute();
      await db.schema.alterTable('resources').addColumn('endpoint_tls_cert', 'text').execute();
      await db.schema.alterTable('resources').addColumn('endpoint_tls_key', 'text').execute();
      await db.schema.createTable('endpoint_probes')
        .addColumn('resource_id', 'text', (c) => c.primaryKey())
        .addColumn('endpoint_generation', 'integer', (c) => c.notNull())
        .addColumn('reachable', 'integer', (c) => c.notNull())
        .addColumn('failure', 'text')
        .addColumn('rfb_version', 'text')
        .addColumn('checked_at', 'bigint', (c) => c.notNull())
        .addColumn('changed_at', 'bigint', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('console_sessions_open_resource').on('console_sessions').columns(['ended_at', 'resource_id']).execute();
      await db.schema.createIndex('console_tokens_outstanding').on('console_tokens').columns(['redeemed_at', 'revoked_at', 'expires_at']).execute();
    },
  },
  '0004_cluster': {
    async up(db: Kysely<unknown>) {
      // Gateway nodes and their heartbeats (domain/nodes.ts): a survivor closes the sessions of a lost node.
      await db.schema.createTable('nodes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
        .addColumn('draining', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('lost_at', 'bigint')
        .execute();
    },
  },
  '0005_assistance': {
    async up(db: Kysely<unknown>) {
      // Remote assistance (domain/assistance.ts). `active_desktop_id` is the desktop's id while the
      // space is not CLOSE, NULL after: its unique index is the one-active-space-per-desktop rule on
      // every node (NULLs are distinct on SQLite and PostgreSQL alike).
      await db.schema.createTable('assist_spaces')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('desktop_id', 'text', (c) => c.notNull())
        .addColumn('active_desktop_id', 'text')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('invitation_code', 'text', (c) => c.notNull())
        .addColumn('password_sealed', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('initiator_type', 'text', (c) => c.notNull())
        .addColumn('created_by_user_id', 'text')
        .addColumn('created_by_name', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('accepted_at', 'bigint')
        .addColumn('opened_at', 'bigint')
        .addColumn('closed_at', 'bigint')
        .addColumn('close_reason', 'text')
        .addColumn('failed_reason', 'text')
        .execute();
      await db.schema.createIndex('assist_spaces_active_desktop').unique().on('assist_spaces').column('active_desktop_id').execute();
      await db.schema.createIndex('assist_spaces_desktop_created').on('assist_spaces').columns(['desktop_id', 'created_at']).execute();
      await db.schema.createIndex('assist_spaces_code').on('assist_spaces').column('invitation_code').execute();
      await db.schema.createIndex('assist_spaces_expires').on('assist_spaces').columns(['active_desktop_id', 'expires_at']).execute();
      await db.schema.createTable('assist_helpers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('space_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('source_ip', 'text')
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text')
        .addColumn('control', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('joined_at', 'bigint', (c) => c.notNull())
        .addColumn('connected_at', 'bigint')
        .addColumn('left_at', 'bigint')
        .execute();
      await db.schema.createIndex('assist_helpers_space').on('assist_helpers').column('space_id').execute();
      await db.schema.createIndex('assist_helpers_token').on('assist_helpers').column('token_hash').execute();
      await db.schema.createIndex('assist_helpers_session').on('assist_helpers').column('session_id').execute();
      await db.schema.createTable('assist_pages')
        .addColumn('key_hash', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('resource_id', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('helper_id', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('assist_pages_session').on('assist_pages').column('session_id').execute();
      await db.schema.createIndex('assist_pages_created').on('assist_pages').column('created_at').execute();
      await db.schema.createTable('assist_attempts')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('window_start', 'bigint', (c) => c.notNull())
        .addColumn('locked_until', 'bigint')
        .execute();
    },
  },
  '0006_endpoint_options': {
    async up(db: Kysely<unknown>) {
      // Endpoint options (domain/endpoint-options.ts): TLS servername, VeNCrypt subtypes, Plain
      // username, clipboard and session policy, as one JSON text (none of it is secret).
      await db.schema.alterTable('resources').addColumn('endpoint_options', 'text').execute();
    },
  },
  '0007_assist_consents': {
    async up(db: Kysely<unknown>) {
      // Remote assistance (domain/assistance.ts, security #7): who of a desktop's assigned users agreed
      // to a share space. The primary key makes a second consent by the same user a no-op on any node.
      await db.schema.createTable('assist_consents')
        .addColumn('space_id', 'text', (c) => c.notNull())
        .addColumn('user_name', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('assist_consents_pk', ['space_id', 'user_name'])
        .execute();
    },
  },
  '0008_audit_count': {
    async up(db: Kysely<unknown>) {
      // Refused unauthenticated calls are aggregated: one row per source address, action and result
      // in a window, carrying how many calls it stands for (domain/audit.ts).
      await db.schema.alterTable('audit_events').addColumn('count', 'integer', (c) => c.notNull().defaultTo(1)).execute();
    },
  },
  '0009_operator_domains': {
    async up(db: Kysely<unknown>) {
      // Operator status belongs to a domain id, recorded when the domain is created (security review
      // #1: it used to follow the name, which a tenant could take). Existing rows stay NULL until the
      // gateway adopts them at start (IdentityRepo.adoptOperatorDomains).
      await db.schema.alterTable('domains').addColumn('operator', 'integer').execute();
    },
  },
  '0010_probe_reason': {
    async up(db: Kysely<unknown>) {
      // The VNC server's own failure/refusal text from the last probe (domain/liveness.ts: auth_failed, refused).
      await db.schema.alterTable('endpoint_probes').addColumn('reason', 'text').execute();
    },
  },
};

/** Every migration this release knows, in the order Kysely runs them (by name); the last is its schema version. */
export const MIGRATION_NAMES: readonly string[] = Object.freeze(Object.keys(migrations).sort());

/** The schema version of this release: the name of its latest migration. */
export const LATEST_MIGRATION: string = MIGRATION_NAMES[MIGRATION_NAMES.length - 1]!;

/** The migration bookkeeping table (Kysely's Migrator), read by backups and the newer-schema check. */
export const MIGRATION_TABLE = 'porthole_migrations';

/**
 * The database was migrated by a newer release: migrations never run backwards, so this release
 * refuses to start on it rather than run against a schema it does not know.
 */
export class UnknownMigrationsError extends Error {
  readonly code = 'DB_SCHEMA_NEWER';

  constructor(readonly unknown: readonly string[]) {
    super(`DB_SCHEMA_NEWER: the database was migrated by a newer Porthole release; it has migration(s) this release does not know: ${unknown.join(', ')} ` +
      `(this release knows up to ${LATEST_MIGRATION}). Migrations never run backwards: run that release or a newer one, or restore a backup made by this release.`);
    this.name = 'UnknownMigrationsError';
  }
}

class StaticProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> { return migrations; }
}

/**
 * Runs every pending migration; throws with the failing migration's name. On PostgreSQL pass the
 * schema the tables live in (`migrationTableSchema`): without it Kysely looks for its bookkeeping
 * tables in every schema of the database, so a second Porthole schema in the same database would
 * find the first one's `porthole_migrations` and never create its own.
 */
export async function migrateToLatest(db: Kysely<unknown>, opts: { migrationTableSchema?: string } = {}): Promise<void> {
  const migrator = new Migrator({
    db, provider: new StaticProvider(), migrationTableName: MIGRATION_TABLE, migrationLockTableName: 'porthole_migrations_lock',
    ...(opts.migrationTableSchema === undefined ? {} : { migrationTableSchema: opts.migrationTableSchema }),
  });
  const { error, results } = await migrator.migrateToLatest();
  // Kysely refuses a database naming a migration it does not have ("previously executed migration X
  // is missing") before running anything; say which release problem that is, with every unknown name.
  if (error instanceof Error && /previously executed migration \S+ is missing/.test(error.message)) {
    const table = opts.migrationTableSchema === undefined ? db : db.withSchema(opts.migrationTableSchema);
    const rows = await (table as Kysely<Record<string, { name: string }>>).selectFrom(MIGRATION_TABLE).select('name').execute();
    throw new UnknownMigrationsError(rows.map((r) => r.name).filter((n) => !MIGRATION_NAMES.includes(n)).sort());
  }
  const failed = results?.find((r) => r.status === 'Error');
  if (error) throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
}
