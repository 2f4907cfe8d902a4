/**
 * The store ports implemented once over Kysely; the SQLite and PostgreSQL adapters differ only in the
 * dialect they hand in. Row ↔ record mapping lives here so the rest of the code never sees columns.
 */
import { decodeEndpointOptions, encodeEndpointOptions } from '../../domain/endpoint-options.js';
import { randomBytes } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type {
  AccessKeyRecord, AccessKeyRepo, AccessKeyStatus, AkLockoutRecord, AuditFilter,
  AuditEvent, AuditRepo, ConsoleSessionRecord, ConsoleTokenRecord, ConsoleTokenRepo, DomainRecord, IamTokenRecord,
  IdentityRepo, InventoryRepo, ProjectRecord, ResourceKind, ResourceRecord, Role, RoleBinding, SessionRepo, Store, UserRecord,
  EndpointSecurity, TokenPurpose, ConsoleEndpoint, ProbeRecord, ProbeRepo, SealedKind, SealedValue, SealedValueRepo, SessionActivity,
  HeartbeatOutcome, NodeRecord, NodeRepo,
} from '../types.js';
import type {
  AccessKeysTable, AuditEventsTable, ConsoleSessionsTable, ConsoleTokensTable, Database, EndpointProbesTable, ResourcesTable, UsersTable,
} from './schema.js';
import type { DomainsTable } from './schema.js';

import { sql, type Updateable } from 'kysely';
import { WriteQueue } from './write-queue.js';
import type {
  AssistAttemptRecord, AssistanceRepo, AssistHelperRecord, AssistHelperState, AssistInitiator, AssistPageRecord, ShareSpaceCloseReason,
  ShareSpaceRecord, ShareSpaceStatus, ShareSpaceTransition,
} from '../types.js';
import type { AssistAttemptsTable, AssistHelpersTable, AssistSpacesTable } from './schema.js';

/** Runs `fn` in a transaction, or directly when `db` already is one (Kysely does not nest transactions). */
function inTransaction<T>(db: Kysely<Database>, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.isTransaction ? fn(db) : db.transaction().execute(fn);
}

/**
 * A UUIDv7-shaped id (RFC 9562 §5.7): 48 bits of milliseconds, then random bits. Audit ids are only
 * unique keys, but random ones (v4) land on a random page of the primary-key index on every insert;
 * time-ordered ones append, which keeps the audit trail's write cost flat as it grows.
 */
