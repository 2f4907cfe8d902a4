/**
 * The WebSocket upgrade handler for `/vnc/{zone}/websockify?token=T`, attached to the HTTP server's
 * 'upgrade' event before Fastify sees the request. Every check happens before the 101 (ws
 * `abortHandshake` pattern): path → WebSocket request shape → Origin (CSWSH, CVE-2015-0259; a foreign
 * Origin must not burn the token) → one-time token redemption. A refusal is a real HTTP 4xx with a
 * JSON reason and `Connection: close`, after which the socket is closed; only then does the relay
 * start. The whole phase before the 101 has a deadline (`console.upgrade_timeout_ms`): a socket still
 * waiting there (a stalled store, a client that never reads its refusal) is destroyed.
 */
import type { NetConnectOpts } from 'node:net';
import type { BackendNetworks } from './backend-networks.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { ConsoleService } from '../domain/consoles.js';
import type { SessionService } from '../domain/sessions.js';
import { CloseCode, CloseReason } from '../close-codes.js';
import { redactUrl } from '../observability/redact.js';
import type { RelayMetricsHook } from '../observability/metrics.js';
import { isStoreUnavailable } from '../store/errors.js';
import { runConsoleSession, type SessionEnd } from './console-session.js';
import type { ConsoleGrant } from '../domain/consoles.js';
import type { ConsoleSessionRecord, ConsoleTokenRecord, TokenPurpose } from '../store/types.js';
import { PAGE_PROTOCOL_PREFIX, pageKeyFromProtocols } from '../domain/assist-page-key.js';
import { newRequestId } from '../http-errors.js';

const PATH_RE = /^\/vnc\/([A-Za-z0-9._-]{1,64})\/(?:websockify)?$/;
const WS_KEY_RE = /^[+/0-9A-Za-z]{22}==$/;

export interface UpgradeDeps {
  config: Readonly<Config>;
  consoles: ConsoleService;
  sessions: SessionService;
  log: Logger;
  /** Refusals and session starts/ends, for /metrics. */
  metrics?: RelayMetricsHook;
  /** Remote assistance (domain/assistance.ts): admits helpers, binds console pages, notes helpers leaving. */
  assistance?: UpgradeHooks;
  /** Counts an upgrade against its source address's budget (the API's per-address throttle); false: over it. */
  addressAllowed?: (address: string) => Promise<boolean>;
  /** backends.allowed_networks: every backend dial goes through it (proxy/backend-networks.ts). */
  backends?: BackendNetworks;
}

/**
 * Hooks around a console session. The page key is the one the page offered as the subprotocol
 * `porthole-page.<key>` (domain/assist-page-key.ts), or null.
 */
export interface UpgradeHooks {
  /** After the token is redeemed, before the session is recorded: a refusal ends the upgrade with it. */
  admit(grant: ConsoleGrant): Promise<{ status: number; reason: string; message: string } | null>;
  /** The session is recorded; runs before the 101. */
  started(grant: ConsoleGrant, session: ConsoleSessionRecord, pageKey: string | null): Promise<void>;
  /** The session ended (must not throw; errors are logged). */
  ended(grant: ConsoleGrant, session: ConsoleSessionRecord, end: SessionEnd): Promise<void>;
}

export interface LiveSession {
  id: string;
  resourceId: string;
  /** The redeemed console token (its user, project, purpose). */
  token: ConsoleTokenRecord;
  /** The user on whose authority the session runs (ConsoleGrant.holderUserId). */
  holderUserId: string | null;
  close(code: number, reason: string): void;
  /** Switches the live session between view-only and full control (console-session.ts). */
  setViewOnly(on: boolean): void;
  /** What the console token was minted for (assist-viewer: a remote-assistance helper). */
  purpose?: TokenPurpose;
  /** Whether the session is view-only right now. */
  viewOnly?(): boolean;
  /** Bytes relayed so far each way (metrics read it at scrape time). */
  bytes(): { toClient: number; toBackend: number };
}

export interface UpgradeHandler {
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Live sessions on this node. */
  live(): readonly LiveSession[];
  /** Ends live sessions (all, or one resource's) with a close code the page explains. */
  closeSessions(code: number, reason: string, filter?: { resourceId?: string; sessionId?: string }): number;
  /** Resolves when every session has ended (after closeSessions), or after `ms`. */
  drained(ms: number): Promise<void>;
  /** Draining: every new upgrade is refused with 503 `shutdown` (before its token is redeemed); live sessions go on. */
  stopAccepting(): void;
}

/**
 * A refused upgrade: the gateway's error body (`request_id`, as every response) plus the `reason` the
 * console page explains; `X-Request-Id`; a 503 says when to retry.
 */
