/**
 * The interop matrix through the real gateway: every machine is described in a fleet file (endpoint
 * security, CA, servername, policies), so each console goes fleet → store → ConsoleService.redeem →
 * the relay → a real VNC server, and an RFB client on the browser side reads the pixels a user would
 * see. Servers: TigerVNC Xvnc (None, VncAuth, VeNCrypt X509Vnc / X509None with a client certificate /
 * anonymous TLSNone, against a CA made here), QEMU -vnc (None, and VncAuth set over the monitor, and
 * its extended key events), x11vnc on Xvfb, and the demo desktop for view-only, clipboard and
 * exclusive-session policy (it logs every key, click and paste it receives).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { deriveProjectId, deriveResourceId } from '../../src/domain/fleet.js';
import { CloseCode, CloseReason } from '../../src/close-codes.js';
import { ClientHandshake } from '../../src/rfb/client-handshake.js';
import { Encoding, PseudoEncoding } from '../../src/rfb/constants.js';
import {
  encodeClientCutText,
  encodeFramebufferUpdateRequest,
  encodeKeyEvent,
  encodePointerEvent,
  encodeServerCutText,
  encodeSetEncodings,
  encodeFramebufferUpdateRaw,
  solidRawPixels,
  DEFAULT_PIXEL_FORMAT,
  type Rgb,
} from '../../src/rfb/messages.js';
import { ServerStreamFilter } from '../../src/rfb/server-filter.js';
import { call, login, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import { startFakeRfbServer, type FakeRfbServer } from '../helpers/rfb-fake-server.js';
import {
  hexToRgb,
  makeTestPki,
  requireTools,
  startQemu,
  startX11vnc,
  startXvncWith,
  waitForPort,
  type QemuServer,
  type TestPki,
  type XvncServer,
} from '../helpers/vnc-servers.js';
import { connect } from 'node:net';

const skip = requireTools('Xvnc', 'vncpasswd', 'xsetroot', 'openssl', 'qemu-system-x86_64', 'Xvfb', 'x11vnc');

const DOMAIN = 'interop';
const PROJECT = 'matrix';
const projectId = deriveProjectId(DOMAIN, PROJECT);
const idOf = (name: string) => deriveResourceId(projectId, 'cloudserver', name);
const VNC_PW = 'vnc-pw-1';
const QEMU_PW = 'qemu-pw1';
const COLOURS = { none: '#1f77b4', auth: '#2ca02c', tls: '#d62728', x11: '#9467bd', anon: '#8c564b' };

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The RFB WebSocket of a console URL (`…/vnc/{zone}/vnc_auto.html?token=T` → `ws://…/vnc/{zone}/websockify?token=T`). */
function wsUrlOf(url: string): string {
  const u = new URL(url);
  const ws = new URL(u.pathname.replace(/vnc_auto\.html$/, 'websockify'), u);
  ws.protocol = 'ws:';
  ws.searchParams.set('token', u.searchParams.get('token') ?? '');
  return ws.toString();
}

const QEMU_EXT_KEY = (down: boolean, keysym: number, keycode: number): Uint8Array => {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  b[0] = 255;
  v.setUint16(2, down ? 1 : 0);
  v.setUint32(4, keysym);
  v.setUint32(8, keycode);
  return b;
};

