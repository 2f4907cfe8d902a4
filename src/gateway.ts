/**
 * The composition root as a function: config → store → services → HTTP server with the REST API and the
 * console WebSocket upgrade handler. `main.ts` calls it for `porthole serve`; tests call it to run the
 * real gateway on port 0. Nothing else wires components together.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { makePrivateDir, restrictFiles } from './private-files.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { withListeningPort, type Config } from './config/index.js';
import { buildApi } from './api/app.js';
import { AddressThrottle, MemoryRateLimitStore } from './api/ratelimit.js';
import { ApiError } from './errors.js';
import { AccessKeyService } from './domain/access-keys.js';
import { AuditService } from './domain/audit.js';
import { systemClock, type Clock } from './domain/clock.js';
import { ConsoleService } from './domain/consoles.js';
import { applyFleet, deriveDomainId, deriveUserId, parseFleet } from './domain/fleet.js';
import { IamService } from './domain/iam.js';
import { keyIdOf, LEGACY_KEY_ID, SecretBox } from './domain/secrets.js';
import { SessionService } from './domain/sessions.js';
import { createStore } from './store/index.js';
import { watchIdentityChanges } from './store/identity-watch.js';
import { IdentityCache } from './domain/identity-cache.js';
import type { Store } from './store/types.js';
import { createUpgradeHandler, reject as rejectUpgrade, type UpgradeHandler } from './proxy/upgrade.js';
import { clientErrorHandler, endSocketWith, newRequestId, rawErrorResponse, writeErrorResponse, type RawError } from './http-errors.js';
import { Prober } from './proxy/prober.js';
import { BackendNetworks } from './proxy/backend-networks.js';
import { ClusterSessionControl, LocalSessionControl } from './proxy/session-control.js';
import type { SessionControl } from './domain/session-control.js';
import { NodeMembership } from './domain/nodes.js';
import { StoreLockoutPort } from './domain/access-keys.js';
import type { EventBus } from './store/types.js';
import { openRedis, type RedisConnection } from './store/redis/connection.js';
import { RedisRateLimitStore } from './store/redis/ratelimit.js';
import { RedisLockoutStore } from './store/redis/lockout.js';
import { RedisEventBus } from './store/redis/events.js';
import { PostgresEventBus } from './store/postgres/events.js';
import { AdminAccess, DirectoryService } from './domain/directory.js';
import { InventoryService } from './domain/inventory.js';
import type { AdminServices } from './api/context.js';
import { loadWebAssets } from './web/assets.js';
import { startDemoDesktop, type DemoDesktop } from './demo/desktop.js';
import { demoFleet, loadOrCreateDemoFacts, writeDemoFacts, type DemoFacts } from './demo/seed.js';
import { logSerializers, redactPaths } from './observability/redact.js';
import { GatewayMetrics, gatewayVersion } from './observability/metrics.js';
import { CloseCode, CloseReason } from './close-codes.js';
import { ASSISTANCE_TICK_MS, AssistanceService, type LocalHelperSessions } from './domain/assistance.js';
import { NO_SESSIONS } from './domain/session-control.js';
import { RETENTION_INTERVAL_MS, RetentionService } from './domain/retention.js';

export interface Gateway {
  config: Readonly<Config>;
  url: string;
  app: FastifyInstance;
  store: Store;
  upgrade: UpgradeHandler;
  consoles: ConsoleService;
  iam: IamService;
  accessKeys: AccessKeyService;
  secrets: SecretBox;
  demo: { facts: DemoFacts; desktop: DemoDesktop } | null;
  log: Logger;
  /** The console liveness prober (its first round runs at start; `runOnce()` for tests). */
  prober: Prober;
  /** The admin API's services. */
  admin: AdminServices;
  /** Remote assistance (share spaces, helpers, the console pages' channel). */
  assistance: AssistanceService;
  /** This instance's Prometheus registry and hooks (served at /metrics). */
  metrics: GatewayMetrics;
  /** The audit trail's writer: records are written after the call; `flush()` before reading the store directly. */
  audit: AuditService;
  /** Deletes spent tokens and old audit events (hourly on every node; `runOnce()` for tests). */
  retention: RetentionService;
  /** Marks the node as draining: /readyz, new consoles and API calls answer 503 so load balancers stop sending traffic. `close` does it first. */
  drain(): void;
  /** Scale-out parts: this node's membership (heartbeats, reaping lost nodes), the cross-node bus and Redis (null when not used). */
  cluster: { nodeId: string; membership: NodeMembership; bus: EventBus | null; redis: RedisConnection | null; sessions: SessionService };
  /** Stops taking connections, ends live consoles with SHUTDOWN after `graceMs`, closes everything. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Where the gateway's own logger (config log level, serializers, redaction) writes; default stdout. Ignored with `logger`. */
  logDestination?: pino.DestinationStream;
  clock?: Clock;
  /** Called with the public URL as soon as the server listens, before the store opens (tests reach a starting node). */
  onListening?: (url: string) => void;
}

