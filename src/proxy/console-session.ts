/**
 * One console session: the browser's WebSocket on one side, the machine's VNC server (TCP) on the
 * other, with Porthole terminating RFB security in between so the browser never holds the VNC secret.
 *
 *   browser ◄─ RFB 3.8, security None (ServerHandshake) ─► Porthole ◄─ ClientHandshake (None/VncAuth) ─► VNC server
 *
 * Flow: the greeting goes to the browser at once while the backend is dialled (connect timeout);
 * once the browser's ClientInit is in (its shared flag, forced to 1 for shared/view-only sessions),
 * the backend handshake runs on bytes buffered meanwhile (None, VncAuth, or VeNCrypt X509None/X509Vnc,
 * where the TCP socket is wrapped in TLS verified against the endpoint's CA); the backend's ServerInit
 * is forwarded verbatim, then bytes are relayed both ways. Every browser message is framed by a
 * ClientStreamFilter (view-only, switchable live with `setViewOnly`; clipboard policy; SetEncodings
 * rewriting); the server's stream is framed only when the clipboard policy must see ServerCutText.
 *
 * Lifecycle (guarded; bad transitions throw): connecting → handshaking → relaying → closing → closed.
 * Every path into `closing` picks one close code + reason from close-codes.ts (the first cause wins),
 * `detail` goes to the log and SessionEnd only, and `onEnd` runs exactly once when both sides are
 * closed (or the close timeout destroyed them). A session that ends before its backend login started
 * still logs in (shared) and then closes, since TigerVNC counts an unauthenticated connection as a
 * failed login (see `loginThenClose`).
 *
 * Backpressure (STYLE §4): socket.write() → false pauses reading the WebSocket until 'drain';
 * bytes handed to ws.send() but not yet written to the browser's socket pause the backend socket
 * above a high-water mark and resume it below a low-water mark. Above `maxBufferedBytes` in either
 * direction, or when a pause lasts `writeStallTimeoutMs`, the session ends as SLOW_CONSUMER.
 *
 * Tail delivery: backend data events all precede its 'end', each chunk is queued on the WebSocket
 * in order, and the close frame is queued after them, so nothing the machine sent before closing
 * is lost.
 */
