/**
 * Storage ports. The domain layer talks only to these interfaces; adapters (SQLite now, PostgreSQL
 * next) implement them, and one contract test suite runs against every adapter. All times are epoch
 * milliseconds. Secrets that must be read back are stored sealed (see domain/secrets.ts); one-way
 * secrets (passwords, IAM and console tokens) only as hashes.
 */

import type { EndpointOptions } from '../domain/endpoint-options.js';
export type ResourceKind = 'cloudserver' | 'physicalserver' | 'desktop';
export type Role = 'admin' | 'operator' | 'viewer';
export type EndpointSecurity = 'none' | 'vncauth' | 'vencrypt';
export type TokenPurpose = 'console' | 'assist-viewer' | 'assist-control';

/**
 * `operator`: an operator domain (its administrators operate the gateway, domain/directory.ts). Set
 * when the domain is created under a name in `admin.operator_domains` by the gateway itself or by an
 * operator; a rename never changes it (upsertDomain updates the name only).
 */
export interface DomainRecord { id: string; name: string; createdAt: number; operator: boolean }
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
  /** VeNCrypt: PEM CA certificate(s) the server certificate must chain to (absent: the system roots). Public. */
  tlsCa?: string | null;
  /** VeNCrypt: PEM client certificate Porthole presents to the server. Public. */
  tlsCert?: string | null;
  /** VeNCrypt: the client certificate's private key, sealed (aad `endpoint-tls-key:<resource id>`). */
  tlsKeySealed?: string | null;
  /** TLS name, VeNCrypt subtypes, Plain username, clipboard and session policy (domain/endpoint-options.ts). Present only when set. */
  options?: EndpointOptions;
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
  /**
   * How many refused calls the row stands for: refused unauthenticated calls are aggregated per source
   * address, action and result in a window (domain/audit.ts). Absent (and never returned) when 1.
   */
  count?: number;
  /** The row's id, when the writer chooses it (to update `count` later); never returned by `list`. */
  id?: string;
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
  /** Every domain, by name. */
  listDomains(): Promise<DomainRecord[]>;
  /** Deletes the domain row only (its projects and users must be gone first). */
  deleteDomain(id: string): Promise<boolean>;
  /** Projects of one domain (or all), by name. */
  listProjects(domainId?: string): Promise<ProjectRecord[]>;
  /** Deletes the project and its role bindings (its resources must be gone first). */
  deleteProject(id: string): Promise<boolean>;
  /** Users of one domain, by name. */
  listUsers(domainId: string): Promise<UserRecord[]>;
  /** Deletes the user with its role bindings, IAM tokens, access keys and their lockout state. */
  deleteUser(id: string): Promise<boolean>;
  removeRole(userId: string, projectId: string): Promise<boolean>;
  findDomainByName(name: string): Promise<DomainRecord | undefined>;
  /** Inserts the domain, or renames it: `operator` is written on insert only. */
  upsertDomain(d: DomainRecord): Promise<void>;
  /**
   * Domains from before operator flags were recorded (migration 0009) get theirs once: set when their
   * current name is in `names`, cleared otherwise. Returns the ids flagged. Later calls touch nothing.
   */
  adoptOperatorDomains(names: readonly string[]): Promise<string[]>;
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
  /** Deletes every IAM token of a user (a password change, or the user disabled); returns how many. */
  deleteIamTokensOfUser(userId: string): Promise<number>;
  /** Retention: deletes at most `limit` IAM tokens that expired before `before`, oldest first; how many went. */
  purgeIamTokens(before: number, limit: number): Promise<number>;
}