export function timeOrderedId(ms: number): string {
  const hex = Math.max(0, Math.min(Math.floor(ms), 0xffffffffffff)).toString(16).padStart(12, '0');
  const r = randomBytes(10);
  r[0] = (r[0]! & 0x0f) | 0x70; // version 7
  r[2] = (r[2]! & 0x3f) | 0x80; // variant 10
  const rh = r.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8)}-${rh.slice(0, 4)}-${rh.slice(4, 8)}-${rh.slice(8)}`;
}

const num = (v: unknown): number => (typeof v === 'string' ? Number(v) : (v as number));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));

function toDomain(r: Selectable<DomainsTable>): DomainRecord {
  return { id: r.id, name: r.name, createdAt: num(r.created_at), operator: numOrNull(r.operator) === 1 };
}

function toUser(r: Selectable<UsersTable>): UserRecord {
  return {
    id: r.id, domainId: r.domain_id, name: r.name, passwordHash: r.password_hash, domainAdmin: num(r.domain_admin) === 1,
    disabled: num(r.disabled) === 1, passwordExpiresAt: numOrNull(r.password_expires_at), createdAt: num(r.created_at),
  };
}

function toEndpoint(r: Selectable<ResourcesTable>): ConsoleEndpoint | null {
  if (r.endpoint_host === null || r.endpoint_port === null) return null;
  const ep: ConsoleEndpoint = {
    host: r.endpoint_host, port: num(r.endpoint_port), security: (r.endpoint_security ?? 'none') as EndpointSecurity,
    passwordSealed: r.endpoint_password, zone: r.endpoint_zone,
  };
  // The VeNCrypt fields appear only when set, so endpoints without them keep their original shape.
  if (r.endpoint_tls_ca !== null && r.endpoint_tls_ca !== undefined) ep.tlsCa = r.endpoint_tls_ca;
  if (r.endpoint_tls_cert !== null && r.endpoint_tls_cert !== undefined) ep.tlsCert = r.endpoint_tls_cert;
  if (r.endpoint_tls_key !== null && r.endpoint_tls_key !== undefined) ep.tlsKeySealed = r.endpoint_tls_key;
  const options = decodeEndpointOptions(r.endpoint_options);
  if (options) ep.options = options;
  return ep;
}

function toResource(r: Selectable<ResourcesTable>): ResourceRecord {
  return {
    id: r.id, projectId: r.project_id, kind: r.kind as ResourceKind, name: r.name, status: r.status,
    attributes: JSON.parse(r.attributes) as Record<string, unknown>,
    endpoint: toEndpoint(r),
    endpointGeneration: num(r.endpoint_generation), createdAt: num(r.created_at), updatedAt: num(r.updated_at),
  };
}

function toProbe(r: Selectable<EndpointProbesTable>): ProbeRecord {
  return {
    resourceId: r.resource_id, endpointGeneration: num(r.endpoint_generation), reachable: num(r.reachable) === 1, failure: r.failure,
    rfbVersion: r.rfb_version, reason: r.reason ?? null, checkedAt: num(r.checked_at), changedAt: num(r.changed_at), nodeId: r.node_id,
  };
}

function toToken(r: Selectable<ConsoleTokensTable>): ConsoleTokenRecord {
  return {
    tokenHash: r.token_hash, projectId: r.project_id, resourceId: r.resource_id, resourceKind: r.resource_kind as ResourceKind,
    endpointGeneration: num(r.endpoint_generation), purpose: r.purpose as TokenPurpose, zone: r.zone, userId: r.user_id,
    viewOnly: num(r.view_only) === 1, createdAt: num(r.created_at), expiresAt: num(r.expires_at),
    redeemedAt: numOrNull(r.redeemed_at), revokedAt: numOrNull(r.revoked_at),
  };
}

function toSession(r: Selectable<ConsoleSessionsTable>): ConsoleSessionRecord {
  return {
    id: r.id, tokenHash: r.token_hash, projectId: r.project_id, resourceId: r.resource_id, resourceKind: r.resource_kind as ResourceKind,
    userId: r.user_id, nodeId: r.node_id, sourceIp: r.source_ip, startedAt: num(r.started_at), endedAt: numOrNull(r.ended_at),
    bytesToClient: num(r.bytes_to_client), bytesToBackend: num(r.bytes_to_backend), closeCode: numOrNull(r.close_code), closeReason: r.close_reason,
  };
}

function toAudit(r: Selectable<AuditEventsTable>): AuditEvent {
  return {
    at: num(r.at), requestId: r.request_id, actorUserId: r.actor_user_id, actorName: r.actor_name, actorAk: r.actor_ak,
    action: r.action, resourceKind: r.resource_kind, resourceId: r.resource_id, projectId: r.project_id, sourceIp: r.source_ip,
    userAgent: r.user_agent, result: r.result as AuditEvent['result'], code: r.code, detail: r.detail, domainId: r.domain_id ?? null,
    ...(num(r.count) !== 1 ? { count: num(r.count) } : {}),
  };
}

function toAccessKey(r: Selectable<AccessKeysTable>): AccessKeyRecord {
  return {
    accessKey: r.access_key, userId: r.user_id, domainId: r.domain_id, secretSealed: r.secret_sealed, status: r.status as AccessKeyStatus,
    description: r.description, createdAt: num(r.created_at), lastUsedAt: numOrNull(r.last_used_at),
  };
}

function sameEndpoint(a: ResourceRecord['endpoint'], b: ResourceRecord['endpoint']): boolean {
  if (a === null || b === null) return a === b;
  return a.host === b.host && a.port === b.port && a.security === b.security && a.passwordSealed === b.passwordSealed && a.zone === b.zone &&
    (a.tlsCa ?? null) === (b.tlsCa ?? null) && (a.tlsCert ?? null) === (b.tlsCert ?? null) && (a.tlsKeySealed ?? null) === (b.tlsKeySealed ?? null) &&
    encodeEndpointOptions(a.options) === encodeEndpointOptions(b.options);
}

class SqlIdentity implements IdentityRepo {
  constructor(private readonly db: Kysely<Database>) {}
  async getDomain(id: string): Promise<DomainRecord | undefined> {
    const r = await this.db.selectFrom('domains').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toDomain(r);
  }
  async listDomains(): Promise<DomainRecord[]> {
    const rows = await this.db.selectFrom('domains').selectAll().orderBy('name').execute();
    return rows.map(toDomain);
  }
  async deleteDomain(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('domains').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
  async listProjects(domainId?: string): Promise<ProjectRecord[]> {
    let q = this.db.selectFrom('projects').selectAll();
    if (domainId !== undefined) q = q.where('domain_id', '=', domainId);
    const rows = await q.orderBy('name').orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, domainId: r.domain_id, name: r.name, createdAt: num(r.created_at) }));
  }
  async deleteProject(id: string): Promise<boolean> {
    return inTransaction(this.db, async (trx) => {
      await trx.deleteFrom('role_bindings').where('project_id', '=', id).execute();
      const res = await trx.deleteFrom('projects').where('id', '=', id).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
  }
  async listUsers(domainId: string): Promise<UserRecord[]> {
    return (await this.db.selectFrom('users').selectAll().where('domain_id', '=', domainId).orderBy('name').execute()).map(toUser);
  }
  async deleteUser(id: string): Promise<boolean> {
    // Explicit deletes rather than relying on ON DELETE CASCADE: ak_lockouts has no foreign key.
    return inTransaction(this.db, async (trx) => {
      await trx.deleteFrom('ak_lockouts').where('access_key', 'in', trx.selectFrom('access_keys').select('access_key').where('user_id', '=', id)).execute();
      await trx.deleteFrom('access_keys').where('user_id', '=', id).execute();
      await trx.deleteFrom('iam_tokens').where('user_id', '=', id).execute();
      await trx.deleteFrom('role_bindings').where('user_id', '=', id).execute();
      const res = await trx.deleteFrom('users').where('id', '=', id).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
  }
  async removeRole(userId: string, projectId: string): Promise<boolean> {
    const res = await this.db.deleteFrom('role_bindings').where('user_id', '=', userId).where('project_id', '=', projectId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
  async findDomainByName(name: string): Promise<DomainRecord | undefined> {
    const r = await this.db.selectFrom('domains').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toDomain(r);
  }
  async upsertDomain(d: DomainRecord): Promise<void> {
    // A rename never grants or drops operator status: the flag is written on insert only.
    await this.db.insertInto('domains').values({ id: d.id, name: d.name, created_at: d.createdAt, operator: d.operator ? 1 : 0 })
      .onConflict((oc) => oc.column('id').doUpdateSet({ name: d.name })).execute();
  }
  async adoptOperatorDomains(names: readonly string[]): Promise<string[]> {
    return inTransaction(this.db, async (trx) => {
      const undecided = await trx.selectFrom('domains').select(['id', 'name']).where('operator', 'is', null).execute();
      const adopted = undecided.filter((r) => names.includes(r.name)).map((r) => r.id);
      if (adopted.length > 0) await trx.updateTable('domains').set({ operator: 1 }).where('id', 'in', adopted).where('operator', 'is', null).execute();
      await trx.updateTable('domains').set({ operator: 0 }).where('operator', 'is', null).execute();
      return adopted;
    });
  }
  async getProject(id: string): Promise<ProjectRecord | undefined> {
    const r = await this.db.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
    return r && { id: r.id, domainId: r.domain_id, name: r.name, createdAt: num(r.created_at) };
  }
  async findProjectByName(domainId: string, name: string): Promise<ProjectRecord | undefined> {
    const r = await this.db.selectFrom('projects').selectAll().where('domain_id', '=', domainId).where('name', '=', name).executeTakeFirst();
    return r && { id: r.id, domainId: r.domain_id, name: r.name, createdAt: num(r.created_at) };
  }
  async upsertProject(p: ProjectRecord): Promise<void> {
    await this.db.insertInto('projects').values({ id: p.id, domain_id: p.domainId, name: p.name, created_at: p.createdAt })
      .onConflict((oc) => oc.column('id').doUpdateSet({ name: p.name })).execute();
  }
  async getUser(id: string): Promise<UserRecord | undefined> {
    const r = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toUser(r);
  }
  async findUserByName(domainId: string, name: string): Promise<UserRecord | undefined> {
    const r = await this.db.selectFrom('users').selectAll().where('domain_id', '=', domainId).where('name', '=', name).executeTakeFirst();
    return r && toUser(r);
  }
  async upsertUser(u: UserRecord): Promise<void> {
    const row = {
      id: u.id, domain_id: u.domainId, name: u.name, password_hash: u.passwordHash, domain_admin: u.domainAdmin ? 1 : 0,
      disabled: u.disabled ? 1 : 0, password_expires_at: u.passwordExpiresAt, created_at: u.createdAt,
    };
    await this.db.insertInto('users').values(row).onConflict((oc) => oc.column('id').doUpdateSet({
      name: row.name, password_hash: row.password_hash, domain_admin: row.domain_admin, disabled: row.disabled, password_expires_at: row.password_expires_at,
    })).execute();
  }
  async rolesOf(userId: string): Promise<RoleBinding[]> {
    const rows = await this.db.selectFrom('role_bindings').selectAll().where('user_id', '=', userId).execute();
    return rows.map((r) => ({ userId: r.user_id, projectId: r.project_id, role: r.role as Role }));
  }
  async setRole(b: RoleBinding): Promise<void> {
    await this.db.insertInto('role_bindings').values({ user_id: b.userId, project_id: b.projectId, role: b.role })
      .onConflict((oc) => oc.columns(['user_id', 'project_id']).doUpdateSet({ role: b.role })).execute();
  }
  async insertIamToken(t: IamTokenRecord): Promise<void> {
    await this.db.insertInto('iam_tokens').values({
      token_hash: t.tokenHash, user_id: t.userId, project_id: t.projectId, domain_id: t.domainId, methods: JSON.stringify(t.methods),
      issued_at: t.issuedAt, expires_at: t.expiresAt,
    }).execute();
  }
  async getIamToken(tokenHash: string): Promise<IamTokenRecord | undefined> {
    const r = await this.db.selectFrom('iam_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r && {
      tokenHash: r.token_hash, userId: r.user_id, projectId: r.project_id, domainId: r.domain_id, methods: JSON.parse(r.methods) as string[],
      issuedAt: num(r.issued_at), expiresAt: num(r.expires_at),
    };
  }
  async deleteExpiredIamTokens(now: number): Promise<number> {
    const res = await this.db.deleteFrom('iam_tokens').where('expires_at', '<', now).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
  async deleteIamTokensOfUser(userId: string): Promise<number> {
    const res = await this.db.deleteFrom('iam_tokens').where('user_id', '=', userId).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
  async purgeIamTokens(before: number, limit: number): Promise<number> {
    // Bounded: one short statement per batch, however many rows are due; safe on several nodes at once.
    const res = await this.db.deleteFrom('iam_tokens').where('token_hash', 'in', (eb) => eb.selectFrom('iam_tokens').select('token_hash')
      .where('expires_at', '<', before).orderBy('expires_at').limit(limit)).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}

class SqlInventory implements InventoryRepo {
  constructor(private readonly db: Kysely<Database>) {}
  async getResource(projectId: string, kind: ResourceKind, id: string): Promise<ResourceRecord | undefined> {
    const r = await this.db.selectFrom('resources').selectAll().where('id', '=', id).where('project_id', '=', projectId).where('kind', '=', kind).executeTakeFirst();
    return r && toResource(r);
  }
  async getResourceById(id: string): Promise<ResourceRecord | undefined> {
    const r = await this.db.selectFrom('resources').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toResource(r);
  }
  async listResources(filter: { projectId?: string; kind?: ResourceKind; projectIds?: readonly string[] }): Promise<ResourceRecord[]> {
    if (filter.projectIds !== undefined && filter.projectIds.length === 0) return [];
    let q = this.db.selectFrom('resources').selectAll();
    if (filter.projectId) q = q.where('project_id', '=', filter.projectId);
    if (filter.projectIds !== undefined) q = q.where('project_id', 'in', [...filter.projectIds]);
    if (filter.kind) q = q.where('kind', '=', filter.kind);
    return (await q.orderBy('created_at').orderBy('id').execute()).map(toResource);
  }
  async upsertResource(r: Omit<ResourceRecord, 'endpointGeneration' | 'createdAt' | 'updatedAt'>, now: number) {
    return inTransaction(this.db, async (trx) => {
      const existing = await trx.selectFrom('resources').selectAll().where('id', '=', r.id).executeTakeFirst();
      const prev = existing ? toResource(existing) : undefined;
      const endpointChanged = prev !== undefined && !sameEndpoint(prev.endpoint, r.endpoint);
      const generation = prev ? prev.endpointGeneration + (endpointChanged ? 1 : 0) : 1;
      const row = {
        id: r.id, project_id: r.projectId, kind: r.kind, name: r.name, status: r.status, attributes: JSON.stringify(r.attributes),
        endpoint_host: r.endpoint?.host ?? null, endpoint_port: r.endpoint?.port ?? null, endpoint_security: r.endpoint?.security ?? null,
        endpoint_password: r.endpoint?.passwordSealed ?? null, endpoint_zone: r.endpoint?.zone ?? null, endpoint_generation: generation,
        endpoint_tls_ca: r.endpoint?.tlsCa ?? null, endpoint_tls_cert: r.endpoint?.tlsCert ?? null, endpoint_tls_key: r.endpoint?.tlsKeySealed ?? null,
        endpoint_options: encodeEndpointOptions(r.endpoint?.options),
        created_at: prev?.createdAt ?? now, updated_at: now,
      };
      if (prev) {
        if (prev.projectId !== r.projectId || prev.kind !== r.kind) throw new Error(`resource ${r.id} already exists in another project or kind`);
        await trx.updateTable('resources').set(row).where('id', '=', r.id).execute();
      } else {
        await trx.insertInto('resources').values(row).execute();
      }
      const stored = await trx.selectFrom('resources').selectAll().where('id', '=', r.id).executeTakeFirstOrThrow();
      return { record: toResource(stored), endpointChanged, created: prev === undefined };
    });
  }
  async deleteResource(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('resources').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}

class SqlConsoleTokens implements ConsoleTokenRepo {
  /** `writes`: the store's group commit (absent inside a transaction, where rows go with it). */
  constructor(private readonly db: Kysely<Database>, private readonly writes?: WriteQueue) {}
  async insert(t: ConsoleTokenRecord): Promise<void> {
    const row = {
      token_hash: t.tokenHash, project_id: t.projectId, resource_id: t.resourceId, resource_kind: t.resourceKind,
      endpoint_generation: t.endpointGeneration, purpose: t.purpose, zone: t.zone, user_id: t.userId, view_only: t.viewOnly ? 1 : 0,
      created_at: t.createdAt, expires_at: t.expiresAt, redeemed_at: t.redeemedAt, revoked_at: t.revokedAt,
    };
    if (this.writes) await this.writes.add('console_tokens', row);
    else await this.db.insertInto('console_tokens').values(row).execute();
  }
  async get(tokenHash: string): Promise<ConsoleTokenRecord | undefined> {
    const r = await this.db.selectFrom('console_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r && toToken(r);
  }
  async redeem(tokenHash: string, now: number): Promise<ConsoleTokenRecord | undefined> {
    // One conditional UPDATE … RETURNING: the database decides the single winner, on any number of nodes.
    const r = await this.db.updateTable('console_tokens').set({ redeemed_at: now })
      .where('token_hash', '=', tokenHash).where('redeemed_at', 'is', null).where('revoked_at', 'is', null).where('expires_at', '>', now)
      .returningAll().executeTakeFirst();
    return r && toToken(r);
  }
  async revokeForResource(resourceId: string, now: number): Promise<number> {
    const res = await this.db.updateTable('console_tokens').set({ revoked_at: now })
      .where('resource_id', '=', resourceId).where('revoked_at', 'is', null).where('redeemed_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }
  async revokeForUser(userId: string, now: number, keepProjectIds: readonly string[] = []): Promise<number> {
    let q = this.db.updateTable('console_tokens').set({ revoked_at: now })
      .where('user_id', '=', userId).where('revoked_at', 'is', null).where('redeemed_at', 'is', null);
    if (keepProjectIds.length > 0) q = q.where('project_id', 'not in', [...keepProjectIds]);
    const res = await q.executeTakeFirst();
    return Number(res.numUpdatedRows);
  }
  async deleteExpired(before: number): Promise<number> {
    const res = await this.db.deleteFrom('console_tokens').where('expires_at', '<', before).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
  async purgeSpent(before: number, limit: number): Promise<number> {
    const res = await this.db.deleteFrom('console_tokens').where('token_hash', 'in', (eb) => eb.selectFrom('console_tokens').select('token_hash')
      .where((w) => w.or([w('expires_at', '<', before), w('redeemed_at', '<', before), w('revoked_at', '<', before)]))
      .orderBy('expires_at').limit(limit)).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
  async listOutstanding(filter: { now: number; resourceId?: string; projectIds?: readonly string[]; hashPrefix?: string; limit?: number }): Promise<ConsoleTokenRecord[]> {
    if (filter.projectIds !== undefined && filter.projectIds.length === 0) return [];
    let q = this.db.selectFrom('console_tokens').selectAll()
      .where('redeemed_at', 'is', null).where('revoked_at', 'is', null).where('expires_at', '>', filter.now);
    if (filter.resourceId) q = q.where('resource_id', '=', filter.resourceId);
    if (filter.projectIds !== undefined) q = q.where('project_id', 'in', [...filter.projectIds]);
    if (filter.hashPrefix !== undefined) {
      // Hex only, so the LIKE pattern holds no wildcard of the caller's.
      if (!/^[0-9a-f]{1,64}$/.test(filter.hashPrefix)) return [];
      q = q.where('token_hash', 'like', `${filter.hashPrefix}%`);
    }
    return (await q.orderBy('created_at', 'desc').orderBy('token_hash').limit(filter.limit ?? 1000).execute()).map(toToken);
  }
  async revoke(tokenHash: string, now: number): Promise<boolean> {
    const res = await this.db.updateTable('console_tokens').set({ revoked_at: now })
      .where('token_hash', '=', tokenHash).where('revoked_at', 'is', null).where('redeemed_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }
  async unredeem(tokenHash: string, redeemedAt: number): Promise<boolean> {
    const res = await this.db.updateTable('console_tokens').set({ redeemed_at: null })
      .where('token_hash', '=', tokenHash).where('redeemed_at', '=', redeemedAt).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }
}

class SqlSessions implements SessionRepo {
  constructor(private readonly db: Kysely<Database>) {}
  async start(s: ConsoleSessionRecord): Promise<void> {
    await this.db.insertInto('console_sessions').values({
      id: s.id, token_hash: s.tokenHash, project_id: s.projectId, resource_id: s.resourceId, resource_kind: s.resourceKind, user_id: s.userId,
      node_id: s.nodeId, source_ip: s.sourceIp, started_at: s.startedAt, ended_at: s.endedAt, bytes_to_client: s.bytesToClient,
      bytes_to_backend: s.bytesToBackend, close_code: s.closeCode, close_reason: s.closeReason,
    }).execute();
  }
  async end(id: string, e: { endedAt: number; bytesToClient: number; bytesToBackend: number; closeCode: number; closeReason: string }): Promise<void> {
    await this.db.updateTable('console_sessions').set({
      ended_at: e.endedAt, bytes_to_client: e.bytesToClient, bytes_to_backend: e.bytesToBackend, close_code: e.closeCode, close_reason: e.closeReason,
    }).where('id', '=', id).where('ended_at', 'is', null).execute();
  }
  async get(id: string): Promise<ConsoleSessionRecord | undefined> {
    const r = await this.db.selectFrom('console_sessions').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toSession(r);
  }
  async list(filter: { resourceId?: string; open?: boolean; limit?: number; projectIds?: readonly string[]; nodeId?: string }): Promise<ConsoleSessionRecord[]> {
    if (filter.projectIds !== undefined && filter.projectIds.length === 0) return [];
    let q = this.db.selectFrom('console_sessions').selectAll();
    if (filter.resourceId) q = q.where('resource_id', '=', filter.resourceId);
    if (filter.projectIds !== undefined) q = q.where('project_id', 'in', [...filter.projectIds]);
    if (filter.nodeId !== undefined) q = q.where('node_id', '=', filter.nodeId);
    if (filter.open === true) q = q.where('ended_at', 'is', null);
    if (filter.open === false) q = q.where('ended_at', 'is not', null);
    return (await q.orderBy('started_at', 'desc').limit(filter.limit ?? 100).execute()).map(toSession);
  }
  async closeAllOfNode(nodeId: string, now: number, reason: string): Promise<number> {
    const res = await this.db.updateTable('console_sessions').set({ ended_at: now, close_reason: reason, close_code: 1001 })
      .where('node_id', '=', nodeId).where('ended_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }
  async progress(id: string, bytes: { bytesToClient: number; bytesToBackend: number }): Promise<void> {
    await this.db.updateTable('console_sessions').set({ bytes_to_client: bytes.bytesToClient, bytes_to_backend: bytes.bytesToBackend })
      .where('id', '=', id).where('ended_at', 'is', null).execute();
  }
  async activity(resourceIds: readonly string[]): Promise<Map<string, SessionActivity>> {
    const out = new Map<string, SessionActivity>();
    if (resourceIds.length === 0) return out;
    const ids = [...new Set(resourceIds)];
    const rows = await this.db.selectFrom('console_sessions')
      .select((eb) => [
        'resource_id',
        eb.fn.count<number | string>(eb.case().when('ended_at', 'is', null).then(1).end()).as('open'),
        eb.fn.max('ended_at').as('last_ended'),
      ])
      .where('resource_id', 'in', ids).groupBy('resource_id').execute();
    for (const r of rows) out.set(r.resource_id, { open: num(r.open), lastEndedAt: numOrNull(r.last_ended) });
    return out;
  }
}

class SqlProbes implements ProbeRepo {
  constructor(private readonly db: Kysely<Database>) {}
  async record(p: ProbeRecord): Promise<void> {
    const row = {
      resource_id: p.resourceId, endpoint_generation: p.endpointGeneration, reachable: p.reachable ? 1 : 0, failure: p.failure,
      rfb_version: p.rfbVersion, reason: p.reason, checked_at: p.checkedAt, changed_at: p.changedAt, node_id: p.nodeId,
    };
    const { resource_id: _id, ...update } = row;
    await this.db.insertInto('endpoint_probes').values(row).onConflict((oc) => oc.column('resource_id').doUpdateSet(update)).execute();
  }
  async get(resourceId: string): Promise<ProbeRecord | undefined> {
    const r = await this.db.selectFrom('endpoint_probes').selectAll().where('resource_id', '=', resourceId).executeTakeFirst();
    return r && toProbe(r);
  }
  async list(resourceIds?: readonly string[]): Promise<ProbeRecord[]> {
    if (resourceIds !== undefined && resourceIds.length === 0) return [];
    let q = this.db.selectFrom('endpoint_probes').selectAll();
    if (resourceIds !== undefined) q = q.where('resource_id', 'in', [...new Set(resourceIds)]);
    return (await q.orderBy('resource_id').execute()).map(toProbe);
  }
  async delete(resourceId: string): Promise<void> {
    await this.db.deleteFrom('endpoint_probes').where('resource_id', '=', resourceId).execute();
  }
}

class SqlSealedValues implements SealedValueRepo {
  constructor(private readonly db: Kysely<Database>) {}
  async list(): Promise<SealedValue[]> {
    const out: SealedValue[] = [];
    const pw = await this.db.selectFrom('resources').select(['id', 'endpoint_password']).where('endpoint_password', 'is not', null).orderBy('id').execute();
    for (const r of pw) out.push({ kind: 'endpoint_password', id: r.id, sealed: r.endpoint_password! });
    const keys = await this.db.selectFrom('resources').select(['id', 'endpoint_tls_key']).where('endpoint_tls_key', 'is not', null).orderBy('id').execute();
    for (const r of keys) out.push({ kind: 'endpoint_tls_key', id: r.id, sealed: r.endpoint_tls_key! });
    const aks = await this.db.selectFrom('access_keys').select(['access_key', 'secret_sealed']).orderBy('access_key').execute();
    for (const r of aks) out.push({ kind: 'access_key_secret', id: r.access_key, sealed: r.secret_sealed });
    const spaces = await this.db.selectFrom('assist_spaces').select(['id', 'password_sealed']).orderBy('id').execute();
    for (const r of spaces) out.push({ kind: 'share_space_password', id: r.id, sealed: r.password_sealed });
    return out;
  }
  async replace(kind: SealedKind, id: string, expected: string, next: string): Promise<boolean> {
    let res;
    switch (kind) {
      case 'endpoint_password':
        res = await this.db.updateTable('resources').set({ endpoint_password: next }).where('id', '=', id).where('endpoint_password', '=', expected).executeTakeFirst();
        break;
      case 'endpoint_tls_key':
        res = await this.db.updateTable('resources').set({ endpoint_tls_key: next }).where('id', '=', id).where('endpoint_tls_key', '=', expected).executeTakeFirst();
        break;
      case 'access_key_secret':
        res = await this.db.updateTable('access_keys').set({ secret_sealed: next }).where('access_key', '=', id).where('secret_sealed', '=', expected).executeTakeFirst();
        break;
      case 'share_space_password':
        res = await this.db.updateTable('assist_spaces').set({ password_sealed: next }).where('id', '=', id).where('password_sealed', '=', expected).executeTakeFirst();
        break;
    }
    return Number(res.numUpdatedRows) > 0;
  }
}

class SqlAudit implements AuditRepo {
  constructor(private readonly db: Kysely<Database>, private readonly writes?: WriteQueue) {}
  async append(e: AuditEvent): Promise<void> {
    const row = {
      id: e.id ?? timeOrderedId(e.at), at: e.at, request_id: e.requestId, actor_user_id: e.actorUserId, actor_name: e.actorName, actor_ak: e.actorAk,
      action: e.action, resource_kind: e.resourceKind, resource_id: e.resourceId, project_id: e.projectId, source_ip: e.sourceIp,
      user_agent: e.userAgent, result: e.result, code: e.code, detail: e.detail, domain_id: e.domainId ?? null, count: e.count ?? 1,
    };
    if (this.writes) await this.writes.add('audit_events', row);
    else await this.db.insertInto('audit_events').values(row).execute();
  }
  private filtered(filter: AuditFilter) {
    let q = this.db.selectFrom('audit_events');
    if (filter.since !== undefined) q = q.where('at', '>=', filter.since);
    if (filter.until !== undefined) q = q.where('at', '<', filter.until);
    if (filter.action) q = q.where('action', '=', filter.action);
    if (filter.resourceId) q = q.where('resource_id', '=', filter.resourceId);
    if (filter.result) q = q.where('result', '=', filter.result);
    const actor = filter.actor;
    if (actor) q = q.where((eb) => eb.or([eb('actor_user_id', '=', actor), eb('actor_name', '=', actor), eb('actor_ak', '=', actor)]));
    const domainId = filter.domainId;
    if (domainId) {
      q = q.where((eb) => eb.or([
        eb('domain_id', '=', domainId),
        eb('project_id', 'in', eb.selectFrom('projects').select('projects.id').where('projects.domain_id', '=', domainId)),
      ]));
    }
    return q;
  }
  async list(filter: AuditFilter): Promise<AuditEvent[]> {
    const rows = await this.filtered(filter).selectAll().orderBy('at', 'desc').orderBy('id').limit(filter.limit ?? 100).offset(filter.offset ?? 0).execute();
    return rows.map(toAudit);
  }
  async count(filter: AuditFilter): Promise<number> {
    const r = await this.filtered(filter).select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
    return num(r?.n ?? 0);
  }
  async setCount(id: string, count: number): Promise<void> {
    await this.db.updateTable('audit_events').set({ count }).where('id', '=', id).execute();
  }
  async purgeBefore(before: number, limit: number): Promise<number> {
    const res = await this.db.deleteFrom('audit_events').where('id', 'in', (eb) => eb.selectFrom('audit_events').select('id')
      .where('at', '<', before).orderBy('at').limit(limit)).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}

class SqlAccessKeys implements AccessKeyRepo {
  constructor(private readonly db: Kysely<Database>) {}
  async insert(k: AccessKeyRecord): Promise<void> {
    await this.db.insertInto('access_keys').values({
      access_key: k.accessKey, user_id: k.userId, domain_id: k.domainId, secret_sealed: k.secretSealed, status: k.status,
      description: k.description, created_at: k.createdAt, last_used_at: k.lastUsedAt,
    }).execute();
  }
  async get(accessKey: string): Promise<AccessKeyRecord | undefined> {
    const r = await this.db.selectFrom('access_keys').selectAll().where('access_key', '=', accessKey).executeTakeFirst();
    return r && toAccessKey(r);
  }
  async listByUser(userId: string): Promise<AccessKeyRecord[]> {
    return (await this.db.selectFrom('access_keys').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('access_key').execute()).map(toAccessKey);
  }
  async listByDomain(domainId: string): Promise<AccessKeyRecord[]> {
    return (await this.db.selectFrom('access_keys').selectAll().where('domain_id', '=', domainId).orderBy('created_at').orderBy('access_key').execute()).map(toAccessKey);
  }
  async update(accessKey: string, patch: { status?: AccessKeyStatus; description?: string }): Promise<AccessKeyRecord | undefined> {
    const set: { status?: string; description?: string } = {};
    if (patch.status !== undefined) set.status = patch.status;
    if (patch.description !== undefined) set.description = patch.description;
    if (Object.keys(set).length > 0) await this.db.updateTable('access_keys').set(set).where('access_key', '=', accessKey).execute();
    return this.get(accessKey);
  }
  async delete(accessKey: string): Promise<boolean> {
    return inTransaction(this.db, async (trx) => {
      await trx.deleteFrom('ak_lockouts').where('access_key', '=', accessKey).execute();
      const res = await trx.deleteFrom('access_keys').where('access_key', '=', accessKey).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
  }
  async touch(accessKey: string, at: number): Promise<void> {
    await this.db.updateTable('access_keys').set({ last_used_at: at }).where('access_key', '=', accessKey).execute();
  }
  async getLockout(accessKey: string): Promise<AkLockoutRecord | undefined> {
    const r = await this.db.selectFrom('ak_lockouts').selectAll().where('access_key', '=', accessKey).executeTakeFirst();
    return r && { failures: num(r.failures), lockedUntil: numOrNull(r.locked_until) };
  }
  async setLockout(accessKey: string, state: AkLockoutRecord, now: number): Promise<void> {
    if (state.failures === 0 && state.lockedUntil === null) {
      await this.db.deleteFrom('ak_lockouts').where('access_key', '=', accessKey).execute();
      return;
    }
    const row = { access_key: accessKey, failures: state.failures, locked_until: state.lockedUntil, updated_at: now };
    await this.db.insertInto('ak_lockouts').values(row)
      .onConflict((oc) => oc.column('access_key').doUpdateSet({ failures: row.failures, locked_until: row.locked_until, updated_at: now })).execute();
  }
  async addLockoutFailure(accessKey: string, now: number, maxFailures: number, lockMs: number): Promise<AkLockoutRecord> {
    // One statement (security #12): concurrent failures on any number of nodes are each counted. SET
    // expressions read the row as it was (SQLite and PostgreSQL alike).
    const until = sql.ref('ak_lockouts.locked_until');
    const failures = sql.ref('ak_lockouts.failures');
    const running = sql<boolean>`${until} is not null and ${until} > ${now}`;
    // Outside a running lock: an expired lock restarts the count.
    const counted = sql<number>`case when ${until} is not null then 1 else ${failures} + 1 end`;
    const lockAt = now + lockMs;
    const r = await this.db.insertInto('ak_lockouts')
      .values({ access_key: accessKey, failures: 1, locked_until: 1 > maxFailures ? lockAt : null, updated_at: now })
      .onConflict((oc) => oc.column('access_key').doUpdateSet({
        failures: sql<number>`case when ${running} then ${failures} + 1 else ${counted} end`,
        locked_until: sql<number | null>`case when ${running} then ${until} when ${counted} > ${maxFailures} then ${lockAt} else null end`,
        updated_at: now,
      }))
      .returning(['failures', 'locked_until']).executeTakeFirstOrThrow();
    return { failures: num(r.failures), lockedUntil: numOrNull(r.locked_until) };
  }
  async clearLockout(accessKey: string, now: number): Promise<void> {
    await this.db.deleteFrom('ak_lockouts').where('access_key', '=', accessKey)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)])).execute();
  }
}

class SqlNodes implements NodeRepo {
  constructor(private readonly db: Kysely<Database>) {}
  async register(n: Omit<NodeRecord, 'lostAt' | 'draining'>): Promise<void> {
    const row = { id: n.id, address: n.address, version: n.version, started_at: n.startedAt, heartbeat_at: n.heartbeatAt, draining: 0, lost_at: null };
    const { id: _id, ...update } = row;
    await this.db.insertInto('nodes').values(row).onConflict((oc) => oc.column('id').doUpdateSet(update)).execute();
  }
  async heartbeat(id: string, now: number, draining: boolean): Promise<HeartbeatOutcome> {
    const res = await this.db.updateTable('nodes').set({ heartbeat_at: now, draining: draining ? 1 : 0 })
      .where('id', '=', id).where('lost_at', 'is', null).executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) return 'ok';
    const r = await this.db.selectFrom('nodes').select('id').where('id', '=', id).executeTakeFirst();
    return r ? 'lost' : 'missing';
  }
  async list(): Promise<NodeRecord[]> {
    const rows = await this.db.selectFrom('nodes').selectAll().orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id, address: r.address, version: r.version, startedAt: num(r.started_at), heartbeatAt: num(r.heartbeat_at),
      draining: num(r.draining) === 1, lostAt: numOrNull(r.lost_at),
    }));
  }
  async reapLost(o: { cutoff: number; now: number; reason: string; forgetLostBefore: number }): Promise<{ nodes: string[]; sessions: number }> {
    return inTransaction(this.db, async (trx) => {
      // The conditional UPDATE decides: of several survivors reaping at once, one declares each node.
      const lost = await trx.updateTable('nodes').set({ lost_at: o.now })
        .where('lost_at', 'is', null).where('heartbeat_at', '<', o.cutoff).returning('id').execute();
      const res = await trx.updateTable('console_sessions').set({ ended_at: o.now, close_code: 1001, close_reason: o.reason })
        .where('ended_at', 'is', null)
        .where('node_id', 'not in', trx.selectFrom('nodes').select('nodes.id').where('nodes.lost_at', 'is', null))
        .executeTakeFirst();
      await trx.deleteFrom('nodes').where('lost_at', '<', o.forgetLostBefore).execute();
      return { nodes: lost.map((r) => r.id), sessions: Number(res.numUpdatedRows) };
    });
  }
  async reopenSessions(nodeId: string, sessionIds: readonly string[], reason: string): Promise<number> {
    if (sessionIds.length === 0) return 0;
    const res = await this.db.updateTable('console_sessions').set({ ended_at: null, close_code: null, close_reason: null })
      .where('node_id', '=', nodeId).where('id', 'in', [...sessionIds]).where('close_reason', '=', reason).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }
  async remove(id: string): Promise<void> {
    await this.db.deleteFrom('nodes').where('id', '=', id).execute();
  }
  async openSessionCounts(projectIds?: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (projectIds !== undefined && projectIds.length === 0) return out;
    let q = this.db.selectFrom('console_sessions').select((eb) => ['node_id', eb.fn.countAll<number | string>().as('n')]).where('ended_at', 'is', null);
    if (projectIds !== undefined) q = q.where('project_id', 'in', [...projectIds]);
    for (const r of await q.groupBy('node_id').execute()) out.set(r.node_id, num(r.n));
    return out;
  }
}

function toSpace(r: Selectable<AssistSpacesTable>): ShareSpaceRecord {
  return {
    id: r.id, projectId: r.project_id, desktopId: r.desktop_id, name: r.name, invitationCode: r.invitation_code, passwordSealed: r.password_sealed,
    status: r.status as ShareSpaceStatus, initiatorType: r.initiator_type as AssistInitiator, createdByUserId: r.created_by_user_id,
    createdByName: r.created_by_name, createdAt: num(r.created_at), expiresAt: num(r.expires_at), acceptedAt: numOrNull(r.accepted_at),
    openedAt: numOrNull(r.opened_at), closedAt: numOrNull(r.closed_at), closeReason: r.close_reason as ShareSpaceCloseReason | null, failedReason: r.failed_reason,
  };
}

function toHelper(r: Selectable<AssistHelpersTable>): AssistHelperRecord {
  return {
    id: r.id, spaceId: r.space_id, name: r.name, sourceIp: r.source_ip, tokenHash: r.token_hash, sessionId: r.session_id, control: num(r.control) === 1,
    state: r.state as AssistHelperState, joinedAt: num(r.joined_at), connectedAt: numOrNull(r.connected_at), leftAt: numOrNull(r.left_at),
  };
}

function toAttempts(r: Selectable<AssistAttemptsTable>): AssistAttemptRecord {
  return { count: num(r.count), windowStart: num(r.window_start), lockedUntil: numOrNull(r.locked_until) };
}

class SqlAssistance implements AssistanceRepo {
  constructor(private readonly db: Kysely<Database>) {}
  async insertSpace(s: ShareSpaceRecord): Promise<boolean> {
    const active = s.status !== 'CLOSE';
    // ON CONFLICT on the unique active_desktop_id: a second active space for the desktop inserts nothing, on any node.
    const res = await this.db.insertInto('assist_spaces').values({
      id: s.id, project_id: s.projectId, desktop_id: s.desktopId, active_desktop_id: active ? s.desktopId : null, name: s.name,
      invitation_code: s.invitationCode, password_sealed: s.passwordSealed, status: s.status, initiator_type: s.initiatorType,
      created_by_user_id: s.createdByUserId, created_by_name: s.createdByName, created_at: s.createdAt, expires_at: s.expiresAt,
      accepted_at: s.acceptedAt, opened_at: s.openedAt, closed_at: s.closedAt, close_reason: s.closeReason, failed_reason: s.failedReason,
    }).onConflict((oc) => oc.column('active_desktop_id').doNothing()).returning('id').executeTakeFirst();
    return res !== undefined;
  }
  async getSpace(id: string): Promise<ShareSpaceRecord | undefined> {
    const r = await this.db.selectFrom('assist_spaces').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toSpace(r);
  }
  async currentForDesktop(desktopId: string): Promise<ShareSpaceRecord | undefined> {
    const active = await this.db.selectFrom('assist_spaces').selectAll().where('active_desktop_id', '=', desktopId).executeTakeFirst();
    if (active) return toSpace(active);
    const r = await this.db.selectFrom('assist_spaces').selectAll().where('desktop_id', '=', desktopId)
      .orderBy('closed_at', 'desc').orderBy('created_at', 'desc').orderBy('id').limit(1).executeTakeFirst();
    return r && toSpace(r);
  }
  async findActiveByCode(code: string): Promise<ShareSpaceRecord | undefined> {
    const r = await this.db.selectFrom('assist_spaces').selectAll().where('invitation_code', '=', code).where('active_desktop_id', 'is not', null)
      .orderBy('created_at', 'desc').limit(1).executeTakeFirst();
    return r && toSpace(r);
  }
  async transition(id: string, from: readonly ShareSpaceStatus[], t: ShareSpaceTransition): Promise<ShareSpaceRecord | undefined> {
    if (from.length === 0) return undefined;
    const set: Updateable<AssistSpacesTable> = { status: t.status };
    if (t.status === 'CLOSE') set.active_desktop_id = null;
    if (t.acceptedAt !== undefined) set.accepted_at = t.acceptedAt;
    if (t.openedAt !== undefined) set.opened_at = t.openedAt;
    if (t.closedAt !== undefined) set.closed_at = t.closedAt;
    if (t.closeReason !== undefined) set.close_reason = t.closeReason;
    if (t.failedReason !== undefined) set.failed_reason = t.failedReason;
    const r = await this.db.updateTable('assist_spaces').set(set).where('id', '=', id).where('status', 'in', [...from]).returningAll().executeTakeFirst();
    return r && toSpace(r);
  }
  async listExpired(now: number, limit: number): Promise<ShareSpaceRecord[]> {
    const rows = await this.db.selectFrom('assist_spaces').selectAll().where('active_desktop_id', 'is not', null).where('expires_at', '<=', now)
      .orderBy('expires_at').limit(limit).execute();
    return rows.map(toSpace);
  }
  async purgeClosed(before: number): Promise<number> {
    return inTransaction(this.db, async (trx) => {
      const old = trx.selectFrom('assist_spaces').select('id').where('active_desktop_id', 'is', null).where('closed_at', '<', before);
      await trx.deleteFrom('assist_helpers').where('space_id', 'in', old).execute();
      await trx.deleteFrom('assist_consents').where('space_id', 'in', old).execute();
      const res = await trx.deleteFrom('assist_spaces').where('active_desktop_id', 'is', null).where('closed_at', '<', before).executeTakeFirst();
      return Number(res.numDeletedRows);
    });
  }
  async insertHelper(h: AssistHelperRecord): Promise<void> {
    await this.db.insertInto('assist_helpers').values({
      id: h.id, space_id: h.spaceId, name: h.name, source_ip: h.sourceIp, token_hash: h.tokenHash, session_id: h.sessionId, control: h.control ? 1 : 0,
      state: h.state, joined_at: h.joinedAt, connected_at: h.connectedAt, left_at: h.leftAt,
    }).execute();
  }
  async getHelper(id: string): Promise<AssistHelperRecord | undefined> {
    const r = await this.db.selectFrom('assist_helpers').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toHelper(r);
  }
  async findHelperByToken(tokenHash: string): Promise<AssistHelperRecord | undefined> {
    const r = await this.db.selectFrom('assist_helpers').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r && toHelper(r);
  }
  async listHelpers(spaceId: string, states?: readonly AssistHelperState[]): Promise<AssistHelperRecord[]> {
    if (states !== undefined && states.length === 0) return [];
    let q = this.db.selectFrom('assist_helpers').selectAll().where('space_id', '=', spaceId);
    if (states !== undefined) q = q.where('state', 'in', [...states]);
    return (await q.orderBy('joined_at').orderBy('id').execute()).map(toHelper);
  }
  async helpersBySessions(sessionIds: readonly string[]): Promise<AssistHelperRecord[]> {
    if (sessionIds.length === 0) return [];
    return (await this.db.selectFrom('assist_helpers').selectAll().where('session_id', 'in', [...new Set(sessionIds)]).execute()).map(toHelper);
  }
  async updateHelper(id: string, patch: Partial<Pick<AssistHelperRecord, 'sessionId' | 'control' | 'state' | 'connectedAt' | 'leftAt'>>, fromStates?: readonly AssistHelperState[]): Promise<AssistHelperRecord | undefined> {
    if (fromStates !== undefined && fromStates.length === 0) return undefined;
    const set: Updateable<AssistHelpersTable> = {};
    if (patch.sessionId !== undefined) set.session_id = patch.sessionId;
    if (patch.control !== undefined) set.control = patch.control ? 1 : 0;
    if (patch.state !== undefined) set.state = patch.state;
    if (patch.connectedAt !== undefined) set.connected_at = patch.connectedAt;
    if (patch.leftAt !== undefined) set.left_at = patch.leftAt;
    if (Object.keys(set).length === 0) return this.getHelper(id);
    let q = this.db.updateTable('assist_helpers').set(set).where('id', '=', id);
    if (fromStates !== undefined) q = q.where('state', 'in', [...fromStates]);
    const r = await q.returningAll().executeTakeFirst();
    return r && toHelper(r);
  }
  async bindPage(p: AssistPageRecord): Promise<void> {
    // The first binding of a key wins: a key cannot be moved to another session.
    await this.db.insertInto('assist_pages').values({
      key_hash: p.keyHash, session_id: p.sessionId, project_id: p.projectId, resource_id: p.resourceId, role: p.role, user_id: p.userId,
      helper_id: p.helperId, created_at: p.createdAt,
    }).onConflict((oc) => oc.column('key_hash').doNothing()).execute();
  }
  async getPage(keyHash: string): Promise<AssistPageRecord | undefined> {
    const r = await this.db.selectFrom('assist_pages').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();
    return r && {
      keyHash: r.key_hash, sessionId: r.session_id, projectId: r.project_id, resourceId: r.resource_id, role: r.role as AssistPageRecord['role'],
      userId: r.user_id, helperId: r.helper_id, createdAt: num(r.created_at),
    };
  }
  async deletePagesOfSession(sessionId: string): Promise<void> {
    await this.db.deleteFrom('assist_pages').where('session_id', '=', sessionId).execute();
  }
  async purgePages(before: number): Promise<number> {
    const res = await this.db.deleteFrom('assist_pages').where('created_at', '<', before).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
  async getAttempts(key: string): Promise<AssistAttemptRecord | undefined> {
    const r = await this.db.selectFrom('assist_attempts').selectAll().where('key', '=', key).executeTakeFirst();
    return r && toAttempts(r);
  }
  async hitAttempt(key: string, now: number, windowMs: number): Promise<AssistAttemptRecord> {
    // One statement, so concurrent attempts on any number of nodes are each counted. SET expressions
    // read the row as it was (SQLite and PostgreSQL alike): a window that is over starts again at 1.
    const over = sql<boolean>`${sql.ref('assist_attempts.window_start')} + ${windowMs} <= ${now}`;
    const r = await this.db.insertInto('assist_attempts').values({ key, count: 1, window_start: now, locked_until: null })
      .onConflict((oc) => oc.column('key').doUpdateSet({
        count: sql<number>`case when ${over} then 1 else ${sql.ref('assist_attempts.count')} + 1 end`,
        window_start: sql<number>`case when ${over} then ${now} else ${sql.ref('assist_attempts.window_start')} end`,
      }))
      .returningAll().executeTakeFirstOrThrow();
    return toAttempts(r);
  }
  async releaseAttempt(key: string): Promise<void> {
    await this.db.updateTable('assist_attempts').set({ count: sql<number>`case when ${sql.ref('count')} > 0 then ${sql.ref('count')} - 1 else 0 end` })
      .where('key', '=', key).execute();
  }
  async lockAttempts(key: string, until: number): Promise<void> {
    await this.db.updateTable('assist_attempts').set({ locked_until: until }).where('key', '=', key).execute();
  }
  async clearAttempts(key: string): Promise<void> {
    await this.db.deleteFrom('assist_attempts').where('key', '=', key).execute();
  }
  async addConsent(spaceId: string, userName: string, at: number): Promise<boolean> {
    const r = await this.db.insertInto('assist_consents').values({ space_id: spaceId, user_name: userName, at })
      .onConflict((oc) => oc.columns(['space_id', 'user_name']).doNothing()).returning('user_name').executeTakeFirst();
    return r !== undefined;
  }
  async listConsents(spaceId: string): Promise<string[]> {
    return (await this.db.selectFrom('assist_consents').select('user_name').where('space_id', '=', spaceId).orderBy('at').orderBy('user_name').execute()).map((r) => r.user_name);
  }
  async purgeAttempts(before: number, limit: number): Promise<number> {
    const res = await this.db.deleteFrom('assist_attempts').where('key', 'in', (eb) => eb.selectFrom('assist_attempts').select('key')
      .where('window_start', '<', before).where((w) => w.or([w('locked_until', 'is', null), w('locked_until', '<', before)]))
      .orderBy('window_start').limit(limit)).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}

export class KyselyStore implements Store {
  readonly identity: IdentityRepo;
  readonly inventory: InventoryRepo;
  readonly consoleTokens: ConsoleTokenRepo;
  readonly sessions: SessionRepo;
  readonly audit: AuditRepo;
  readonly accessKeys: AccessKeyRepo;
  readonly probes: ProbeRepo;
  readonly sealed: SealedValueRepo;
  readonly nodes: NodeRepo;
  readonly assistance: AssistanceRepo;
  constructor(readonly dialect: 'sqlite' | 'postgres', private readonly db: Kysely<Database>) {
    this.identity = new SqlIdentity(db);
    this.inventory = new SqlInventory(db);
    // Outside a transaction, token and audit inserts of one event-loop turn commit together.
    const writes = db.isTransaction ? undefined : new WriteQueue(db);
    this.consoleTokens = new SqlConsoleTokens(db, writes);
    this.sessions = new SqlSessions(db);
    this.audit = new SqlAudit(db, writes);
    this.accessKeys = new SqlAccessKeys(db);
    this.probes = new SqlProbes(db);
    this.sealed = new SqlSealedValues(db);
    this.nodes = new SqlNodes(db);
    this.assistance = new SqlAssistance(db);
  }
  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    return inTransaction(this.db, (trx) => fn(new KyselyStore(this.dialect, trx)));
  }
  async ping(): Promise<void> {
    await this.db.selectFrom('domains').select('id').limit(1).execute();
  }
  async close(): Promise<void> {
    await this.db.destroy();
  }
}
