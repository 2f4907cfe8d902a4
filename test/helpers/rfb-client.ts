/**
 * A WebSocket RFB viewer for tests: connects with `ws`, does the client handshake with security None
 * (src/rfb ClientHandshake), reads ServerInit, asks for updates and decodes Raw rectangles into an
 * RGB pixel buffer so tests can assert colours a user would see. Records everything else the server
 * sends (bells, cut text) and how the WebSocket closed.
 *
 *   const c = await RfbTestClient.open(url);   // resolves once the WebSocket is open
 *   await c.ready;                              // ServerInit (rejects if the socket closes first)
 *   await c.requestUpdate();                    // one full FramebufferUpdate
 *   c.pixel(10, 10)                             // { r, g, b }
 *   const { code, reason } = await c.closed;
 */
import WebSocket from 'ws';
import { ByteQueue } from '../../src/rfb/byte-queue.js';
import { ClientHandshake, type ClientHandshakeResult } from '../../src/rfb/client-handshake.js';
import { Encoding, PseudoEncoding, ServerMessageType } from '../../src/rfb/constants.js';
import {
  encodeFramebufferUpdateRequest,
  encodeSetEncodings,
  encodeSetPixelFormat,
  unpackPixel,
  type PixelFormat,
  type Rgb,
  type ServerInit,
} from '../../src/rfb/messages.js';

/**
 * Pseudo-encodings whose rectangles carry no data: DesktopSize (the new size is the rectangle's
 * width/height; QEMU sends one unasked when SeaBIOS switches video mode while booting), QEMU extended
 * keys, pointer position, ExtendedMouseButtons.
 */
const ZERO_DATA_PSEUDO = new Set<number>([
  PseudoEncoding.DESKTOP_SIZE,
  PseudoEncoding.QEMU_EXTENDED_KEY_EVENT,
  PseudoEncoding.POINTER_POS,
  PseudoEncoding.EXTENDED_MOUSE_BUTTONS,
]);