export interface InventoryRepo {
  getResource(projectId: string, kind: ResourceKind, id: string): Promise<ResourceRecord | undefined>;
  getResourceById(id: string): Promise<ResourceRecord | undefined>;
  /** Oldest first. `projectIds` limits to those projects (an empty list matches nothing). */
  listResources(filter: { projectId?: string; kind?: ResourceKind; projectIds?: readonly string[] }): Promise<ResourceRecord[]>;
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
  /**
   * Revokes every unredeemed, unrevoked token minted by a user, except in `keepProjectIds` (the projects
   * where the user may still open consoles); returns how many.
   */
  revokeForUser(userId: string, now: number, keepProjectIds?: readonly string[]): Promise<number>;
  deleteExpired(before: number): Promise<number>;
  /**
   * Outstanding tokens (unredeemed, unrevoked, expiring after `now`), newest first. Filters: one
   * resource, some projects (an empty list matches nothing), a prefix of the token hash (lower hex).
   */
  listOutstanding(filter: { now: number; resourceId?: string; projectIds?: readonly string[]; hashPrefix?: string; limit?: number }): Promise<ConsoleTokenRecord[]>;
  /** Revokes one unredeemed, unrevoked token; false when there was none to revoke. */
  revoke(tokenHash: string, now: number): Promise<boolean>;
  /**
   * Retention: deletes at most `limit` tokens that expired, were redeemed or were revoked before
   * `before` (oldest expiry first); how many went.
   */
  purgeSpent(before: number, limit: number): Promise<number>;
  /**
   * Undoes one redemption: marks the token unredeemed again if it is still redeemed at exactly
   * `redeemedAt` (the redemption this node made and could not complete); false when it was not.
   */
  unredeem(tokenHash: string, redeemedAt: number): Promise<boolean>;
}

export interface SessionRepo {
  start(s: ConsoleSessionRecord): Promise<void>;
  end(id: string, e: { endedAt: number; bytesToClient: number; bytesToBackend: number; closeCode: number; closeReason: string }): Promise<void>;
  get(id: string): Promise<ConsoleSessionRecord | undefined>;
  list(filter: { resourceId?: string; open?: boolean; limit?: number; projectIds?: readonly string[]; nodeId?: string }): Promise<ConsoleSessionRecord[]>;
  /** Closes every open session of a node (crash recovery at start). */
  closeAllOfNode(nodeId: string, now: number, reason: string): Promise<number>;
  /** Bytes relayed so far by an open session (the node holding it writes them now and then). */
  progress(id: string, bytes: { bytesToClient: number; bytesToBackend: number }): Promise<void>;
  /** Per resource id: how many sessions are open and when the last one ended (null: none ended). */
  activity(resourceIds: readonly string[]): Promise<Map<string, SessionActivity>>;
}

export interface SessionActivity { open: number; lastEndedAt: number | null }

/** The last liveness probe of a resource's console endpoint (proxy/prober.ts writes, domain/liveness.ts reads). */
export interface ProbeRecord {
  resourceId: string;
  /** The endpoint generation probed: a result for an older generation says nothing about the current endpoint. */
  endpointGeneration: number;
  reachable: boolean;
  /**
   * Why the console is not usable (domain/liveness.ts): unreachable — refused, timeout, closed,
   * bad_banner, protocol, error; reachable but failed — auth_failed, no_security_type, tls,
   * server_refused. Null when the handshake completed.
   */
  failure: string | null;
  /** The version in the server's banner ("003.008"), when reachable. */
  rfbVersion: string | null;
  /** The server's own failure/refusal text (sanitised, capped), or ours for no_security_type/tls; else null. */
  reason: string | null;
  checkedAt: number;
  /** When `reachable` last took its current value. */
  changedAt: number;
  nodeId: string;
}

export interface ProbeRepo {
  /** Inserts or replaces the resource's probe result. */
  record(p: ProbeRecord): Promise<void>;
  get(resourceId: string): Promise<ProbeRecord | undefined>;
  /** Results of these resources (all when omitted). */
  list(resourceIds?: readonly string[]): Promise<ProbeRecord[]>;
  delete(resourceId: string): Promise<void>;
}

/** Where a sealed secret lives; the key rotation walks them all (domain/key-rotation.ts). */
export type SealedKind = 'endpoint_password' | 'endpoint_tls_key' | 'access_key_secret' | 'share_space_password';
export interface SealedValue { kind: SealedKind; id: string; sealed: string }