export function reject(socket: Duplex, status: number, reason: string, message: string): void {
  if (socket.destroyed) return;
  const requestId = newRequestId();
  const body = JSON.stringify({ error_code: `PH.WS.${status}`, error_msg: message, reason, request_id: requestId });
  const text = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 410: 'Gone', 409: 'Conflict', 429: 'Too Many Requests', 503: 'Service Unavailable' }[status] ?? 'Error';
  // The HTTP server allows half-open sockets, so `end()` alone would keep the socket (and its
  // descriptor) for as long as the client keeps its side open: destroy it once the reply is flushed.
  // A client that never reads the reply is cut by the upgrade deadline, which stays armed until 'close'.
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n` +
    `X-Request-Id: ${requestId}\r\n${status === 503 || status === 429 ? `Retry-After: ${reason === 'store_unavailable' ? 5 : 1}\r\n` : ''}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    destroyAfterFlush.bind(socket),
  );
}

function destroyAfterFlush(this: Duplex): void {
  this.destroy();
}

/**
 * The deadline of each upgrade still before its 101 (`console.upgrade_timeout_ms`). Keyed by socket
 * and cleared by module-level listeners, so no closure keeps the upgrade request alive.
 */
const upgradeDeadlines = new WeakMap<Duplex, NodeJS.Timeout>();

function clearUpgradeDeadline(this: Duplex): void {
  clearTimeout(upgradeDeadlines.get(this));
  upgradeDeadlines.delete(this);
}

/** The browser's address: the left-most X-Forwarded-For entry behind a trusted proxy (as Fastify's req.ip), else the peer. */
function clientAddress(req: IncomingMessage, trustProxy: boolean): string | null {
  const xff = req.headers['x-forwarded-for'];
  if (trustProxy && typeof xff === 'string') {
    const first = xff.split(',')[0]?.trim();
    if (first) return first.slice(0, 64);
  }
  return req.socket.remoteAddress ?? null;
}

const BUSY_MESSAGE = 'This console allows one session at a time and another one is open. Try again when it has ended.';

function destroySocket(this: Duplex): void {
  this.destroy();
}

