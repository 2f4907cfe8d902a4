/**
 * View-only enforcement for a client-to-server stream (consoles-prior-art.md §5): every message is
 * framed, input is dropped, and SetEncodings is rewritten so the server never enables an extension
 * that would change message framing or let a viewer act on the machine.
 *
 * - Dropped: KeyEvent (4), PointerEvent (5), ClientCutText (6, streamed away unbuffered), xvp (250:
 *   power actions), SetDesktopSize (251: would resize everyone's screen), gii (253), QEMU extended
 *   key event (255/0) and QEMU audio control (255/1).
 * - Passed: SetPixelFormat (0), FramebufferUpdateRequest (3), EnableContinuousUpdates (150),
 *   ClientFence (248), and SetEncodings (2) after rewriting.
 * - SetEncodings keeps only encodings and pseudo-encodings on an allow-list. Stripping
 *   ExtendedMouseButtons (-316) matters for framing: without the server's acknowledgement a
 *   PointerEvent is always 6 bytes, so our framer and the server's parser agree on every boundary.
 *   xvp (-309), gii (-305), QEMU extended keys (-258) and audio (-259) and anything unknown are stripped too.
 * - Anything the framer cannot delimit ends the session (RfbError from the framer).
 */
import { ClientStreamFilter } from './client-filter.js';
import { Encoding, PseudoEncoding } from './constants.js';

const ALLOWED_ENCODINGS = new Set<number>([
  ...Object.values(Encoding),
  17, // ZYWRLE
  PseudoEncoding.DESKTOP_SIZE,
  PseudoEncoding.LAST_RECT,
  PseudoEncoding.POINTER_POS,
  PseudoEncoding.CURSOR,
  PseudoEncoding.X_CURSOR,
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

/** A ClientStreamFilter fixed in view-only mode (client-filter.ts), for callers that never switch. */
export class ViewOnlyFilter {
  private readonly inner = new ClientStreamFilter({ viewOnly: true });

  /** Messages dropped so far (for logs and tests). */
  get dropped(): number {
    return this.inner.counters.droppedInput;
  }

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.inner.buffered;
  }

  /** Client bytes in; the bytes that may reach the server out. Throws RfbError (side 'client'). */
  push(chunk: Uint8Array): Uint8Array[] {
    return this.inner.push(chunk);
  }
}