export interface SealedValueRepo {
  /** Every sealed value in the store, ordered by kind and id. */
  list(): Promise<SealedValue[]>;
  /** Compare-and-swap: replaces the value only if it still is `expected` (a concurrent change wins). */
  replace(kind: SealedKind, id: string, expected: string, next: string): Promise<boolean>;
}

/** A gateway node as the cluster sees it (domain/nodes.ts registers and heartbeats it). */
export interface NodeRecord {
  id: string;
  /** `host:port` the node listens on. */
  address: string;
  version: string;
  startedAt: number;
  heartbeatAt: number;
  /** Stopping: refuses new consoles and API calls while its live consoles finish. */
  draining: boolean;
  /** When a survivor declared it lost (and closed its sessions); null while it is alive. */
  lostAt: number | null;
}

export type HeartbeatOutcome = 'ok' | 'lost' | 'missing';

export interface NodeRepo {
  /** Inserts or replaces the node's row as alive: not draining, not lost. */
  register(n: Omit<NodeRecord, 'lostAt' | 'draining'>): Promise<void>;
  /** Records a heartbeat; `lost` when a survivor has declared the node lost (row left as is), `missing` when it has no row. */
  heartbeat(id: string, now: number, draining: boolean): Promise<HeartbeatOutcome>;
  /** Every node row (lost ones too), by id. */
  list(): Promise<NodeRecord[]>;
  /**
   * In one transaction: declares lost every alive node whose heartbeat is older than `cutoff`, then
   * closes (code 1001, `reason`) every open session whose node is not alive — lost, removed or never
   * registered — and forgets the rows of nodes lost before `forgetLostBefore`. Safe to run on several
   * nodes at once: each node and each session is closed once.
   */
  reapLost(o: { cutoff: number; now: number; reason: string; forgetLostBefore: number }): Promise<{ nodes: string[]; sessions: number }>;
  /** Re-opens sessions of `nodeId` closed with `reason` (the node was declared lost while still relaying them). */
  reopenSessions(nodeId: string, sessionIds: readonly string[], reason: string): Promise<number>;
  /** Removes the node's row (a clean stop, after its sessions ended). */
  remove(id: string): Promise<void>;
  /** Open sessions per node id, only those of `projectIds` when given (an empty list matches nothing). */
  openSessionCounts(projectIds?: readonly string[]): Promise<Map<string, number>>;
}

export interface AuditRepo {
  append(e: AuditEvent): Promise<void>;
  /** Newest first. */
  list(filter: AuditFilter): Promise<AuditEvent[]>;
  /** How many events match (limit and offset ignored). */
  count(filter: AuditFilter): Promise<number>;
  /** Sets the `count` of the event appended with this `id` (an aggregated refusal seen again). */
  setCount(id: string, count: number): Promise<void>;
  /** Retention: deletes at most `limit` events older than `before`, oldest first; how many went. */
  purgeBefore(before: number, limit: number): Promise<number>;
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
  /**
   * One more signature failure at `now`, in one atomic statement (concurrent calls on any node are
   * each counted), by the rule of domain/signing/lockout.ts `afterFailure`: a running lock is kept (not
   * extended), an expired one restarts the count at 1, a count above `maxFailures` locks until
   * `now + lockMs`. Returns the state after it.
   */
  addLockoutFailure(accessKey: string, now: number, maxFailures: number, lockMs: number): Promise<AkLockoutRecord>;
  /** Removes the count, unless a lock runs at `now`. */
  clearLockout(accessKey: string, now: number): Promise<void>;
}

/** A message between gateway nodes: JSON-serialisable, `type` says what it is (proxy/session-control.ts defines them). */
export interface ClusterMessage { type: string; [key: string]: unknown }

/**
 * Messages between gateway nodes. Adapters: Redis pub/sub (store/redis/events.ts), PostgreSQL
 * LISTEN/NOTIFY (store/postgres/events.ts), and in-process for a single node (store/memory/events.ts).
 * Delivery is at most once to the nodes listening at that moment, the publisher included; callers that
 * need to know an effect happened ask for a reply.
 */
