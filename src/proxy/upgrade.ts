/**
 * The WebSocket upgrade handler for `/vnc/{zone}/websockify?token=T`, attached to the HTTP server's
 * 'upgrade' event before Fastify sees the request. Every check happens before the 101 (ws
 * `abortHandshake` pattern): path → WebSocket request shape → Origin (CSWSH, CVE-2015-0259; a foreign
 * Origin must not burn the token) → one-time token redemption. A refusal is a real HTTP 4xx with a
 * JSON reason and `Connection: close`; only then does the relay start.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { ConsoleService } from '../domain/consoles.js';
import type { SessionService } from '../domain/sessions.js';
import { CloseCode, CloseReason } from '../close-codes.js';
import { redactUrl } from '../observability/redact.js';
import { runConsoleSession, type SessionEnd } from './console-session.js';

const PATH_RE = /^\/vnc\/([A-Za-z0-9._-]{1,64})\/(?:websockify)?$/;
const WS_KEY_RE = /^[+/0-9A-Za-z]{22}==$/;

export interface UpgradeDeps {
  config: Readonly<Config>;
  consoles: ConsoleService;
  sessions: SessionService;
  log: Logger;
}

interface LiveSession { id: string; resourceId: string; close(code: number, reason: string): void }

export interface UpgradeHandler {
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Live sessions on this node. */
  live(): readonly LiveSession[];
  /** Ends live sessions (all, or one resource's) with a close code the page explains. */
  closeSessions(code: number, reason: string, filter?: { resourceId?: string; sessionId?: string }): number;
  /** Resolves when every session has ended (after closeSessions), or after `ms`. */
  drained(ms: number): Promise<void>;
}

function reject(socket: Duplex, status: number, reason: string, message: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error_code: `PH.WS.${status}`, error_msg: message, reason });
  const text = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 410: 'Gone', 409: 'Conflict', 503: 'Service Unavailable' }[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export function createUpgradeHandler(deps: UpgradeDeps): UpgradeHandler {
  const { config, consoles, sessions, log } = deps;
  const publicOrigin = new URL(config.publicUrl).origin;
  const allowedOrigins = new Set([publicOrigin, ...config.allowedOrigins]);
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 4 * 1024 * 1024,
    clientTracking: false,
    // Answer `binary` only when offered; never a protocol the page did not ask for (Chromium drops it).
    handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
  });
  const live = new Map<string, LiveSession>();
  const waiters = new Set<() => void>();
  let accepting = true;

  function sessionEnded(id: string) {
    live.delete(id);
    if (live.size === 0) for (const w of waiters) w();
  }

  async function handleAsync(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    const m = PATH_RE.exec(url.pathname);
    if (!m) return reject(socket, 404, 'not_found', 'No console WebSocket at this path.');
    const zone = m[1]!;
    if (req.method !== 'GET' || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket' ||
      !WS_KEY_RE.test(String(req.headers['sec-websocket-key'] ?? '')) || req.headers['sec-websocket-version'] !== '13') {
      return reject(socket, 400, 'bad_request', 'Not a valid WebSocket upgrade request.');
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin)) {
      log.warn({ origin, url: redactUrl(req.url) }, 'console upgrade refused: foreign origin');
      return reject(socket, 403, 'origin_forbidden', 'This origin may not open consoles on this gateway.');
    }
    if (!accepting) return reject(socket, 503, 'shutdown', 'The gateway is shutting down.');
    const token = url.searchParams.get('token');
    if (!token) return reject(socket, 400, 'token_invalid', 'The console link has no token.');

    const result = await consoles.redeem(token, zone);
    if (!result.ok) {
      const status = result.state === 'expired' || result.state === 'used' ? 410 : 403;
      log.info({ state: result.state, zone }, 'console upgrade refused: token not usable');
      return reject(socket, status, `token_${result.state}`, `The console link is ${result.state}.`);
    }
    if (socket.destroyed) return;
    const grant = result.grant;
    const sourceIp = req.socket.remoteAddress ?? null;
    const record = await sessions.start(grant, sourceIp, String(req.headers['user-agent'] ?? '').slice(0, 256) || null);
    const slog = log.child({ sessionId: record.id, resourceId: grant.resource.id });

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
      }, {
        onEnd(end: SessionEnd) {
          sessionEnded(record.id);
          slog.info({ code: end.code, reason: end.reason, detail: end.detail, bytesToClient: end.bytesToClient, bytesToBackend: end.bytesToBackend }, 'console session ended');
          sessions.end(record, { bytesToClient: end.bytesToClient, bytesToBackend: end.bytesToBackend, closeCode: end.code, closeReason: end.reason })
            .catch((err: unknown) => slog.error({ err }, 'could not record session end'));
        },
        log: (obj: object, msg: string) => slog.debug(obj, msg),
      });
      live.set(record.id, { id: record.id, resourceId: grant.resource.id, close: handle.close });
    });
  }

  return {
    handle(req, socket, head) {
      socket.on('error', () => socket.destroy());
      handleAsync(req, socket, head).catch((err: unknown) => {
        log.error({ err, url: redactUrl(req.url) }, 'console upgrade failed');
        reject(socket, 503, 'internal_error', 'The gateway could not open the console.');
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