import { connect, type NetConnectOpts, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { RawData, WebSocket } from 'ws';
import { CloseCode, CloseReason, type CloseCodeName } from '../close-codes.js';
import {
  ClientHandshake,
  type BackendCredential,
  type ClientHandshakeResult,
  type StartTlsRequest,
} from '../rfb/client-handshake.js';
import { SecurityType } from '../rfb/constants.js';
import { RfbError } from '../rfb/errors.js';
import { ServerHandshake, type ServerHandshakeResult } from '../rfb/server-handshake.js';
import { ClientStreamFilter, clipboardFromMachine, needsServerFraming, type ClipboardPolicy } from '../rfb/client-filter.js';
import type { PixelFormat } from '../rfb/messages.js';
import { ServerStreamFilter, isFramableEncoding } from '../rfb/server-filter.js';
import { backendTlsRefusal, establishedTlsRefusal, startBackendTls } from './backend-tls.js';
import { copyRead, sharedReadBuffer } from './read-buffers.js';

export interface BackendTarget {
  host: string;
  port: number;
  credential: BackendCredential;
}

export interface SessionOptions {
  /** TCP connect to the VNC server (DNS included). */
  connectTimeoutMs: number;
  /** From session start until relaying: browser handshake and backend handshake together. */
  handshakeTimeoutMs: number;
  /** No bytes in either direction for this long ends a relaying session. */
  idleTimeoutMs: number;
  /** Hard cap on a session's length. */
  maxDurationMs: number;
  /** Ceiling on bytes buffered in userland in one direction; above it the session ends (SLOW_CONSUMER). */
  maxBufferedBytes: number;
  /** Send shared-flag 1 to the server whatever the browser asked (never kick other viewers). */
  forceShared?: boolean;
  /** Drop input and strip risky encodings from the browser's stream (implies forceShared). Switchable live with setViewOnly. */
  viewOnly?: boolean;
  /** Clipboard direction and size cap (default both ways, Limits.MAX_CLIENT_CUT_TEXT_BYTES). */
  clipboard?: ClipboardPolicy;
  /** A direction paused by backpressure for this long ends the session (SLOW_CONSUMER). Default 30 s. */
  writeStallTimeoutMs?: number;
  /** After the close decision, how long both sides get to finish before being destroyed. Default 10 s. */
  closeTimeoutMs?: number;
  /** Opens the backend TCP connection (default net.connect); the gateway's refuses backends outside backends.allowed_networks. */
  dial?: (opts: NetConnectOpts & { host: string; port: number }) => Socket;
}

export interface SessionEnd {
  /** The WebSocket close code sent (or, for `client_closed`, the code the browser sent). */
  code: number;
  /** A CloseReason value, or `client_closed` when the browser ended the session. */
  reason: string;
  /** For logs only: what actually happened. Never sent to the browser. */
  detail?: string;
  /** RFB bytes sent to the browser (handshake included). */
  bytesToClient: number;
  /** RFB bytes sent to the VNC server (handshake included). */
  bytesToBackend: number;
}

export interface SessionHooks {
  /** The backend handshake finished and bytes now flow both ways. */
  onRelaying?(): void;
  /** Called exactly once, when the session is fully closed. */
  onEnd(end: SessionEnd): void;
  log?: (obj: object, msg: string) => void;
}

export type SessionState = 'connecting' | 'handshaking' | 'relaying' | 'closing' | 'closed';

export interface SessionHandle {
  /** Kill from outside (admin kill, revoke, shutdown): closes the browser with this code/reason. */
  close(code: number, reason: string): void;
  /**
   * Switches a live session between view-only and full control without reconnecting. Applied at a
   * message boundary of the browser's stream; the server is sent a SetEncodings matching the new
   * mode when needed. Note the shared flag was fixed at ClientInit (forced to 1 only when the
   * session started view-only or forceShared). No-op once the session is closing.
   */
  setViewOnly(on: boolean): void;
  readonly viewOnly: boolean;
  readonly state: SessionState;
  /** RFB bytes relayed so far each way (handshakes included), for live metrics. */
  readonly bytesToClient: number;
  readonly bytesToBackend: number;
}

/** Reason key for a session the browser ended (close-codes.ts has none: nothing is sent for it). */
export const CLIENT_CLOSED_REASON = 'client_closed';

/** Backend bytes held while the browser has not finished its handshake (a server sends 12). */
export const MAX_EARLY_BACKEND_BYTES = 64 * 1024;
/** Bytes queued toward the browser above which the backend socket is paused (capped by maxBufferedBytes / 4). */
export const RELAY_HIGH_WATER_BYTES = 256 * 1024;
export const DEFAULT_WRITE_STALL_TIMEOUT_MS = 30_000;
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

const TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  connecting: ['handshaking', 'closing'],
  handshaking: ['relaying', 'closing'],
  relaying: ['closing'],
  closing: ['closed'],
  closed: [],
};

const WS_OPEN = 1;
const WS_CLOSED = 3;

export function runConsoleSession(ws: WebSocket, target: BackendTarget, opts: SessionOptions, hooks: SessionHooks): SessionHandle {
  const session = new ConsoleSession(ws, target, opts, hooks);
  session.start();
  return {
    close: (code, reason) => session.closeFromOutside(code, reason),
    setViewOnly: (on) => session.setViewOnly(on),
    get viewOnly() {
      return session.filter.isViewOnly;
    },
    get bytesToClient() {
      return session.bytesToClient;
    },
    get bytesToBackend() {
      return session.bytesToBackend;
    },
    get state() {
      return session.state;
    },
  };
}

type Timer = ReturnType<typeof setTimeout>;

