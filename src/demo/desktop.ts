/**
 * The built-in demo desktop: a small RFB server (RFC 6143) that `npm start` registers as the demo
 * machine, so a newcomer sees a live console straight away. It shows the machine name, a clock that
 * ticks every second, the keys typed, a fading pointer trail, the clipboard and the viewer count —
 * enough to see at a glance that pixels flow and input arrives.
 *
 * Protocol work is done by the pure codec in `src/rfb/` (handshake state machine, client-message
 * framer, message encoders); this module only does the I/O around it:
 *
 *   TCP accept ─► handshaking (ServerHandshake; HANDSHAKE_TIMEOUT_MS) ─► ServerInit ─► running
 *     running: ClientMessageFramer → decodeClientMessage → input / update requests
 *     any RfbError, unsupported pixel format or socket error ─► closed (only that viewer)
 *
 * Updates: the scene is redrawn into a back buffer on every clock tick, input burst or animation
 * frame, and compared with the front buffer tile by tile; the changed tiles are added to every
 * viewer's dirty region. A viewer's pending FramebufferUpdateRequest is answered as soon as its
 * region intersects the requested area (incremental), or at once (non-incremental), with Raw
 * rectangles in the viewer's pixel format. A viewer with more than MAX_BUFFERED_BYTES unsent is
 * skipped until its socket drains. Nothing polls: idle viewers cost nothing between clock ticks.
 *
 * Backend-side observation (`keyLog`, `pointerLog`, `clipboardLog`, `onInput`) lets tests check what
 * a console's input really delivered to the machine.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SecurityType } from '../rfb/constants.js';
import { ClientMessageFramer } from '../rfb/client-message-framer.js';
import { RfbError } from '../rfb/errors.js';
import {
  DEFAULT_PIXEL_FORMAT,
  decodeClientMessage,
  encodeFramebufferUpdateRaw,
  encodeServerInit,
} from '../rfb/messages.js';
import { ServerHandshake } from '../rfb/server-handshake.js';
import { DirtyRegion, Framebuffer, PixelConverter, intersect, isEmpty, packRgb, unsupportedPixelFormat, type Rect, type Rgb } from './framebuffer.js';
import { DEFAULT_BACKGROUND, DemoScene } from './scene.js';

export { DEFAULT_BACKGROUND, GUARANTEED_MARGIN } from './scene.js';

/** A viewer must finish the handshake (through ClientInit) within this long. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Above this many bytes queued on a viewer's socket, its updates wait for `drain`. */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Input bursts (pointer motion) are coalesced into one redraw this long after the first event. */
export const INPUT_REDRAW_DELAY_MS = 15;
/** Redraw interval while pointer dots are fading. */
export const ANIMATION_FRAME_MS = 50;
/** Entries kept in each observation log (oldest dropped first). */
export const MAX_LOG_ENTRIES = 10_000;

export interface DemoDesktopOptions {
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Listen port; 0 (default) picks a free one. */
  port?: number;
  /** Framebuffer size; default 1024×768. */
  width?: number;
  height?: number;
  /** Machine name, drawn in the title bar and sent in ServerInit; default "Porthole demo". */
  name?: string;
  /** If set, viewers must pass VNC Authentication (only the first 8 bytes count); else None. */
  password?: string;
  /** Background colour; default {@link DEFAULT_BACKGROUND}. */
  background?: Rgb;
}

export interface KeyRecord {
  keysym: number;
  down: boolean;
  /** Date.now() when the server received it. */
  at: number;
}

export interface PointerRecord {
  x: number;
  y: number;
  mask: number;
  at: number;
}

export type DemoInput =
  | ({ kind: 'key' } & KeyRecord)
  | ({ kind: 'pointer' } & PointerRecord)
  | { kind: 'clipboard'; text: string; at: number };

export interface DemoDesktop {
  readonly host: string;
  readonly port: number;
  /** Ends every viewer and stops listening. */
  close(): Promise<void>;
  /** KeyEvents received (all viewers, oldest first, at most MAX_LOG_ENTRIES). */
  readonly keyLog: readonly KeyRecord[];
  /** PointerEvents received. */
  readonly pointerLog: readonly PointerRecord[];
  /** ClientCutText received, decoded as Latin-1 (RFC 6143 §7.5.6). */
  readonly clipboardLog: readonly string[];
  /** Called for every input message; returns an unsubscribe function. */
  onInput(cb: (input: DemoInput) => void): () => void;
  /** Viewers past the handshake (the count shown on screen). */
  clients(): number;
}

interface UpdateRequest {
  incremental: boolean;
  area: Rect;
}

type ViewerState = 'handshaking' | 'running' | 'closed';

interface Viewer {
  readonly socket: Socket;
  state: ViewerState;
  handshake: ServerHandshake;
  framer: ClientMessageFramer | undefined;
  converter: PixelConverter;
  encodings: number[];
  readonly dirty: DirtyRegion;
  pending: UpdateRequest | undefined;
  handshakeTimer: NodeJS.Timeout | undefined;
}