export interface EventBus {
  readonly kind: 'redis' | 'postgres' | 'local';
  /** Sends to every node; rejects when the channel is down (nothing was sent). */
  publish(msg: ClusterMessage): Promise<void>;
  /** Calls `handler` for every message received; returns the unsubscribe function. */
  subscribe(handler: (msg: ClusterMessage) => void): () => void;
  close(): Promise<void>;
}

/** Remote assistance (domain/assistance.ts): a share space's status, as the Workspace API names it (reference E.6). */
export type ShareSpaceStatus = 'WAIT_USER_CONFIRM' | 'WAIT_USER_ACCESS' | 'OPEN' | 'CLOSE';
/** Who asked for the assistance (CreateRemoteAssistance `initiator_type`). */
export type AssistInitiator = 'ADMIN_INITIATE' | 'ENDUSER_INITIATE';
/** Why a space closed (for the audit trail and the pages; `failedReason` is what the API shows). */
export type ShareSpaceCloseReason = 'cancelled' | 'declined' | 'ended_by_user' | 'expired';

/** A share space: one desktop, an invitation code and a sealed password (aad `share-space:<id>`). */
export interface ShareSpaceRecord {
  id: string;
  projectId: string;
  desktopId: string;
  name: string;
  /** 8 characters, A-Z 0-9. */
  invitationCode: string;
  passwordSealed: string;
  status: ShareSpaceStatus;
  initiatorType: AssistInitiator;
  createdByUserId: string | null;
  createdByName: string | null;
  createdAt: number;
  /** The space closes as `expired` at this time, whatever its state. */
  expiresAt: number;
  acceptedAt: number | null;
  openedAt: number | null;
  closedAt: number | null;
  closeReason: ShareSpaceCloseReason | null;
  failedReason: string | null;
}

/** A status change of a share space (compare-and-set in AssistanceRepo.transition). */
export interface ShareSpaceTransition {
  status: ShareSpaceStatus;
  acceptedAt?: number;
  openedAt?: number;
  closedAt?: number;
  closeReason?: ShareSpaceCloseReason;
  failedReason?: string | null;
}

/** joining: passed code and password, token minted; connected: its console is live; left / removed: gone. */
export type AssistHelperState = 'joining' | 'connected' | 'left' | 'removed';

/** One helper who joined a share space (each join is a new helper: console tokens are single-use). */
export interface AssistHelperRecord {
  id: string;
  spaceId: string;
  /** The name the helper typed on the join page. */
  name: string;
  sourceIp: string | null;
  /** SHA-256 of the assist-viewer console token minted at the join. */
  tokenHash: string;
  /** The console session, once the token was redeemed. */
  sessionId: string | null;
  /** Whether the desktop user gave this helper control (else view-only). */
  control: boolean;
  state: AssistHelperState;
  joinedAt: number;
  connectedAt: number | null;
  leftAt: number | null;
}

/**
 * A console page bound to its live session by a secret the page made itself (sent once as a WebSocket
 * subprotocol at the upgrade, then in a header); only the secret's SHA-256 is stored. It is how the
 * desktop user's page and a helper's page talk to the gateway without the spent console token.
 */
export interface AssistPageRecord {
  keyHash: string;
  sessionId: string;
  projectId: string;
  resourceId: string;
  /** user: the desktop's assigned user; helper: a remote-assistance helper; none: anyone else. */
  role: 'user' | 'helper' | 'none';
  userId: string | null;
  helperId: string | null;
  createdAt: number;
}

/** Join attempts counted under one key (a share space, or a source address), and its lock. */
export interface AssistAttemptRecord { count: number; windowStart: number; lockedUntil: number | null }