describe('interop matrix through the gateway', { skip, timeout: 180_000 }, () => {
  let pki: TestPki;
  let xNone: XvncServer;
  let xAuth: XvncServer;
  let xTls: XvncServer;
  let xAnon: XvncServer;
  let x11: XvncServer;
  let qemu: QemuServer;
  let qemuPw: QemuServer;
  let demo: DemoDesktop;
  let fake: FakeRfbServer;
  let t: TestGateway;
  let token: string;

  before(async () => {
    pki = makeTestPki();
    [xNone, xAuth, xTls, xAnon, x11, qemu, qemuPw, demo, fake] = await Promise.all([
      startXvncWith({ security: 'None', colour: COLOURS.none }),
      startXvncWith({ security: 'VncAuth', password: VNC_PW, colour: COLOURS.auth }),
      startXvncWith({ security: 'X509Vnc,X509None', password: VNC_PW, x509: { certFile: pki.certFile, keyFile: pki.keyFile }, colour: COLOURS.tls }),
      startXvncWith({ security: 'TLSNone', colour: COLOURS.anon }),
      startX11vnc({ password: VNC_PW, colour: COLOURS.x11 }),
      startQemu({ trace: ['ps2_keyboard_event'] }),
      startQemu({ password: QEMU_PW }),
      startDemoDesktop({ host: '127.0.0.1', port: 0, name: 'interop demo' }),
      startFakeRfbServer({ securityTypes: [1], colour: { r: 1, g: 2, b: 3 } }),
    ]);
    const vnc = (port: number) => `vnc://127.0.0.1:${port}`;
    const machine = (name: string, console: Json) => ({ name, console });
    const fleet = {
      domains: [{
        name: DOMAIN,
        users: [{ name: 'root', password: 'root-password-1', domain_admin: true }],
        projects: [{
          name: PROJECT,
          cloudservers: [
            machine('xvnc-none', { url: vnc(xNone.port) }),
            machine('xvnc-auth', { url: vnc(xAuth.port), security: 'vncauth', password: VNC_PW }),
            machine('xvnc-x509vnc', { url: vnc(xTls.port), security: 'vencrypt', password: VNC_PW, ca_cert: pki.ca, servername: 'vnc.test' }),
            machine('xvnc-x509none-cert', { url: vnc(xTls.port), security: 'vencrypt', ca_cert: pki.ca, client_cert: pki.clientCert, client_key: pki.clientKey }),
            machine('xvnc-untrusted', { url: vnc(xTls.port), security: 'vencrypt', password: VNC_PW, ca_cert: pki.otherCa }),
            machine('xvnc-anon', { url: vnc(xAnon.port), security: 'vencrypt', allow_anonymous_tls: true, vencrypt_subtypes: ['tlsnone'] }),
            machine('xvnc-anon-refused', { url: vnc(xAnon.port), security: 'vencrypt', ca_cert: pki.ca }),
            machine('xvnc-wrong-name', { url: vnc(xTls.port), security: 'vencrypt', password: VNC_PW, ca_cert: pki.ca, servername: 'other.test' }),
            machine('x11vnc', { url: vnc(x11.port), security: 'vncauth', password: VNC_PW }),
            machine('qemu', { url: vnc(qemu.port) }),
            machine('qemu-pw', { url: vnc(qemuPw.port), security: 'vncauth', password: QEMU_PW }),
            machine('demo', { url: vnc(demo.port) }),
            machine('demo-exclusive', { url: vnc(demo.port), session_mode: 'exclusive' }),
            machine('fake-to-machine', { url: vnc(fake.port), clipboard: 'to_machine' }),
            machine('fake-from-machine', { url: vnc(fake.port), clipboard: 'from_machine', clipboard_max_bytes: 10 }),
            machine('fake-off', { url: vnc(fake.port), clipboard: 'off' }),
          ],
        }],
      }],
    };
    t = await startTestGateway({ demo: false, fleet: JSON.stringify(fleet) });
    token = await login(t.url, 'root', 'root-password-1', DOMAIN, projectId);
  });
  after(async () => {
    await t?.close();
    await Promise.all([xNone, xAuth, xTls, xAnon, x11, qemu, qemuPw].map((s) => s?.close()));
    await demo?.close();
    await fake?.close();
    pki?.close();
  });

  async function mint(name: string, viewOnly = false): Promise<string> {
    const r = await call(`${t.url}/admin/v1/cloudservers/${idOf(name)}/console-url`, { json: { view_only: viewOnly }, headers: { 'x-auth-token': token } });
    assert.equal(r.status, 201, r.text);
    assert.equal((r.body as Json).console_url.view_only, viewOnly);
    return (r.body as Json).console_url.url as string;
  }
  const open = async (name: string, opts: Parameters<typeof RfbTestClient.connect>[1] = {}, viewOnly = false) =>
    RfbTestClient.connect(wsUrlOf(await mint(name, viewOnly)), opts);

  async function expectColour(name: string, hex: string): Promise<void> {
    const c = await open(name);
    await c.requestUpdate();
    const want: Rgb = hexToRgb(hex);
    let same = 0;
    for (let o = 0; o < c.framebuffer.length; o += 3) if (c.framebuffer[o] === want.r && c.framebuffer[o + 1] === want.g && c.framebuffer[o + 2] === want.b) same++;
    // x11vnc paints its cursor into the framebuffer: allow a few pixels.
    assert.ok(same >= c.width * c.height * 0.99, `${name}: expected ${hex}, got ${JSON.stringify(c.pixel(0, 0))} (${same} of ${c.width * c.height})`);
    c.close();
    await c.closed;
  }

  it('Xvnc None', () => expectColour('xvnc-none', COLOURS.none));
  it('Xvnc VncAuth (the password never reaches the browser)', () => expectColour('xvnc-auth', COLOURS.auth));
  it('Xvnc VeNCrypt X509Vnc: CA from the fleet file, servername checked', () => expectColour('xvnc-x509vnc', COLOURS.tls));
  it('Xvnc VeNCrypt X509None with a client certificate (key sealed in the store)', () => expectColour('xvnc-x509none-cert', COLOURS.tls));
  it('x11vnc on Xvfb, VncAuth', () => expectColour('x11vnc', COLOURS.x11));

  it('Xvnc anonymous TLSNone: only when the endpoint allows it', async () => {
    await expectColour('xvnc-anon', COLOURS.anon);
    const c = await RfbTestClient.open(wsUrlOf(await mint('xvnc-anon-refused')));
    assert.deepEqual(await c.closed, { code: CloseCode.BACKEND_PROTOCOL, reason: CloseReason.BACKEND_PROTOCOL });
  });

  it('an untrusted server certificate: backend_protocol_error, no detail for the browser', async () => {
    const c = await RfbTestClient.open(wsUrlOf(await mint('xvnc-untrusted')));
    assert.deepEqual(await c.closed, { code: CloseCode.BACKEND_PROTOCOL, reason: CloseReason.BACKEND_PROTOCOL });
  });

  it('security #9: with a servername, a certificate for another name is refused (trusted CA or not)', async () => {
    const c = await RfbTestClient.open(wsUrlOf(await mint('xvnc-wrong-name')));
    assert.deepEqual(await c.closed, { code: CloseCode.BACKEND_PROTOCOL, reason: CloseReason.BACKEND_PROTOCOL });
  });

  it('QEMU None and QEMU with a password set over the monitor: the SeaBIOS screen', async () => {
    for (const name of ['qemu', 'qemu-pw']) {
      const c = await open(name);
      assert.equal(c.serverInit?.name, 'QEMU', name);
      await c.requestUpdate();
      assert.deepEqual([c.width, c.height], [720, 400], name);
      let lit = 0;
      for (let o = 0; o < c.framebuffer.length; o += 3) if ((c.framebuffer[o] ?? 0) > 100) lit++;
      assert.ok(lit > 100, `${name}: the BIOS text is on screen (${lit} lit pixels)`);
      c.close();
      await c.closed;
    }
    await qemuPw.monitor('set_password vnc other-pw');
    const c = await RfbTestClient.open(wsUrlOf(await mint('qemu-pw')));
    assert.deepEqual(await c.closed, { code: CloseCode.BACKEND_AUTH_FAILED, reason: CloseReason.BACKEND_AUTH_FAILED });
    await qemuPw.monitor(`set_password vnc ${QEMU_PW}`);
  });

  it('QEMU extended key events pass through: a key by position reaches the guest as that key', async () => {
    const c = await open('qemu', { encodings: [Encoding.RAW, PseudoEncoding.DESKTOP_SIZE, PseudoEncoding.QEMU_EXTENDED_KEY_EVENT] });
    await c.requestUpdate();
    assert.ok(c.pseudoRects.includes(PseudoEncoding.QEMU_EXTENDED_KEY_EVENT), 'QEMU acknowledged extended key events through Porthole');
    const qcodes = async (send: () => void): Promise<string[]> => {
      const from = qemu.stderr.length;
      send();
      await c.requestUpdate(true);
      for (let i = 0; i < 50 && qemu.stderr.slice(from).filter((l) => l.includes('ps2_keyboard_event')).length < 2; i++) await sleep(20);
      return qemu.stderr.slice(from).filter((l) => l.includes('ps2_keyboard_event')).map((l) => /qcode[ =:]+(\d+)/.exec(l)?.[1] ?? l);
    };
    // A US 'q' by keysym, then an AZERTY user's 'a' key: keysym 'a' at the position (XT scancode 0x10) of US 'q'.
    const byKeysym = await qcodes(() => { c.send(encodeKeyEvent(true, 0x71)); c.send(encodeKeyEvent(false, 0x71)); });
    const byPosition = await qcodes(() => { c.send(QEMU_EXT_KEY(true, 0x61, 0x10)); c.send(QEMU_EXT_KEY(false, 0x61, 0x10)); });
    assert.equal(byKeysym.length, 2, `trace: ${byKeysym.join(' | ')}`);
    assert.deepEqual(byPosition, byKeysym, 'the guest gets the key at that position (not the keysym the browser layout produced)');
    const plainA = await qcodes(() => { c.send(encodeKeyEvent(true, 0x61)); c.send(encodeKeyEvent(false, 0x61)); });
    assert.notDeepEqual(plainA, byKeysym, 'sanity: keysym a is a different key');
    c.close();
    await c.closed;
  });

  it('view-only (minted by the admin API): a hostile client cannot type, click, paste, power off or resize; the screen keeps updating', async () => {
    const keys = demo.keyLog.length;
    const clicks = demo.pointerLog.length;
    const pastes = demo.clipboardLog.length;
    const url = await mint('demo', true);
    const page = await call(url);
    assert.match(page.text, /<body[^>]*data-view-only="true"/, 'the page learns view-only from the token');
    const c = await RfbTestClient.connect(wsUrlOf(url), { shared: false });
    await c.requestUpdate();
    const updates = c.updates;
    for (let i = 0; i < 5; i++) {
      c.send(encodeKeyEvent(true, 0x61 + i));
      c.send(encodeKeyEvent(false, 0x61 + i));
      c.send(encodePointerEvent(1, 10 + i, 10));
      c.send(encodePointerEvent(0, 10 + i, 10));
      c.send(encodeClientCutText(new TextEncoder().encode(`rm -rf / #${i}`)));
      c.send(QEMU_EXT_KEY(true, 0x61, 0x1e));
      c.send(Uint8Array.of(250, 0, 1, 2)); // xvp shutdown
      c.send(Uint8Array.of(251, 0, 0, 16, 0, 16, 1, 0, ...new Array(16).fill(0))); // SetDesktopSize
      c.send(encodeSetEncodings([0, PseudoEncoding.EXTENDED_MOUSE_BUTTONS, PseudoEncoding.XVP]));
      await c.requestUpdate();
    }
    await c.requestUpdate(true); // the demo's clock changes the screen every second
    assert.ok(c.updates > updates, 'updates keep coming');
    assert.equal(demo.keyLog.length, keys, 'no key reached the machine');
    assert.equal(demo.pointerLog.length, clicks, 'no click reached the machine');
    assert.equal(demo.clipboardLog.length, pastes, 'no paste reached the machine');
    c.close();
    await c.closed;

    // The same machine with a normal link: input does arrive (the test can fail), and a URL flag does not make a page view-only.
    const normal = await mint('demo');
    assert.doesNotMatch((await call(`${normal}&view_only=1`)).text, /<body[^>]*data-view-only/);
    const d = await RfbTestClient.connect(wsUrlOf(normal));
    d.send(encodeKeyEvent(true, 0x7a));
    await d.requestUpdate();
    for (let i = 0; i < 50 && demo.keyLog.length === keys; i++) await sleep(20);
    assert.equal(demo.keyLog.at(-1)?.keysym, 0x7a);
    d.close();
    await d.closed;
  });

  it('exclusive: a second console is refused before the upgrade (409 console_busy) and its link still works later', async () => {
    const first = await open('demo-exclusive');
    const second = await mint('demo-exclusive');
    await assert.rejects(RfbTestClient.open(wsUrlOf(second)), /HTTP 409/);
    const u = new URL(second);
    const state = await call(`${u.origin}${u.pathname.replace('vnc_auto.html', 'token-state')}?token=${u.searchParams.get('token')}`);
    assert.deepEqual(state.body, { state: 'busy' });
    // A view-only viewer of a shared machine is unaffected; of this one it is refused as well.
    await assert.rejects(RfbTestClient.open(wsUrlOf(await mint('demo-exclusive', true))), /HTTP 409/);
    first.close();
    await first.closed;
    for (let i = 0; i < 100 && (await t.gw.store.sessions.list({ resourceId: idOf('demo-exclusive'), open: true })).length > 0; i++) await sleep(20);
    const again = await RfbTestClient.connect(wsUrlOf(second));
    await again.requestUpdate();
    again.close();
    await again.closed;
  });

  describe('clipboard policy (fake server: it records ClientCutText and sends ServerCutText on demand)', () => {
    const paste = new TextEncoder().encode('from the browser');
    async function exchange(name: string): Promise<{ reachedMachine: string[]; reachedBrowser: string[] }> {
      const before = fake.connections.length;
      const c = await open(name);
      await c.requestUpdate();
      const conn = fake.connections[before];
      assert.ok(conn, 'the fake server saw the console');
      c.send(encodeClientCutText(paste));
      c.send(encodeClientCutText(new Uint8Array(64).fill(0x41)));
      // The machine's clipboard changes (short and long), then a frame follows.
      conn.socket.write(encodeServerCutText(new TextEncoder().encode('machine')));
      conn.socket.write(encodeServerCutText(new Uint8Array(64).fill(0x42)));
      conn.socket.write(encodeFramebufferUpdateRaw([{ x: 0, y: 0, width: 2, height: 2, pixels: solidRawPixels(DEFAULT_PIXEL_FORMAT, 2, 2, { r: 9, g: 9, b: 9 }) }]));
      await c.nextUpdate();
      await c.requestUpdate();
      const dec = new TextDecoder();
      const reachedMachine = conn.messages.flatMap((m) => (m.type === 'ClientCutText' ? [dec.decode(m.text)] : []));
      const reachedBrowser = c.cutTexts.map((b) => dec.decode(b));
      c.close();
      await c.closed;
      return { reachedMachine, reachedBrowser };
    }

    it('to_machine: pastes reach the machine, the machine’s clipboard does not reach the browser', async () => {
      const r = await exchange('fake-to-machine');
      assert.deepEqual(r.reachedMachine, ['from the browser', 'A'.repeat(64)]);
      assert.deepEqual(r.reachedBrowser, []);
    });
    it('from_machine with a 10-byte cap: nothing reaches the machine; short machine text reaches the browser, long text does not', async () => {
      const r = await exchange('fake-from-machine');
      assert.deepEqual(r.reachedMachine, []);
      assert.deepEqual(r.reachedBrowser, ['machine']);
    });
    it('off: neither way', async () => {
      const r = await exchange('fake-off');
      assert.deepEqual(r, { reachedMachine: [], reachedBrowser: [] });
    });
  });

  it('real servers’ streams in the encodings the clipboard framer allows are framed byte-identical (Tight, ZRLE, Hextile, …)', async () => {
    const encodings: number[] = [Encoding.TIGHT, Encoding.ZRLE, Encoding.HEXTILE, Encoding.ZLIB, Encoding.RRE, Encoding.COPY_RECT, Encoding.RAW,
      PseudoEncoding.CURSOR, PseudoEncoding.DESKTOP_SIZE, PseudoEncoding.LAST_RECT, PseudoEncoding.EXTENDED_DESKTOP_SIZE, PseudoEncoding.DESKTOP_NAME,
      PseudoEncoding.QEMU_EXTENDED_KEY_EVENT, PseudoEncoding.QEMU_LED_STATE, PseudoEncoding.FENCE, PseudoEncoding.CONTINUOUS_UPDATES, PseudoEncoding.COMPRESS_LEVEL_0 + 6, PseudoEncoding.QUALITY_LEVEL_0 + 5];
    const targets: [string, number, Uint8Array | undefined][] = [['Xvnc', xNone.port, undefined], ['QEMU', qemu.port, undefined], ['x11vnc', x11.port, new TextEncoder().encode(VNC_PW)]];
    for (const [name, port, password] of targets) {
      for (const enc of [[Encoding.TIGHT], [Encoding.ZRLE], [Encoding.HEXTILE], [Encoding.ZLIB], [Encoding.RRE]] as number[][]) {
        const list = [...enc, ...encodings.filter((e) => !enc.includes(e))];
        const { input, output, messages } = await tap(port, password, list, name === 'Xvnc' ? xNone.display : name === 'x11vnc' ? x11.display : undefined);
        assert.ok(input.length > 100, `${name} ${enc[0]}: got ${input.length} bytes`);
        assert.ok(messages >= 3, `${name} ${enc[0]}: ${messages} messages framed`);
        assert.ok(Buffer.from(output).equals(Buffer.from(input)), `${name} ${enc[0]}: byte-identical`);
      }
    }
  });
});