class ConsoleSession {
  state: SessionState = 'connecting';
  /** The backend stream: the TCP socket, or the TLS socket wrapping it after VeNCrypt's startTls. */
  private socket: Socket | TLSSocket | undefined;
  private socketClosed = false;
  private wsClosed = false;
  private readonly browserHs = new ServerHandshake({ securityTypes: [SecurityType.NONE] });
  private browserInit: ServerHandshakeResult | undefined;
  private backendHs: ClientHandshake | undefined;
  private backendConnected = false;
  /** Between VeNCrypt's startTls and 'secureConnect': errors are TLS handshake failures. */
  private tlsPending = false;
  /** While closing: a login that finishes before the backend is closed (see `loginThenClose`). */
  private closingLogin: ((chunk: Uint8Array) => void) | undefined;
  private earlyBackend: Buffer[] = [];
  private earlyBackendBytes = 0;
  /** Browser bytes (already filtered) waiting for the backend handshake to finish. */
  private toBackendQueue: Uint8Array[] = [];
  /** Frames every browser message after ClientInit: view-only, clipboard policy, SetEncodings rewriting. */
  readonly filter: ClientStreamFilter;
  /** Frames the server's stream when the clipboard policy must see ServerCutText (after ServerInit). */
  private serverFilter: ServerStreamFilter | undefined;
  private readonly frameServer: boolean;
  private readonly allowServerCutText: (length: number) => boolean;
  /** The pixel format of the last SetPixelFormat the browser sent (the server framer follows it). */
  private clientPixelFormat: PixelFormat | undefined;
  bytesToClient = 0;
  bytesToBackend = 0;
  /** Handed to ws.send() but not yet flushed to the browser's socket. */
  private pendingToClient = 0;
  private backendPaused = false;
  private wsPausedForBackend = false;
  private lastActivity = Date.now();
  private end: { code: number; reason: string; detail?: string } | undefined;
  private readonly timers: Partial<Record<'connect' | 'handshake' | 'idle' | 'maxDuration' | 'stall' | 'close', Timer>> = {};
  private readonly highWater: number;
  private readonly lowWater: number;

  constructor(
    private readonly ws: WebSocket,
    private readonly target: BackendTarget,
    private readonly opts: SessionOptions,
    private readonly hooks: SessionHooks,
  ) {
    const clipboard = opts.clipboard ?? { direction: 'both' };
    this.frameServer = needsServerFraming(clipboard);
    this.filter = new ClientStreamFilter({
      viewOnly: opts.viewOnly ?? false,
      clipboard,
      ...(this.frameServer ? { allowEncoding: isFramableEncoding } : {}),
      onPixelFormat: (pf) => {
        this.clientPixelFormat = pf;
        this.serverFilter?.setPixelFormat(pf);
      },
    });
    const cap = clipboard.maxBytes ?? Number.MAX_SAFE_INTEGER;
    this.allowServerCutText = (n) => clipboardFromMachine(clipboard) && n <= cap;
    this.highWater = Math.max(1, Math.min(RELAY_HIGH_WATER_BYTES, Math.floor(opts.maxBufferedBytes / 4)));
    this.lowWater = Math.floor(this.highWater / 4);
  }