export interface AssistanceRepo {
  /** Inserts an active space; false when the desktop already has an active one (on any node). */
  insertSpace(s: ShareSpaceRecord): Promise<boolean>;
  getSpace(id: string): Promise<ShareSpaceRecord | undefined>;
  /** The desktop's active space, else the one closed last. */
  currentForDesktop(desktopId: string): Promise<ShareSpaceRecord | undefined>;
  /** The active space with this invitation code. */
  findActiveByCode(code: string): Promise<ShareSpaceRecord | undefined>;
  /**
   * Compare-and-set: applies `t` only when the space's status is one of `from`; returns the updated
   * record, or undefined when it was in another state. Going to CLOSE frees the desktop for a new space.
   */
  transition(id: string, from: readonly ShareSpaceStatus[], t: ShareSpaceTransition): Promise<ShareSpaceRecord | undefined>;
  /** Active spaces with `expiresAt <= now`, oldest first. */
  listExpired(now: number, limit: number): Promise<ShareSpaceRecord[]>;
  /** Deletes spaces closed before `before`, with their helpers. */
  purgeClosed(before: number): Promise<number>;
  insertHelper(h: AssistHelperRecord): Promise<void>;
  getHelper(id: string): Promise<AssistHelperRecord | undefined>;
  findHelperByToken(tokenHash: string): Promise<AssistHelperRecord | undefined>;
  /** Helpers of a space in join order, only those in `states` when given. */
  listHelpers(spaceId: string, states?: readonly AssistHelperState[]): Promise<AssistHelperRecord[]>;
  helpersBySessions(sessionIds: readonly string[]): Promise<AssistHelperRecord[]>;
  /** Updates a helper when its state is one of `fromStates` (any when omitted); the updated record or undefined. */
  updateHelper(id: string, patch: Partial<Pick<AssistHelperRecord, 'sessionId' | 'control' | 'state' | 'connectedAt' | 'leftAt'>>, fromStates?: readonly AssistHelperState[]): Promise<AssistHelperRecord | undefined>;
  bindPage(p: AssistPageRecord): Promise<void>;
  getPage(keyHash: string): Promise<AssistPageRecord | undefined>;
  deletePagesOfSession(sessionId: string): Promise<void>;
  /** Deletes page bindings made before `before` (sessions of a crashed node). */
  purgePages(before: number): Promise<number>;
  getAttempts(key: string): Promise<AssistAttemptRecord | undefined>;
  /** Atomically counts one attempt in the key's window (a new window when the last one is over); the counts after it. */
  hitAttempt(key: string, now: number, windowMs: number): Promise<AssistAttemptRecord>;
  /** Takes one attempt back (a successful join does not count against the space). */
  releaseAttempt(key: string): Promise<void>;
  lockAttempts(key: string, until: number): Promise<void>;
  clearAttempts(key: string): Promise<void>;
  /** Records that `userName` (an assigned user of the desktop) agreed to the space, atomically; false when they had already. */
  addConsent(spaceId: string, userName: string, at: number): Promise<boolean>;
  /** The users who agreed to the space, in the order they did. Purged with the space. */
  listConsents(spaceId: string): Promise<string[]>;
  /** Retention: deletes at most `limit` attempt counters whose window started and whose lock ended before `before`. */
  purgeAttempts(before: number, limit: number): Promise<number>;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly identity: IdentityRepo;
  readonly inventory: InventoryRepo;
  readonly consoleTokens: ConsoleTokenRepo;
  readonly sessions: SessionRepo;
  readonly audit: AuditRepo;
  readonly accessKeys: AccessKeyRepo;
  readonly probes: ProbeRepo;
  readonly sealed: SealedValueRepo;
  /** Gateway nodes: registration, heartbeats, failover of a lost node's sessions. */
  readonly nodes: NodeRepo;
  /** Remote assistance: share spaces, helpers, page bindings, join attempts. */
  readonly assistance: AssistanceRepo;
  /**
   * Runs `fn` in one database transaction: every write through the `tx` store commits together or
   * not at all. Use only `tx` inside `fn` (on SQLite the outer store waits for the transaction).
   */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  /** Cheap round trip used by readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
