/**
 * The bench's VNC-like target, one process, one port per mode (printed as one JSON line):
 *   stream     on connect, sends `--stream-mib` MiB then a 4-byte CRC-32 (big endian) of them, then
 *              closes first (the case where relays lose the tail)
 *   echo       echoes every byte back (round trips)
 *   idle       accepts and holds (concurrent sessions)
 *   rfb-*      the same three after a minimal RFB 3.8 server handshake with security None
 *              (RFC 6143 §7.1–7.3: version, security types [None], SecurityResult OK, ClientInit →
 *              ServerInit), so Porthole's security proxy can open a real session to it
 * Writes respect backpressure (write() → false waits for 'drain'). Loopback only.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { reply, serveCommands } from './lib/child-commands.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] ?? dflt : dflt;
};
const STREAM_BYTES = Math.round(Number(arg('stream-mib', '256')) * 1024 * 1024);
const CHUNK = 256 * 1024;
const PATTERN = randomBytes(1024 * 1024);

/** CRC-32 of the STREAM_BYTES the stream mode sends (PATTERN repeated). */
function streamCrc(): number {
  let crc = 0;
  for (let sent = 0; sent < STREAM_BYTES; sent += PATTERN.length) crc = crc32(PATTERN.subarray(0, Math.min(PATTERN.length, STREAM_BYTES - sent)), crc);
  return crc >>> 0;
}
const CRC = streamCrc();

const sockets = new Set<Socket>();
let connections = 0;

function stream(socket: Socket): void {
  let sent = 0;
  const pump = () => {
    while (sent < STREAM_BYTES) {
      const off = sent % PATTERN.length;
      const n = Math.min(CHUNK, PATTERN.length - off, STREAM_BYTES - sent);
      sent += n;
      if (!socket.write(PATTERN.subarray(off, off + n))) { socket.once('drain', pump); return; }
    }
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32BE(CRC);
    socket.end(trailer);
  };
  pump();
}

function echo(socket: Socket, first?: Buffer): void {
  if (first && first.length) socket.write(first);
  socket.on('data', (d) => socket.write(d));
}

function serverInit(): Buffer {
  const name = Buffer.from('bench target');
  const b = Buffer.alloc(24 + name.length);
  b.writeUInt16BE(1024, 0);
  b.writeUInt16BE(768, 2);
  // PIXEL_FORMAT: 32 bpp, depth 24, little endian, true colour, max 255, shifts 16/8/0.
  Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).copy(b, 4);
  b.writeUInt32BE(name.length, 20);
  name.copy(b, 24);
  return b;
}
const SERVER_INIT = serverInit();

/** Minimal RFB 3.8 server handshake with security None; calls `then` with any bytes after ClientInit. */
function rfbHandshake(socket: Socket, then: (rest: Buffer) => void): void {
  let phase: 'version' | 'security' | 'init' = 'version';
  let buf: Buffer = Buffer.alloc(0);
  socket.write('RFB 003.008\n');
  const onData = (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    for (;;) {
      if (phase === 'version') {
        if (buf.length < 12) return;
        if (buf.subarray(0, 4).toString() !== 'RFB ') { socket.destroy(); return; }
        buf = buf.subarray(12);
        socket.write(Buffer.from([1, 1])); // one security type: None
        phase = 'security';
      } else if (phase === 'security') {
        if (buf.length < 1) return;
        if (buf[0] !== 1) { socket.destroy(); return; }
        buf = buf.subarray(1);
        socket.write(Buffer.from([0, 0, 0, 0])); // SecurityResult OK (sent for None from 3.8 on)
        phase = 'init';
      } else {
        if (buf.length < 1) return; // ClientInit: shared flag
        socket.off('data', onData);
        socket.write(SERVER_INIT);
        then(buf.subarray(1));
        return;
      }
    }
  };
  socket.on('data', onData);
}

type Mode = 'stream' | 'echo' | 'idle' | 'rfb-stream' | 'rfb-echo' | 'rfb-idle';
const MODES: Mode[] = ['stream', 'echo', 'idle', 'rfb-stream', 'rfb-echo', 'rfb-idle'];

function handler(mode: Mode) {
  return (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setNoDelay(true);
    switch (mode) {
      case 'stream': return stream(socket);
      case 'echo': return echo(socket);
      case 'idle': return;
      case 'rfb-stream': return rfbHandshake(socket, () => stream(socket));
      case 'rfb-echo': return rfbHandshake(socket, (rest) => echo(socket, rest));
      case 'rfb-idle': return rfbHandshake(socket, () => undefined);
    }
  };
}

const servers: Server[] = [];
const ports: Record<string, number> = {};
for (const mode of MODES) {
  const server = createServer(handler(mode));
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  ports[mode] = (server.address() as AddressInfo).port;
  servers.push(server);
}
reply({ ports, streamBytes: STREAM_BYTES, crc: CRC });

serveCommands((cmd) => {
  if (cmd === 'stats') reply({ open: sockets.size, connections });
  else if (cmd === 'drop') {
    for (const s of sockets) s.destroy();
    reply({ dropped: true });
  }
});