export function createUpgradeHandler(deps: UpgradeDeps): UpgradeHandler {
  const { config, consoles, sessions, log, metrics } = deps;
  const refuse = (socket: Duplex, status: number, reason: string, message: string): void => {
    metrics?.upgradeRefused(reason);
    reject(socket, status, reason, message);
  };
  /** Past the deadline before any 101 (a stalled store, a client that never reads its refusal): the socket goes. */
  const upgradeTimedOut = (socket: Duplex): void => {
    upgradeDeadlines.delete(socket);
    if (socket.destroyed) return;
    metrics?.upgradeRefused('upgrade_timeout');
    log.info({ timeoutMs: config.console.upgradeTimeoutMs }, 'console upgrade closed: no 101 or refusal within the upgrade deadline');
    socket.destroy();
  };
  const publicOrigin = new URL(config.publicUrl).origin;
  // The share links' origins too: a helper who joined through one opens the console there.
  const shareOrigins = [config.assistance.privateShareUrl, config.assistance.internetShareUrl].flatMap((u) => (u ? [new URL(u).origin] : []));
  const allowedOrigins = new Set([publicOrigin, ...config.allowedOrigins, ...shareOrigins]);
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 4 * 1024 * 1024,
    clientTracking: false,
    // Answer `binary` only when offered; never a protocol the page did not ask for (Chromium drops it).
    // A console page's own key (`porthole-page.<key>`) is echoed: the page offered it and expects it back.
    handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : ([...protocols].find((p) => p.startsWith(PAGE_PROTOCOL_PREFIX)) ?? false)),
  });
  const live = new Map<string, LiveSession>();
  /** Exclusive machines whose upgrade is between its check and its session record (this node). */
  const exclusiveStarting = new Set<string>();
  const waiters = new Set<() => void>();
  let accepting = true;

  function sessionEnded(id: string) {
    live.delete(id);
    if (live.size === 0) for (const w of waiters) w();
  }

  async function handleAsync(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    const m = PATH_RE.exec(url.pathname);
    if (!m) return refuse(socket, 404, 'not_found', 'No console WebSocket at this path.');
    const zone = m[1]!;
    if (req.method !== 'GET' || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket' ||
      !WS_KEY_RE.test(String(req.headers['sec-websocket-key'] ?? '')) || req.headers['sec-websocket-version'] !== '13') {
      return refuse(socket, 400, 'bad_request', 'Not a valid WebSocket upgrade request.');
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin)) {
      log.warn({ origin, url: redactUrl(req.url) }, 'console upgrade refused: foreign origin');
      return refuse(socket, 403, 'origin_forbidden', 'This origin may not open consoles on this gateway.');
    }
    if (!accepting) return refuse(socket, 503, 'shutdown', 'The gateway is shutting down.');
    // Before any store work: an unauthenticated client's token look-ups are bounded per address.
    const address = clientAddress(req, config.trustProxy);
    if (deps.addressAllowed && address !== null && !(await deps.addressAllowed(address))) {
      return refuse(socket, 429, 'rate_limited', 'Too many requests from this address; try again in a few seconds.');
    }
    const token = url.searchParams.get('token');
    if (!token) return refuse(socket, 400, 'token_invalid', 'The console link has no token.');

    // Exclusive endpoints (domain/endpoint-options.ts): refused before the token is consumed, so the
    // same link works once the other session has ended.
    const peek = await consoles.peek(token, zone);
    const exclusiveId = peek.state === 'valid' && peek.resource?.endpoint?.options?.sessionMode === 'exclusive' ? peek.resource.id : undefined;
    if (exclusiveId !== undefined) {
      if (exclusiveStarting.has(exclusiveId) || (await sessions.openOn(exclusiveId)).length > 0) {
        log.info({ resourceId: exclusiveId }, 'console upgrade refused: exclusive console in use');
        return refuse(socket, 409, 'console_busy', BUSY_MESSAGE);
      }
      exclusiveStarting.add(exclusiveId);
    }
    try {
      await redeemAndRelay(req, socket, head, token, zone, exclusiveId);
    } finally {
      if (exclusiveId !== undefined) exclusiveStarting.delete(exclusiveId);
    }
  }

  async function redeemAndRelay(req: IncomingMessage, socket: Duplex, head: Buffer, token: string, zone: string, exclusiveId: string | undefined): Promise<void> {
    const result = await consoles.redeem(token, zone);
    if (!result.ok) {
      const status = result.state === 'expired' || result.state === 'used' ? 410 : 403;
      log.info({ state: result.state, zone }, 'console upgrade refused: token not usable');
      return refuse(socket, status, `token_${result.state}`, `The console link is ${result.state}.`);
    }
    const grant = result.grant;
    try {
      await startAndRelay(req, socket, head, grant, exclusiveId);
    } catch (err) {
      // The database went away between the token's redemption and the 101: the client is told to try
      // again (503 store_unavailable), so the token is given back.
      if (isStoreUnavailable(err)) await consoles.release(grant.token);
      throw err;
    }
  }

  async function startAndRelay(req: IncomingMessage, socket: Duplex, head: Buffer, grant: ConsoleGrant, exclusiveId: string | undefined): Promise<void> {
    if (socket.destroyed) return;
    const hooks = deps.assistance;
    const admitted = hooks ? await hooks.admit(grant) : null;
    if (admitted) {
      log.info({ reason: admitted.reason, zone: grant.token.zone }, 'console upgrade refused by remote assistance');
      return refuse(socket, admitted.status, admitted.reason, admitted.message);
    }
    const sourceIp = clientAddress(req, config.trustProxy);
    const record = await sessions.start(grant, sourceIp, String(req.headers['user-agent'] ?? '').slice(0, 256) || null);
    const slog = log.child({ sessionId: record.id, resourceId: grant.resource.id });
    try {
      if (exclusiveId !== undefined || grant.policy.sessionMode === 'exclusive') {
        // Another node may have started one at the same moment: the earlier session wins.
        const open = await sessions.openOn(grant.resource.id);
        const earlier = open.some((s) => s.id !== record.id && (s.startedAt < record.startedAt || (s.startedAt === record.startedAt && s.id < record.id)));
        if (earlier) {
          slog.info({}, 'console upgrade refused: exclusive console taken by a concurrent session');
          await sessions.end(record, { bytesToClient: 0, bytesToBackend: 0, closeCode: 409, closeReason: 'console_busy' }).catch(() => undefined);
          return refuse(socket, 409, 'console_busy', BUSY_MESSAGE);
        }
      }
      if (socket.destroyed) {
        await sessions.end(record, { bytesToClient: 0, bytesToBackend: 0, closeCode: 1006, closeReason: 'client_closed' }).catch(() => undefined);
        return;
      }
      await hooks?.started(grant, record, pageKeyFromProtocols(req.headers['sec-websocket-protocol']));
    } catch (err) {
      // No 101 went out: the session row is closed (on a database outage the caller gives the token back).
      await sessions.end(record, { bytesToClient: 0, bytesToBackend: 0, closeCode: 1011, closeReason: isStoreUnavailable(err) ? 'store_unavailable' : 'internal_error' }).catch(() => undefined);
      throw err;
    }
    if (socket.destroyed) {
      // Gone while the session was being set up (the client, or the upgrade deadline): no 101, and
      // `handleUpgrade` would drop a closed socket without a word, so the session is ended here.
      const end: SessionEnd = { code: 1006, reason: 'client_closed', bytesToClient: 0, bytesToBackend: 0 };
      await sessions.end(record, { bytesToClient: 0, bytesToBackend: 0, closeCode: end.code, closeReason: end.reason }).catch(() => undefined);
      await hooks?.ended(grant, record, end).catch((err: unknown) => slog.warn({ err }, 'could not record the end of a remote-assistance session'));
      return;
    }
    // The 101 goes out now; from here the relay's own timeouts (handshake, idle, duration) apply.
    clearUpgradeDeadline.call(socket);

    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      slog.info({ backend: `${grant.target.host}:${grant.target.port}`, sourceIp }, 'console session started');
      const handle = runConsoleSession(ws, grant.target, {
        connectTimeoutMs: config.console.connectTimeoutMs,
        handshakeTimeoutMs: config.console.handshakeTimeoutMs,
        idleTimeoutMs: config.console.idleTimeoutSeconds * 1000,
        maxDurationMs: config.console.maxSessionSeconds * 1000,
        maxBufferedBytes: config.console.maxBufferedBytes,
        viewOnly: grant.token.viewOnly,
        forceShared: true,
        clipboard: grant.policy.clipboard,
        ...(deps.backends ? { dial: (o: NetConnectOpts & { host: string; port: number }) => deps.backends!.connect(o) } : {}),
      }, {
        onEnd(end: SessionEnd) {
          sessionEnded(record.id);
          metrics?.sessionEnded({ reason: end.reason, bytesToClient: end.bytesToClient, bytesToBackend: end.bytesToBackend });
          slog.info({ code: end.code, reason: end.reason, detail: end.detail, bytesToClient: end.bytesToClient, bytesToBackend: end.bytesToBackend }, 'console session ended');
          sessions.end(record, { bytesToClient: end.bytesToClient, bytesToBackend: end.bytesToBackend, closeCode: end.code, closeReason: end.reason })
            .catch((err: unknown) => slog.warn({ err }, 'could not record session end; it is kept and written when the database answers again'));
          hooks?.ended(grant, record, end).catch((err: unknown) => slog.warn({ err }, 'could not record the end of a remote-assistance session'));
        },
        log: (obj: object, msg: string) => slog.debug(obj, msg),
      });
      live.set(record.id, {
        id: record.id, resourceId: grant.resource.id, token: grant.token, holderUserId: grant.holderUserId, close: handle.close, setViewOnly: handle.setViewOnly,
        purpose: grant.token.purpose, viewOnly: () => handle.viewOnly,
        bytes: () => ({ toClient: handle.bytesToClient, toBackend: handle.bytesToBackend }),
      });
      metrics?.sessionStarted();
    });
  }

  return {
    handle(req, socket, head) {
      // A module-level listener: a closure here would share this scope's context with the one below,
      // and the socket would keep the whole upgrade request (headers and all) alive for the session.
      socket.on('error', destroySocket);
      upgradeDeadlines.set(socket, setTimeout(upgradeTimedOut, config.console.upgradeTimeoutMs, socket));
      socket.once('close', clearUpgradeDeadline);
      handleAsync(req, socket, head).catch((err: unknown) => {
        if (isStoreUnavailable(err)) {
          log.warn({ err, url: redactUrl(req.url) }, 'console upgrade refused: database unreachable');
          refuse(socket, 503, 'store_unavailable', 'The gateway cannot reach its database right now; try again in a few seconds.');
          return;
        }
        log.error({ err, url: redactUrl(req.url) }, 'console upgrade failed');
        refuse(socket, 503, 'internal_error', 'The gateway could not open the console.');
      });
    },
    live: () => [...live.values()],
    closeSessions(code, reason, filter = {}) {
      if (code === CloseCode.SHUTDOWN) accepting = false;
      let n = 0;
      for (const s of [...live.values()]) {
        if (filter.resourceId && s.resourceId !== filter.resourceId) continue;
        if (filter.sessionId && s.id !== filter.sessionId) continue;
        s.close(code, reason);
        n++;
      }
      return n;
    },
    stopAccepting() {
      accepting = false;
    },
    drained(ms) {
      if (live.size === 0) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => { clearTimeout(t); waiters.delete(done); resolve(); };
        const t = setTimeout(done, ms);
        waiters.add(done);
      });
    },
  };
}

export { CloseCode, CloseReason };
