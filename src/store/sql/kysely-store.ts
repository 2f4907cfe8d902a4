/**
 * The store ports implemented once over Kysely; the SQLite and PostgreSQL adapters differ only in the
 * dialect they hand in. Row ↔ record mapping lives here so the rest of the code never sees columns.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type {
  AccessKeyRecord, AccessKeyRepo, AccessKeyStatus, AkLockoutRecord, AuditFilter,
  AuditEvent, AuditRepo, ConsoleSessionRecord, ConsoleTokenRecord, ConsoleTokenRepo, DomainRecord, IamTokenRecord,
  IdentityRepo, InventoryRepo, ProjectRecord, ResourceKind, ResourceRecord, Role, RoleBinding, SessionRepo, Store, UserRecord,
  EndpointSecurity, TokenPurpose,
} from '../types.js';
import type { AccessKeysTable, AuditEventsTable, ConsoleSessionsTable, ConsoleTokensTable, Database, ResourcesTable, UsersTable } from './schema.js';

const num = (v: unknown): number => (typeof v === 'string' ? Number(v) : (v as number));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));

function toUser(r: Selectable<UsersTable>): UserRecord {
  return {
    id: r.id, domainId: r.domain_id, name: r.name, passwordHash: r.password_hash, domainAdmin: num(r.domain_admin) === 1,
    disabled: num(r.disabled) === 1, passwordExpiresAt: numOrNull(r.password_expires_at), createdAt: num(r.created_at),
  };
}

function toResource(r: Selectable<ResourcesTable>): ResourceRecord {
  return {
    id: r.id, projectId: r.project_id, kind: r.kind as ResourceKind, name: r.name, status: r.status,
    attributes: JSON.parse(r.attributes) as Record<string, unknown>,
    endpoint: r.endpoint_host === null || r.endpoint_port === null ? null : {
      host: r.endpoint_host, port: num(r.endpoint_port), security: (r.endpoint_security ?? 'none') as EndpointSecurity,
      passwordSealed: r.endpoint_password, zone: r.endpoint_zone,
    },
    endpointGeneration: num(r.endpoint_generation), createdAt: num(r.created_at), updatedAt: num(r.updated_at),
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
  return a.host === b.host && a.port === b.port && a.security === b.security && a.passwordSealed === b.passwordSealed && a.zone === b.zone;
}

class SqlIdentity implements IdentityRepo {
  constructor(private readonly db: Kysely<Database>) {}
  async getDomain(id: string): Promise<DomainRecord | undefined> {
    const r = await this.db.selectFrom('domains').selectAll().where('id', '=', id).executeTakeFirst();
    return r && { id: r.id, name: r.name, createdAt: num(r.created_at) };
  }
  async findDomainByName(name: string): Promise<DomainRecord | undefined> {
    const r = await this.db.selectFrom('domains').selectAll().where('name', '=', name).executeTakeFirst();
    return r && { id: r.id, name: r.name, createdAt: num(r.created_at) };
  }
  async upsertDomain(d: DomainRecord): Promise<void> {
    await this.db.insertInto('domains').values({ id: d.id, name: d.name, created_at: d.createdAt })
      .onConflict((oc) => oc.column('id').doUpdateSet({ name: d.name })).execute();
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
  async listResources(filter: { projectId?: string; kind?: ResourceKind }): Promise<ResourceRecord[]> {
    let q = this.db.selectFrom('resources').selectAll();
    if (filter.projectId) q = q.where('project_id', '=', filter.projectId);
    if (filter.kind) q = q.where('kind', '=', filter.kind);
    return (await q.orderBy('created_at').orderBy('id').execute()).map(toResource);
  }
  async upsertResource(r: Omit<ResourceRecord, 'endpointGeneration' | 'createdAt' | 'updatedAt'>, now: number) {
    return this.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('resources').selectAll().where('id', '=', r.id).executeTakeFirst();
      const prev = existing ? toResource(existing) : undefined;
      const endpointChanged = prev !== undefined && !sameEndpoint(prev.endpoint, r.endpoint);
      const generation = prev ? prev.endpointGeneration + (endpointChanged ? 1 : 0) : 1;
      const row = {
        id: r.id, project_id: r.projectId, kind: r.kind, name: r.name, status: r.status, attributes: JSON.stringify(r.attributes),
        endpoint_host: r.endpoint?.host ?? null, endpoint_port: r.endpoint?.port ?? null, endpoint_security: r.endpoint?.security ?? null,
        endpoint_password: r.endpoint?.passwordSealed ?? null, endpoint_zone: r.endpoint?.zone ?? null, endpoint_generation: generation,
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
  constructor(private readonly db: Kysely<Database>) {}
  async insert(t: ConsoleTokenRecord): Promise<void> {
    await this.db.insertInto('console_tokens').values({
      token_hash: t.tokenHash, project_id: t.projectId, resource_id: t.resourceId, resource_kind: t.resourceKind,
      endpoint_generation: t.endpointGeneration, purpose: t.purpose, zone: t.zone, user_id: t.userId, view_only: t.viewOnly ? 1 : 0,
      created_at: t.createdAt, expires_at: t.expiresAt, redeemed_at: t.redeemedAt, revoked_at: t.revokedAt,
    }).execute();
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
  async deleteExpired(before: number): Promise<number> {
    const res = await this.db.deleteFrom('console_tokens').where('expires_at', '<', before).executeTakeFirst();
    return Number(res.numDeletedRows);
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
  async list(filter: { resourceId?: string; open?: boolean; limit?: number }): Promise<ConsoleSessionRecord[]> {
    let q = this.db.selectFrom('console_sessions').selectAll();
    if (filter.resourceId) q = q.where('resource_id', '=', filter.resourceId);
    if (filter.open === true) q = q.where('ended_at', 'is', null);
    if (filter.open === false) q = q.where('ended_at', 'is not', null);
    return (await q.orderBy('started_at', 'desc').limit(filter.limit ?? 100).execute()).map(toSession);
  }
  async closeAllOfNode(nodeId: string, now: number, reason: string): Promise<number> {
    const res = await this.db.updateTable('console_sessions').set({ ended_at: now, close_reason: reason, close_code: 1001 })
      .where('node_id', '=', nodeId).where('ended_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }
}

class SqlAudit implements AuditRepo {
  constructor(private readonly db: Kysely<Database>) {}
  async append(e: AuditEvent): Promise<void> {
    await this.db.insertInto('audit_events').values({
      id: randomUUID(), at: e.at, request_id: e.requestId, actor_user_id: e.actorUserId, actor_name: e.actorName, actor_ak: e.actorAk,
      action: e.action, resource_kind: e.resourceKind, resource_id: e.resourceId, project_id: e.projectId, source_ip: e.sourceIp,
      user_agent: e.userAgent, result: e.result, code: e.code, detail: e.detail, domain_id: e.domainId ?? null,
    }).execute();
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
    return this.db.transaction().execute(async (trx) => {
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
}

export class KyselyStore implements Store {
  readonly identity: IdentityRepo;
  readonly inventory: InventoryRepo;
  readonly consoleTokens: ConsoleTokenRepo;
  readonly sessions: SessionRepo;
  readonly audit: AuditRepo;
  readonly accessKeys: AccessKeyRepo;
  constructor(readonly dialect: 'sqlite' | 'postgres', private readonly db: Kysely<Database>) {
    this.identity = new SqlIdentity(db);
    this.inventory = new SqlInventory(db);
    this.consoleTokens = new SqlConsoleTokens(db);
    this.sessions = new SqlSessions(db);
    this.audit = new SqlAudit(db);
    this.accessKeys = new SqlAccessKeys(db);
  }
  async ping(): Promise<void> {
    await this.db.selectFrom('domains').select('id').limit(1).execute();
  }
  async close(): Promise<void> {
    await this.db.destroy();
  }
}
