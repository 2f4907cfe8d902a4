/**
 * runConsoleSession end to end: a real `ws` WebSocketServer on 127.0.0.1:0 whose connection handler
 * runs the session, a WebSocket RFB viewer (test/helpers/rfb-client.ts), and as backends the fake
 * VNC server (test/helpers/rfb-fake-server.ts) and, where installed, TigerVNC Xvnc and QEMU.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket, { WebSocketServer } from 'ws';
import { CloseCode, CloseReason } from '../../src/close-codes.js';
import { runConsoleSession, type BackendTarget, type SessionEnd, type SessionHandle, type SessionOptions } from '../../src/proxy/console-session.js';
import { Encoding, PseudoEncoding } from '../../src/rfb/constants.js';
import { encodeKeyEvent, encodePointerEvent, type Rgb } from '../../src/rfb/messages.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import { startFakeRfbServer, type FakeRfbServer, type FakeServerFault } from '../helpers/rfb-fake-server.js';
import { requireTools } from '../helpers/vnc-servers.js';

const PASSWORD = new TextEncoder().encode('porthole');
const BLUE: Rgb = { r: 0x33, g: 0x66, b: 0xcc };

const BASE: SessionOptions = {
  connectTimeoutMs: 2000,
  handshakeTimeoutMs: 3000,
  idleTimeoutMs: 30_000,
  maxDurationMs: 60_000,
  maxBufferedBytes: 8 * 1024 * 1024,
  closeTimeoutMs: 2000,
};

interface Session {
  handle: SessionHandle;
  end: Promise<SessionEnd>;
  endCalls: number;
  relaying: boolean;
  logs: { obj: object; msg: string }[];
}

interface Gateway {
  url(path?: string): string;
  sessions: Session[];
  close(): Promise<void>;
}

/** A WebSocket server whose sessions go to `route(path)` with `opts`. */
async function startGateway(route: (path: string) => BackendTarget, opts: Partial<SessionOptions> = {}): Promise<Gateway> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const sessions: Session[] = [];
  wss.on('connection', (ws, req) => {
    let resolveEnd!: (e: SessionEnd) => void;
    const s = { endCalls: 0, relaying: false, logs: [] } as unknown as Session;
    s.end = new Promise((r) => (resolveEnd = r));
    s.handle = runConsoleSession(ws, route(req.url ?? '/'), { ...BASE, ...opts }, {
      onRelaying: () => (s.relaying = true),
      onEnd: (e) => {
        s.endCalls++;
        resolveEnd(e);
      },
      log: (obj, msg) => s.logs.push({ obj, msg }),
    });
    sessions.push(s);
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    url: (path = '/') => `ws://127.0.0.1:${port}${path}`,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The session ended with this close code/reason, the viewer saw the same, and onEnd ran once. */
async function expectClosed(gw: Gateway, client: RfbTestClient, name: keyof typeof CloseCode): Promise<SessionEnd> {
  const seen = await client.closed;
  assert.equal(seen.code, CloseCode[name], `viewer close code (reason ${seen.reason})`);
  assert.equal(seen.reason, CloseReason[name]);
  const s = gw.sessions.at(-1) as Session;
  const end = await s.end;
  assert.equal(end.code, CloseCode[name]);
  assert.equal(end.reason, CloseReason[name]);
  await sleep(50);
  assert.equal(s.endCalls, 1, 'onEnd exactly once');
  assert.equal(s.handle.state, 'closed');
  return end;
}

/** A plain WebSocket that speaks no RFB at all. */
async function openRaw(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

const skipPython = requireTools('python3');

/** A 127.0.0.1 port whose (tiny) accept queue is full: connects to it hang. Needs python3. */
async function blackholePort(): Promise<{ port: number; stop(): void }> {
  const script = [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'p = s.getsockname()[1]; fill = []',
    'for i in range(3):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect(("127.0.0.1", p))',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'time.sleep(0.2); print(p, flush=True); sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'ignore'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', () => reject(new Error('blackhole helper exited')));
  });
  return { port, stop: () => child.kill('SIGTERM') };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('console session with the fake VNC server', () => {
  let fake: FakeRfbServer;
  let gw: Gateway;
  before(async () => {
    fake = await startFakeRfbServer({ password: PASSWORD, colour: BLUE, width: 64, height: 48 });
    gw = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }));
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  test('browser gets None, gateway authenticates with VncAuth; pixels arrive; bytes are counted each way', async () => {
    const c = await RfbTestClient.connect(gw.url());
    assert.equal(c.handshake?.version, '3.8');
    assert.equal(c.handshake?.securityType, 1, 'the browser is offered None only');
    assert.deepEqual([c.width, c.height, c.serverInit?.name], [64, 48, 'fake']);
    await c.requestUpdate();
    assert.ok(c.isSolid(BLUE));
    const s = gw.sessions.at(-1) as Session;
    assert.ok(s.relaying);
    c.close(1000);
    const end = await s.end;
    assert.equal(end.code, 1000);
    assert.equal(end.reason, 'client_closed');
    assert.equal(end.bytesToClient, c.bytesReceived);
    const conn = fake.connections.at(-1);
    await until(() => conn?.bytesReceived === end.bytesToBackend);
    // 12 (version) + 1 (type) + 16 (DES response) + 1 (ClientInit) + what the viewer sent after its handshake.
    assert.equal(end.bytesToBackend, 30 + c.bytesSent - 12 - 1 - 1);
    assert.equal(conn?.error, undefined);
    await sleep(20);
    assert.equal(s.endCalls, 1);
  });

  // Regression: QEMU sends an update holding only a DesktopSize rectangle when SeaBIOS switches video
  // mode while booting; the test client took it for an unknown encoding and dropped the connection
  // (1006), which read as the relay failing. The relay must pass it intact and keep relaying.
  test('a DesktopSize rectangle sent unasked (a VNC server changing mode) reaches the viewer intact; updates go on', async () => {
    const c = await RfbTestClient.connect(gw.url());
    await c.requestUpdate(); // SetEncodings (with DesktopSize) has reached the server before this answer
    const before = c.updates;
    // FramebufferUpdate, 1 rectangle: x 0, y 0, 100 × 80, encoding -223 (DesktopSize), no data.
    fake.broadcast(Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 0, 0, 100, 0, 80, 0xff, 0xff, 0xff, 0x21));
    await until(() => c.width === 100 && c.height === 80);
    assert.equal(c.protocolError, undefined);
    await c.requestUpdate();
    assert.ok(c.updates >= before + 2, 'the resize and the next update both arrived');
    c.close(1000);
    const end = await (gw.sessions.at(-1) as Session).end;
    assert.deepEqual([end.code, end.reason], [1000, 'client_closed']);
    assert.equal(end.bytesToClient, c.bytesReceived);
  });

  test('shared flag: passed through unless forceShared/viewOnly', async () => {
    const c = await RfbTestClient.connect(gw.url(), { shared: false });
    await until(() => fake.connections.at(-1)?.shared !== undefined);
    assert.equal(fake.connections.at(-1)?.shared, false);
    c.close();
    const gw2 = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }), { forceShared: true });
    const c2 = await RfbTestClient.connect(gw2.url(), { shared: false });
    await until(() => fake.connections.at(-1)?.shared !== undefined);
    assert.equal(fake.connections.at(-1)?.shared, true);
    c2.close();
    await gw2.sessions[0]?.end;
    await gw2.close();
  });

  test('wrong backend password: backend_auth_failed, one attempt only', async () => {
    const before = fake.connections.length;
    const bad = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: new TextEncoder().encode('nope') } }));
    const c = await RfbTestClient.open(bad.url());
    await assert.rejects(c.ready);
    const end = await expectClosed(bad, c, 'BACKEND_AUTH_FAILED');
    assert.match(end.detail ?? '', /RFB_AUTH_FAILED/);
    assert.equal(fake.connections.length, before + 1, 'no retry');
    await bad.close();
  });

  test('credential none against a VncAuth-only server: backend_protocol_error (no usable type)', async () => {
    const g = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'none' } }));
    const c = await RfbTestClient.open(g.url());
    const end = await expectClosed(g, c, 'BACKEND_PROTOCOL');
    assert.match(end.detail ?? '', /RFB_NO_SECURITY_TYPE/);
    await g.close();
  });

  test('browser protocol errors: text frame, bad version → client_protocol_error', async () => {
    const c = await RfbTestClient.connect(gw.url());
    c.ws.send('hello');
    await expectClosed(gw, c, 'CLIENT_PROTOCOL');

    const raw = await openRaw(gw.url());
    raw.send(Buffer.from('GET / HTTP/1.1\r\n'));
    assert.equal((await closeOf(raw)).code, CloseCode.CLIENT_PROTOCOL);
    const end = await (gw.sessions.at(-1) as Session).end;
    assert.equal(end.reason, CloseReason.CLIENT_PROTOCOL);
    assert.match(end.detail ?? '', /RFB_BAD_VERSION/);
  });

  test('external close (admin kill) reaches the browser with its code', async () => {
    const c = await RfbTestClient.connect(gw.url());
    const s = gw.sessions.at(-1) as Session;
    s.handle.close(CloseCode.KILLED, CloseReason.KILLED);
    s.handle.close(CloseCode.REVOKED, CloseReason.REVOKED); // the first cause wins
    await expectClosed(gw, c, 'KILLED');
  });

  test('view-only: input never reaches the server, SetEncodings is stripped, updates still work', async () => {
    const g = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }), { viewOnly: true });
    const c = await RfbTestClient.connect(g.url(), {
      shared: false,
      encodings: [0, PseudoEncoding.DESKTOP_SIZE, PseudoEncoding.EXTENDED_MOUSE_BUTTONS, PseudoEncoding.XVP, -12345],
    });
    c.send(encodeKeyEvent(true, 0x61));
    c.send(encodePointerEvent(1, 3, 3));
    c.send(Uint8Array.of(250, 0, 1, 2)); // xvp shutdown
    await c.requestUpdate();
    assert.ok(c.isSolid(BLUE));
    const conn = fake.connections.at(-1);
    const types = conn?.messages.map((m) => m.type);
    assert.deepEqual(types, ['SetEncodings', 'FramebufferUpdateRequest']);
    assert.deepEqual(conn?.messages[0], { type: 'SetEncodings', encodings: [0, PseudoEncoding.DESKTOP_SIZE] });
    assert.equal(conn?.shared, true, 'viewers never kick the owner');
    c.close();
    await g.sessions[0]?.end;
    await g.close();
  });

  test('setViewOnly switches a live session both ways without reconnecting', async () => {
    const g = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }));
    const c = await RfbTestClient.connect(g.url(), { encodings: [0, PseudoEncoding.DESKTOP_SIZE, PseudoEncoding.QEMU_EXTENDED_KEY_EVENT] });
    const s = g.sessions[0] as Session;
    const conn = fake.connections.at(-1);
    const keys = (): number[] => (conn?.messages ?? []).flatMap((m) => (m.type === 'KeyEvent' ? [m.keysym] : []));
    c.send(encodeKeyEvent(true, 0x61));
    await c.requestUpdate();
    assert.deepEqual(keys(), [0x61], 'full control: the key reaches the machine');

    s.handle.setViewOnly(true);
    assert.equal(s.handle.viewOnly, true);
    c.send(encodeKeyEvent(true, 0x62));
    c.send(encodePointerEvent(1, 3, 3));
    await c.requestUpdate();
    assert.ok(c.isSolid(BLUE), 'the screen keeps updating while view-only');
    assert.deepEqual(keys(), [0x61], 'view-only: nothing new reached the machine');
    assert.equal(conn?.messages.filter((m) => m.type === 'PointerEvent').length, 0);
    const encs = (conn?.messages ?? []).flatMap((m) => (m.type === 'SetEncodings' ? [m.encodings] : []));
    assert.deepEqual(encs.at(-1), [0, PseudoEncoding.DESKTOP_SIZE], 'the server is told to drop QEMU extended keys');

    s.handle.setViewOnly(false);
    c.send(encodeKeyEvent(true, 0x63));
    await c.requestUpdate();
    assert.deepEqual(keys(), [0x61, 0x63]);
    const encs2 = (conn?.messages ?? []).flatMap((m) => (m.type === 'SetEncodings' ? [m.encodings] : []));
    assert.deepEqual(encs2.at(-1), [0, PseudoEncoding.DESKTOP_SIZE, PseudoEncoding.QEMU_EXTENDED_KEY_EVENT], 'restored on full control');
    assert.equal(s.relaying, true);
    assert.equal(conn?.error, undefined);
    c.close();
    await s.end;
    s.handle.setViewOnly(true); // after the end: a no-op, no throw
    await g.close();
  });

  test('view-only: an unknown message type ends the session as client_protocol_error', async () => {
    const g = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }), { viewOnly: true });
    const c = await RfbTestClient.connect(g.url());
    c.send(Uint8Array.of(127, 0, 0, 0));
    await expectClosed(g, c, 'CLIENT_PROTOCOL');
    await g.close();
  });

  test('idle timeout and max duration', async () => {
    const g = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }), { idleTimeoutMs: 300 });
    const c = await RfbTestClient.connect(g.url());
    const t0 = Date.now();
    await expectClosed(g, c, 'IDLE_TIMEOUT');
    assert.ok(Date.now() - t0 >= 250);
    await g.close();

    const g2 = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }), { maxDurationMs: 400 });
    const c2 = await RfbTestClient.connect(g2.url());
    // Traffic does not extend the maximum duration.
    const keepBusy = setInterval(() => void c2.requestUpdate().catch(() => undefined), 50);
    await expectClosed(g2, c2, 'MAX_DURATION');
    clearInterval(keepBusy);
    await g2.close();
  });
});