  start(): void {
    const ws = this.ws;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data, isBinary) => this.guard(() => this.onBrowserMessage(data, isBinary)));
    ws.on('close', (code, reason) => this.guard(() => this.onBrowserClose(code, reason)));
    // 'close' always follows 'error'; the error only explains it.
    ws.on('error', (err) => this.log({ err: err.message }, 'browser websocket error'));

    if (ws.readyState !== WS_OPEN) {
      // The browser left between the upgrade and now: there is nothing to relay.
      this.wsClosed = ws.readyState === WS_CLOSED;
      this.finishWith(1006, CLIENT_CLOSED_REASON, 'browser websocket was not open when the session started');
      return;
    }
    this.setTimer('maxDuration', this.opts.maxDurationMs, () => this.finish('MAX_DURATION', `session reached ${this.opts.maxDurationMs} ms`));
    this.setTimer('handshake', this.opts.handshakeTimeoutMs, () => this.finish('HANDSHAKE_TIMEOUT', this.handshakeWaitingFor()));
    this.sendToClient(this.browserHs.greeting());
    if (this.state !== 'connecting') return; // the browser was already gone

    // Plain TCP backends read through the shared 1 MiB buffer (read-buffers.ts: fewer reads, frames
    // and allocations per MiB); a VeNCrypt socket is later wrapped in TLS, so it keeps Node's reads.
    const onread = this.target.credential.type === 'vencrypt' ? undefined
      : { buffer: sharedReadBuffer(), callback: (n: number) => { this.onBackendRead(n); return true; } };
    const socket = (this.opts.dial ?? connect)({ host: this.target.host, port: this.target.port, ...(onread ? { onread } : {}) });
    this.socket = socket;
    this.setTimer('connect', this.opts.connectTimeoutMs, () =>
      this.finish('BACKEND_UNREACHABLE', `connect to ${this.target.host}:${this.target.port} timed out after ${this.opts.connectTimeoutMs} ms`),
    );
    socket.setNoDelay(true);
    socket.once('connect', () => this.guard(() => this.onBackendConnect()));
    this.attachBackend(socket);
  }

  private attachBackend(socket: Socket | TLSSocket): void {
    socket.on('data', (chunk: Buffer) => this.guard(() => this.onBackendData(chunk)));
    socket.on('drain', () => this.guard(() => this.onBackendDrain()));
    socket.on('error', (err: NodeJS.ErrnoException) => this.guard(() => this.onBackendError(err)));
    socket.on('close', () => this.guard(() => this.onBackendClose()));
  }

  closeFromOutside(code: number, reason: string): void {
    this.guard(() => this.finishWith(code, reason, 'closed by the gateway'));
  }

  setViewOnly(on: boolean): void {
    this.guard(() => {
      if (this.state === 'closing' || this.state === 'closed' || on === this.filter.isViewOnly) return;
      this.log({ viewOnly: on }, on ? 'session switched to view-only' : 'session switched to full control');
      for (const b of this.filter.setViewOnly(on)) this.toBackend(b);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Browser side

  private onBrowserMessage(data: RawData, isBinary: boolean): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (!isBinary) return this.finish('CLIENT_PROTOCOL', 'browser sent a text frame');
    const bytes = toBuffer(data);
    this.touch();
    if (!this.browserInit) {
      let step: ReturnType<ServerHandshake['feed']>;
      try {
        step = this.browserHs.feed(bytes);
      } catch (err) {
        if (!(err instanceof RfbError)) throw err;
        for (const b of err.farewell) this.sendToClient(b);
        return this.finish('CLIENT_PROTOCOL', `browser handshake: ${err.code}: ${err.message}`);
      }
      for (const b of step.reply) this.sendToClient(b);
      if (!step.done) return;
      this.browserInit = step.done;
      this.log({ version: step.done.version, shared: step.done.shared }, 'browser handshake done');
      // Until the backend's ServerInit is forwarded the browser has nothing to say: stop reading it.
      this.ws.pause();
      if (step.done.rest.length > 0) this.fromBrowser(step.done.rest);
      this.maybeStartBackendHandshake();
      return;
    }
    this.fromBrowser(bytes);
  }

  /** Browser RFB messages after ClientInit: filtered (view-only), then written or queued. */
  private fromBrowser(bytes: Uint8Array): void {
    let out: Uint8Array[];
    try {
      out = this.filter.push(bytes);
    } catch (err) {
      if (!(err instanceof RfbError)) throw err;
      return this.finish('CLIENT_PROTOCOL', `browser message: ${err.code}: ${err.message}`);
    }
    for (const b of out) this.toBackend(b);
  }

  /** A whole, filtered browser message: to the server now, or after its handshake. */
  private toBackend(b: Uint8Array): void {
    if (this.state === 'relaying') this.writeBackend(b);
    else this.toBackendQueue.push(b);
  }

  private onBrowserClose(code: number, reason: Buffer): void {
    this.wsClosed = true;
    if (this.state !== 'closing' && this.state !== 'closed') {
      const why = reason.length > 0 ? `: ${reason.toString('utf8').slice(0, 123)}` : '';
      this.finishWith(code, CLIENT_CLOSED_REASON, `browser closed the websocket (${code}${why})`);
    }
    this.maybeClosed();
  }

  /** `release` (a pooled read block's) runs once the WebSocket has written `b`, or at once if it cannot. */
  private sendToClient(b: Uint8Array, release?: () => void): void {
    if (this.ws.readyState !== WS_OPEN) return release?.();
    const n = b.length;
    this.bytesToClient += n;
    this.pendingToClient += n;
    this.ws.send(b, { binary: true }, () => {
      release?.();
      this.pendingToClient -= n;
      this.guard(() => this.maybeResumeBackend());
    });
    if (this.pendingToClient > this.opts.maxBufferedBytes) {
      this.finish('SLOW_CONSUMER', `${this.pendingToClient} bytes waiting for the browser (limit ${this.opts.maxBufferedBytes})`);
    } else if (this.pendingToClient > this.highWater && !this.backendPaused && this.socket && this.state === 'relaying') {
      this.backendPaused = true;
      this.socket.pause();
      this.armStallTimer();
    }
  }

  private maybeResumeBackend(): void {
    if (!this.backendPaused || this.pendingToClient > this.lowWater) return;
    this.backendPaused = false;
    if (this.state === 'relaying') this.socket?.resume();
    this.armStallTimer();
  }

  // ---------------------------------------------------------------------------------------------
  // Backend side

  private onBackendConnect(): void {
    if (this.state !== 'connecting') return;
    this.clearTimer('connect');
    this.backendConnected = true;
    this.transition('handshaking');
    this.log({ backend: `${this.target.host}:${this.target.port}` }, 'backend connected');
    this.maybeStartBackendHandshake();
  }

  private maybeStartBackendHandshake(): void {
    if (!this.backendConnected || !this.browserInit || this.backendHs || this.state !== 'handshaking') return;
    const shared = this.opts.forceShared || this.opts.viewOnly ? true : this.browserInit.shared;
    this.backendHs = new ClientHandshake({ credential: this.target.credential, shared });
    const early = Buffer.concat(this.earlyBackend);
    this.earlyBackend = [];
    this.earlyBackendBytes = 0;
    this.feedBackendHandshake(early);
  }

  /** A read into the shared buffer (plain TCP backends): copied out at once; pooled only while relaying. */
  private onBackendRead(n: number): void {
    const { bytes, release } = copyRead(n, this.state === 'relaying');
    this.guard(() => this.onBackendData(bytes, release));
  }

  private onBackendData(chunk: Buffer, release?: () => void): void {
    if (this.closingLogin) {
      this.closingLogin(chunk);
      return release?.();
    }
    if (this.state === 'closing' || this.state === 'closed') return release?.();
    this.touch();
    if (this.state === 'relaying') return this.fromServer(chunk, release);
    if (this.backendHs) return this.feedBackendHandshake(chunk);
    this.earlyBackend.push(chunk);
    this.earlyBackendBytes += chunk.length;
    if (this.earlyBackendBytes > MAX_EARLY_BACKEND_BYTES) {
      this.finish('BACKEND_PROTOCOL', `backend sent ${this.earlyBackendBytes} bytes before its handshake could start`);
    }
  }

  private feedBackendHandshake(chunk: Uint8Array): void {
    const hs = this.backendHs as ClientHandshake;
    let step: ReturnType<ClientHandshake['feed']>;
    try {
      step = hs.feed(chunk);
    } catch (err) {
      if (!(err instanceof RfbError)) throw err;
      return this.finish(closeNameOf(err), `backend handshake (${hs.phase}): ${err.code}: ${err.message}`, 'destroy');
    }
    for (const b of step.send) this.writeBackend(b);
    if (step.startTls) return this.startTls(step.startTls);
    if (step.done) this.onBackendReady(step.done);
  }

  /**
   * VeNCrypt: wrap the TCP socket in TLS (backend-tls.ts: CA, servername, anonymous subtypes). With
   * neither a CA nor a servername there is nothing to authenticate the server by: refused (the codec
   * never picks an X.509 subtype then; this is the last line). An anonymous subtype's server that
   * shows a certificate anyway (which nothing would check) is refused too. TLS failures are BACKEND_PROTOCOL.
   */
  private startTls(req: StartTlsRequest): void {
    const refusal = backendTlsRefusal(req);
    if (refusal) return this.finish('BACKEND_PROTOCOL', `backend TLS: ${refusal}`, 'destroy');
    const raw = this.socket as Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('drain');
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    raw.on('error', () => undefined); // reported through the TLS socket
    const secure = startBackendTls(raw, req);
    this.socket = secure;
    this.tlsPending = true;
    secure.once('secureConnect', () =>
      this.guard(() => {
        this.tlsPending = false;
        const bad = establishedTlsRefusal(secure, req);
        if (bad) return this.finish('BACKEND_PROTOCOL', `backend TLS: ${bad}`, 'destroy');
        this.log({ protocol: secure.getProtocol(), subtype: req.subtype }, 'backend TLS established');
        const step = (this.backendHs as ClientHandshake).tlsEstablished();
        for (const bytes of step.send) this.writeBackend(bytes);
      }),
    );
    this.attachBackend(secure);
  }

  private onBackendReady(done: ClientHandshakeResult): void {
    this.transition('relaying');
    this.clearTimer('handshake');
    const init = done.serverInit;
    this.log({ version: done.version, securityType: done.securityType, width: init.width, height: init.height }, 'backend handshake done');
    this.sendToClient(done.serverInitBytes);
    if (this.frameServer) {
      this.serverFilter = new ServerStreamFilter({
        pixelFormat: this.clientPixelFormat ?? init.pixelFormat,
        allowCutText: this.allowServerCutText,
      });
    }
    if (done.rest.length > 0) this.fromServer(done.rest);
    if (this.state !== 'relaying') return;
    const queued = this.toBackendQueue;
    this.toBackendQueue = [];
    for (const b of queued) this.writeBackend(b);
    if (this.state !== 'relaying') return;
    if (!this.wsPausedForBackend) this.ws.resume();
    this.armIdleTimer();
    this.hooks.onRelaying?.();
  }

  /** Server bytes after ServerInit: straight to the browser, or through the clipboard framer. */
  private fromServer(chunk: Uint8Array, release?: () => void): void {
    if (!this.serverFilter) return this.sendToClient(chunk, release);
    let out: Uint8Array[];
    try {
      out = this.serverFilter.push(chunk);
    } catch (err) {
      release?.();
      if (!(err instanceof RfbError)) throw err;
      return this.finish('BACKEND_PROTOCOL', `server message: ${err.code}: ${err.message}`, 'destroy');
    }
    // One WebSocket message per read, as without the framer (pieces only when cut text was dropped).
    if (out.length === 1) return this.sendToClient(out[0] as Uint8Array, release);
    if (out.length > 1) this.sendToClient(Buffer.concat(out));
    release?.();
  }

  private writeBackend(b: Uint8Array): void {
    const socket = this.socket;
    if (!socket || socket.destroyed) return;
    this.bytesToBackend += b.length;
    const flushed = socket.write(b);
    if (socket.writableLength > this.opts.maxBufferedBytes) {
      this.finish('SLOW_CONSUMER', `${socket.writableLength} bytes waiting for the backend (limit ${this.opts.maxBufferedBytes})`);
    } else if (!flushed && !this.wsPausedForBackend && this.state === 'relaying') {
      this.wsPausedForBackend = true;
      this.ws.pause();
      this.armStallTimer();
    }
  }

  private onBackendDrain(): void {
    if (!this.wsPausedForBackend) return;
    this.wsPausedForBackend = false;
    if (this.state === 'relaying') this.ws.resume();
    this.armStallTimer();
  }

  private onBackendError(err: NodeJS.ErrnoException): void {
    if (this.tlsPending) {
      return this.finish('BACKEND_PROTOCOL', `backend TLS handshake: ${err.code ?? ''} ${err.message}`.trim(), 'destroy');
    }
    if (!this.backendConnected) {
      return this.finish('BACKEND_UNREACHABLE', `connect to ${this.target.host}:${this.target.port}: ${err.code ?? err.message}`);
    }
    this.finish('BACKEND_CLOSED', `backend socket error: ${err.code ?? err.message}`);
  }

  private onBackendClose(): void {
    this.socketClosed = true;
    if (this.state === 'connecting') {
      this.finish('BACKEND_UNREACHABLE', `connect to ${this.target.host}:${this.target.port} failed`);
    } else if (this.state === 'handshaking') {
      const refusal = this.backendHs ? undefined : this.earlyRefusal();
      if (refusal) {
        this.finish(closeNameOf(refusal), `backend closed before the browser handshake finished: ${refusal.code}: ${refusal.message}`);
      } else {
        const phase = this.backendHs ? `backend handshake (${this.backendHs.phase})` : 'waiting for the browser handshake';
        this.finish('BACKEND_CLOSED', `backend closed during ${phase}`);
      }
    } else if (this.state === 'relaying') {
      this.finish('BACKEND_CLOSED', 'backend closed the connection');
    }
    this.maybeClosed();
  }

  /**
   * The session ends before the backend login started (the browser left, failed its handshake or
   * timed out; a kill, revoke or shutdown): log in anyway — ClientInit shared, so nobody is disconnected — and close after
   * ServerInit. A connection closed before it authenticates is a failed login to TigerVNC's
   * blacklist (proxy/prober.ts): five abandoned consoles would lock the gateway out. Bounded by the
   * close timeout; any failure just destroys the socket. Not for VeNCrypt (no TLS after closing).
   */
  private loginThenClose(socket: Socket | TLSSocket): void {
    const hs = new ClientHandshake({ credential: this.target.credential, shared: true });
    const give = (chunk: Uint8Array) => {
      try {
        const step = hs.feed(chunk);
        for (const b of step.send) socket.write(b);
        if (step.startTls) {
          socket.destroy();
        } else if (step.done) {
          this.closingLogin = undefined;
          socket.end();
          socket.resume(); // discard what the server still sends until it closes too
        }
      } catch {
        this.closingLogin = undefined;
        socket.destroy();
      }
    };
    this.closingLogin = give;
    const early = Buffer.concat(this.earlyBackend);
    this.earlyBackend = [];
    this.earlyBackendBytes = 0;
    if (early.length > 0) give(early);
  }

  /**
   * The server's own refusal or failure in what it sent before closing, while the browser had not
   * finished its handshake yet (TigerVNC's blacklist answers `RFB 003.003`, type 0, "Too many
   * security failures" and hangs up at once): the bytes are run through a handshake of their own,
   * whose replies are never sent.
   */
  private earlyRefusal(): RfbError | undefined {
    if (this.earlyBackendBytes === 0) return undefined;
    try {
      new ClientHandshake({ credential: this.target.credential, shared: true }).feed(Buffer.concat(this.earlyBackend));
    } catch (err) {
      if (err instanceof RfbError) return err;
    }
    return undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Timers

  private touch(): void {
    this.lastActivity = Date.now();
  }

  private armIdleTimer(): void {
    const wait = Math.max(0, this.lastActivity + this.opts.idleTimeoutMs - Date.now());
    this.setTimer('idle', wait, () => {
      if (Date.now() - this.lastActivity >= this.opts.idleTimeoutMs) {
        this.finish('IDLE_TIMEOUT', `no traffic for ${this.opts.idleTimeoutMs} ms`);
      } else {
        this.armIdleTimer();
      }
    });
  }

  /** Runs while either direction is paused by backpressure. */
  private armStallTimer(): void {
    const paused = this.state === 'relaying' && (this.backendPaused || this.wsPausedForBackend);
    if (!paused) return this.clearTimer('stall');
    if (this.timers.stall) return;
    const ms = this.opts.writeStallTimeoutMs ?? DEFAULT_WRITE_STALL_TIMEOUT_MS;
    const who = this.backendPaused ? 'browser' : 'backend';
    this.setTimer('stall', ms, () => this.finish('SLOW_CONSUMER', `${who} did not accept data for ${ms} ms`));
  }

  private handshakeWaitingFor(): string {
    if (!this.browserInit) return `browser handshake not finished (${this.browserHs.phase})`;
    if (!this.backendConnected) return 'backend not connected';
    return `backend handshake not finished (${this.backendHs?.phase ?? 'not started'})`;
  }

  private setTimer(name: keyof ConsoleSession['timers'], ms: number, fn: () => void): void {
    this.clearTimer(name);
    const t = setTimeout(() => {
      delete this.timers[name];
      this.guard(fn);
    }, ms);
    t.unref();
    this.timers[name] = t;
  }

  private clearTimer(name: keyof ConsoleSession['timers']): void {
    const t = this.timers[name];
    if (t) clearTimeout(t);
    delete this.timers[name];
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  private transition(to: SessionState): void {
    if (!TRANSITIONS[this.state].includes(to)) {
      throw new Error(`console session: illegal transition ${this.state} → ${to}`);
    }
    this.state = to;
  }

  private finish(name: CloseCodeName, detail: string, backend: 'end' | 'destroy' = 'end'): void {
    this.finishWith(CloseCode[name], CloseReason[name], detail, backend);
  }

  /** Enters `closing` with this code/reason (first cause wins) and starts closing both sides. */
  private finishWith(code: number, reason: string, detail: string, backend: 'end' | 'destroy' = 'end'): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    // The backend is connected and well, only its login has not started (the browser side ended the session).
    const loginNotStarted = this.state === 'handshaking' && !this.backendHs && !reason.startsWith('backend_');
    this.transition('closing');
    this.end = { code, reason, detail };
    for (const name of ['connect', 'handshake', 'idle', 'maxDuration', 'stall'] as const) this.clearTimer(name);
    const c = this.filter.counters;
    this.log({ code, reason, detail, droppedInput: c.droppedInput, droppedClipboard: c.droppedClipboard, droppedServerCutText: this.serverFilter?.droppedCutText ?? 0 }, 'console session closing');

    if (this.ws.readyState === WS_OPEN) {
      try {
        this.ws.close(code, reason);
      } catch (err) {
        // An invalid code from an outside caller must still end the session.
        this.log({ err: String(err) }, 'websocket close failed; terminating');
        this.ws.terminate();
      }
    }
    // Read the browser's close frame (and let paused data go) so the close handshake can finish.
    this.ws.resume();

    const socket = this.socket;
    if (socket && !this.socketClosed) {
      if (backend === 'end' && loginNotStarted && this.target.credential.type !== 'vencrypt') this.loginThenClose(socket);
      else if (backend === 'destroy' || !this.backendConnected) socket.destroy();
      else {
        socket.end();
        socket.resume(); // discard what the server still sends until it closes too
      }
    }
    this.setTimer('close', this.opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS, () => {
      this.log({}, 'close timeout: destroying both sides');
      this.ws.terminate();
      socket?.destroy();
      this.wsClosed = true;
      this.socketClosed = true;
      this.maybeClosed();
    });
    this.maybeClosed();
  }

  private maybeClosed(): void {
    if (this.state !== 'closing') return;
    if (!this.wsClosed || !(this.socketClosed || !this.socket)) return;
    this.clearTimer('close');
    this.transition('closed');
    const end = this.end as { code: number; reason: string; detail?: string };
    this.hooks.onEnd({ ...end, bytesToClient: this.bytesToClient, bytesToBackend: this.bytesToBackend });
  }

  /** Event handlers run inside this: a bug here ends the session as INTERNAL instead of crashing. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
      this.log({ err: detail }, 'console session internal error');
      if (this.state !== 'closing' && this.state !== 'closed') {
        try {
          this.finish('INTERNAL', detail, 'destroy');
        } catch {
          /* already reported */
        }
      }
    }
  }

  private log(obj: object, msg: string): void {
    this.hooks.log?.(obj, msg);
  }
}

/** The close code for a failed backend handshake: the server refused us, rejected our credential, or spoke wrongly. */
function closeNameOf(err: RfbError): CloseCodeName {
  if (err.code === 'RFB_AUTH_FAILED') return 'BACKEND_AUTH_FAILED';
  if (err.code === 'RFB_SERVER_REFUSED') return 'BACKEND_REFUSED';
  return 'BACKEND_PROTOCOL';
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
