/**
 * A fake VNC server for tests (node:net on 127.0.0.1, port 0) built on the codec's ServerHandshake:
 * serves a solid colour with VNC Authentication (or None), answers non-incremental
 * FramebufferUpdateRequests with Raw rectangles in the viewer's pixel format, and records every
 * client message so tests can see what reached "the machine". `fault` turns it into the broken
 * servers a gateway must survive.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { ClientMessageFramer } from '../../src/rfb/client-message-framer.js';
import { SecurityType } from '../../src/rfb/constants.js';
import { RfbError } from '../../src/rfb/errors.js';
import {
  DEFAULT_PIXEL_FORMAT,
  decodeClientMessage,
  encodeFramebufferUpdateRaw,
  encodeServerInit,
  solidRawPixels,
  type ClientMessage,
  type PixelFormat,
  type Rgb,
} from '../../src/rfb/messages.js';
import { ServerHandshake } from '../../src/rfb/server-handshake.js';

export type FakeServerFault =
  /** Accepts TCP and never sends a byte. */
  | 'silent'
  /** Sends the version, then closes once the client answers. */
  | 'close-after-version'
  /** Sends 64 bytes of junk instead of a version. */
  | 'garbage'
  /** Completes the handshake, sends the first full update, then closes at once (tail delivery). */
  | 'close-after-first-update';

export interface FakeRfbServerOptions {
  width?: number;
  height?: number;
  colour?: Rgb;
  name?: string;
  /** Default [2] (VNC Authentication) with `password`; use [1] for None. */
  securityTypes?: number[];
  password?: Uint8Array;
  fault?: FakeServerFault;
  /** Listen on this port (default 0: any free one). */
  port?: number;
}

export interface FakeConnection {
  socket: Socket;
  shared: boolean | undefined;
  messages: ClientMessage[];
  bytesReceived: number;
  /** Set when the viewer's bytes were not valid RFB (the connection is then dropped). */
  error: Error | undefined;
}

export interface FakeRfbServer {
  host: string;
  port: number;
  connections: FakeConnection[];
  /** Sends raw bytes to every connected viewer (after their ServerInit). */
  broadcast(bytes: Uint8Array): void;
  close(): Promise<void>;
}

export async function startFakeRfbServer(opts: FakeRfbServerOptions = {}): Promise<FakeRfbServer> {
  const width = opts.width ?? 64;
  const height = opts.height ?? 48;
  const colour = opts.colour ?? { r: 0x33, g: 0x66, b: 0xcc };
  const securityTypes = opts.securityTypes ?? [SecurityType.VNC_AUTH];
  const connections: FakeConnection[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    const conn: FakeConnection = { socket, shared: undefined, messages: [], bytesReceived: 0, error: undefined };
    connections.push(conn);
    if (opts.fault === 'silent') {
      socket.on('data', (d) => (conn.bytesReceived += d.length));
      return;
    }
    if (opts.fault === 'garbage') {
      socket.write(Buffer.alloc(64, 0x5a));
      return;
    }
    const hs = new ServerHandshake({ securityTypes, vncPassword: opts.password });
    let framer: ClientMessageFramer | undefined;
    let pf: PixelFormat = DEFAULT_PIXEL_FORMAT;
    let updatesSent = 0;
    socket.write(hs.greeting());

    const onMessage = (m: ClientMessage): void => {
      conn.messages.push(m);
      if (m.type === 'SetPixelFormat') pf = m.pixelFormat;
      if (m.type === 'FramebufferUpdateRequest' && !m.incremental) {
        const w = Math.min(m.width, width - m.x);
        const h = Math.min(m.height, height - m.y);
        socket.write(encodeFramebufferUpdateRaw([{ x: m.x, y: m.y, width: w, height: h, pixels: solidRawPixels(pf, w, h, colour) }]));
        updatesSent++;
        if (opts.fault === 'close-after-first-update' && updatesSent === 1) socket.end();
      }
    };

    socket.on('data', (chunk) => {
      conn.bytesReceived += chunk.length;
      try {
        let rest: Uint8Array | undefined = chunk;
        if (!framer) {
          if (opts.fault === 'close-after-version') {
            socket.end();
            return;
          }
          const step = hs.feed(chunk);
          for (const b of step.reply) socket.write(b);
          rest = undefined;
          if (step.done) {
            conn.shared = step.done.shared;
            framer = new ClientMessageFramer();
            socket.write(encodeServerInit({ width, height, pixelFormat: DEFAULT_PIXEL_FORMAT, name: opts.name ?? 'fake' }));
            rest = step.done.rest;
          }
        }
        if (rest && framer) for (const f of framer.push(rest)) onMessage(decodeClientMessage(f.bytes));
      } catch (err) {
        conn.error = err as Error;
        if (err instanceof RfbError) for (const b of err.farewell) socket.write(b);
        socket.end();
      }
    });
  });

  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(opts.port ?? 0, '127.0.0.1', resolve); });
  const port = (server.address() as AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    connections,
    broadcast(bytes) {
      for (const c of connections) if (c.shared !== undefined && !c.socket.destroyed) c.socket.write(bytes);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