/**
 * Connects straight to a VNC server, asks for `encodings`, requests a few full updates (changing the
 * root window between them when `display` is given) and runs everything after ServerInit through a
 * ServerStreamFilter that allows all cut text: output must equal input and end on a message boundary.
 */
async function tap(port: number, password: Uint8Array | undefined, encodings: number[], display: number | undefined): Promise<{ input: Uint8Array; output: Uint8Array; messages: number }> {
  await waitForPort(port);
  const { spawnSync } = await import('node:child_process');
  const socket = connect(port, '127.0.0.1');
  const hs = new ClientHandshake({ credential: password ? { type: 'vncauth', password } : { type: 'none' }, shared: true });
  const input: Buffer[] = [];
  const output: Uint8Array[] = [];
  let filter: ServerStreamFilter | undefined;
  let messages = 0;
  let size = { width: 0, height: 0 };
  const countingAllow = () => true;
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      try {
        let rest: Uint8Array = chunk;
        if (!filter) {
          const step = hs.feed(chunk);
          for (const b of step.send) socket.write(b);
          if (!step.done) return;
          filter = new ServerStreamFilter({ pixelFormat: step.done.serverInit.pixelFormat, allowCutText: countingAllow });
          size = { width: step.done.serverInit.width, height: step.done.serverInit.height };
          socket.write(encodeSetEncodings(encodings));
          rest = step.done.rest;
          resolve();
        }
        input.push(Buffer.from(rest));
        output.push(...filter.push(rest).map((b) => Buffer.from(b)));
        messages = filter.messagesFramed;
      } catch (err) {
        reject(err as Error);
        socket.destroy();
      }
    });
  });
  const shades = ['#102030', '#405060', '#708090'];
  for (let i = 0; i < 3; i++) {
    if (display !== undefined) spawnSync('xsetroot', i === 1 ? ['-mod', '3', '5', '-fg', '#ff8800', '-bg', '#0044ff', '-display', `:${display}`] : ['-solid', shades[i] as string, '-display', `:${display}`]);
    socket.write(encodeFramebufferUpdateRequest({ incremental: false, x: 0, y: 0, ...size }));
    await sleep(300);
  }
  socket.destroy();
  assert.ok(filter?.atMessageBoundary, 'the stream ends on a message boundary');
  return { input: Buffer.concat(input), output: Buffer.concat(output), messages };
}
