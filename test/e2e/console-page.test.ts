/**
 * The built console page (dist/web, via src/web/assets.ts) in a real chromium, against a small
 * harness instead of the gateway: a node:http server that serves the page under its CSP, and a `ws`
 * server at /vnc/z1/websockify that speaks just enough RFB 3.8 (security None, Raw rects) to paint
 * a known picture. The harness chooses its behaviour by token, the way the gateway's verdict depends
 * on the token:
 *   good  → full session, frame painted, held open
 *   kill  → session, then close 4006 'killed' (an administrator ended it)
 *   idle  → session, then close 4004 with no reason (the code alone must be enough)
 *   drop  → session, then the TCP connection is cut (browser sees 1006 after open)
 *   garbage → not RFB at all: noVNC gives up on its own before any close from the server
 *   bad   → upgrade refused with HTTP 403; token-state says "used"
 *
 * Run: `npm run build` once, then `node --import tsx --test test/e2e/console-page.test.ts`.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { WebSocketServer, type WebSocket } from 'ws';
import { ReasonText } from '../../src/close-codes.js';
import {
  CONSOLE_CSP,
  CONSOLE_SECURITY_HEADERS,
  loadWebAssets,
  renderConsolePage,
  type WebAssets,
} from '../../src/web/assets.js';
import { canvasPixel, launchBrowser, waitForCanvasColour, waitForState, type Rgb } from '../helpers/browser.js';

const FB_WIDTH = 64;
const FB_HEIGHT = 48;
/** The screen colour, #3366CC, with a white 8×8 block in the top-left corner to catch flips and offsets. */
const SCREEN: Rgb = [0x33, 0x66, 0xcc];
const CORNER: Rgb = [0xff, 0xff, 0xff];
const CORNER_SIZE = 8;
/** A desktop name that would become an element if the page used innerHTML (CVE-2017-18635). */
const DESKTOP_NAME = '<img src=x id=injected>demo-vm';
/** How long a scripted session runs before the harness ends it. */
const SESSION_MS = 300;

// ---------------------------------------------------------------------------------------------
// Minimal RFB 3.8 server (RFC 6143): only what noVNC sends and needs for a Raw-encoded screen.

