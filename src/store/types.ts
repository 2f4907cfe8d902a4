/**
 * Storage ports. The domain layer talks only to these interfaces; adapters (SQLite now, PostgreSQL
 * next) implement them, and one contract test suite runs against every adapter. All times are epoch
 * milliseconds. Secrets that must be read back are stored sealed (see domain/secrets.ts); one-way
 * secrets (passwords, IAM and console tokens) only as hashes.
 */

export type ResourceKind = 'cloudserver' | 'physicalserver' | 'desktop';
export type Role = 'admin' | 'operator' | 'viewer';
export type EndpointSecurity = 'none' | 'vncauth' | 'vencrypt';
export type TokenPurpose = 'console' | 'assist-viewer' | 'assist-control';

export interface DomainRecord { id: string; name: string; createdAt: number }
export interface ProjectRecord { id: string; domainId: string; name: string; createdAt: number }
export interface UserRecord {
  id: string;
  domainId: string;
  name: string;
  passwordHash: string;
  domainAdmin: boolean;
  disabled: boolean;
  passwordExpiresAt: number | null;
  createdAt: number;
}
export interface RoleBinding { userId: string; projectId: string; role: Role }

export interface ConsoleEndpoint {
  host: string;
  port: number;
  security: EndpointSecurity;
  /** Sealed VNC password (vncauth), or null. */
  passwordSealed: string | null;
  /** URL path zone: /vnc/{zone}/vnc_auto.html */
  zone: string | null;
}

export interface ResourceRecord {
  id: string;
  projectId: string;
  kind: ResourceKind;
  name: string;
  /** ECS/physical server status (ACTIVE, SHUTOFF, …) or desktop status. */
  status: string;
  /** Kind-specific attributes (for desktops: the DesktopDetailInfo fields). */
  attributes: Record<string, unknown>;
  endpoint: ConsoleEndpoint | null;
  /** Bumped whenever the endpoint changes; tokens minted for an older generation are revoked. */
  endpointGeneration: number;
  createdAt: number;
  updatedAt: number;
}

export interface IamTokenRecord {
  tokenHash: string;
  userId: string;
  /** Scope: a project, or the whole domain. */
  projectId: string | null;
  domainId: string;
  methods: string[];
  issuedAt: number;
  expiresAt: number;
}

export interface ConsoleTokenRecord {
  tokenHash: string;
  projectId: string;
  resourceId: string;
  resourceKind: ResourceKind;
  endpointGeneration: number;
  purpose: TokenPurpose;
  zone: string;
  userId: string | null;
  viewOnly: boolean;
  createdAt: number;
  expiresAt: number;
  redeemedAt: number | null;
  revokedAt: number | null;
}

export type TokenState = 'valid' | 'expired' | 'used' | 'revoked' | 'invalid';

export interface ConsoleSessionRecord {
  id: string;
  tokenHash: string;
  projectId: string;
  resourceId: string;
  resourceKind: ResourceKind;
  userId: string | null;
  nodeId: string;
  sourceIp: string | null;
  startedAt: number;
  endedAt: number | null;
  bytesToClient: number;
  bytesToBackend: number;
  closeCode: number | null;
  closeReason: string | null;
}

export interface AuditEvent {
  at: number;
  requestId: string | null;
  actorUserId: string | null;
  actorName: string | null;
  actorAk: string | null;
  action: string;
  resourceKind: string | null;
  resourceId: string | null;
  projectId: string | null;
  sourceIp: string | null;
  userAgent: string | null;
  result: 'success' | 'failure';
  code: string | null;
  detail: string | null;
  /**
   * The domain the event belongs to when known without the project (the caller's domain, or the
   * owner's domain of an AK that failed to verify). The audit API shows a domain administrator the
   * events of their domain and of their domain's projects.
   */
  domainId?: string | null;
}

export type AccessKeyStatus = 'active' | 'inactive';

/** A permanent access key (AK/SK). The SK is kept sealed (SecretBox, aad `ak:<access key>`). */
export interface AccessKeyRecord {
  accessKey: string;
  userId: string;
  /** The owner's domain (denormalized, for a domain administrator's listing). */
  domainId: string;
  secretSealed: string;
  status: AccessKeyStatus;
  description: string;
  createdAt: number;
  lastUsedAt: number | null;
}

/** Consecutive signature failures of an AK and its lock (domain/signing/lockout.ts). */
export interface AkLockoutRecord { failures: number; lockedUntil: number | null }

