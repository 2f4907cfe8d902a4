import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ascii, concat, randomBytes, randomInt, seededRandom, splits, u32 } from '../../test/helpers/rfb-splitter.js';
import { Encoding, PseudoEncoding } from './constants.js';
import { RfbError } from './errors.js';
import { DEFAULT_PIXEL_FORMAT, encodeServerCutText, type PixelFormat } from './messages.js';
import { ServerStreamFilter, isFramableEncoding } from './server-filter.js';

const u16 = (n: number): Uint8Array => Uint8Array.of(n >> 8, n & 255);
const s32 = (n: number): Uint8Array => u32(n >>> 0);
const rect = (w: number, h: number, enc: number, body: Uint8Array = new Uint8Array(0)): Uint8Array =>
  concat([u16(1), u16(2), u16(w), u16(h), s32(enc), body]);
const update = (rects: Uint8Array[], n = rects.length): Uint8Array => concat([Uint8Array.of(0, 0), u16(n), ...rects]);
const compact = (n: number): Uint8Array =>
  n < 128 ? Uint8Array.of(n) : n < 16384 ? Uint8Array.of((n & 0x7f) | 0x80, n >> 7) : Uint8Array.of((n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, n >> 14);

/** One of every message and rectangle kind the filter frames, bodies filled with random bytes (4 bytes per pixel). */
function corpus(rng: () => number, bpp = 4, tpixel = 3): Uint8Array[] {
  const r = (n: number): Uint8Array => randomBytes(rng, n);
  const hextile = (w: number, h: number): Uint8Array => {
    const tiles: Uint8Array[] = [];
    for (let ty = 0; ty < h; ty += 16) {
      for (let tx = 0; tx < w; tx += 16) {
        const tw = Math.min(16, w - tx);
        const th = Math.min(16, h - ty);
        const kind = randomInt(rng, 0, 4);
        if (kind === 0) tiles.push(concat([Uint8Array.of(1), r(tw * th * bpp)]));
        else if (kind === 1) tiles.push(concat([Uint8Array.of(2), r(bpp)]));
        else if (kind === 2) tiles.push(Uint8Array.of(0));
        else if (kind === 3) tiles.push(concat([Uint8Array.of(2 | 4 | 8), r(2 * bpp), Uint8Array.of(3), r(6)]));
        else tiles.push(concat([Uint8Array.of(8 | 16), Uint8Array.of(2), r(2 * (bpp + 2))]));
      }
    }
    return concat(tiles);
  };
  const zdata = r(300);
  return [
    update([rect(3, 2, Encoding.RAW, r(3 * 2 * bpp)), rect(5, 5, Encoding.COPY_RECT, r(4))]),
    update([rect(9, 9, Encoding.RRE, concat([u32(2), r(bpp), r(2 * (bpp + 8))])), rect(9, 9, Encoding.CORRE, concat([u32(1), r(bpp), r(bpp + 4)]))]),
    update([rect(40, 20, Encoding.HEXTILE, hextile(40, 20)), rect(0, 0, Encoding.HEXTILE)]),
    update([rect(64, 64, Encoding.ZLIB, concat([u32(zdata.length), zdata])), rect(64, 64, Encoding.ZRLE, concat([u32(5), r(5)]))]),
    update([
      rect(8, 8, Encoding.TIGHT, concat([Uint8Array.of(0x80), r(tpixel)])), // fill
      rect(8, 8, Encoding.TIGHT, concat([Uint8Array.of(0x90), compact(200), r(200)])), // JPEG
      rect(2, 1, Encoding.TIGHT, concat([Uint8Array.of(0x00), r(2 * tpixel)])), // basic, copy, < 12 bytes raw
      rect(20, 20, Encoding.TIGHT, concat([Uint8Array.of(0x01), compact(20000), r(20000)])), // basic, 3-byte length
      rect(20, 8, Encoding.TIGHT, concat([Uint8Array.of(0x40 | 0x10), Uint8Array.of(1, 1), r(2 * tpixel), compact(40), r(40)])), // palette 2 → 1 bit, 24 bytes
      rect(20, 3, Encoding.TIGHT, concat([Uint8Array.of(0x40 | 0x10), Uint8Array.of(1, 1), r(2 * tpixel), r(9)])), // palette 2, 9 bytes raw
      rect(3, 3, Encoding.TIGHT, concat([Uint8Array.of(0x40), Uint8Array.of(1, 3), r(4 * tpixel), r(9)])), // palette 4, 9 bytes raw
      rect(10, 10, Encoding.TIGHT, concat([Uint8Array.of(0x40 | 0x20), Uint8Array.of(2), compact(150), r(150)])), // gradient
      rect(10, 10, Encoding.TIGHT_PNG, concat([Uint8Array.of(0xa0), compact(1000), r(1000)])), // PNG
    ]),
    update([
      rect(4, 4, PseudoEncoding.CURSOR, r(4 * 4 * bpp + 4)),
      rect(9, 2, PseudoEncoding.X_CURSOR, r(6 + 2 * 2 * 2)),
      rect(0, 0, PseudoEncoding.X_CURSOR),
      rect(0, 0, PseudoEncoding.DESKTOP_NAME, concat([u32(5), ascii('hello')])),
      rect(800, 600, PseudoEncoding.EXTENDED_DESKTOP_SIZE, concat([Uint8Array.of(2, 0, 0, 0), r(32)])),
      rect(0, 0, PseudoEncoding.QEMU_LED_STATE, Uint8Array.of(4)),
      rect(800, 600, PseudoEncoding.DESKTOP_SIZE),
      rect(1, 1, PseudoEncoding.POINTER_POS),
      rect(0, 0, PseudoEncoding.QEMU_EXTENDED_KEY_EVENT),
    ]),
    update([rect(1, 1, Encoding.RAW, r(bpp)), rect(0, 0, PseudoEncoding.LAST_RECT)], 0xffff),
    update([]),
    concat([Uint8Array.of(1, 0), u16(0), u16(2), r(12)]), // SetColourMapEntries
    Uint8Array.of(2), // Bell
    Uint8Array.of(150), // EndOfContinuousUpdates
    concat([Uint8Array.of(248, 0, 0, 0), u32(0x80000000), Uint8Array.of(3), r(3)]), // ServerFence
    Uint8Array.of(250, 0, 1, 1), // xvp init
    Uint8Array.of(255, 1, 0, 1), // QEMU audio begin
    concat([Uint8Array.of(255, 1, 0, 2), u32(6), r(6)]), // QEMU audio data
    concat([Uint8Array.of(253, 0x81), u16(4), r(4)]), // gii, big-endian
  ];
}

function run(f: ServerStreamFilter, chunks: Uint8Array[]): Uint8Array {
  return concat(chunks.flatMap((c) => f.push(c)));
}

test('every framable message passes byte-identical; a cut text between any two is found and dropped', () => {
  for (let seed = 1; seed <= 3; seed++) {
    const messages = corpus(seededRandom(seed));
    const cut = encodeServerCutText(ascii('secret from the machine'));
    const stream = concat(messages.flatMap((m) => [cut, m]));
    const expected = concat(messages);
    for (const s of splits(stream, seed, 8)) {
      const f = new ServerStreamFilter({ pixelFormat: DEFAULT_PIXEL_FORMAT, allowCutText: () => false });
      assert.deepEqual(Buffer.from(run(f, s.chunks)), Buffer.from(expected), s.name);
      assert.equal(f.droppedCutText, messages.length, s.name);
      assert.equal(f.buffered, 0);
    }
  }
});

test('allowed cut text passes; the size cap drops only larger ones (ExtendedClipboard negative lengths too)', () => {
  const small = encodeServerCutText(ascii('ok'));
  const big = encodeServerCutText(new Uint8Array(5000));
  const ext = concat([Uint8Array.of(3, 0, 0, 0), s32(-8), new Uint8Array(8)]);
  for (const s of splits(concat([small, big, ext, Uint8Array.of(2)]), 7, 6)) {
    const f = new ServerStreamFilter({ pixelFormat: DEFAULT_PIXEL_FORMAT, allowCutText: (n) => n <= 100 });
    assert.deepEqual(Buffer.from(run(f, s.chunks)), Buffer.from(concat([small, ext, Uint8Array.of(2)])), s.name);
    assert.equal(f.droppedCutText, 1);
  }
});

test('pixel format follows SetPixelFormat: 16 bpp Raw/Hextile and 2-byte Tight pixels', () => {
  const pf16: PixelFormat = { ...DEFAULT_PIXEL_FORMAT, bitsPerPixel: 16, depth: 16, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
  const messages = corpus(seededRandom(9), 2, 2);
  const cut = encodeServerCutText(ascii('x'));
  const f = new ServerStreamFilter({ pixelFormat: DEFAULT_PIXEL_FORMAT, allowCutText: () => false });
  f.setPixelFormat(pf16);
  assert.deepEqual(Buffer.from(run(f, [concat(messages.flatMap((m) => [m, cut]))])), Buffer.from(concat(messages)));
  assert.throws(() => f.setPixelFormat({ ...pf16, bitsPerPixel: 24 }), RfbError);
});

test('a huge dropped cut text or Raw rectangle streams through without buffering', () => {
  const f = new ServerStreamFilter({ pixelFormat: DEFAULT_PIXEL_FORMAT, allowCutText: () => false });
  assert.deepEqual(f.push(concat([Uint8Array.of(3, 0, 0, 0), u32(0x7fffffff)])), []);
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < 64; i++) assert.deepEqual(f.push(chunk), []);
  assert.equal(f.buffered, 0);
  const g = new ServerStreamFilter({ pixelFormat: DEFAULT_PIXEL_FORMAT, allowCutText: () => true });
  const head = update([rect(0xffff, 0xffff, Encoding.RAW)]);
  let out = 0;
  for (const b of g.push(head)) out += b.length;
  for (let i = 0; i < 64; i++) for (const b of g.push(chunk)) out += b.length;
  assert.equal(out, head.length + 64 * chunk.length, 'bytes pass as they come');
  assert.equal(g.buffered, 0);
});

test('unframable input ends the stream: unknown message, unknown encoding, bad Tight/Hextile/QEMU values', () => {
  const bad = [
    Uint8Array.of(77),
    update([rect(1, 1, Encoding.JPEG, new Uint8Array(8))]),
    update([rect(1, 1, Encoding.H264, new Uint8Array(8))]),
    update([rect(1, 1, PseudoEncoding.CURSOR_WITH_ALPHA, new Uint8Array(8))]),
    update([rect(1, 1, Encoding.TIGHT, Uint8Array.of(0xb0))]),
    update([rect(1, 1, Encoding.TIGHT, Uint8Array.of(0xa0))]), // PNG inside plain Tight
    update([rect(1, 1, Encoding.TIGHT, Uint8Array.of(0x40, 3))]),
    update([rect(16, 16, Encoding.HEXTILE, Uint8Array.of(0x20))]),
    Uint8Array.of(255, 9),
    Uint8Array.of(255, 1, 0, 7),
  ];
  for (const b of bad) {
    for (const s of splits(b, 3, 3)) {
      const f = new ServerStreamFilter({ pixelFormat: DEFAULT_PIXEL_FORMAT, allowCutText: () => true });
      assert.throws(() => run(f, s.chunks), (e: unknown) => e instanceof RfbError && e.code === 'RFB_UNKNOWN_MESSAGE' && e.side === 'server', s.name);
      assert.throws(() => f.push(Uint8Array.of(2)), RfbError, 'stays failed');
    }
  }
});

test('isFramableEncoding: what noVNC asks for minus what cannot be framed', () => {
  for (const e of [0, 1, 2, 5, 6, 7, 16, -260, -223, -224, -239, -258, -261, -307, -308, -312, -313, -26, -254, 0xc0a1e5ce | 0]) assert.ok(isFramableEncoding(e), String(e));
  for (const e of [21, 50, 8, 15, -314, 0x574d5664, -305, 12345]) assert.equal(isFramableEncoding(e), false, String(e));
});

test('random garbage never hangs or grows memory: it is framed or refused', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rng = seededRandom(seed);
    const f = new ServerStreamFilter({ pixelFormat: DEFAULT_PIXEL_FORMAT, allowCutText: () => rng() < 0.5 });
    const bytes = randomBytes(rng, randomInt(rng, 1, 400));
    try {
      for (const c of splits(bytes, seed, 1)[2]?.chunks ?? []) f.push(c);
    } catch (err) {
      assert.ok(err instanceof RfbError, String(err));
    }
    assert.ok(f.buffered <= 1024, `seed ${seed}: ${f.buffered} bytes held`);
  }
});