describe('console session backend faults', () => {
  const servers: FakeRfbServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  async function faultGateway(fault?: FakeServerFault, extra: Partial<SessionOptions> = {}) {
    const fake = await startFakeRfbServer({ password: PASSWORD, fault });
    servers.push(fake);
    return startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }), extra);
  }

  test('backend port refuses: backend_unreachable', async () => {
    const port = await closedPort();
    const g = await startGateway(() => ({ host: '127.0.0.1', port, credential: { type: 'none' } }));
    const c = await RfbTestClient.open(g.url());
    const end = await expectClosed(g, c, 'BACKEND_UNREACHABLE');
    assert.match(end.detail ?? '', /ECONNREFUSED/);
    await g.close();
  });

  test('backend connect times out: backend_unreachable', { skip: skipPython }, async () => {
    // A listener whose accept queue is full and never drained: Linux drops further SYNs, so the
    // connect hangs (outbound addresses are no use here: some sandboxes accept any TCP connect).
    const { port, stop } = await blackholePort();
    try {
      const g = await startGateway(() => ({ host: '127.0.0.1', port, credential: { type: 'none' } }), { connectTimeoutMs: 300 });
      const c = await RfbTestClient.open(g.url());
      const end = await expectClosed(g, c, 'BACKEND_UNREACHABLE');
      assert.match(end.detail ?? '', /timed out after 300 ms/);
      await g.close();
    } finally {
      stop();
    }
  });

  test('backend accepts but never speaks: handshake_timeout', async () => {
    const g = await faultGateway('silent', { handshakeTimeoutMs: 400 });
    const c = await RfbTestClient.open(g.url());
    const end = await expectClosed(g, c, 'HANDSHAKE_TIMEOUT');
    assert.match(end.detail ?? '', /backend handshake not finished \(version\)/);
    await g.close();
  });

  test('browser never finishes its handshake: handshake_timeout', async () => {
    const g = await faultGateway(undefined, { handshakeTimeoutMs: 300 });
    const ws = await openRaw(g.url()); // reads the greeting, never answers
    const seen = await closeOf(ws);
    assert.equal(seen.code, CloseCode.HANDSHAKE_TIMEOUT);
    const end = await (g.sessions.at(-1) as Session).end;
    assert.equal(end.reason, CloseReason.HANDSHAKE_TIMEOUT);
    assert.match(end.detail ?? '', /browser handshake not finished \(version\)/);
    await g.close();
  });

  test('backend closes mid-handshake: backend_closed', async () => {
    const g = await faultGateway('close-after-version');
    const c = await RfbTestClient.open(g.url());
    const end = await expectClosed(g, c, 'BACKEND_CLOSED');
    assert.match(end.detail ?? '', /during backend handshake/);
    await g.close();
  });

  test('backend sends garbage: backend_protocol_error', async () => {
    const g = await faultGateway('garbage');
    const c = await RfbTestClient.open(g.url());
    const end = await expectClosed(g, c, 'BACKEND_PROTOCOL');
    assert.match(end.detail ?? '', /RFB_BAD_VERSION/);
    await g.close();
  });

  test('backend closes right after a 3 MB update: the whole tail reaches the browser before the close', async () => {
    const fake = await startFakeRfbServer({ password: PASSWORD, fault: 'close-after-first-update', width: 1024, height: 768, colour: BLUE });
    servers.push(fake);
    const g = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }));
    const c = await RfbTestClient.connect(g.url());
    const update = c.requestUpdate();
    await update;
    assert.ok(c.isSolid(BLUE), 'every pixel of the last update arrived');
    const end = await expectClosed(g, c, 'BACKEND_CLOSED');
    assert.equal(end.bytesToClient, c.bytesReceived);
    assert.ok(end.bytesToClient > 1024 * 768 * 4);
    await g.close();
  });

  test('a failing session does not disturb a concurrent one', async () => {
    const good = await startFakeRfbServer({ password: PASSWORD, colour: BLUE });
    servers.push(good);
    const refused = await closedPort();
    const g = await startGateway((path) =>
      path === '/bad'
        ? { host: '127.0.0.1', port: refused, credential: { type: 'none' } }
        : { host: good.host, port: good.port, credential: { type: 'vncauth', password: PASSWORD } },
    );
    const a = await RfbTestClient.connect(g.url('/good'));
    await a.requestUpdate();
    const b = await RfbTestClient.open(g.url('/bad'));
    assert.equal((await b.closed).code, CloseCode.BACKEND_UNREACHABLE);
    a.framebuffer.fill(0);
    await a.requestUpdate();
    assert.ok(a.isSolid(BLUE));
    assert.equal(g.sessions[0]?.handle.state, 'relaying');
    a.close();
    await g.sessions[0]?.end;
    await g.close();
  });
});

