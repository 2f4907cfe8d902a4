import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ascii, concat, splits, u32 } from '../../test/helpers/rfb-splitter.js';
import { ClientMessageFramer, type ClientFrame, type ClientMessageFramerOptions } from './client-message-framer.js';
import { Limits } from './constants.js';
import { RfbError } from './errors.js';
import {
  DEFAULT_PIXEL_FORMAT,
  encodeClientCutText,
  encodeFramebufferUpdateRequest,
  encodeKeyEvent,
  encodePointerEvent,
  encodeSetEncodings,
  encodeSetPixelFormat,
} from './messages.js';

function frameAll(opts: ClientMessageFramerOptions, chunks: Uint8Array[]): ClientFrame[] {
  const f = new ClientMessageFramer(opts);
  const out: ClientFrame[] = [];
  for (const c of chunks) out.push(...f.push(c));
  assert.equal(f.buffered, 0, 'nothing left over');
  return out;
}

/** One message of each framed type, as the table in consoles-prior-art.md §5. */
const MESSAGES: [string, Uint8Array][] = [
  ['SetPixelFormat (20)', encodeSetPixelFormat(DEFAULT_PIXEL_FORMAT)],
  ['SetEncodings n=3', encodeSetEncodings([0, -223, -316])],
  ['SetEncodings n=0', encodeSetEncodings([])],
  ['FramebufferUpdateRequest (10)', encodeFramebufferUpdateRequest({ incremental: true, x: 0, y: 0, width: 10, height: 10 })],
  ['KeyEvent (8)', encodeKeyEvent(true, 0xff0d)],
  ['PointerEvent (6)', encodePointerEvent(1, 5, 6)],
  ['ClientCutText', encodeClientCutText(ascii('hello'))],
  ['ClientCutText empty', encodeClientCutText(new Uint8Array(0))],
  ['ExtendedClipboard caps (negative length)', concat([Uint8Array.of(6, 0, 0, 0), u32(-12), new Uint8Array(12).fill(9)])],
  ['EnableContinuousUpdates (10)', Uint8Array.of(150, 1, 0, 0, 0, 0, 1, 0, 1, 0)],
  ['ClientFence p=3', concat([Uint8Array.of(248, 0, 0, 0), u32(0x80000001), Uint8Array.of(3, 1, 2, 3)])],
  ['ClientFence p=0', concat([Uint8Array.of(248, 0, 0, 0), u32(0), Uint8Array.of(0)])],
  ['xvp reboot (4)', Uint8Array.of(250, 0, 1, 3)],
  ['SetDesktopSize s=2', concat([Uint8Array.of(251, 0, 4, 0, 3, 0, 2, 0), new Uint8Array(32).fill(7)])],
  ['gii big-endian', concat([Uint8Array.of(253, 0x81, 0, 5), new Uint8Array(5).fill(1)])],
  ['gii little-endian', concat([Uint8Array.of(253, 0x01, 6, 0), new Uint8Array(6).fill(2)])],
  ['QEMU extended key (12)', Uint8Array.of(255, 0, 0, 1, 0, 0, 0xff, 0x0d, 0, 0, 0, 0x1c)],
  ['QEMU audio enable (4)', Uint8Array.of(255, 1, 0, 0)],
  ['QEMU audio disable (4)', Uint8Array.of(255, 1, 0, 1)],
  ['QEMU audio set format (10)', Uint8Array.of(255, 1, 0, 2, 3, 2, 0, 0, 0xac, 0x44)],
];

test('every framed message type comes out whole, under every split', () => {
  const stream = concat(MESSAGES.map(([, m]) => m));
  for (const s of splits(stream, 7, 40)) {
    const frames = frameAll({}, s.chunks);
    assert.equal(frames.length, MESSAGES.length, s.name);
    frames.forEach((f, i) => {
      const [name, bytes] = MESSAGES[i] as [string, Uint8Array];
      assert.deepEqual(Buffer.from(f.bytes), Buffer.from(bytes), `${s.name}: ${name}`);
      assert.equal(f.type, bytes[0], `${s.name}: ${name}`);
    });
  }
});