/** What a node that is not serving (starting, or stopped) answers to every request: 503 APIGW.0613. */
function unavailable(stopped: boolean): RawError {
  return {
    status: 503, code: 'APIGW.0613', requestId: newRequestId(), headers: { 'retry-after': '1' },
    message: stopped ? 'This gateway node is shutting down; send the request again (another node answers it).' : 'This gateway node is starting; send the request again in a moment.',
  };
}

/** Reads the master key, or on first start of an embedded node generates `{data_dir}/master.key` (0600). */
/** Cluster message: users, domains, projects, roles or access keys changed on the sending node (clear the identity cache). */
const IDENTITY_CHANGED = 'identity.changed';

function resolveMasterKey(config: Readonly<Config>, log: Logger): Buffer {
  if (config.masterKey) return config.masterKey;
  const file = path.join(config.dataDir, 'master.key');
  if (existsSync(file)) {
    restrictFiles(file);
    const text = readFileSync(file, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`${file} is not a 64-hex-character key`);
    return Buffer.from(text, 'hex');
  }
  const key = randomBytes(32);
  writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  restrictFiles(file);
  log.warn({ file }, 'generated a new master key; back it up: stored secrets cannot be read without it');
  return key;
}

/**
 * Stored secrets sealed under a master key this node was not given (a database moved or restored
 * without its key, or a key generated beside an existing database) cannot be opened: say so at start,
 * with the key ids they need, instead of one failing console or AK/SK call at a time.
 */
async function reportUnopenableSecrets(store: Store, keyIds: ReadonlySet<string>, log: Logger): Promise<void> {
  const foreign: Record<string, number> = {};
  for (const v of await store.sealed.list()) {
    const id = SecretBox.keyIdOfSealed(v.sealed);
    if (id === undefined || id === LEGACY_KEY_ID || keyIds.has(id)) continue;
    foreign[id] = (foreign[id] ?? 0) + 1;
  }
  if (Object.keys(foreign).length === 0) return;
  log.error({ code: 'MASTER_KEY_MISMATCH', sealedUnder: foreign, keyIds: [...keyIds] },
    'MASTER_KEY_MISMATCH: stored secrets (VNC passwords, client keys, AK secret keys) are sealed under master key ids this node was not given; ' +
    'they cannot be opened until it runs with that key (master_key, or master_key_previous during a rotation)');
}

/** A log function for errors that repeat while something is down: the first, then at most one a minute. */
function throttledLog(log: Logger, msg: string): (err: Error) => void {
  let last = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < 60_000) return;
    last = now;
    log.warn({ err }, msg);
  };
}

/** How often a node writes the byte counts of its live sessions to the store (for `porthole session list` on any node). */
export const SESSION_PROGRESS_INTERVAL_MS = 15_000;

function recordSessionProgress(store: Store, upgrade: UpgradeHandler, log: Logger): NodeJS.Timeout {
  const t = setInterval(() => {
    for (const s of upgrade.live()) {
      const b = s.bytes();
      store.sessions.progress(s.id, { bytesToClient: b.toClient, bytesToBackend: b.toBackend }).catch((err: unknown) => log.debug({ err }, 'could not record session progress'));
    }
  }, SESSION_PROGRESS_INTERVAL_MS);
  t.unref();
  return t;
}