/** A TCP server that runs `script` on each connection (a hostile VNC server). */
async function scriptedBackend(script: (socket: import('node:net').Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    script(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

const u32be = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };

describe('hostile backends end only their own session, with a reason', () => {
  const scripts: Record<string, { script: (s: import('node:net').Socket) => void; reason: keyof typeof CloseCode; detail: RegExp; opts?: Partial<SessionOptions>; rawBrowser?: boolean }> = {
    'bad version': { script: (s) => s.write('RFB 002.000\n'), reason: 'BACKEND_PROTOCOL', detail: /RFB_BAD_VERSION/ },
    'huge reason length (never waited for)': {
      script: (s) => { s.write('RFB 003.008\n'); s.once('data', () => s.write(Buffer.concat([Buffer.of(0), u32be(0xfffffff0)]))); },
      reason: 'BACKEND_REFUSED', detail: /RFB_SERVER_REFUSED.*not read/,
    },
    // TigerVNC's answer to a blacklisted host, sent at once and closed: used to end as backend_closed
    // "during waiting for the browser handshake", the server's reason lost.
    'prober: a blacklist refusal before the browser handshake finished': {
      script: (s) => s.end(Buffer.concat([Buffer.from('RFB 003.003\n'), u32be(0), u32be(26), Buffer.from('Too many security failures')])),
      reason: 'BACKEND_REFUSED', detail: /RFB_SERVER_REFUSED: server refused the connection: Too many security failures/, rawBrowser: true,
    },
    'prober: a refusal with its reason': {
      script: (s) => { s.write('RFB 003.008\n'); s.once('data', () => s.end(Buffer.concat([Buffer.of(0), u32be(11), Buffer.from('Go away now')]))); },
      reason: 'BACKEND_REFUSED', detail: /RFB_SERVER_REFUSED: server refused the connection: Go away now/,
    },
    'huge desktop name': {
      script: (s) => {
        s.write('RFB 003.008\n');
        let step = 0;
        s.on('data', () => {
          step++;
          if (step === 1) s.write(Buffer.of(1, 1));
          if (step === 2) s.write(u32be(0));
          if (step === 3) s.write(Buffer.concat([Buffer.alloc(20), u32be(0x7fffffff)]));
        });
      },
      reason: 'BACKEND_PROTOCOL', detail: /RFB_LIMIT_EXCEEDED/,
    },
    'endless bytes before the browser is ready': {
      script: (s) => {
        const flood = () => { while (!s.destroyed && s.write(Buffer.alloc(16 * 1024, 0x52))) { /* fill */ } };
        s.on('drain', flood);
        flood();
      },
      reason: 'BACKEND_PROTOCOL', detail: /before its handshake could start/, rawBrowser: true,
    },
    'stall after the security types': {
      script: (s) => { s.write('RFB 003.008\n'); s.once('data', () => s.write(Buffer.of(1, 1))); },
      reason: 'HANDSHAKE_TIMEOUT', detail: /backend handshake not finished \(securityResult\)/, opts: { handshakeTimeoutMs: 500 },
    },
  };

  test('each ends with its reason while a concurrent good session keeps relaying', async () => {
    const good = await startFakeRfbServer({ password: PASSWORD, colour: BLUE });
    const backends = new Map<string, { port: number; close(): Promise<void> }>();
    for (const [name, s] of Object.entries(scripts)) backends.set(name, await scriptedBackend(s.script));
    const gateways: Gateway[] = [];
    try {
      const g = await startGateway(() => ({ host: good.host, port: good.port, credential: { type: 'vncauth', password: PASSWORD } }));
      gateways.push(g);
      const a = await RfbTestClient.connect(g.url());
      await a.requestUpdate();
      for (const [name, s] of Object.entries(scripts)) {
        const port = backends.get(name)?.port as number;
        const h = await startGateway(() => ({ host: '127.0.0.1', port, credential: { type: 'none' } }), s.opts);
        gateways.push(h);
        let end: SessionEnd;
        if (s.rawBrowser) {
          const ws = await openRaw(h.url()); // never answers the greeting: the backend's bytes pile up
          const seen = await closeOf(ws);
          assert.equal(seen.code, CloseCode[s.reason], name);
          end = await (h.sessions[0] as Session).end;
        } else {
          const c = await RfbTestClient.open(h.url());
          end = await expectClosed(h, c, s.reason);
          assert.doesNotMatch((await c.closed).reason, /RFB_|not read|securityResult/, `${name}: no backend detail for the browser`);
        }
        assert.equal(end.reason, CloseReason[s.reason], name);
        assert.match(end.detail ?? '', s.detail, name);
        a.framebuffer.fill(0);
        await a.requestUpdate();
        assert.ok(a.isSolid(BLUE), `${name}: the good session still works`);
      }
      assert.equal(g.sessions[0]?.handle.state, 'relaying');
      a.close();
    } finally {
      for (const g of gateways) await g.close();
      for (const b of backends.values()) await b.close();
      await good.close();
    }
  });
});

describe('console session backpressure', () => {
  test('a paused browser pauses the backend; resuming delivers everything', async () => {
    const fake = await startFakeRfbServer({ password: PASSWORD, width: 1024, height: 768, colour: BLUE });
    const g = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }), {
      maxBufferedBytes: 4 * 1024 * 1024,
    });
    const c = await RfbTestClient.connect(g.url());
    c.ws.pause(); // the browser stops reading
    const updates: Promise<void>[] = [];
    for (let i = 0; i < 16; i++) updates.push(c.requestUpdate()); // 16 × 3 MB requested
    const conn = fake.connections.at(-1);
    await sleep(800);
    // The gateway stopped reading the backend: most of the 48 MB is still queued in the fake server.
    const stuck = conn?.socket.writableLength ?? 0;
    assert.ok(stuck > 16 * 1024 * 1024, `backend still holds ${stuck} bytes`);
    const s = g.sessions[0] as Session;
    assert.equal(s.handle.state, 'relaying');
    c.ws.resume();
    await Promise.all(updates);
    assert.equal(c.updates, 16);
    assert.ok(c.isSolid(BLUE));
    c.close();
    const end = await s.end;
    assert.equal(end.bytesToClient, c.bytesReceived);
    await g.close();
    await fake.close();
  });

  test('more than maxBufferedBytes waiting for the browser ends the session as slow_consumer', async () => {
    const fake = await startFakeRfbServer({ password: PASSWORD, width: 512, height: 512 });
    const g = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }), {
      maxBufferedBytes: 2048,
      closeTimeoutMs: 300,
    });
    const c = await RfbTestClient.connect(g.url());
    c.ws.pause();
    void c.requestUpdate().catch(() => undefined); // 1 MB in ≥ 64 KiB reads: one read exceeds the ceiling
    const end = await (g.sessions[0] as Session).end;
    assert.equal(end.code, CloseCode.SLOW_CONSUMER);
    assert.match(end.detail ?? '', /waiting for the browser \(limit 2048\)/);
    c.ws.resume();
    await c.closed;
    await g.close();
    await fake.close();
  });

  test('a browser stalled longer than writeStallTimeoutMs ends the session as slow_consumer', async () => {
    const fake = await startFakeRfbServer({ password: PASSWORD, width: 1024, height: 768 });
    const g = await startGateway(() => ({ host: fake.host, port: fake.port, credential: { type: 'vncauth', password: PASSWORD } }), {
      writeStallTimeoutMs: 300,
      closeTimeoutMs: 300,
    });
    const c = await RfbTestClient.connect(g.url());
    c.ws.pause();
    for (let i = 0; i < 16; i++) void c.requestUpdate().catch(() => undefined);
    const end = await (g.sessions[0] as Session).end;
    assert.equal(end.code, CloseCode.SLOW_CONSUMER);
    assert.equal(end.reason, CloseReason.SLOW_CONSUMER);
    c.ws.resume();
    await c.closed;
    await g.close();
    await fake.close();
  });
});