export interface AuditFilter {
  since?: number;
  until?: number;
  action?: string;
  resourceId?: string;
  /** Matches the actor's user id, user name or access key. */
  actor?: string;
  result?: AuditEvent['result'];
  /** Events of this domain: attributed to it, or about one of its projects. */
  domainId?: string;
  limit?: number;
  offset?: number;
}

export interface IdentityRepo {
  getDomain(id: string): Promise<DomainRecord | undefined>;
  findDomainByName(name: string): Promise<DomainRecord | undefined>;
  upsertDomain(d: DomainRecord): Promise<void>;
  getProject(id: string): Promise<ProjectRecord | undefined>;
  findProjectByName(domainId: string, name: string): Promise<ProjectRecord | undefined>;
  upsertProject(p: ProjectRecord): Promise<void>;
  getUser(id: string): Promise<UserRecord | undefined>;
  findUserByName(domainId: string, name: string): Promise<UserRecord | undefined>;
  upsertUser(u: UserRecord): Promise<void>;
  rolesOf(userId: string): Promise<RoleBinding[]>;
  setRole(b: RoleBinding): Promise<void>;
  insertIamToken(t: IamTokenRecord): Promise<void>;
  getIamToken(tokenHash: string): Promise<IamTokenRecord | undefined>;
  deleteExpiredIamTokens(now: number): Promise<number>;
}

export interface InventoryRepo {
  getResource(projectId: string, kind: ResourceKind, id: string): Promise<ResourceRecord | undefined>;
  getResourceById(id: string): Promise<ResourceRecord | undefined>;
  listResources(filter: { projectId?: string; kind?: ResourceKind }): Promise<ResourceRecord[]>;
  /** Inserts or replaces; bumps endpointGeneration when the endpoint changed. Returns the stored record. */
  upsertResource(r: Omit<ResourceRecord, 'endpointGeneration' | 'createdAt' | 'updatedAt'>, now: number): Promise<{ record: ResourceRecord; endpointChanged: boolean; created: boolean }>;
  deleteResource(id: string): Promise<boolean>;
}

export interface ConsoleTokenRepo {
  insert(t: ConsoleTokenRecord): Promise<void>;
  get(tokenHash: string): Promise<ConsoleTokenRecord | undefined>;
  /**
   * Atomically marks the token redeemed if it is unredeemed, unrevoked and unexpired at `now`.
   * Exactly one concurrent caller gets the record; the others get undefined.
   */
  redeem(tokenHash: string, now: number): Promise<ConsoleTokenRecord | undefined>;
  revokeForResource(resourceId: string, now: number): Promise<number>;
  deleteExpired(before: number): Promise<number>;
}

export interface SessionRepo {
  start(s: ConsoleSessionRecord): Promise<void>;
  end(id: string, e: { endedAt: number; bytesToClient: number; bytesToBackend: number; closeCode: number; closeReason: string }): Promise<void>;
  get(id: string): Promise<ConsoleSessionRecord | undefined>;
  list(filter: { resourceId?: string; open?: boolean; limit?: number }): Promise<ConsoleSessionRecord[]>;
  /** Closes every open session of a node (crash recovery at start). */
  closeAllOfNode(nodeId: string, now: number, reason: string): Promise<number>;
}

export interface AuditRepo {
  append(e: AuditEvent): Promise<void>;
  /** Newest first. */
  list(filter: AuditFilter): Promise<AuditEvent[]>;
  /** How many events match (limit and offset ignored). */
  count(filter: AuditFilter): Promise<number>;
}

export interface AccessKeyRepo {
  insert(k: AccessKeyRecord): Promise<void>;
  get(accessKey: string): Promise<AccessKeyRecord | undefined>;
  listByUser(userId: string): Promise<AccessKeyRecord[]>;
  listByDomain(domainId: string): Promise<AccessKeyRecord[]>;
  /** Returns the updated record, or undefined when the key does not exist. */
  update(accessKey: string, patch: { status?: AccessKeyStatus; description?: string }): Promise<AccessKeyRecord | undefined>;
  /** Deletes the key and its lockout state. */
  delete(accessKey: string): Promise<boolean>;
  touch(accessKey: string, at: number): Promise<void>;
  getLockout(accessKey: string): Promise<AkLockoutRecord | undefined>;
  /** A clean state (0 failures, not locked) removes the row. */
  setLockout(accessKey: string, state: AkLockoutRecord, now: number): Promise<void>;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly identity: IdentityRepo;
  readonly inventory: InventoryRepo;
  readonly consoleTokens: ConsoleTokenRepo;
  readonly sessions: SessionRepo;
  readonly audit: AuditRepo;
  readonly accessKeys: AccessKeyRepo;
  /** Cheap round trip used by readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