interface PixelFormat {
  bitsPerPixel: number;
  bigEndian: boolean;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

/** Pixel format the server announces in ServerInit (§7.3.2); noVNC replaces it with SetPixelFormat. */
const SERVER_FORMAT: PixelFormat = { bitsPerPixel: 32, bigEndian: false, redShift: 16, greenShift: 8, blueShift: 0 };

interface RfbSession {
  /** Keysym and down flag of every KeyEvent (§7.5.4) received. */
  keys: { keysym: number; down: boolean }[];
  /** Resolves when the first framebuffer update has been sent. */
  firstFrame: Promise<void>;
}

function encodePixel(pf: PixelFormat, [r, g, b]: Rgb, out: Buffer, offset: number): void {
  const value = ((r << pf.redShift) | (g << pf.greenShift) | (b << pf.blueShift)) >>> 0;
  if (pf.bigEndian) out.writeUInt32BE(value, offset);
  else out.writeUInt32LE(value, offset);
}

function rawFrame(pf: PixelFormat): Buffer {
  assert.equal(pf.bitsPerPixel, 32, 'harness only encodes 32 bpp');
  const header = Buffer.alloc(4 + 12);
  header.writeUInt8(0, 0); // FramebufferUpdate (§7.6.1)
  header.writeUInt16BE(1, 2); // one rectangle
  header.writeUInt16BE(0, 4); // x
  header.writeUInt16BE(0, 6); // y
  header.writeUInt16BE(FB_WIDTH, 8);
  header.writeUInt16BE(FB_HEIGHT, 10);
  header.writeInt32BE(0, 12); // Raw encoding (§7.7.1)
  const pixels = Buffer.alloc(FB_WIDTH * FB_HEIGHT * 4);
  for (let y = 0; y < FB_HEIGHT; y++) {
    for (let x = 0; x < FB_WIDTH; x++) {
      const colour = x < CORNER_SIZE && y < CORNER_SIZE ? CORNER : SCREEN;
      encodePixel(pf, colour, pixels, (y * FB_WIDTH + x) * 4);
    }
  }
  return Buffer.concat([header, pixels]);
}

function serverInit(): Buffer {
  const name = Buffer.from(DESKTOP_NAME, 'utf8');
  const b = Buffer.alloc(24 + name.length);
  b.writeUInt16BE(FB_WIDTH, 0);
  b.writeUInt16BE(FB_HEIGHT, 2);
  b.writeUInt8(32, 4); // bits-per-pixel
  b.writeUInt8(24, 5); // depth
  b.writeUInt8(0, 6); // big-endian-flag
  b.writeUInt8(1, 7); // true-colour-flag
  b.writeUInt16BE(255, 8);
  b.writeUInt16BE(255, 10);
  b.writeUInt16BE(255, 12);
  b.writeUInt8(SERVER_FORMAT.redShift, 14);
  b.writeUInt8(SERVER_FORMAT.greenShift, 15);
  b.writeUInt8(SERVER_FORMAT.blueShift, 16);
  b.writeUInt32BE(name.length, 20);
  name.copy(b, 24);
  return b;
}

/** Serves one RFB session over `ws`: a resumable parser over the bytes the browser sends. */
function serveRfb(ws: WebSocket): RfbSession {
  let buf = Buffer.alloc(0);
  let phase: 'version' | 'security' | 'clientinit' | 'messages' = 'version';
  let pf = SERVER_FORMAT;
  let signalFirstFrame: () => void = () => undefined;
  const session: RfbSession = { keys: [], firstFrame: new Promise((resolve) => (signalFirstFrame = resolve)) };

  const protocolError = (why: string): void => {
    ws.close(1002, why.slice(0, 100));
  };

  /** One step of the parser; false when it needs more bytes. */
  const step = (): boolean => {
    switch (phase) {
      case 'version': // §7.1.1
        if (buf.length < 12) return false;
        if (buf.subarray(0, 12).toString('latin1') !== 'RFB 003.008\n') {
          protocolError('unexpected client version');
          return false;
        }
        buf = buf.subarray(12);
        ws.send(Buffer.from([1, 1])); // §7.1.2: one security type, None
        phase = 'security';
        return true;
      case 'security':
        if (buf.length < 1) return false;
        if (buf[0] !== 1) {
          protocolError('client chose a security type other than None');
          return false;
        }
        buf = buf.subarray(1);
        ws.send(Buffer.from([0, 0, 0, 0])); // §7.1.3 SecurityResult OK
        phase = 'clientinit';
        return true;
      case 'clientinit': // §7.3.1
        if (buf.length < 1) return false;
        buf = buf.subarray(1);
        ws.send(serverInit());
        phase = 'messages';
        return true;
      case 'messages': {
        const type = buf[0];
        if (type === undefined) return false;
        let size: number;
        switch (type) {
          case 0: // SetPixelFormat §7.5.1
            size = 20;
            if (buf.length < size) return false;
            pf = {
              bitsPerPixel: buf.readUInt8(4),
              bigEndian: buf.readUInt8(6) !== 0,
              redShift: buf.readUInt8(14),
              greenShift: buf.readUInt8(15),
              blueShift: buf.readUInt8(16),
            };
            break;
          case 2: // SetEncodings §7.5.2
            if (buf.length < 4) return false;
            size = 4 + 4 * buf.readUInt16BE(2);
            if (buf.length < size) return false;
            break;
          case 3: // FramebufferUpdateRequest §7.5.3
            size = 10;
            if (buf.length < size) return false;
            // Incremental requests wait for a change (there never is one); answering them at once
            // would spin a full-frame loop.
            if (buf[1] === 0) {
              ws.send(rawFrame(pf));
              signalFirstFrame();
            }
            break;
          case 4: // KeyEvent §7.5.4
            size = 8;
            if (buf.length < size) return false;
            session.keys.push({ keysym: buf.readUInt32BE(4), down: buf[1] !== 0 });
            break;
          case 5: // PointerEvent §7.5.5
            size = 6;
            if (buf.length < size) return false;
            break;
          case 6: // ClientCutText §7.5.6
            if (buf.length < 8) return false;
            size = 8 + buf.readUInt32BE(4);
            if (buf.length < size) return false;
            break;
          default:
            protocolError(`unexpected client message ${type}`);
            return false;
        }
        buf = buf.subarray(size);
        return true;
      }
    }
  };

  ws.on('message', (data: Buffer) => {
    buf = Buffer.concat([buf, data]);
    while (step());
  });
  ws.send(Buffer.from('RFB 003.008\n')); // §7.1.1: the server speaks first
  return session;
}

// ---------------------------------------------------------------------------------------------
// HTTP + WebSocket harness standing in for the gateway.

interface UpgradeSeen {
  path: string;
  token: string | null;
  host: string | undefined;
  subprotocol: string | undefined;
}

interface Harness {
  origin: string;
  upgrades: UpgradeSeen[];
  sessions: RfbSession[];
  close(): Promise<void>;
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`,
  );
}

async function startHarness(assets: WebAssets): Promise<Harness> {
  const upgrades: UpgradeSeen[] = [];
  const sessions: RfbSession[] = [];
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://harness');
    const prefix = '/vnc/z1/';
    if (req.method !== 'GET' || !url.pathname.startsWith(prefix)) {
      res.writeHead(404).end();
      return;
    }
    const name = url.pathname.slice(prefix.length);
    if (name === 'token-state') {
      const state = url.searchParams.get('token') === 'bad' ? 'used' : 'valid';
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ state }));
      return;
    }
    const asset = assets.get(name);
    if (asset === undefined) {
      res.writeHead(404).end();
      return;
    }
    const headers = { ...CONSOLE_SECURITY_HEADERS, 'content-security-policy': CONSOLE_CSP, 'content-type': asset.contentType };
    if (name.endsWith('.html') && url.searchParams.get('view_only') === '1') {
      res.writeHead(200, headers);
      res.end(renderConsolePage(assets, { viewOnly: true, title: url.searchParams.get('title') ?? undefined }));
      return;
    }
    res.writeHead(200, { ...headers, etag: asset.etag });
    res.end(asset.body);
  };

  const server: Server = createServer(onRequest);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://harness');
    const token = url.searchParams.get('token');
    const protocolHeader = req.headers['sec-websocket-protocol'];
    upgrades.push({ path: url.pathname, token, host: req.headers.host, subprotocol: protocolHeader });
    if (url.pathname !== '/vnc/z1/websockify') {
      refuseUpgrade(socket, 404, 'Not Found');
      return;
    }
    if (token === null || !['good', 'kill', 'idle', 'drop', 'garbage'].includes(token)) {
      refuseUpgrade(socket, 403, 'Forbidden');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (token === 'garbage') {
        ws.send(Buffer.from('HELLO THERE\n')); // 12 bytes, but no RFB version (§7.1.1)
        return;
      }
      const session = serveRfb(ws);
      sessions.push(session);
      void session.firstFrame.then(() => {
        setTimeout(() => {
          if (token === 'kill') ws.close(4006, 'killed');
          else if (token === 'idle') ws.close(4004);
          else if (token === 'drop') ws.terminate();
        }, SESSION_MS);
      });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    upgrades,
    sessions,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The page under test.

interface OpenedPage {
  page: Page;
  context: BrowserContext;
  /** CSP violations seen by the page (`securitypolicyviolation` events and console reports). */
  cspViolations: () => Promise<string[]>;
  /** Every URL the page requested or opened a WebSocket to. */
  urls: string[];
}

let browser: Browser;
let harness: Harness;

async function openConsole(query: string, file = 'vnc_auto.html'): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport: { width: 1024, height: 640 } });
  const page = await context.newPage();
  const urls: string[] = [];
  const consoleReports: string[] = [];
  page.on('request', (req) => urls.push(req.url()));
  page.on('websocket', (ws) => urls.push(ws.url()));
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) consoleReports.push(msg.text());
  });
  // Test instrumentation injected by the driver (not part of the page, not subject to its CSP).
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __cspSeen: string[] }).__cspSeen = seen;
    document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.effectiveDirective} ${e.blockedURI}`));
  });
  await page.goto(`${harness.origin}/vnc/z1/${file}${query}`);
  return {
    page,
    context,
    urls,
    cspViolations: async () => [
      ...(await page.evaluate(() => (window as unknown as { __cspSeen: string[] }).__cspSeen)),
      ...consoleReports,
    ],
  };
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector)) ?? '';
}

