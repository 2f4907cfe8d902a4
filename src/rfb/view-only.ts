/**
 * View-only enforcement for a client-to-server stream (consoles-prior-art.md §5): every message is
 * framed, input is dropped, and SetEncodings is rewritten so the server never enables an extension
 * that would change message framing or let a viewer act on the machine.
 *
 * - Dropped: KeyEvent (4), PointerEvent (5), ClientCutText (6, streamed away unbuffered), xvp (250:
 *   power actions), SetDesktopSize (251: would resize everyone's screen), gii (253), QEMU extended
 *   key event (255/0).
 * - Passed: SetPixelFormat (0), FramebufferUpdateRequest (3), EnableContinuousUpdates (150),
 *   ClientFence (248), QEMU audio (255/1), and SetEncodings (2) after rewriting.
 * - SetEncodings keeps only encodings and pseudo-encodings on an allow-list. Stripping
 *   ExtendedMouseButtons (-316) matters for framing: without the server's acknowledgement a
 *   PointerEvent is always 6 bytes, so our framer and the server's parser agree on every boundary.
 *   xvp (-309), gii (-305), QEMU extended keys (-258) and anything unknown are stripped too.
 * - Anything the framer cannot delimit ends the session (RfbError from the framer).
 */
import { ClientMessageFramer } from './client-message-framer.js';
import { ClientMessageType, Encoding, PseudoEncoding, QemuClientSubtype } from './constants.js';

const DROPPED_TYPES = new Set<number>([
  ClientMessageType.KEY_EVENT,
  ClientMessageType.POINTER_EVENT,
  ClientMessageType.CLIENT_CUT_TEXT,
  ClientMessageType.XVP,
  ClientMessageType.SET_DESKTOP_SIZE,
  ClientMessageType.GII,
]);

const ALLOWED_ENCODINGS = new Set<number>([
  ...Object.values(Encoding),
  17, // ZYWRLE
  PseudoEncoding.DESKTOP_SIZE,
  PseudoEncoding.LAST_RECT,
  PseudoEncoding.POINTER_POS,
  PseudoEncoding.CURSOR,
  PseudoEncoding.X_CURSOR,
  PseudoEncoding.QEMU_AUDIO,
  PseudoEncoding.QEMU_LED_STATE,
  PseudoEncoding.DESKTOP_NAME,
  PseudoEncoding.EXTENDED_DESKTOP_SIZE,
  PseudoEncoding.FENCE,
  PseudoEncoding.CONTINUOUS_UPDATES,
  PseudoEncoding.CURSOR_WITH_ALPHA,
  PseudoEncoding.EXTENDED_CLIPBOARD,
  PseudoEncoding.VMWARE_CURSOR,
]);

const inRange = (e: number, lo: number, hi: number): boolean => e >= lo && e <= hi;

/** Whether a viewer may ask the server for this encoding. */
export function isViewOnlyEncodingAllowed(e: number): boolean {
  return (
    ALLOWED_ENCODINGS.has(e) ||
    inRange(e, PseudoEncoding.QUALITY_LEVEL_0, PseudoEncoding.QUALITY_LEVEL_9) ||
    inRange(e, PseudoEncoding.COMPRESS_LEVEL_0, PseudoEncoding.COMPRESS_LEVEL_9) ||
    inRange(e, PseudoEncoding.JPEG_FINE_QUALITY_FIRST, PseudoEncoding.JPEG_FINE_QUALITY_LAST) ||
    inRange(e, PseudoEncoding.JPEG_SUBSAMPLING_FIRST, PseudoEncoding.JPEG_SUBSAMPLING_LAST)
  );
}

function rewriteSetEncodings(frame: Uint8Array): Uint8Array {
  const v = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const n = v.getUint16(2);
  const kept: number[] = [];
  for (let i = 0; i < n; i++) {
    const e = v.getInt32(4 + 4 * i);
    if (isViewOnlyEncodingAllowed(e)) kept.push(e);
  }
  if (kept.length === n) return frame;
  const out = new Uint8Array(4 + 4 * kept.length);
  const o = new DataView(out.buffer);
  out[0] = ClientMessageType.SET_ENCODINGS;
  o.setUint16(2, kept.length);
  kept.forEach((e, i) => o.setInt32(4 + 4 * i, e));
  return out;
}

export class ViewOnlyFilter {
  private readonly framer = new ClientMessageFramer({ maxClientCutText: 0, oversizedCutText: 'skip' });
  /** Messages dropped so far (for logs and tests). */
  dropped = 0;

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.framer.buffered;
  }

  /** Client bytes in; the bytes that may reach the server out. Throws RfbError (side 'client'). */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const frame of this.framer.push(chunk)) {
      if (
        DROPPED_TYPES.has(frame.type) ||
        (frame.type === ClientMessageType.QEMU && frame.bytes[1] === QemuClientSubtype.EXTENDED_KEY_EVENT)
      ) {
        this.dropped++;
        continue;
      }
      out.push(frame.type === ClientMessageType.SET_ENCODINGS ? rewriteSetEncodings(frame.bytes) : frame.bytes);
    }
    return out;
  }
}
