import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RfbError } from './errors.js';
import {
  DEFAULT_PIXEL_FORMAT,
  decodeClientMessage,
  decodePixelFormat,
  decodeServerInit,
  encodeClientCutText,
  encodeFramebufferUpdateRaw,
  encodeFramebufferUpdateRequest,
  encodeKeyEvent,
  encodePixelFormat,
  encodePointerEvent,
  encodeServerInit,
  encodeSetEncodings,
  encodeSetPixelFormat,
  packPixel,
  sanitiseReason,
  solidRawPixels,
  unpackPixel,
  type PixelFormat,
} from './messages.js';

const RGB565_BE: PixelFormat = { bitsPerPixel: 16, depth: 16, bigEndian: true, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
const BGR233: PixelFormat = { bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: true, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 };

test('PIXEL_FORMAT encodes to the §7.4 layout and round-trips', () => {
  const b = encodePixelFormat(DEFAULT_PIXEL_FORMAT);
  assert.equal(Buffer.from(b).toString('hex'), '2018000100ff00ff00ff100800000000');
  assert.deepEqual(decodePixelFormat(b), DEFAULT_PIXEL_FORMAT);
  assert.deepEqual(decodePixelFormat(encodePixelFormat(RGB565_BE)), RGB565_BE);
});

test('ServerInit round-trips; decode refuses short, inconsistent and over-limit input', () => {
  const init = { width: 1024, height: 768, pixelFormat: { ...DEFAULT_PIXEL_FORMAT }, name: 'Büro-PC' };
  const b = encodeServerInit(init);
  assert.deepEqual(decodeServerInit(b), init);
  assert.throws(() => decodeServerInit(b.subarray(0, 10)), RfbError);
  assert.throws(() => decodeServerInit(b.subarray(0, b.length - 1)), RfbError);
  const huge = b.slice();
  new DataView(huge.buffer).setUint32(20, 1 << 30);
  assert.throws(() => decodeServerInit(huge), (e: unknown) => e instanceof RfbError && e.code === 'RFB_LIMIT_EXCEEDED');
});

test('pixels pack and unpack in 32/16/8 bpp, both byte orders', () => {
  assert.deepEqual(Array.from(packPixel(DEFAULT_PIXEL_FORMAT, { r: 0x12, g: 0x34, b: 0x56 })), [0x56, 0x34, 0x12, 0]);
  assert.deepEqual(Array.from(packPixel({ ...DEFAULT_PIXEL_FORMAT, bigEndian: true }, { r: 0x12, g: 0x34, b: 0x56 })), [0, 0x12, 0x34, 0x56]);
  assert.deepEqual(Array.from(packPixel(RGB565_BE, { r: 255, g: 0, b: 0 })), [0xf8, 0x00]);
  for (const pf of [DEFAULT_PIXEL_FORMAT, RGB565_BE, BGR233]) {
    for (const c of [{ r: 0, g: 0, b: 0 }, { r: 255, g: 255, b: 255 }, { r: 255, g: 0, b: 255 }]) {
      assert.deepEqual(unpackPixel(pf, packPixel(pf, c), 0), c, `bpp ${pf.bitsPerPixel}`);
    }
  }
});

test('Raw FramebufferUpdate layout (§7.6.1, §7.7.1)', () => {
  const pixels = solidRawPixels(DEFAULT_PIXEL_FORMAT, 2, 1, { r: 1, g: 2, b: 3 });
  const b = encodeFramebufferUpdateRaw([{ x: 3, y: 4, width: 2, height: 1, pixels }]);
  assert.equal(Buffer.from(b).toString('hex'), '00000001' + '0003000400020001' + '00000000' + '03020100' + '03020100');
});

test('client messages decode back to what was encoded', () => {
  assert.deepEqual(decodeClientMessage(encodeSetPixelFormat(RGB565_BE)), { type: 'SetPixelFormat', pixelFormat: RGB565_BE });
  assert.deepEqual(decodeClientMessage(encodeSetEncodings([0, 1, -223, 0xc0a1e5ce | 0])), { type: 'SetEncodings', encodings: [0, 1, -223, 0xc0a1e5ce | 0] });
  assert.deepEqual(decodeClientMessage(encodeFramebufferUpdateRequest({ incremental: true, x: 1, y: 2, width: 3, height: 4 })), {
    type: 'FramebufferUpdateRequest',
    incremental: true,
    x: 1,
    y: 2,
    width: 3,
    height: 4,
  });
  assert.deepEqual(decodeClientMessage(encodeKeyEvent(true, 0xffe1)), { type: 'KeyEvent', down: true, keysym: 0xffe1 });
  assert.deepEqual(decodeClientMessage(encodePointerEvent(5, 100, 200)), { type: 'PointerEvent', buttonMask: 5, x: 100, y: 200 });
  // ExtendedMouseButtons: marker 0x80 + 7th byte for buttons 8+ (noVNC extendedPointerEvent).
  assert.deepEqual(decodeClientMessage(Uint8Array.of(5, 0x81, 0, 1, 0, 2, 0x01)), { type: 'PointerEvent', buttonMask: 0x81, x: 1, y: 2 });
  const cut = decodeClientMessage(encodeClientCutText(new TextEncoder().encode('hi')));
  assert.equal(cut.type, 'ClientCutText');
  assert.equal(cut.type === 'ClientCutText' && Buffer.from(cut.text).toString(), 'hi');
  assert.deepEqual(decodeClientMessage(Uint8Array.of(250, 0, 1, 2)), { type: 'Other', messageType: 250, bytes: Uint8Array.of(250, 0, 1, 2) });
  assert.throws(() => decodeClientMessage(Uint8Array.of(4, 1)), RfbError);
  assert.throws(() => decodeClientMessage(new Uint8Array(0)), RfbError);
});

test('reasons are capped at 256 bytes and stripped of control characters', () => {
  assert.equal(sanitiseReason(new TextEncoder().encode('a'.repeat(300))).length, 256);
  assert.equal(sanitiseReason(new TextEncoder().encode('bad\u0007\r\nthing')), 'bad   thing');
});