/** Runs the retention job (domain/retention.ts) every hour or so on this node; one run at a time. */
function startRetention(retention: RetentionService, log: Logger): NodeJS.Timeout {
  let running = false;
  const t = setInterval(() => {
    if (running) return;
    running = true;
    retention.runOnce()
      .then((r) => { if (r.iamTokens + r.consoleTokens + r.auditEvents + r.joinAttempts > 0) log.info(r, 'retention: deleted spent tokens and old audit events'); })
      .catch((err: unknown) => log.warn({ err }, 'retention run failed; the next one catches up'))
      .finally(() => { running = false; });
  }, RETENTION_INTERVAL_MS + Math.floor(Math.random() * RETENTION_INTERVAL_MS * 0.1));
  t.unref();
  return t;
}

/**
 * Remote assistance's per-node tick (domain/assistance.ts): expiry, and this node's helper sessions
 * brought in line with the store (mode, removal, closed spaces), which is how a change made on another
 * node reaches them even without a cluster bus.
 */
function startAssistanceTicks(assistance: AssistanceService, upgrade: UpgradeHandler, log: Logger): NodeJS.Timeout {
  const helpers = () => upgrade.live().filter((s) => s.purpose === 'assist-viewer' || s.purpose === 'assist-control');
  const local: LocalHelperSessions = {
    list: () => helpers().map((s) => ({ sessionId: s.id, viewOnly: s.viewOnly?.() ?? true })),
    setViewOnly: (id, on) => helpers().find((s) => s.id === id)?.setViewOnly(on),
    close: (id, code, reason) => { upgrade.closeSessions(code, reason, { sessionId: id }); },
  };
  let running = false;
  const t = setInterval(() => {
    if (running) return;
    running = true;
    assistance.tick(local).catch((err: unknown) => log.warn({ err }, 'remote assistance tick failed')).finally(() => { running = false; });
  }, ASSISTANCE_TICK_MS);
  t.unref();
  return t;
}

/**
 * The admin API's services. Changing or deleting a machine revokes its tokens (in the services) and,
 * with `console.end_sessions_on_change`, ends its live sessions here with 4007 `revoked`. On the
 * embedded demo the demo domain is an operator domain, so its administrator can try every command.
 */
function adminServices(o: {
  config: Readonly<Config>; store: Store; secrets: SecretBox; clock: Clock; upgrade: UpgradeHandler; consoles: ConsoleService; nodeId: string; log: Logger;
  operatorDomainNames: ReadonlySet<string>; backends: BackendNetworks; bus?: EventBus | null; assistance?: AssistanceService;
}): AdminServices {
  const local = new LocalSessionControl(o.upgrade, o.nodeId, (s) => o.consoles.mayKeep(s.token));
  // With several nodes, commands for a session reach the node relaying it over the cluster bus.
  let control: SessionControl = local;
  if (o.bus) {
    const cluster = new ClusterSessionControl(local, o.upgrade, o.bus, o.nodeId, { log: (obj, msg) => o.log.info(obj, msg) });
    cluster.start();
    control = cluster;
  }
  const resourcesChanged = async (ids: string[]) => {
    // A deleted desktop's share space closes (whatever the session policy): it must not outlive it,
    // nor be found by a desktop created later under the same name (the same derived id).
    for (const id of ids) {
      if (!o.assistance || (await o.store.inventory.getResourceById(id).catch(() => null)) !== undefined) continue;
      await o.assistance.desktopDeleted(id).catch((err: unknown) => o.log.warn({ err, resourceId: id }, 'could not close the share space of a deleted desktop'));
    }
    if (!o.config.console.endSessionsOnChange) return;
    for (const id of ids) {
      const n = await control.endResource(id, CloseCode.REVOKED, CloseReason.REVOKED);
      if (n > 0) o.log.info({ resourceId: id, sessions: n }, 'machine changed: its live consoles were ended');
    }
  };
  // A user deleted, disabled or demoted (admin API, fleet apply): their console links are revoked and
  // their live consoles, on every node, ended with 4007 `revoked` — whatever end_sessions_on_change says.
  const usersChanged = async (ids: readonly string[]) => {
    for (const id of new Set(ids)) {
      const links = await o.consoles.revokeUser(id);
      const n = await control.endUser(id, CloseCode.REVOKED, CloseReason.REVOKED);
      if (links + n > 0) o.log.info({ userId: id, links, sessions: n }, 'user deleted, disabled or demoted: their console links were revoked and live consoles ended');
    }
  };
  const access = new AdminAccess(o.store, [...o.operatorDomainNames]);
  return {
    access,
    directory: new DirectoryService(o.store, o.clock, access, usersChanged),
    inventory: new InventoryService(o.store, o.secrets, o.clock, access, resourcesChanged, o.backends),
    secrets: o.secrets,
    sessions: control,
    nodeId: o.nodeId,
    liveBytes: () => new Map(o.upgrade.live().map((s) => { const b = s.bytes(); return [s.id, { toClient: b.toClient, toBackend: b.toBackend }]; })),
    resourcesChanged,
    usersChanged,
    backends: o.backends,
  };
}

