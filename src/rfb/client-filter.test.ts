import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ascii, concat, splits, u32 } from '../../test/helpers/rfb-splitter.js';
import { ClientStreamFilter } from './client-filter.js';
import { PseudoEncoding } from './constants.js';
import {
  decodeClientMessage,
  encodeClientCutText,
  encodeFramebufferUpdateRequest,
  encodeKeyEvent,
  encodePointerEvent,
  encodeSetEncodings,
} from './messages.js';

const QEMU_KEY = Uint8Array.of(255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e);
const FUR = encodeFramebufferUpdateRequest({ incremental: true, x: 0, y: 0, width: 1, height: 1 });
const ENCODINGS = [0, 16, PseudoEncoding.QEMU_EXTENDED_KEY_EVENT, PseudoEncoding.XVP, PseudoEncoding.EXTENDED_MOUSE_BUTTONS, PseudoEncoding.EXTENDED_CLIPBOARD];

const types = (out: Uint8Array[]): string[] =>
  out.map((b) => (b[0] === 255 && b[1] === 0 ? 'QemuExtendedKeyEvent' : decodeClientMessage(b).type));

test('full control: input and QEMU extended keys pass; ExtendedMouseButtons is stripped (framing)', () => {
  const f = new ClientStreamFilter();
  const out = f.push(concat([encodeSetEncodings(ENCODINGS), encodeKeyEvent(true, 0x61), encodePointerEvent(1, 2, 3), QEMU_KEY, encodeClientCutText(ascii('hi'))]));
  assert.deepEqual(decodeClientMessage(out[0] as Uint8Array), {
    type: 'SetEncodings',
    encodings: [0, 16, PseudoEncoding.QEMU_EXTENDED_KEY_EVENT, PseudoEncoding.XVP, PseudoEncoding.EXTENDED_CLIPBOARD],
  });
  assert.deepEqual(Buffer.from(out[3] as Uint8Array), Buffer.from(QEMU_KEY), 'QEMU extended key event verbatim');
  assert.deepEqual(types(out), ['SetEncodings', 'KeyEvent', 'PointerEvent', 'QemuExtendedKeyEvent', 'ClientCutText']);
});

test('setViewOnly switches at a message boundary and resends SetEncodings to match the mode', () => {
  // Regression guard for live switching (remote assistance): a key split across the switch is
  // judged by the mode in force when it completes; no byte of dropped input reaches the server.
  const key = encodeKeyEvent(true, 0x62);
  for (const s of splits(concat([encodeSetEncodings(ENCODINGS), FUR]), 4)) {
    const f = new ClientStreamFilter();
    for (const c of s.chunks) f.push(c);
    const half = f.push(key.subarray(0, 3));
    assert.deepEqual(half, []);
    const resent = f.setViewOnly(true);
    assert.deepEqual(resent.map((b) => decodeClientMessage(b)), [
      { type: 'SetEncodings', encodings: [0, 16, PseudoEncoding.EXTENDED_CLIPBOARD] },
    ], s.name);
    assert.deepEqual(f.push(key.subarray(3)), [], 'the half key completes while view-only: dropped');
    assert.deepEqual(types(f.push(concat([encodePointerEvent(1, 1, 1), QEMU_KEY, FUR]))), ['FramebufferUpdateRequest']);
    assert.equal(f.counters.droppedInput, 3);
    // A SetEncodings sent while view-only is rewritten too.
    assert.deepEqual(decodeClientMessage(f.push(encodeSetEncodings(ENCODINGS))[0] as Uint8Array), {
      type: 'SetEncodings',
      encodings: [0, 16, PseudoEncoding.EXTENDED_CLIPBOARD],
    });
    assert.deepEqual(f.setViewOnly(true), [], 'same mode: nothing to send');
    const back = f.setViewOnly(false);
    assert.deepEqual(back.map((b) => decodeClientMessage(b)), [
      { type: 'SetEncodings', encodings: [0, 16, PseudoEncoding.QEMU_EXTENDED_KEY_EVENT, PseudoEncoding.XVP, PseudoEncoding.EXTENDED_CLIPBOARD] },
    ]);
    assert.deepEqual(types(f.push(concat([key, QEMU_KEY]))), ['KeyEvent', 'QemuExtendedKeyEvent']);
  }
});

test('switching before any SetEncodings sends nothing; an encodings list with nothing to strip is not resent', () => {
  const f = new ClientStreamFilter();
  assert.deepEqual(f.setViewOnly(true), []);
  assert.deepEqual(f.setViewOnly(false), []);
  f.push(encodeSetEncodings([0, 1, -223]));
  assert.deepEqual(f.setViewOnly(true), []);
  assert.deepEqual(f.setViewOnly(false), []);
});

test('clipboard policy: direction and size cap on ClientCutText; ExtendedClipboard only when both ways', () => {
  const big = encodeClientCutText(new Uint8Array(200));
  const small = encodeClientCutText(ascii('ok'));
  const ext = concat([Uint8Array.of(6, 0, 0, 0), u32(-4), Uint8Array.of(1, 0, 0, 0)]);
  const both = new ClientStreamFilter({ clipboard: { direction: 'both', maxBytes: 100 } });
  assert.deepEqual(types(both.push(concat([small, big, ext, FUR]))), ['ClientCutText', 'ClientCutText', 'FramebufferUpdateRequest']);
  assert.equal(both.counters.droppedClipboard, 1);
  for (const direction of ['from_machine', 'off'] as const) {
    const f = new ClientStreamFilter({ clipboard: { direction, maxBytes: 100 } });
    const out = f.push(concat([encodeSetEncodings([0, PseudoEncoding.EXTENDED_CLIPBOARD]), small, big, ext, FUR]));
    assert.deepEqual(out.map((b) => decodeClientMessage(b)), [
      { type: 'SetEncodings', encodings: [0] },
      { type: 'FramebufferUpdateRequest', incremental: true, x: 0, y: 0, width: 1, height: 1 },
    ], direction);
    assert.equal(f.counters.droppedClipboard, 3);
    assert.equal(f.buffered, 0);
  }
  const toMachine = new ClientStreamFilter({ clipboard: { direction: 'to_machine', maxBytes: 100 } });
  assert.deepEqual(types(toMachine.push(concat([encodeSetEncodings([PseudoEncoding.EXTENDED_CLIPBOARD]), small]))), ['SetEncodings', 'ClientCutText']);
});

test('allowEncoding restricts SetEncodings in both modes', () => {
  const f = new ClientStreamFilter({ allowEncoding: (e) => e !== 21 });
  assert.deepEqual(decodeClientMessage(f.push(encodeSetEncodings([21, 0]))[0] as Uint8Array), { type: 'SetEncodings', encodings: [0] });
  assert.deepEqual(f.setViewOnly(true), []);
});
