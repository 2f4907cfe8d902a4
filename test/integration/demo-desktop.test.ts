/**
 * The built-in demo desktop as a viewer sees it: a compact raw-TCP RFB client (written here against
 * RFC 6143 byte layouts, so it checks the wire rather than trusting src/rfb's encoders) connects to
 * real desktops on port 0, authenticates, reads ServerInit and FramebufferUpdates into a mirror of
 * the screen, sends input and checks what the machine side observed. A decoded full frame is saved
 * to /tmp/demo-desktop.png for a human to look at.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { vncAuthResponse } from '../../src/rfb/des.js';
import { startDemoDesktop, GUARANTEED_MARGIN, type DemoDesktop } from '../../src/demo/desktop.js';
import { encodePng } from '../../src/demo/png.js';

const BACKGROUND: [number, number, number] = [10, 20, 30];
const BG = (10 << 16) | (20 << 8) | 30;

interface PixelFormat {
  bpp: number;
  depth: number;
  bigEndian: boolean;
  trueColour: boolean;
  max: [number, number, number];
  shift: [number, number, number];
}

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
  encoding: number;
  data: Buffer;
}

/** A minimal RFB viewer over TCP: reads exact byte counts, keeps a 0xRRGGBB mirror of the screen. */
class TcpViewer {
  /** Received bytes not yet read, as they arrived (concatenated only when a read needs them). */
  private chunks: Buffer[] = [];
  private have = 0;
  private wake: (() => void) | undefined;
  private ended = false;
  readonly closed: Promise<void>;
  width = 0;
  height = 0;
  name = '';
  pf: PixelFormat | undefined;
  screen = new Uint32Array(0);
  bytesReceived = 0;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.bytesReceived += chunk.length;
      this.chunks.push(chunk);
      this.have += chunk.length;
      this.wake?.();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.wake?.();
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  static async open(port: number): Promise<TcpViewer> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new TcpViewer(socket);
  }

  /** Exactly `n` bytes, or throws if the server closes first or `timeoutMs` passes. */
  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.have < n) {
      if (this.ended) throw new Error(`connection closed while waiting for ${n} bytes (have ${this.have})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.have})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.have = rest.length;
    return all.subarray(0, n);
  }

  /** Resolves when the server has closed the connection; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the server did not close the connection')), timeoutMs);
    });
    try {
      await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  write(bytes: Uint8Array | number[]): void {
    this.socket.write(Uint8Array.from(bytes));
  }

  /** The whole handshake through ServerInit. Returns the security types offered (3.7+). */
  async handshake(opts: { version?: '3.3' | '3.7' | '3.8'; password?: string; shared?: boolean } = {}): Promise<number[]> {
    const version = opts.version ?? '3.8';
    assert.equal((await this.read(12)).toString('latin1'), 'RFB 003.008\n');
    this.write([...Buffer.from(`RFB 003.00${version.slice(2)}\n`, 'latin1')]);
    let offered: number[];
    let type: number;
    if (version === '3.3') {
      type = (await this.read(4)).readUInt32BE(0);
      offered = [type];
    } else {
      const count = (await this.read(1))[0]!;
      offered = [...(await this.read(count))];
      type = offered[0]!;
      this.write([type]);
    }
    if (type === 2) {
      const challenge = await this.read(16);
      this.write([...vncAuthResponse(Buffer.from(opts.password ?? '', 'latin1'), challenge)]);
    }
    if (type === 2 || version === '3.8') {
      const result = (await this.read(4)).readUInt32BE(0);
      if (result !== 0) {
        const reason = version === '3.8' ? (await this.read((await this.read(4)).readUInt32BE(0))).toString() : '';
        throw new Error(`SecurityResult ${result}: ${reason}`);
      }
    }
    this.write([opts.shared === false ? 0 : 1]);
    const init = await this.read(24);
    this.width = init.readUInt16BE(0);
    this.height = init.readUInt16BE(2);
    this.pf = decodePixelFormat(init.subarray(4, 20));
    this.name = (await this.read(init.readUInt32BE(20))).toString('utf8');
    this.screen = new Uint32Array(this.width * this.height);
    return offered;
  }

  setPixelFormat(pf: PixelFormat): void {
    const b = Buffer.alloc(20);
    b[0] = 0;
    b[4] = pf.bpp;
    b[5] = pf.depth;
    b[6] = pf.bigEndian ? 1 : 0;
    b[7] = pf.trueColour ? 1 : 0;
    b.writeUInt16BE(pf.max[0], 8);
    b.writeUInt16BE(pf.max[1], 10);
    b.writeUInt16BE(pf.max[2], 12);
    b[14] = pf.shift[0];
    b[15] = pf.shift[1];
    b[16] = pf.shift[2];
    this.write([...b]);
    this.pf = pf;
  }

  requestUpdate(incremental: boolean, x = 0, y = 0, w = this.width, h = this.height): void {
    const b = Buffer.alloc(10);
    b[0] = 3;
    b[1] = incremental ? 1 : 0;
    b.writeUInt16BE(x, 2);
    b.writeUInt16BE(y, 4);
    b.writeUInt16BE(w, 6);
    b.writeUInt16BE(h, 8);
    this.write([...b]);
  }

  key(down: boolean, keysym: number): void {
    const b = Buffer.alloc(8);
    b[0] = 4;
    b[1] = down ? 1 : 0;
    b.writeUInt32BE(keysym, 4);
    this.write([...b]);
  }

  type(text: string): void {
    for (const ch of text) {
      this.key(true, ch.charCodeAt(0));
      this.key(false, ch.charCodeAt(0));
    }
  }

  pointer(mask: number, x: number, y: number): void {
    const b = Buffer.alloc(6);
    b[0] = 5;
    b[1] = mask;
    b.writeUInt16BE(x, 2);
    b.writeUInt16BE(y, 4);
    this.write([...b]);
  }

  cutText(text: string): void {
    const t = Buffer.from(text, 'latin1');
    const b = Buffer.alloc(8);
    b[0] = 6;
    b.writeUInt32BE(t.length, 4);
    this.write([...b, ...t]);
  }

  /** Reads one FramebufferUpdate (§7.6.1, Raw rectangles only) and applies it to the mirror. */
  async readUpdate(timeoutMs = 5000): Promise<Rect[]> {
    const head = await this.read(4, timeoutMs);
    assert.equal(head[0], 0, `expected FramebufferUpdate, got message type ${head[0]}`);
    const pf = this.pf!;
    const bytesPerPixel = pf.bpp / 8;
    const rects: Rect[] = [];
    for (let i = 0; i < head.readUInt16BE(2); i++) {
      const r = await this.read(12);
      const rect = { x: r.readUInt16BE(0), y: r.readUInt16BE(2), w: r.readUInt16BE(4), h: r.readUInt16BE(6), encoding: r.readInt32BE(8) };
      assert.equal(rect.encoding, 0, 'only Raw rectangles are expected');
      assert.ok(rect.x + rect.w <= this.width && rect.y + rect.h <= this.height, 'rectangle inside the screen');
      const data = await this.read(rect.w * rect.h * bytesPerPixel);
      const native = pf.bpp === 32 && !pf.bigEndian && pf.shift.join() === '16,8,0' && pf.max.join() === '255,255,255';
      for (let row = 0; row < rect.h; row++) {
        for (let col = 0; col < rect.w; col++) {
          const o = (row * rect.w + col) * bytesPerPixel;
          this.screen[(rect.y + row) * this.width + rect.x + col] = native ? data.readUInt32LE(o) & 0xffffff : decodePixel(pf, data, o);
        }
      }
      rects.push({ ...rect, data });
    }
    return rects;
  }

  pixel(x: number, y: number): number {
    return this.screen[y * this.width + x]!;
  }

  close(): void {
    this.socket.destroy();
  }
}

function decodePixelFormat(b: Buffer): PixelFormat {
  return {
    bpp: b[0]!,
    depth: b[1]!,
    bigEndian: b[2] !== 0,
    trueColour: b[3] !== 0,
    max: [b.readUInt16BE(4), b.readUInt16BE(6), b.readUInt16BE(8)],
    shift: [b[10]!, b[11]!, b[12]!],
  };
}

/** One pixel in `pf` as 0xRRGGBB with channels scaled back to 8 bits. */
function decodePixel(pf: PixelFormat, data: Buffer, offset: number): number {
  const n = pf.bpp / 8;
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + data[offset + (pf.bigEndian ? i : n - 1 - i)]!;
  const ch = (k: 0 | 1 | 2): number => Math.round(((Math.floor(v / 2 ** pf.shift[k]) & pf.max[k]) * 255) / pf.max[k]);
  return (ch(0) << 16) | (ch(1) << 8) | ch(2);
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Whether the whole edge frame of width GUARANTEED_MARGIN is exactly `colour`. */
function frameIs(v: TcpViewer, colour: number): boolean {
  for (let y = 0; y < v.height; y++) {
    for (let x = 0; x < v.width; x++) {
      const edge = x < GUARANTEED_MARGIN || y < GUARANTEED_MARGIN || x >= v.width - GUARANTEED_MARGIN || y >= v.height - GUARANTEED_MARGIN;
      if (edge && v.pixel(x, y) !== colour) return false;
    }
  }
  return true;
}

function rgbDiffers(a: Uint32Array, b: Uint32Array, area: { x: number; y: number; w: number; h: number }, width: number): boolean {
  for (let y = area.y; y < area.y + area.h; y++) {
    for (let x = area.x; x < area.x + area.w; x++) if (a[y * width + x] !== b[y * width + x]) return true;
  }
  return false;
}

describe('demo desktop (RFB server)', () => {
  let desktop: DemoDesktop;
  let locked: DemoDesktop;
  const viewers: TcpViewer[] = [];
  const viewer = async (d: DemoDesktop = desktop): Promise<TcpViewer> => {
    const v = await TcpViewer.open(d.port);
    viewers.push(v);
    return v;
  };

  before(async () => {
    desktop = await startDemoDesktop({ name: 'demo-ecs-01', background: BACKGROUND });
    locked = await startDemoDesktop({ width: 320, height: 200, name: 'locked', password: 'secret-pw' });
  });

  after(async () => {
    for (const v of viewers) v.close();
    await desktop.close();
    await locked.close();
  });

  it('offers None and sends ServerInit with the size, name and a 32-bit true-colour format', async () => {
    const v = await viewer();
    assert.deepEqual(await v.handshake(), [1]);
    assert.equal(v.width, 1024);
    assert.equal(v.height, 768);
    assert.equal(v.name, 'demo-ecs-01');
    assert.deepEqual(v.pf, { bpp: 32, depth: 24, bigEndian: false, trueColour: true, max: [255, 255, 255], shift: [16, 8, 0] });
    v.close();
  });

  it('speaks the 3.3 and 3.7 handshakes too', async () => {
    for (const version of ['3.3', '3.7'] as const) {
      const v = await viewer();
      assert.deepEqual(await v.handshake({ version }), [1]);
      assert.equal(v.name, 'demo-ecs-01');
      v.requestUpdate(false, 0, 0, 8, 8);
      await v.readUpdate();
      assert.equal(v.pixel(0, 0), BG);
      v.close();
    }
  });

  it('requires VNC Authentication when a password is set: the right one passes', async () => {
    const v = await viewer(locked);
    assert.deepEqual(await v.handshake({ password: 'secret-pw' }), [2]);
    assert.equal(v.name, 'locked');
    assert.equal(v.width, 320);
    await waitFor('the viewer to count', () => locked.clients() === 1);
    v.close();
  });

  it('refuses a wrong VNC password with SecurityResult failed and a reason, then closes', async () => {
    const v = await viewer(locked);
    await assert.rejects(v.handshake({ password: 'wrong' }), /SecurityResult 1: Authentication failed/);
    await v.waitClosed();
    const v33 = await viewer(locked);
    await assert.rejects(v33.handshake({ version: '3.3', password: 'wrong' }), /SecurityResult 1/);
    await v33.waitClosed();
  });

  it('sends a full frame whose edge frame is exactly the background colour', async () => {
    const v = await viewer();
    await v.handshake();
    v.requestUpdate(false);
    const rects = await v.readUpdate();
    assert.deepEqual(rects.map(({ x, y, w, h }) => ({ x, y, w, h })), [{ x: 0, y: 0, w: 1024, h: 768 }]);
    assert.ok(frameIs(v, BG), 'edge frame is the background');
    // Something is drawn inside (title bar, text), so the frame is not just background.
    assert.ok(v.screen.some((p) => p !== BG));
    v.close();
  });

  it('honours SetPixelFormat: 16 bpp big-endian RGB565 and 8 bpp BGR233', async () => {
    const v = await viewer();
    await v.handshake();
    v.setPixelFormat({ bpp: 16, depth: 16, bigEndian: true, trueColour: true, max: [31, 63, 31], shift: [11, 5, 0] });
    v.requestUpdate(false, 0, 0, 16, 16);
    const [rect] = await v.readUpdate();
    // (10,20,30) → r round(10·31/255)=1, g round(20·63/255)=5, b round(30·31/255)=4 → 0x08a4, big-endian.
    assert.deepEqual([...rect!.data.subarray(0, 2)], [0x08, 0xa4]);
    assert.equal(rect!.data.length, 16 * 16 * 2);
    v.setPixelFormat({ bpp: 8, depth: 8, bigEndian: false, trueColour: true, max: [7, 7, 3], shift: [0, 3, 6] });
    v.requestUpdate(false, 0, 0, 4, 4);
    const [rect8] = await v.readUpdate();
    // r round(10·7/255)=0, g round(20·7/255)=1, b round(30·3/255)=0 → 0x08.
    assert.deepEqual([...rect8!.data], new Array(16).fill(0x08));
    v.close();
  });

  it('disconnects a viewer that asks for a colour-map pixel format, and only that viewer', async () => {
    const good = await viewer();
    await good.handshake();
    const bad = await viewer();
    await bad.handshake();
    bad.setPixelFormat({ bpp: 8, depth: 8, bigEndian: false, trueColour: false, max: [0, 0, 0], shift: [0, 0, 0] });
    await bad.waitClosed();
    good.requestUpdate(false, 0, 0, 4, 4);
    await good.readUpdate();
    good.close();
  });

  it('shows typed keys: "hi" arrives in keyLog and changes the text area', async () => {
    const v = await viewer();
    await v.handshake();
    v.requestUpdate(false);
    await v.readUpdate();
    const before = v.screen.slice();
    const from = desktop.keyLog.length;
    v.type('hi');
    await waitFor('4 key events', () => desktop.keyLog.length >= from + 4);
    assert.deepEqual(
      desktop.keyLog.slice(from).map(({ keysym, down }) => ({ keysym, down })),
      [
        { keysym: 0x68, down: true },
        { keysym: 0x68, down: false },
        { keysym: 0x69, down: true },
        { keysym: 0x69, down: false },
      ],
    );
    // Collect incremental updates until the text panel (below the title and status lines) changed.
    const textArea = { x: 16, y: 140, w: 400, h: 40 };
    const deadline = Date.now() + 3000;
    while (!rgbDiffers(before, v.screen, textArea, v.width)) {
      assert.ok(Date.now() < deadline, 'the typed text appears on screen');
      v.requestUpdate(true);
      await v.readUpdate();
    }
    assert.ok(frameIs(v, BG));
    v.close();
  });

  it('records pointer events and clipboard text, and tells onInput listeners', async () => {
    const v = await viewer();
    await v.handshake();
    const seen: string[] = [];
    const off = desktop.onInput((input) => seen.push(input.kind));
    const from = desktop.pointerLog.length;
    v.pointer(0, 100, 200);
    v.pointer(1, 110, 210);
    v.pointer(0, 120, 220);
    v.cutText('copied from the browser');
    await waitFor('pointer events', () => desktop.pointerLog.length >= from + 3 && desktop.clipboardLog.length > 0);
    assert.deepEqual(
      desktop.pointerLog.slice(from).map(({ x, y, mask }) => ({ x, y, mask })),
      [
        { x: 100, y: 200, mask: 0 },
        { x: 110, y: 210, mask: 1 },
        { x: 120, y: 220, mask: 0 },
      ],
    );
    assert.equal(desktop.clipboardLog.at(-1), 'copied from the browser');
    assert.deepEqual(seen, ['pointer', 'pointer', 'pointer', 'clipboard']);
    off();
    v.pointer(0, 1, 1);
    await waitFor('one more pointer event', () => desktop.pointerLog.length >= from + 4);
    assert.equal(seen.length, 4, 'unsubscribed listener is not called');
    v.close();
  });

  it('sends an incremental update within ~2 s without input, because the clock ticks', async () => {
    const v = await viewer();
    await v.handshake();
    v.requestUpdate(false);
    await v.readUpdate();
    const started = Date.now();
    v.requestUpdate(true);
    const rects = await v.readUpdate(2500);
    assert.ok(Date.now() - started < 2200, `update after ${Date.now() - started} ms`);
    assert.ok(rects.length > 0);
    // Only what changed is sent, not the whole screen.
    const area = rects.reduce((n, r) => n + r.w * r.h, 0);
    assert.ok(area < (1024 * 768) / 4, `incremental update covers ${area} pixels`);
    v.close();
  });

  it('does not answer an incremental request for an area that did not change', async () => {
    const v = await viewer();
    await v.handshake();
    v.requestUpdate(false);
    await v.readUpdate();
    // The top-left 16×16 is guaranteed background: it never changes, so no reply may come.
    v.requestUpdate(true, 0, 0, 16, 16);
    await assert.rejects(v.readUpdate(1500), /timed out/);
    v.close();
  });

  it('shared-flag 0 disconnects the other viewers; the exclusive viewer keeps working', async () => {
    const a = await viewer();
    await a.handshake();
    const b = await viewer();
    await b.handshake({ shared: false });
    await a.waitClosed();
    await waitFor('one viewer left', () => desktop.clients() === 1);
    b.requestUpdate(false, 0, 0, 32, 32);
    await b.readUpdate();
    assert.equal(b.pixel(0, 0), BG);
    b.close();
    await waitFor('no viewers', () => desktop.clients() === 0);
  });

  it('drops a viewer that sends garbage, while another keeps working', async () => {
    const good = await viewer();
    await good.handshake();
    const bad = await viewer();
    await bad.handshake();
    bad.write([0x99, 1, 2, 3, 4, 5, 6, 7]);
    await bad.waitClosed();
    const junk = await viewer();
    await junk.read(12);
    junk.write([...Buffer.from('GET / HTTP/1.1\r\n\r\n')]);
    await junk.waitClosed();
    good.requestUpdate(false, 0, 0, 8, 8);
    await good.readUpdate();
    good.type('x');
    await waitFor('the key', () => desktop.keyLog.at(-1)?.keysym === 0x78);
    good.close();
  });

  it('survives a viewer that disconnects abruptly in the middle of a full update', async () => {
    const gone = await viewer();
    await gone.handshake();
    gone.requestUpdate(false);
    gone.close();
    await waitFor('the viewer to leave', () => desktop.clients() === 0);
    const v = await viewer();
    await v.handshake();
    v.requestUpdate(false);
    await v.readUpdate();
    assert.equal(v.pixel(0, 0), BG);
    v.close();
  });

  it('stops sending to a viewer that does not read (buffered bytes ceiling) and catches up after', async () => {
    const v = await viewer();
    await v.handshake();
    v.socket.pause();
    // 40 full frames would be 120 MiB; the server may only queue about 4 MiB beyond the kernel buffers.
    for (let i = 0; i < 40; i++) v.requestUpdate(false);
    await sleep(500);
    v.socket.resume();
    let updates = 0;
    for (;;) {
      try {
        await v.readUpdate(1000);
        updates++;
      } catch {
        break;
      }
    }
    assert.ok(updates >= 2 && updates < 15, `${updates} full updates sent for 40 requests`);
    assert.ok(frameIs(v, BG));
    v.close();
  });

  it('takes a screenshot after some typing and pointer motion (/tmp/demo-desktop.png)', async () => {
    const v = await viewer();
    await v.handshake();
    const other = await viewer();
    await other.handshake();
    v.type('Hello from the demo desktop test!');
    v.key(true, 0xff0d);
    v.type('Backspace works: abcX');
    v.key(true, 0xff08);
    v.cutText('clipboard text');
    for (let i = 0; i <= 30; i++) v.pointer(i > 24 ? 1 : 0, 300 + i * 15, 420 + Math.round(60 * Math.sin(i / 4)));
    await sleep(200);
    v.requestUpdate(false);
    await v.readUpdate();
    assert.ok(frameIs(v, BG));
    writeFileSync('/tmp/demo-desktop.png', encodePng(v.width, v.height, v.screen));
    v.close();
    other.close();
  });

  it('close() ends every viewer and the listener', async () => {
    const d = await startDemoDesktop({ width: 64, height: 64 });
    const v = await TcpViewer.open(d.port);
    await v.handshake();
    const half = await TcpViewer.open(d.port);
    await d.close();
    await v.waitClosed();
    await half.waitClosed();
    await assert.rejects(TcpViewer.open(d.port));
  });
});
