import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ascii, concat, splits, u32 } from '../../test/helpers/rfb-splitter.js';
import { PseudoEncoding } from './constants.js';
import { RfbError } from './errors.js';
import {
  DEFAULT_PIXEL_FORMAT,
  decodeClientMessage,
  encodeClientCutText,
  encodeFramebufferUpdateRequest,
  encodeKeyEvent,
  encodePointerEvent,
  encodeSetEncodings,
  encodeSetPixelFormat,
} from './messages.js';
import { ViewOnlyFilter, isViewOnlyEncodingAllowed } from './view-only.js';

const NOVNC_ENCODINGS = [
  1, 7, -260, 16, 21, 5, 2, 6, 0, // CopyRect … Raw
  -26, -254, // quality 6, compression 2
  -223, -224, -258, -261, -308, -309, -312, -313, -307, 0xc0a1e5ce | 0, -316, 0x574d5664, -239,
];

test('view-only: input and power/resize messages are dropped, the rest passes, SetEncodings is rewritten', () => {
  const kept = [
    encodeSetPixelFormat(DEFAULT_PIXEL_FORMAT),
    encodeFramebufferUpdateRequest({ incremental: true, x: 0, y: 0, width: 1, height: 1 }),
    Uint8Array.of(150, 1, 0, 0, 0, 0, 0, 1, 0, 1),
    concat([Uint8Array.of(248, 0, 0, 0), u32(1), Uint8Array.of(1, 9)]),
  ];
  const dropped = [
    encodeKeyEvent(true, 0x61),
    encodePointerEvent(1, 2, 3),
    encodeClientCutText(ascii('secret')),
    concat([Uint8Array.of(6, 0, 0, 0), u32(-4), new Uint8Array(4)]),
    Uint8Array.of(250, 0, 1, 2), // xvp shutdown
    concat([Uint8Array.of(251, 0, 4, 0, 3, 0, 1, 0), new Uint8Array(16)]),
    Uint8Array.of(253, 0x80, 0, 0),
    Uint8Array.of(255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e),
    Uint8Array.of(255, 1, 0, 0), // QEMU audio enable
  ];
  const stream = concat([encodeSetEncodings(NOVNC_ENCODINGS), ...dropped.flatMap((d, i) => [d, kept[i % kept.length] as Uint8Array])]);
  for (const s of splits(stream, 3)) {
    const f = new ViewOnlyFilter();
    const out = concat(s.chunks.flatMap((c) => f.push(c)));
    const expected = concat([
      encodeSetEncodings([1, 7, -260, 16, 21, 5, 2, 6, 0, -26, -254, -223, -224, -261, -308, -312, -313, -307, 0xc0a1e5ce | 0, 0x574d5664, -239]),
      ...dropped.map((_, i) => kept[i % kept.length] as Uint8Array),
    ]);
    assert.deepEqual(Buffer.from(out), Buffer.from(expected), s.name);
    assert.equal(f.dropped, dropped.length, s.name);
  }
});

test('view-only strips ExtendedMouseButtons, xvp, gii, QEMU keys and unknown pseudo-encodings', () => {
  for (const e of [PseudoEncoding.EXTENDED_MOUSE_BUTTONS, PseudoEncoding.XVP, PseudoEncoding.GII, PseudoEncoding.QEMU_EXTENDED_KEY_EVENT, PseudoEncoding.QEMU_AUDIO, -1000, -222, 0x12345678]) {
    assert.equal(isViewOnlyEncodingAllowed(e), false, String(e));
  }
  const f = new ViewOnlyFilter();
  const [msg] = f.push(encodeSetEncodings([-316, -309]));
  assert.deepEqual(decodeClientMessage(msg as Uint8Array), { type: 'SetEncodings', encodings: [] });
});

test('view-only: a huge paste streams away unbuffered; unknown types end the stream', () => {
  const f = new ViewOnlyFilter();
  assert.deepEqual(f.push(concat([Uint8Array.of(6, 0, 0, 0), u32(100 * 1024 * 1024)])), []);
  const chunk = new Uint8Array(1024 * 1024);
  for (let i = 0; i < 100; i++) assert.deepEqual(f.push(chunk), []);
  assert.equal(f.buffered, 0);
  assert.equal(f.push(encodeFramebufferUpdateRequest({ incremental: false, x: 0, y: 0, width: 1, height: 1 })).length, 1);
  assert.throws(() => f.push(Uint8Array.of(127, 0, 0, 0)), (e: unknown) => e instanceof RfbError && e.code === 'RFB_UNKNOWN_MESSAGE');
});