export async function startDemoDesktop(opts: DemoDesktopOptions = {}): Promise<DemoDesktop> {
  const width = opts.width ?? 1024;
  const height = opts.height ?? 768;
  const name = opts.name ?? 'Porthole demo';
  const background = opts.background ?? DEFAULT_BACKGROUND;
  const password = opts.password === undefined ? undefined : Buffer.from(opts.password, 'latin1');
  const scene = new DemoScene({ width, height, name, background });
  const front = new Framebuffer(width, height, packRgb(background));
  const back = new Framebuffer(width, height, packRgb(background));
  scene.render(front, Date.now());

  const viewers = new Set<Viewer>();
  /** Every open socket, including dropped viewers still flushing a farewell, for close(). */
  const sockets = new Set<Socket>();
  const keyLog: KeyRecord[] = [];
  const pointerLog: PointerRecord[] = [];
  const clipboardLog: string[] = [];
  const listeners = new Set<(input: DemoInput) => void>();
  let redrawTimer: NodeJS.Timeout | undefined;
  let clockTimer: NodeJS.Timeout | undefined;
  let closing = false;

  const running = (): Viewer[] => [...viewers].filter((v) => v.state === 'running');

  /** Redraw, hand the damage to every viewer, answer what can be answered, and plan the next frame. */
  const redraw = (): void => {
    if (redrawTimer) clearTimeout(redrawTimer);
    redrawTimer = undefined;
    const live = running();
    if (live.length === 0 || closing) return;
    const now = Date.now();
    scene.render(back, now);
    const damage = back.commitTo(front);
    for (const v of live) {
      for (const r of damage) v.dirty.add(r);
      service(v);
    }
    if (scene.animating(now)) scheduleRedraw(ANIMATION_FRAME_MS);
  };

  const scheduleRedraw = (delay: number): void => {
    if (redrawTimer || closing) return;
    redrawTimer = setTimeout(redraw, delay);
    redrawTimer.unref();
  };

  /** Tick on every wall-clock second so the clock changes exactly when the seconds do. */
  const tick = (): void => {
    redraw();
    if (closing) return;
    clockTimer = setTimeout(tick, 1000 - (Date.now() % 1000) + 2);
    clockTimer.unref();
  };

  const record = <T>(log: T[], entry: T): void => {
    log.push(entry);
    if (log.length > MAX_LOG_ENTRIES) log.splice(0, log.length - MAX_LOG_ENTRIES);
  };

  const emit = (input: DemoInput): void => {
    for (const cb of [...listeners]) {
      try {
        cb(input);
      } catch (err) {
        // An observer's bug must not cost the viewer its session.
        process.emitWarning(`demo desktop onInput listener threw: ${String(err)}`);
      }
    }
  };

  /** Send the viewer's pending update if there is something to send and its socket has room. */
  const service = (v: Viewer): void => {
    const req = v.pending;
    if (!req || v.state !== 'running' || v.socket.writableLength > MAX_BUFFERED_BYTES) return;
    let rects: Rect[];
    if (req.incremental) {
      if (!v.dirty.intersects(req.area)) return;
      rects = v.dirty.takeWithin(req.area);
    } else {
      rects = isEmpty(req.area) ? [] : [req.area];
      v.dirty.forgetWithin(req.area);
    }
    v.pending = undefined;
    const update = encodeFramebufferUpdateRaw(
      rects.map((r) => {
        const pixels = new Uint8Array(v.converter.byteLength(r));
        v.converter.write(front, r, pixels, 0);
        return { x: r.x, y: r.y, width: r.w, height: r.h, pixels };
      }),
    );
    v.socket.write(update);
  };

  const drop = (v: Viewer, farewell: readonly Uint8Array[] = []): void => {
    if (v.state === 'closed') return;
    const wasRunning = v.state === 'running';
    v.state = 'closed';
    if (v.handshakeTimer) clearTimeout(v.handshakeTimer);
    viewers.delete(v);
    if (farewell.length > 0 && !v.socket.destroyed) {
      for (const b of farewell) v.socket.write(b);
      v.socket.end();
      // A peer that never reads its farewell must not keep the socket open.
      setTimeout(() => v.socket.destroy(), 1000).unref();
    } else {
      v.socket.destroy();
    }
    if (wasRunning && scene.setViewers(running().length)) scheduleRedraw(0);
  };

  const onMessage = (v: Viewer, frame: Uint8Array): void => {
    const msg = decodeClientMessage(frame);
    const at = Date.now();
    switch (msg.type) {
      case 'SetPixelFormat': {
        // §7.5.1: applies to updates sent after it; refuse what we cannot produce.
        const why = unsupportedPixelFormat(msg.pixelFormat);
        if (why) throw new RfbError('RFB_UNEXPECTED', 'client', `SetPixelFormat: ${why}`);
        v.converter = new PixelConverter(msg.pixelFormat);
        return;
      }
      case 'SetEncodings':
        // Raw is always allowed (§7.7.1) and the screen size never changes, so this is only remembered.
        v.encodings = msg.encodings;
        return;
      case 'FramebufferUpdateRequest': {
        const area = intersect({ x: msg.x, y: msg.y, w: msg.width, h: msg.height }, front.bounds());
        v.pending = { incremental: msg.incremental, area };
        service(v);
        return;
      }
      case 'KeyEvent': {
        const rec = { keysym: msg.keysym, down: msg.down, at };
        record(keyLog, rec);
        emit({ kind: 'key', ...rec });
        if (scene.key(msg.keysym, msg.down)) scheduleRedraw(INPUT_REDRAW_DELAY_MS);
        return;
      }
      case 'PointerEvent': {
        const rec = { x: msg.x, y: msg.y, mask: msg.buttonMask, at };
        record(pointerLog, rec);
        emit({ kind: 'pointer', ...rec });
        if (scene.pointer(msg.x, msg.y, msg.buttonMask, at)) scheduleRedraw(INPUT_REDRAW_DELAY_MS);
        return;
      }
      case 'ClientCutText': {
        // ExtendedClipboard was never offered, so a negative length is not something we act on.
        if (msg.extended) return;
        const text = Buffer.from(msg.text).toString('latin1');
        record(clipboardLog, text);
        emit({ kind: 'clipboard', text, at });
        if (scene.clipboardText(text)) scheduleRedraw(INPUT_REDRAW_DELAY_MS);
        return;
      }
      case 'Other':
        // Framed but not offered by us (fences, continuous updates, xvp, QEMU…): ignored.
        return;
    }
  };

  const onData = (v: Viewer, chunk: Buffer): void => {
    try {
      let messages: Uint8Array | undefined = chunk;
      if (v.state === 'handshaking') {
        const { reply, done } = v.handshake.feed(chunk);
        for (const b of reply) v.socket.write(b);
        messages = undefined;
        if (done) {
          if (v.handshakeTimer) clearTimeout(v.handshakeTimer);
          v.handshakeTimer = undefined;
          // §7.3.1: shared-flag 0 asks for exclusive access — disconnect everyone else.
          if (!done.shared) for (const other of [...viewers]) if (other !== v) drop(other);
          v.state = 'running';
          v.framer = new ClientMessageFramer();
          // Redraw now (viewer count) so the new viewer's first full update is already current.
          scene.setViewers(running().length);
          redraw();
          v.socket.write(encodeServerInit({ width, height, pixelFormat: DEFAULT_PIXEL_FORMAT, name }));
          messages = done.rest;
        }
      }
      if (messages && v.state === 'running' && v.framer) {
        for (const frame of v.framer.push(messages)) {
          onMessage(v, frame.bytes);
          if (v.state !== 'running') return;
        }
      }
    } catch (err) {
      // Garbage, a wrong password or an unsupported request ends this viewer only.
      drop(v, err instanceof RfbError ? err.farewell : []);
      // Anything else is a bug here, not the viewer's fault: say so, but keep the host process alive.
      if (!(err instanceof RfbError)) process.emitWarning(`demo desktop dropped a viewer: ${String(err)}`);
    }
  };

  const server: Server = createServer((socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const v: Viewer = {
      socket,
      state: 'handshaking',
      handshake: new ServerHandshake(
        password ? { securityTypes: [SecurityType.VNC_AUTH], vncPassword: password } : { securityTypes: [SecurityType.NONE] },
      ),
      framer: undefined,
      converter: new PixelConverter(DEFAULT_PIXEL_FORMAT),
      encodings: [],
      dirty: new DirtyRegion(),
      pending: undefined,
      handshakeTimer: undefined,
    };
    viewers.add(v);
    v.handshakeTimer = setTimeout(() => drop(v), HANDSHAKE_TIMEOUT_MS);
    v.handshakeTimer.unref();
    socket.on('data', (chunk: Buffer) => onData(v, chunk));
    socket.on('drain', () => service(v));
    socket.on('error', () => drop(v));
    socket.on('close', () => drop(v));
    socket.on('end', () => drop(v));
    socket.write(v.handshake.greeting());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  tick();

  return {
    host: address.address,
    port: address.port,
    keyLog,
    pointerLog,
    clipboardLog,
    onInput(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    clients: () => running().length,
    async close() {
      if (closing) return;
      closing = true;
      if (redrawTimer) clearTimeout(redrawTimer);
      if (clockTimer) clearTimeout(clockTimer);
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const v of [...viewers]) drop(v);
      for (const socket of sockets) socket.destroy();
      await done;
    },
  };
}

/** `node --import tsx src/demo/desktop.ts [--port 5999] [--host 127.0.0.1] [--name N] [--password P]` */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      name: { type: 'string' },
      password: { type: 'string' },
    },
  });
  const num = (s: string | undefined): number | undefined => (s === undefined ? undefined : Number(s));
  const desktop = await startDemoDesktop({
    host: values.host,
    port: num(values.port) ?? 5999,
    width: num(values.width),
    height: num(values.height),
    name: values.name,
    password: values.password,
  });
  process.stderr.write(`demo desktop listening on ${desktop.host}:${desktop.port} (vnc://${desktop.host}:${desktop.port})\n`);
  const stop = (): void => void desktop.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // Keep the process alive: the listener is ref'd, the timers are not.
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