export async function startGateway(baseConfig: Readonly<Config>, opts: StartOptions = {}): Promise<Gateway> {
  const log = opts.logger ?? pino({ level: baseConfig.logLevel, serializers: logSerializers, redact: { paths: redactPaths, censor: '[redacted]' } }, opts.logDestination);
  const clock = opts.clock ?? systemClock;
  makePrivateDir(baseConfig.dataDir);

  // Listen first so a derived public URL carries the real port (port 0 in tests). Until the routes
  // are ready every request and upgrade is answered at once with 503 (a probe sent while the store
  // opens must not wait forever), and after `close` let go of the API likewise; requests Node's parser
  // refuses and CONNECT get the gateway's error body too (http-errors.ts). Host is checked here, with
  // that body, instead of by Node (which answers a bare 400).
  // A connection that sends no complete request head within headersTimeout gets a 408 and is closed
  // (Node checks every connectionsCheckingInterval), so silent or slow pre-request sockets are bounded.
  // An upgrade leaves the HTTP parser and these timers: proxy/upgrade.ts has its own deadline.
  const server = http.createServer({ requireHostHeader: false, connectionsCheckingInterval: 5_000 });
  const serving: { api: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | null; upgrade: UpgradeHandler | null; stopped: boolean } = { api: null, upgrade: null, stopped: false };
  const earlyClientErrors = clientErrorHandler(log);
  server.on('clientError', earlyClientErrors);
  server.on('request', (req, res) => {
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      writeErrorResponse(res, { status: 400, code: 'APIGW.0201', message: 'API request error: the Host header is missing.', requestId: newRequestId() });
    } else if (serving.api && !serving.stopped) serving.api(req, res);
    else writeErrorResponse(res, unavailable(serving.stopped));
  });
  server.on('upgrade', (req, socket, head) => {
    if (serving.upgrade && !serving.stopped) serving.upgrade.handle(req, socket, head);
    else rejectUpgrade(socket, 503, serving.stopped ? 'shutdown' : 'starting', unavailable(serving.stopped).message);
  });
  server.on('connect', (_req, socket) => {
    socket.on('error', () => socket.destroy());
    endSocketWith(socket, rawErrorResponse({ status: 405, code: 'APIGW.0101', message: 'The API does not exist or has not been published in the environment.', requestId: newRequestId(), headers: { Allow: 'GET, HEAD, POST, PUT, PATCH, DELETE' } }));
  });
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(baseConfig.port, baseConfig.host, () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as AddressInfo).port;
  const config = withListeningPort(baseConfig, port);
  opts.onListening?.(config.publicUrl);

  let store: Store | undefined;
  let demoDesktop: DemoDesktop | undefined;
  let redis: RedisConnection | null = null;
  let bus: EventBus | null = null;
  try {
    const masterKey = resolveMasterKey(config, log);
    // Key ids are fingerprints, so every node opens what any node sealed; previous keys stay readable
    // until `porthole key rotate` has re-sealed everything under the current one.
    const secrets = SecretBox.forMasterKeys(masterKey, config.masterKeyPrevious);
    const keyIds = new Set([keyIdOf(masterKey), ...config.masterKeyPrevious.map(keyIdOf)]);
    masterKey.fill(0);
    // Validated IAM tokens' principals, access keys and projects are reused for a few seconds; any
    // identity change through this node clears the cache here and, over the cluster bus, on every other node.
    const nodeId = config.nodeId ?? `${os.hostname()}-${process.pid}`;
    const identityCache = new IdentityCache(config.iamIdentityCacheSeconds * 1000);
    const announceIdentityChange = () => {
      identityCache.clear();
      bus?.publish({ type: IDENTITY_CHANGED, from: nodeId }).catch((err: unknown) => log.warn({ err }, 'could not tell the other nodes of an identity change; their cached principals expire on their own'));
    };
    store = watchIdentityChanges(
      await createStore(config, { onDatabaseError: (err) => log.warn({ err }, 'database connection error') }),
      announceIdentityChange,
    );
    await reportUnopenableSecrets(store, keyIds, log).catch((err: unknown) => log.warn({ err }, 'could not check the stored secrets\' key ids'));
    const audit = new AuditService(store, (err) => log.error({ err }, 'audit record failed'));
    const version = gatewayVersion();
    const metrics = new GatewayMetrics({ nodeId, version, store: store.dialect });
    // The admin services (operators, session control) are built last; the console and assistance services ask them when used.
    const late: { admin?: AdminServices } = {};
    const iam = new IamService(store, clock, { tokenTtlSeconds: config.iamTokenTtlSeconds, publicUrl: config.publicUrl }, identityCache);
    const consoles = new ConsoleService(store, secrets, clock, {
      publicUrl: config.publicUrl, tokenTtlSeconds: config.console.tokenTtlSeconds, lang: config.console.lang, defaultZone: config.console.defaultZone,
    }, metrics.tokenEvents, (p) => late.admin?.access.isOperator(p) ?? false);
    // Redis (optional): shared throttling counters, AK lockouts and the cross-node bus. Without it on
    // PostgreSQL the bus is LISTEN/NOTIFY; on SQLite (one node) there is none.
    const redisLog = throttledLog(log, 'redis unreachable; throttling counts per node and lockouts use the database until it answers');
    if (config.redisUrl) redis = await openRedis(config.redisUrl, { prefix: config.redisKeyPrefix, onError: redisLog, connectionName: `porthole/${nodeId}` });
    if (redis) bus = await RedisEventBus.open(redis, (why) => log.warn({ why }, 'ignored a malformed cluster message'));
    else if (store.dialect === 'postgres' && config.databaseUrl) {
      bus = await PostgresEventBus.open(config.databaseUrl, {
        applicationName: `porthole-events/${nodeId}`.slice(0, 63),
        onError: throttledLog(log, 'cluster event channel (PostgreSQL LISTEN) lost; reconnecting'),
        onReconnect: () => log.info('cluster event channel (PostgreSQL LISTEN) reconnected'),
      });
    }
    bus?.subscribe((msg) => { if (msg.type === IDENTITY_CHANGED && msg.from !== nodeId) identityCache.clear(); });
    const lockoutState = redis ? new RedisLockoutStore(redis, new StoreLockoutPort(store), redisLog) : undefined;
    const accessKeys = new AccessKeyService(store, secrets, clock, lockoutState, identityCache);
    const sessions = new SessionService(store, audit, clock, nodeId);
    // Where the others can reach this node (shown by GET /admin/v1/nodes): a wildcard listen address says nothing, the host name does.
    const address = `${config.host === '0.0.0.0' || config.host === '::' ? os.hostname() : config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    let draining = false;
    const relay: { upgrade?: UpgradeHandler } = {}; // set below, once the upgrade handler exists
    const membership = new NodeMembership(store, clock, {
      nodeId, address, version, heartbeatMs: config.cluster.heartbeatSeconds * 1000, nodeTimeoutMs: config.cluster.nodeTimeoutSeconds * 1000,
    }, {
      liveSessionIds: () => relay.upgrade?.live().map((x) => x.id) ?? [],
      draining: () => draining,
      afterHeartbeat: async () => {
        if (sessions.pendingEnds() === 0) return;
        const left = await sessions.retryPending().catch(() => sessions.pendingEnds());
        log.info({ pending: left }, 'recorded console session ends kept during a database outage');
      },
      log,
    });
    await membership.register();
    const recovered = await sessions.recover();
    if (recovered > 0) log.warn({ recovered }, 'closed console sessions left open by a previous run of this node');

    let demo: Gateway['demo'] = null;
    // Domains the gateway itself creates under these names are recorded as operator domains (by id:
    // domain/directory.ts); the embedded demo's domain is one.
    const demoFacts = config.demo ? loadOrCreateDemoFacts(config.dataDir, config.publicUrl) : null;
    const operatorDomainNames: ReadonlySet<string> = new Set([...config.operatorDomains, ...(demoFacts ? [demoFacts.domain] : [])]);
    // Where console endpoints may point, checked when they are set and when they are dialled.
    const backends = new BackendNetworks(config.backendAllowedNetworks);
    if (demoFacts) {
      const facts = demoFacts;
      demoDesktop = await startDemoDesktop({ host: '127.0.0.1', port: 0, name: 'Porthole demo desktop', password: facts.vnc_password });
      backends.allowEndpoint(demoDesktop.host, demoDesktop.port); // the gateway's own demo desktop, whatever the list says
      const existingUser = await store.identity.findUserByName(deriveDomainId(facts.domain), facts.user);
      await applyFleet(store, secrets, clock, demoFleet(facts, demoDesktop.host, demoDesktop.port, existingUser?.id), { operatorDomainNames, backends });
      // One AK/SK for the demo user, kept across restarts in demo.json and the store.
      const demoUser = await store.identity.findUserByName(deriveDomainId(facts.domain), facts.user);
      // The desktop names its user by IAM id: if the fleet had to pick another id than the derived one, say that one.
      if (demoUser && !existingUser && demoUser.id !== deriveUserId(facts.domain, facts.user)) {
        await applyFleet(store, secrets, clock, demoFleet(facts, demoDesktop.host, demoDesktop.port, demoUser.id));
      }
      if (demoUser) {
        const key = await accessKeys.ensureKey(demoUser.id, facts.ak, facts.sk, 'Porthole demo key');
        facts.ak = key.ak;
        facts.sk = key.sk;
      }
      writeDemoFacts(config.dataDir, facts);
      demo = { facts, desktop: demoDesktop };
    }
    const fleetUsersChanged: string[] = [];
    if (config.fleet) {
      const spec = parseFleet(readFileSync(config.fleet, 'utf8'), path.basename(config.fleet));
      const res = await applyFleet(store, secrets, clock, spec, { operatorDomainNames, backends });
      fleetUsersChanged.push(...res.plan.users);
      log.info({ fleet: config.fleet, created: res.created, updated: res.updated, unchanged: res.unchanged, revokedResources: res.revokedResources.length }, 'fleet applied');
    }
    // Domains from before operator flags were recorded get theirs once, by the name they hold now.
    const adopted = await store.identity.adoptOperatorDomains([...operatorDomainNames]);
    if (adopted.length > 0) log.warn({ domains: adopted }, 'recorded existing domains named in admin.operator_domains as operator domains (first start with recorded operator domains)');

    const web = loadWebAssets();
    // Remote assistance needs the session control, built after the upgrade handler that needs it: resolved when used.
    const assistance = new AssistanceService({
      store, secrets, clock, audit, consoles, control: () => late.admin?.sessions ?? NO_SESSIONS, log: (obj, msg) => log.info(obj, msg),
    }, {
      ttlSeconds: config.assistance.ttlSeconds, privateShareUrl: config.assistance.privateShareUrl ?? config.publicUrl,
      internetShareUrl: config.assistance.internetShareUrl ?? config.publicUrl, maxJoinFailures: config.assistance.joinMaxFailures,
      lockoutSeconds: config.assistance.joinLockoutSeconds, maxSessionSeconds: config.console.maxSessionSeconds,
    });
    const rateLimits = redis ? new RedisRateLimitStore(redis, new MemoryRateLimitStore(), redisLog) : new MemoryRateLimitStore();
    // Console upgrades share the API's per-address budget: both are reachable without credentials.
    const addressThrottle = new AddressThrottle(rateLimits, clock, config.rateLimit);
    const addressAllowed = (address: string) => addressThrottle.check(address).then(() => true, (err: unknown) => {
      if (err instanceof ApiError && err.kind === 'rate_limited') return false;
      throw err;
    });
    const upgrade = createUpgradeHandler({ config, consoles, sessions, log, metrics, assistance, addressAllowed, backends });
    relay.upgrade = upgrade;
    metrics.trackLive(() => upgrade.live());
    const admin = adminServices({ config, store, secrets, clock, upgrade, consoles, nodeId, log, operatorDomainNames, backends, bus, assistance });
    late.admin = admin;
    // Users the start-up fleet deleted, disabled or demoted may hold links and consoles on other nodes.
    if (fleetUsersChanged.length > 0) await admin.usersChanged(fleetUsersChanged);
    let apiHandler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | null = null;
    const app = await buildApi({ config, store, iam, consoles, audit, web, accessKeys, rateLimits, clock, admin, assistance }, {
      logger: log,
      metrics,
      health: { nodeId, version, draining: () => draining },
      serverFactory: (handler) => { apiHandler = handler; return server; },
    });
    // Fastify has put its own 'clientError' listener (the same responder) on the server.
    server.off('clientError', earlyClientErrors);
    await app.ready();
    // Only now: before `ready` Fastify's routes are not all there.
    serving.api = apiHandler;
    serving.upgrade = upgrade;
    log.info({ url: config.publicUrl, address, nodeId, store: store.dialect, redis: redis !== null, bus: bus?.kind ?? null }, 'porthole listening');
    membership.start();
    const prober = new Prober(store, clock, log, {
      intervalMs: config.probe.intervalSeconds * 1000, timeoutMs: config.probe.timeoutMs, concurrency: config.probe.concurrency, nodeId,
      dial: (o) => backends.connect(o),
      credentialOf: (r) => consoles.credentialOf(r),
    }, metrics.proberHooks);
    prober.start();
    const progress = recordSessionProgress(store, upgrade, log);
    const assistTicks = startAssistanceTicks(assistance, upgrade, log);
    const retention = new RetentionService(store, clock, { auditRetentionDays: config.auditRetentionDays });
    const retentionTimer = startRetention(retention, log);

    const finalStore = store;
    const finalBus = bus;
    const finalRedis = redis;
    let closing: Promise<void> | undefined;
    const drain = () => {
      if (!draining) log.info({ live: upgrade.live().length }, 'draining: /readyz, new consoles and API calls answer 503; live consoles go on');
      draining = true;
      upgrade.stopAccepting();
      void membership.tick(); // tell the other nodes now, not at the next heartbeat
    };
    return {
      config, url: config.publicUrl, app, store, upgrade, consoles, iam, accessKeys, secrets, demo, log, metrics, prober, admin, assistance, audit, retention,
      cluster: { nodeId, membership, bus, redis, sessions },
      drain,
      close(graceMs = 0) {
        closing ??= (async () => {
          // Keep listening through the grace period: new connections get 503s (readiness, API,
          // upgrades) instead of connection refused, and live consoles run on.
          drain();
          clearInterval(progress);
          clearInterval(assistTicks);
          clearInterval(retentionTimer);
          await prober.stop();
          if (graceMs > 0 && upgrade.live().length > 0) {
            log.info({ live: upgrade.live().length, graceMs }, 'waiting for live consoles to end');
            await upgrade.drained(graceMs);
          }
          const ended = upgrade.closeSessions(CloseCode.SHUTDOWN, CloseReason.SHUTDOWN);
          if (ended > 0) log.info({ sessions: ended }, 'closed the remaining consoles (4010 shutdown)');
          await upgrade.drained(2000);
          server.close();
          await membership.stop();
          // Session ends a database outage kept back: one last try. What still fails is closed by a
          // surviving node's reaper once this node's row is gone or stale.
          await sessions.retryPending().catch((err: unknown) => log.warn({ err, pending: sessions.pendingEnds() }, 'could not record every session end'));
          await membership.deregister().catch((err: unknown) => log.warn({ err }, 'could not remove this node from the nodes table'));
          serving.stopped = true; // requests still arriving on open connections: 503, not Fastify's own closing answer
          await app.close();
          server.closeAllConnections();
          await finalBus?.close().catch(() => undefined);
          await finalRedis?.close().catch(() => undefined);
          await demoDesktop?.close();
          await audit.flush();
          await finalStore.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    server.close();
    await bus?.close().catch(() => undefined);
    await redis?.close().catch(() => undefined);
    await demoDesktop?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    throw err;
  }
}