export interface RfbTestClientOptions {
  /** ClientInit shared-flag (default true). */
  shared?: boolean;
  /** Sent with SetEncodings after ServerInit (default Raw + DesktopSize + LastRect). */
  encodings?: number[];
  /** Sent with SetPixelFormat after ServerInit (default: keep the server's). */
  pixelFormat?: PixelFormat;
  /** WebSocket subprotocols to offer. */
  protocols?: string[];
  /** Options for the `ws` client (a CA for wss:// through a TLS proxy, headers such as Origin). */
  wsOptions?: WebSocket.ClientOptions;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class RfbTestClient {
  readonly ws: WebSocket;
  /** Resolves with ServerInit; rejects if the connection closes or errs first. */
  readonly ready: Promise<ServerInit>;
  /** Resolves when the WebSocket closes, with the close code and reason. */
  readonly closed: Promise<CloseInfo>;
  serverInit: ServerInit | undefined;
  handshake: ClientHandshakeResult | undefined;
  pixelFormat: PixelFormat | undefined;
  width = 0;
  height = 0;
  /** RGB, 3 bytes per pixel. */
  framebuffer = new Uint8Array(0);
  updates = 0;
  bells = 0;
  cutTexts: Uint8Array[] = [];
  /** Every binary byte received on the WebSocket. */
  bytesReceived = 0;
  bytesSent = 0;
  /** Encodings of every rectangle received, in order (pseudo-encodings show what the server acknowledged). */
  pseudoRects: number[] = [];
  /** A server message this client could not parse (the client closes itself then). */
  protocolError: Error | undefined;

  private readonly hs: ClientHandshake;
  private readonly queue = new ByteQueue();
  private readonly updateWaiters: Waiter[] = [];
  private readyResolve!: (s: ServerInit) => void;
  private readyReject!: (e: Error) => void;
  private readonly opts: RfbTestClientOptions;

  private constructor(url: string, opts: RfbTestClientOptions) {
    this.opts = opts;
    this.hs = new ClientHandshake({ credential: { type: 'none' }, shared: opts.shared ?? true });
    this.ws = new WebSocket(url, opts.protocols ?? [], opts.wsOptions ?? {});
    this.ws.binaryType = 'nodebuffer';
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => undefined); // tests that only await `closed` must not see an unhandled rejection
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        const info = { code, reason: reason.toString('utf8') };
        const err = new Error(`websocket closed ${code} ${info.reason}`);
        this.readyReject(err);
        for (const w of this.updateWaiters.splice(0)) w.reject(err);
        resolve(info);
      });
    });
    this.ws.on('error', (err) => this.readyReject(err));
    this.ws.on('message', (data: Buffer) => this.onData(data));
  }

  /** Opens the WebSocket (resolves on 'open'; rejects if the upgrade fails). */
  static open(url: string, opts: RfbTestClientOptions = {}): Promise<RfbTestClient> {
    const c = new RfbTestClient(url, opts);
    return new Promise((resolve, reject) => {
      c.ws.once('open', () => resolve(c));
      c.ws.once('error', reject);
      c.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
  }

  /** Opens and waits for ServerInit. */
  static async connect(url: string, opts: RfbTestClientOptions = {}): Promise<RfbTestClient> {
    const c = await RfbTestClient.open(url, opts);
    await c.ready;
    return c;
  }

  /** Sends a FramebufferUpdateRequest (full screen by default) and resolves after the next complete update. */
  requestUpdate(incremental = false, rect?: { x: number; y: number; width: number; height: number }): Promise<void> {
    // Already closed: no update can come (a waiter added now would wait forever).
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error('websocket already closed'));
    const p = new Promise<void>((resolve, reject) => this.updateWaiters.push({ resolve, reject }));
    this.send(encodeFramebufferUpdateRequest({ incremental, ...(rect ?? { x: 0, y: 0, width: this.width, height: this.height }) }));
    return p;
  }

  /** Resolves after the next complete FramebufferUpdate (without requesting one). */
  nextUpdate(): Promise<void> {
    return new Promise<void>((resolve, reject) => this.updateWaiters.push({ resolve, reject }));
  }

  pixel(x: number, y: number): Rgb {
    const o = (y * this.width + x) * 3;
    return { r: this.framebuffer[o] ?? 0, g: this.framebuffer[o + 1] ?? 0, b: this.framebuffer[o + 2] ?? 0 };
  }

  /** Whether every pixel in the framebuffer has this colour. */
  isSolid(c: Rgb): boolean {
    for (let o = 0; o < this.framebuffer.length; o += 3) {
      if (this.framebuffer[o] !== c.r || this.framebuffer[o + 1] !== c.g || this.framebuffer[o + 2] !== c.b) return false;
    }
    return this.framebuffer.length > 0;
  }

  send(bytes: Uint8Array): void {
    this.bytesSent += bytes.length;
    this.ws.send(bytes);
  }

  close(code = 1000): void {
    this.ws.close(code);
  }

  private onData(data: Buffer): void {
    this.bytesReceived += data.length;
    try {
      if (!this.handshake) {
        const step = this.hs.feed(data);
        for (const b of step.send) this.send(b);
        if (!step.done) return;
        this.handshake = step.done;
        this.serverInit = step.done.serverInit;
        this.pixelFormat = this.opts.pixelFormat ?? step.done.serverInit.pixelFormat;
        this.resize(step.done.serverInit.width, step.done.serverInit.height);
        if (this.opts.pixelFormat) this.send(encodeSetPixelFormat(this.opts.pixelFormat));
        this.send(encodeSetEncodings(this.opts.encodings ?? [Encoding.RAW, PseudoEncoding.DESKTOP_SIZE, PseudoEncoding.LAST_RECT]));
        this.readyResolve(step.done.serverInit);
        data = Buffer.from(step.done.rest);
      }
      this.queue.push(data);
      while (this.parseMessage()) {
        /* keep going */
      }
    } catch (err) {
      // Waiters get the parse error itself: the close that follows (1006, from terminate) would
      // otherwise read like the gateway dropping the connection.
      this.protocolError = err as Error;
      this.readyReject(err as Error);
      for (const w of this.updateWaiters.splice(0)) w.reject(err as Error);
      this.ws.terminate();
    }
  }

  private resize(w: number, h: number): void {
    this.width = w;
    this.height = h;
    this.framebuffer = new Uint8Array(w * h * 3);
  }

  /** Parses one whole server message if it is all here; false = wait for more bytes. */
  private parseMessage(): boolean {
    const q = this.queue;
    if (q.length < 1) return false;
    const type = q.peekU8(0);
    switch (type) {
      case ServerMessageType.FRAMEBUFFER_UPDATE:
        return this.parseUpdate();
      case ServerMessageType.SET_COLOUR_MAP_ENTRIES: {
        if (q.length < 6) return false;
        const n = 6 + 6 * q.peekU16(4);
        if (q.length < n) return false;
        q.skip(n);
        return true;
      }
      case ServerMessageType.BELL:
        q.skip(1);
        this.bells++;
        return true;
      case ServerMessageType.SERVER_CUT_TEXT: {
        if (q.length < 8) return false;
        const len = Math.abs(q.peekS32(4));
        if (q.length < 8 + len) return false;
        q.skip(8);
        this.cutTexts.push(q.take(len).slice());
        return true;
      }
      case ServerMessageType.END_OF_CONTINUOUS_UPDATES:
        q.skip(1);
        return true;
      case ServerMessageType.SERVER_FENCE: {
        if (q.length < 9) return false;
        const n = 9 + q.peekU8(8);
        if (q.length < n) return false;
        q.skip(n);
        return true;
      }
      default:
        throw new Error(`test client: unknown server message type ${type}`);
    }
  }

  /** A FramebufferUpdate is consumed only once all of it is here (simple; fine for tests). */
  private parseUpdate(): boolean {
    const q = this.queue;
    const pf = this.pixelFormat as PixelFormat;
    const bpp = pf.bitsPerPixel / 8;
    if (q.length < 4) return false;
    const nRects = q.peekU16(2);
    // Walk the rectangle headers to see if the whole message is here.
    let o = 4;
    for (let i = 0; i < nRects; i++) {
      if (q.length < o + 12) return false;
      const w = q.peekU16(o + 4);
      const h = q.peekU16(o + 6);
      const enc = q.peekS32(o + 8);
      o += 12;
      if (enc === Encoding.RAW) o += w * h * bpp;
      else if (enc === PseudoEncoding.CURSOR) o += w * h * bpp + Math.floor((w + 7) / 8) * h;
      else if (enc === PseudoEncoding.LAST_RECT) break;
      else if (enc === PseudoEncoding.QEMU_LED_STATE) o += 1;
      else if (enc === PseudoEncoding.DESKTOP_NAME) {
        if (q.length < o + 4) return false;
        o += 4 + q.peekU32(o);
      } else if (enc === PseudoEncoding.EXTENDED_DESKTOP_SIZE) {
        if (q.length < o + 1) return false;
        o += 4 + 16 * q.peekU8(o);
      } else if (!ZERO_DATA_PSEUDO.has(enc)) throw new Error(`test client: unsupported encoding ${enc}`);
    }
    if (q.length < o) return false;
    q.skip(4);
    for (let i = 0; i < nRects; i++) {
      const x = q.takeU16();
      const y = q.takeU16();
      const w = q.takeU16();
      const h = q.takeU16();
      const enc = q.takeU32() | 0;
      if (enc === Encoding.RAW) {
        const data = q.take(w * h * bpp);
        for (let row = 0; row < h; row++) {
          for (let col = 0; col < w; col++) {
            const c = unpackPixel(pf, data, (row * w + col) * bpp);
            const d = ((y + row) * this.width + (x + col)) * 3;
            if (x + col < this.width && y + row < this.height) {
              this.framebuffer[d] = c.r;
              this.framebuffer[d + 1] = c.g;
              this.framebuffer[d + 2] = c.b;
            }
          }
        }
      } else if (enc === PseudoEncoding.CURSOR) {
        q.skip(w * h * bpp + Math.floor((w + 7) / 8) * h);
      } else if (enc === PseudoEncoding.DESKTOP_SIZE) {
        this.resize(w, h);
      } else if (enc === PseudoEncoding.LAST_RECT) {
        break;
      } else if (enc === PseudoEncoding.QEMU_LED_STATE) {
        q.skip(1);
      } else if (enc === PseudoEncoding.DESKTOP_NAME) {
        q.skip(q.takeU32());
      } else if (enc === PseudoEncoding.EXTENDED_DESKTOP_SIZE) {
        const n = q.takeU8();
        q.skip(3 + 16 * n);
        this.resize(w, h);
      }
      this.pseudoRects.push(enc);
    }
    this.updates++;
    const waiter = this.updateWaiters.shift();
    waiter?.resolve();
    return true;
  }
}