// ---------------------------------------------------------------------------------------------
// Real servers

function freeDisplay(): number {
  for (let n = 40 + Math.floor(Math.random() * 40); n < 99; n++) {
    if (!existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`)) return n;
  }
  throw new Error('no free X display');
}

async function waitForPort(port: number, ms = 5000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`port ${port} did not open`);
    await sleep(50);
  }
}


describe('console session against TigerVNC Xvnc', { skip: requireTools('Xvnc', 'vncpasswd', 'xsetroot') }, () => {
  let xvnc: ChildProcess;
  let dir: string;
  let port: number;
  const ROOT: Rgb = { r: 0x12, g: 0x9a, b: 0x5e };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'porthole-xvnc-'));
    const pw = spawnSync('vncpasswd', ['-f'], { input: 'porthole' });
    assert.equal(pw.status, 0, 'vncpasswd -f');
    writeFileSync(join(dir, 'passwd'), pw.stdout, { mode: 0o600 });
    const display = freeDisplay();
    port = 5900 + display;
    xvnc = spawn(
      'Xvnc',
      [`:${display}`, '-interface', '127.0.0.1', '-nolisten', 'tcp', '-SecurityTypes', 'VncAuth', '-rfbauth', join(dir, 'passwd'), '-geometry', '320x240', '-depth', '24', '-UseBlacklist=0'],
      { stdio: 'ignore' },
    );
    await waitForPort(port);
    const r = spawnSync('xsetroot', ['-solid', '#129a5e', '-display', `:${display}`]);
    assert.equal(r.status, 0, 'xsetroot');
  });
  after(() => {
    xvnc?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  test('VncAuth with the right password: the xsetroot colour arrives in the browser', async () => {
    const g = await startGateway(() => ({ host: '127.0.0.1', port, credential: { type: 'vncauth', password: PASSWORD } }));
    const c = await RfbTestClient.connect(g.url());
    assert.equal(c.handshake?.version, '3.8');
    assert.deepEqual([c.width, c.height], [320, 240]);
    await c.requestUpdate();
    assert.deepEqual(c.pixel(0, 0), ROOT);
    assert.deepEqual(c.pixel(319, 239), ROOT);
    assert.ok(c.isSolid(ROOT));
    c.close();
    const end = await (g.sessions[0] as Session).end;
    assert.ok(end.bytesToClient >= 320 * 240 * 4);
    await g.close();
  });

  test('wrong password: backend_auth_failed with Xvnc’s reason in the detail only', async () => {
    const g = await startGateway(() => ({ host: '127.0.0.1', port, credential: { type: 'vncauth', password: new TextEncoder().encode('wrong') } }));
    const c = await RfbTestClient.open(g.url());
    const end = await expectClosed(g, c, 'BACKEND_AUTH_FAILED');
    assert.match(end.detail ?? '', /Authentication failure/);
    await g.close();
  });

  test('credential none against VncAuth-only Xvnc: backend_protocol_error', async () => {
    const g = await startGateway(() => ({ host: '127.0.0.1', port, credential: { type: 'none' } }));
    const c = await RfbTestClient.open(g.url());
    await expectClosed(g, c, 'BACKEND_PROTOCOL');
    await g.close();
  });
});


/** A throwaway CA and a server certificate for vnc.test / 127.0.0.1 signed by it (EC P-256). */
function makeCerts(dir: string): { ca: string; otherCa: string; cert: string; key: string } {
  const run = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir });
    assert.equal(r.status, 0, `openssl ${args[0]}: ${r.stderr?.toString()}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=porthole-test-ca');
  run('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.pem', '-days', '2', '-subj', '/CN=someone-else');
  run('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=vnc.test');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:vnc.test,IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf');
  return {
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    otherCa: readFileSync(join(dir, 'other.pem'), 'utf8'),
    cert: join(dir, 'srv.pem'),
    key: join(dir, 'srv.key'),
  };
}

describe('console session against Xvnc with VeNCrypt (X509None, X509Vnc)', { skip: requireTools('Xvnc', 'vncpasswd', 'xsetroot', 'openssl') }, () => {
  let xvnc: ChildProcess;
  let dir: string;
  let port: number;
  let certs: ReturnType<typeof makeCerts>;
  const ROOT: Rgb = { r: 0xc0, g: 0x30, b: 0x60 };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'porthole-xvnc-tls-'));
    certs = makeCerts(dir);
    const pw = spawnSync('vncpasswd', ['-f'], { input: 'porthole' });
    writeFileSync(join(dir, 'passwd'), pw.stdout, { mode: 0o600 });
    const display = freeDisplay();
    port = 5900 + display;
    xvnc = spawn(
      'Xvnc',
      [
        `:${display}`, '-interface', '127.0.0.1', '-nolisten', 'tcp', '-geometry', '160x120', '-depth', '24', '-UseBlacklist=0',
        '-SecurityTypes', 'X509None,X509Vnc', '-X509Cert', certs.cert, '-X509Key', certs.key, '-rfbauth', join(dir, 'passwd'),
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(port);
    spawnSync('xsetroot', ['-solid', '#c03060', '-display', `:${display}`]);
  });
  after(() => {
    xvnc?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  const gatewayFor = (credential: BackendTarget['credential']) => startGateway(() => ({ host: '127.0.0.1', port, credential }));

  test('X509None: TLS verified against the CA, pixels arrive', async () => {
    const g = await gatewayFor({ type: 'vencrypt', tls: { ca: certs.ca } });
    const c = await RfbTestClient.connect(g.url());
    await c.requestUpdate();
    assert.ok(c.isSolid(ROOT));
    const s = g.sessions[0] as Session;
    assert.ok(s.logs.some((l) => l.msg === 'backend TLS established' && (l.obj as { subtype: number }).subtype === 260));
    c.close();
    await s.end;
    await g.close();
  });

  test('X509Vnc with the name checked: password over TLS', async () => {
    const g = await gatewayFor({ type: 'vencrypt', password: PASSWORD, tls: { ca: certs.ca, servername: 'vnc.test' } });
    const c = await RfbTestClient.connect(g.url());
    await c.requestUpdate();
    assert.deepEqual([c.width, c.height], [160, 120]);
    assert.ok((g.sessions[0] as Session).logs.some((l) => l.msg === 'backend TLS established' && (l.obj as { subtype: number }).subtype === 261));
    c.close();
    await (g.sessions[0] as Session).end;
    await g.close();
  });

  test('X509Vnc with a wrong password: backend_auth_failed', async () => {
    const g = await gatewayFor({ type: 'vencrypt', password: new TextEncoder().encode('wrong'), tls: { ca: certs.ca } });
    const c = await RfbTestClient.open(g.url());
    await expectClosed(g, c, 'BACKEND_AUTH_FAILED');
    await g.close();
  });

  test('untrusted certificate or wrong name: backend_protocol_error, nothing sent in clear', async () => {
    const g = await gatewayFor({ type: 'vencrypt', password: PASSWORD, tls: { ca: certs.otherCa } });
    const c = await RfbTestClient.open(g.url());
    const end = await expectClosed(g, c, 'BACKEND_PROTOCOL');
    assert.match(end.detail ?? '', /TLS handshake/);
    await g.close();

    const g2 = await gatewayFor({ type: 'vencrypt', tls: { ca: certs.ca, servername: 'other.test' } });
    const c2 = await RfbTestClient.open(g2.url());
    const end2 = await expectClosed(g2, c2, 'BACKEND_PROTOCOL');
    assert.match(end2.detail ?? '', /ERR_TLS_CERT_ALTNAME_INVALID/);
    await g2.close();
  });
});


describe('console session against QEMU (None)', { skip: requireTools('qemu-system-x86_64') }, () => {
  let qemu: ChildProcess;
  let port: number;
  before(async () => {
    const display = freeDisplay();
    port = 5900 + display;
    qemu = spawn('qemu-system-x86_64', ['-nodefaults', '-machine', 'pc', '-accel', 'tcg', '-m', '64', '-vga', 'std', '-vnc', `127.0.0.1:${display}`, '-display', 'none'], {
      stdio: 'ignore',
    });
    await waitForPort(port);
  });
  after(() => {
    qemu?.kill('SIGTERM');
  });

  test('3.8 None: ServerInit and a full update of the SeaBIOS screen, across its boot-time mode switch', async () => {
    const g = await startGateway(() => ({ host: '127.0.0.1', port, credential: { type: 'none' } }));
    try {
      const c = await RfbTestClient.connect(g.url());
      assert.equal(c.serverInit?.name, 'QEMU');
      // A QEMU this fresh is still booting: SeaBIOS switches 640×480 → 720×400 text mode, which reaches
      // a viewer that asked for DesktopSize as an update holding only that rectangle. Ask again until
      // pixels (Raw) have come after the last size change.
      const rawAfterResize = () => c.pseudoRects.lastIndexOf(Encoding.RAW) > c.pseudoRects.lastIndexOf(PseudoEncoding.DESKTOP_SIZE);
      for (let i = 0; i < 10 && !rawAfterResize(); i++) await c.requestUpdate();
      assert.ok(rawAfterResize(), `rectangles seen: ${c.pseudoRects.join(',')}`);
      assert.equal(c.framebuffer.length, c.width * c.height * 3);
      assert.equal(c.protocolError, undefined);
      const s = g.sessions[0] as Session;
      assert.equal(s.handle.state, 'relaying');
      c.close(1000);
      const end = await s.end;
      assert.deepEqual([end.code, end.reason], [1000, 'client_closed']);
      assert.equal(end.bytesToClient, c.bytesReceived);
    } finally {
      await g.close(); // also when an assertion failed: an open gateway would keep the run from exiting
    }
  });
});