test('PointerEvent is 7 bytes only with ExtendedMouseButtons on and mask bit 0x80 set', () => {
  const ext = Uint8Array.of(5, 0x81, 0, 1, 0, 2, 0x01);
  const plain = Uint8Array.of(5, 0x01, 0, 1, 0, 2);
  for (const s of splits(concat([ext, plain, ext]))) {
    const frames = frameAll({ extendedMouseButtons: true }, s.chunks);
    assert.deepEqual(frames.map((f) => f.bytes.length), [7, 6, 7], s.name);
  }
  // Without the extension the marker bit is just a button: 6 bytes.
  const f = new ClientMessageFramer();
  assert.deepEqual(f.push(concat([Uint8Array.of(5, 0x81, 0, 1, 0, 2)])).map((x) => x.bytes.length), [6]);
});

test('unknown types are RFB_UNKNOWN_MESSAGE (vendor UltraVNC 7–21, VMware 127/254, QEMU subtypes)', () => {
  for (const bad of [Uint8Array.of(1), Uint8Array.of(7), Uint8Array.of(127), Uint8Array.of(254), Uint8Array.of(255, 2), Uint8Array.of(255, 1, 0, 3)]) {
    const f = new ClientMessageFramer();
    assert.throws(
      () => f.push(concat([encodeKeyEvent(true, 1), bad, new Uint8Array(20)])),
      (e: unknown) => e instanceof RfbError && e.code === 'RFB_UNKNOWN_MESSAGE' && e.side === 'client',
      `type ${bad[0]}`,
    );
    // Sticky: the stream is out of sync for good.
    assert.throws(() => f.push(encodeKeyEvent(true, 1)), RfbError);
  }
});

test('over-limit lengths are RFB_LIMIT_EXCEEDED as soon as the header is in', () => {
  const over = (bytes: Uint8Array, opts: ClientMessageFramerOptions = {}) => {
    const f = new ClientMessageFramer(opts);
    assert.throws(() => f.push(bytes), (e: unknown) => e instanceof RfbError && e.code === 'RFB_LIMIT_EXCEEDED');
  };
  over(concat([Uint8Array.of(6, 0, 0, 0), u32(Limits.MAX_CLIENT_CUT_TEXT_BYTES + 1)]));
  over(concat([Uint8Array.of(6, 0, 0, 0), u32(0x80000000)])); // |-2^31|
  over(concat([Uint8Array.of(6, 0, 0, 0), u32(11)]), { maxClientCutText: 10 });
  over(Uint8Array.of(2, 0, (Limits.MAX_ENCODINGS + 1) >> 8, (Limits.MAX_ENCODINGS + 1) & 0xff));
  over(concat([Uint8Array.of(248, 0, 0, 0), u32(0), Uint8Array.of(65)]));
  over(Uint8Array.of(253, 0x80, 0x10, 0x01));
  over(Uint8Array.of(253, 0x00, 0x01, 0x10));
});

test('a huge ClientCutText in skip mode streams away without being buffered', () => {
  const f = new ClientMessageFramer({ maxClientCutText: 1024, oversizedCutText: 'skip' });
  const total = 50 * 1024 * 1024;
  const header = concat([Uint8Array.of(6, 0, 0, 0), u32(total)]);
  const first = f.push(header);
  assert.equal(first.length, 1);
  assert.equal(first[0]?.discarded, true);
  assert.equal(first[0]?.bytes.length, 8);
  const chunk = new Uint8Array(64 * 1024);
  let seen = 0;
  for (let sent = 0; sent < total; sent += chunk.length) {
    const n = Math.min(chunk.length, total - sent);
    seen += f.push(chunk.subarray(0, n)).length;
    assert.equal(f.buffered, 0);
  }
  assert.equal(seen, 0);
  // In sync afterwards.
  const after = f.push(concat([encodeKeyEvent(true, 0x61), encodePointerEvent(0, 1, 1)]));
  assert.deepEqual(after.map((x) => x.type), [4, 5]);
});

test('partial messages are held, never more than one message', () => {
  const f = new ClientMessageFramer();
  assert.deepEqual(f.push(Uint8Array.of(0, 0, 0)), []);
  assert.equal(f.buffered, 3);
  assert.equal(f.push(new Uint8Array(17)).length, 1);
  assert.equal(f.buffered, 0);
});

test('regression: messages after a skipped ClientCutText in the same chunk were held back until the next push', () => {
  const f = new ClientMessageFramer({ maxClientCutText: 2, oversizedCutText: 'skip' });
  const frames = f.push(concat([encodeClientCutText(ascii('secret')), encodeKeyEvent(true, 1), encodePointerEvent(0, 1, 1)]));
  assert.deepEqual(
    frames.map((x) => [x.type, x.discarded ?? false]),
    [[6, true], [4, false], [5, false]],
  );
});
