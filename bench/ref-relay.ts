/**
 * The runtime reference: the plain Node `ws` + `net` relay anyone would write, with backpressure both
 * ways and nothing else (no tokens, no RFB, no limits). `ws://127.0.0.1:P/?port=N` relays to
 * 127.0.0.1:N. TCP → WebSocket: each chunk is one binary message; the socket pauses while more than
 * HIGH bytes wait for the browser and resumes below LOW. WebSocket → TCP: write() → false pauses
 * the WebSocket until 'drain'. A target that closes first gets its tail delivered, then close 1000.
 * Prints {"port"} when listening; answers "gc" on stdin with its memory after a full GC.
 */
import http from 'node:http';
import { connect } from 'node:net';
import { WebSocketServer } from 'ws';
import { memoryAfterGc, reply, serveCommands } from './lib/child-commands.js';
import { profileCommand } from './lib/inspector-profile.js';

const HIGH = 256 * 1024;
const LOW = 64 * 1024;

const server = http.createServer((_req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
let open = 0;

wss.on('connection', (ws, req) => {
  const port = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('port'));
  const socket = connect({ host: '127.0.0.1', port });
  open++;
  socket.setNoDelay(true);
  let paused = false;
  socket.on('data', (chunk) => {
    ws.send(chunk, () => {
      if (paused && ws.bufferedAmount < LOW) { paused = false; socket.resume(); }
    });
    if (!paused && ws.bufferedAmount > HIGH) { paused = true; socket.pause(); }
  });
  socket.on('end', () => ws.close(1000));
  socket.on('error', () => ws.close(1011));
  socket.on('close', () => { if (ws.readyState === ws.OPEN) ws.close(1000); });
  ws.on('message', (data: Buffer) => {
    if (!socket.write(data)) { ws.pause(); socket.once('drain', () => ws.resume()); }
  });
  ws.on('close', () => { open--; socket.end(); });
  ws.on('error', () => socket.destroy());
});

server.listen(0, '127.0.0.1', 4096, () => {
  const addr = server.address();
  reply({ port: typeof addr === 'object' && addr ? addr.port : 0 });
});

serveCommands((cmd) => {
  if (profileCommand(cmd, reply)) return;
  if (cmd === 'gc') reply(memoryAfterGc({ open }));
});