describe('console page (built bundle, real chromium, RFB harness)', () => {
  before(async () => {
    harness = await startHarness(loadWebAssets());
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await harness?.close();
  });

  test('top-level ?token= connects, paints the screen and says connected', async () => {
    const before = harness.upgrades.length;
    const { page, context, cspViolations } = await openConsole('?token=good&lang=EN');
    try {
      await waitForState(page, 'connected');
      await waitForCanvasColour(page, SCREEN, 10_000, { x: 40, y: 30 });
      assert.deepEqual((await canvasPixel(page, 2, 2))?.slice(0, 3), [...CORNER], 'top-left corner block');
      assert.deepEqual((await canvasPixel(page, CORNER_SIZE, 2))?.slice(0, 3), [...SCREEN], 'right of the block');
      assert.equal(await text(page, '#state-text'), 'Connected');

      const seen = harness.upgrades.slice(before);
      assert.equal(seen.length, 1);
      const { subprotocol, ...upgrade } = seen[0]!;
      assert.deepEqual(upgrade, { path: '/vnc/z1/websockify', token: 'good', host: new URL(harness.origin).host });
      // Exactly one subprotocol: the page's own key for remote assistance (src/domain/assist-page-key.ts),
      // which the gateway echoes; never the token.
      assert.match(subprotocol ?? '', /^porthole-page\.[A-Za-z0-9_-]{43}$/);

      // The desktop name is shown as text, never parsed as HTML (CVE-2017-18635).
      assert.equal(await text(page, '#machine'), DESKTOP_NAME);
      assert.equal(await page.locator('#injected').count(), 0);
      assert.equal(await page.title(), `${DESKTOP_NAME} · Porthole`);

      await page.screenshot({ path: '/tmp/console-page.png' });
      assert.deepEqual(await cspViolations(), []);
    } finally {
      await context.close();
    }
  });

  for (const [label, query] of [
    ['noVNC path=websockify?token=', '?path=websockify%3Ftoken%3Dgood'],
    ['noVNC path=?token= (vnc_lite form)', '?path=%3Ftoken%3Dgood'],
    ['fragment #path=', '#path=websockify%3Ftoken%3Dgood'],
  ] as const) {
    test(`token in the ${label} form works`, async () => {
      const before = harness.upgrades.length;
      const { page, context, cspViolations } = await openConsole(query, 'vnc_lite.html');
      try {
        await waitForState(page, 'connected');
        await waitForCanvasColour(page, SCREEN);
        assert.deepEqual(
          harness.upgrades.slice(before).map((u) => [u.path, u.token]),
          [['/vnc/z1/websockify', 'good']],
        );
        assert.deepEqual(await cspViolations(), []);
      } finally {
        await context.close();
      }
    });
  }

  test('host, port, encrypt and an absolute path are ignored: it connects only to its own origin', async () => {
    const before = harness.upgrades.length;
    const query =
      '?token=good&host=evil.example&port=1&encrypt=1' +
      '&path=' +
      encodeURIComponent('wss://evil.example:1/websockify?token=stolen');
    const { page, context, urls } = await openConsole(query);
    try {
      await waitForState(page, 'connected');
      await waitForCanvasColour(page, SCREEN);
      const seen = harness.upgrades.slice(before);
      assert.deepEqual(seen.map((u) => [u.path, u.token, u.host]), [['/vnc/z1/websockify', 'good', new URL(harness.origin).host]]);
      const ownHost = new URL(harness.origin).host;
      const foreign = urls.filter((u) => new URL(u).host !== ownHost);
      assert.deepEqual(foreign, [], 'every request and WebSocket stays on the page origin');
      assert.ok(urls.includes(`ws://${ownHost}/vnc/z1/websockify?token=good`), `websocket URL in ${urls.join(', ')}`);
    } finally {
      await context.close();
    }
  });

  test('an absolute path alone lends only its token, not its host', async () => {
    const before = harness.upgrades.length;
    const { page, context, urls } = await openConsole(`?path=${encodeURIComponent('//evil.example/x?token=good')}`);
    try {
      await waitForState(page, 'connected');
      assert.deepEqual(harness.upgrades.slice(before).map((u) => u.path), ['/vnc/z1/websockify']);
      assert.deepEqual(urls.filter((u) => new URL(u).host !== new URL(harness.origin).host), []);
    } finally {
      await context.close();
    }
  });

  test('a refused upgrade (403) is explained from token-state: "already been used"', async () => {
    const { page, context, cspViolations } = await openConsole('?token=bad');
    try {
      const reason = await waitForState(page, 'disconnected');
      assert.equal(reason, 'token_used');
      const words = ReasonText.token_used ?? '';
      assert.match(words, /already been used/);
      assert.equal(await text(page, '#notice-text'), words);
      assert.equal(await text(page, '#reason'), words);
      assert.ok(await page.isVisible('#notice'));
      assert.equal(await text(page, '#state-text'), 'Disconnected');
      assert.deepEqual(await cspViolations(), []);
    } finally {
      await context.close();
    }
  });

  for (const [token, reason, pattern] of [
    ['kill', 'killed', /administrator ended/],
    ['idle', 'idle_timeout', /idle/], // code 4004 with an empty reason: the code alone names it
    ['drop', 'connection_lost', /connection .* was lost/],
    ['garbage', 'console_error', /console connection failed/],
  ] as const) {
    test(`a session ended by ${token} shows the ${reason} words`, async () => {
      const { page, context } = await openConsole(`?token=${token}`);
      try {
        if (token !== 'garbage') {
          await waitForState(page, 'connected');
          await waitForCanvasColour(page, SCREEN);
        }
        assert.equal(await waitForState(page, 'disconnected'), reason);
        assert.match(await text(page, '#notice-text'), pattern);
        assert.ok(await page.isVisible('#notice'));
        assert.ok(await page.isDisabled('#btn-cad'), 'Ctrl-Alt-Del is disabled once disconnected');
        if (token === 'kill') await page.screenshot({ path: '/tmp/console-page-disconnected.png' });
      } finally {
        await context.close();
      }
    });
  }

  test('a link without a token says so and opens no WebSocket', async () => {
    const before = harness.upgrades.length;
    const { page, context } = await openConsole('?lang=EN&host=evil.example');
    try {
      assert.equal(await waitForState(page, 'disconnected'), 'token_invalid');
      assert.equal(await text(page, '#notice-text'), ReasonText.token_invalid);
      assert.equal(harness.upgrades.length, before);
    } finally {
      await context.close();
    }
  });

  test('Ctrl-Alt-Del sends the three keys down and up; scale-to-window toggles', async () => {
    const { page, context } = await openConsole('?token=good');
    try {
      await waitForState(page, 'connected');
      await waitForCanvasColour(page, SCREEN);
      const session = harness.sessions.at(-1);
      assert.ok(session);
      await page.click('#btn-cad');
      const CTRL = 0xffe3;
      const ALT = 0xffe9;
      const DEL = 0xffff;
      const expected = [
        { keysym: CTRL, down: true },
        { keysym: ALT, down: true },
        { keysym: DEL, down: true },
        { keysym: DEL, down: false },
        { keysym: ALT, down: false },
        { keysym: CTRL, down: false },
      ];
      const deadline = Date.now() + 5000;
      while (session.keys.length < expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(session.keys, expected);

      const canvasWidth = (): Promise<number> => page.evaluate(() => document.querySelector('#screen canvas')?.clientWidth ?? -1);
      assert.ok((await canvasWidth()) > FB_WIDTH * 4, 'scaled up to the window by default');
      assert.equal(await page.getAttribute('#btn-scale', 'aria-pressed'), 'true');
      await page.click('#btn-scale');
      assert.equal(await page.getAttribute('#btn-scale', 'aria-pressed'), 'false');
      assert.equal(await canvasWidth(), FB_WIDTH, 'native size with scaling off');
      await page.click('#btn-scale');
      assert.ok((await canvasWidth()) > FB_WIDTH * 4);
    } finally {
      await context.close();
    }
  });

  test('a server-rendered view-only page shows the badge and no Ctrl-Alt-Del while connected', async () => {
    const { page, context } = await openConsole('?token=good&view_only=1');
    try {
      await waitForState(page, 'connected');
      assert.ok(await page.isVisible('#view-only-badge'));
      assert.ok(await page.isDisabled('#btn-cad'));
    } finally {
      await context.close();
    }
  });

  test('a server-rendered title is shown as text until the desktop name replaces it', async () => {
    const title = '"><b id=injected>x</b>';
    // token=bad: no ServerInit ever arrives, so the server's title is what stays on screen.
    const { page, context } = await openConsole(`?token=bad&view_only=1&title=${encodeURIComponent(title)}`);
    try {
      await waitForState(page, 'disconnected');
      assert.equal(await text(page, '#machine'), title);
      assert.equal(await page.locator('#injected').count(), 0);
    } finally {
      await context.close();
    }
  });

  test('the CSP is enforced and the page needs nothing it forbids', async () => {
    const { page, context, cspViolations } = await openConsole('?token=good');
    try {
      await waitForState(page, 'connected');
      await waitForCanvasColour(page, SCREEN);
      assert.deepEqual(await cspViolations(), [], 'no violation during a normal session');

      // Control: an inline <style> must be refused and reported, or the check above proves nothing.
      await page.evaluate(() => {
        const style = document.createElement('style');
        style.textContent = 'body { background: red }';
        document.head.append(style);
      });
      await new Promise((r) => setTimeout(r, 200));
      const violations = await cspViolations();
      assert.ok(violations.some((v) => v.startsWith('style-src-elem inline')), violations.join('\n'));
    } finally {
      await context.close();
    }
  });
});
