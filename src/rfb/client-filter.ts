/**
 * The proxy's policy on the client-to-server stream, applied to every whole message after
 * ClientInit (the framer always runs, so the mode can change mid-session at a message boundary):
 *
 * - **Full control**: everything passes except ClientCutText the clipboard policy refuses (direction
 *   or size cap; oversized pastes stream away unbuffered). SetEncodings loses ExtendedMouseButtons
 *   (-316) — without seeing the server's acknowledgement the framer could not tell 6- from 7-byte
 *   PointerEvents (cost: no back/forward mouse buttons) — ExtendedClipboard when the policy is not
 *   "both" (its caps/request/notify messages would leak across a one-way policy), and whatever the
 *   caller's `allowEncoding` refuses (the server-stream framer's list, see server-filter.ts).
 * - **View-only** (view-only.ts): input, clipboard, xvp, SetDesktopSize, gii and QEMU key/audio are
 *   dropped and SetEncodings is cut to the view-only allow-list.
 *
 * `setViewOnly()` switches live. Bytes already emitted are whole messages, so the server is at a
 * message boundary; a message still incomplete inside the framer is judged by the mode in force when
 * it completes. The switch returns a SetEncodings to send at once when the encodings the server holds
 * must change (entering view-only: stop QEMU key/xvp acknowledgements; leaving it: give the client
 * back what it asked for, e.g. QEMU extended keys), so the server's state matches the mode.
 */
import { ClientMessageFramer } from './client-message-framer.js';
import { ClientMessageType, Limits, PseudoEncoding } from './constants.js';
import { decodePixelFormat, encodeSetEncodings, type PixelFormat } from './messages.js';
import { isViewOnlyEncodingAllowed } from './view-only.js';

/** Which way clipboard text may cross the gateway. */
export type ClipboardDirection = 'both' | 'to_machine' | 'from_machine' | 'off';

export interface ClipboardPolicy {
  direction: ClipboardDirection;
  /**
   * Largest cut-text payload (bytes on the wire) let through, in both directions. Absent: the
   * ClientCutText limit (Limits.MAX_CLIENT_CUT_TEXT_BYTES) to the machine and no limit from it.
   */
  maxBytes?: number;
}

export const DEFAULT_CLIPBOARD_POLICY: Readonly<ClipboardPolicy> = Object.freeze({ direction: 'both' });

/**
 * Whether the server's stream must be framed (server-filter.ts) to enforce this policy: when text
 * from the machine is refused or capped. Framing restricts the encodings (isFramableEncoding).
 */
export function needsServerFraming(p: ClipboardPolicy): boolean {
  return !clipboardFromMachine(p) || p.maxBytes !== undefined;
}

export function clipboardToMachine(p: ClipboardPolicy): boolean {
  return p.direction === 'both' || p.direction === 'to_machine';
}
export function clipboardFromMachine(p: ClipboardPolicy): boolean {
  return p.direction === 'both' || p.direction === 'from_machine';
}

export interface ClientFilterOptions {
  viewOnly?: boolean;
  clipboard?: ClipboardPolicy;
  /** Extra SetEncodings restriction (both modes), e.g. only what the server-stream framer can delimit. */
  allowEncoding?: (e: number) => boolean;
  /** Called with each SetPixelFormat forwarded to the server (the server-stream framer follows it). */
  onPixelFormat?: (pf: PixelFormat) => void;
}

const VIEW_ONLY_DROPPED = new Set<number>([
  ClientMessageType.KEY_EVENT,
  ClientMessageType.POINTER_EVENT,
  ClientMessageType.CLIENT_CUT_TEXT,
  ClientMessageType.XVP,
  ClientMessageType.SET_DESKTOP_SIZE,
  ClientMessageType.GII,
  // QEMU: extended key events and audio control (the list; a viewer gets the picture only).
  ClientMessageType.QEMU,
]);

export interface ClientFilterCounters {
  /** Messages dropped because of view-only. */
  droppedInput: number;
  /** ClientCutText messages refused by the clipboard policy (direction or size). */
  droppedClipboard: number;
}

export class ClientStreamFilter {
  private readonly framer: ClientMessageFramer;
  private readonly clipboard: ClipboardPolicy;
  private readonly allowExtra: (e: number) => boolean;
  private readonly onPixelFormat: ((pf: PixelFormat) => void) | undefined;
  private viewOnly: boolean;
  /** The client's last SetEncodings list as it sent it, and the list the server last received. */
  private requested: number[] | undefined;
  private sent: number[] | undefined;
  readonly counters: ClientFilterCounters = { droppedInput: 0, droppedClipboard: 0 };

  constructor(opts: ClientFilterOptions = {}) {
    this.viewOnly = opts.viewOnly ?? false;
    this.clipboard = opts.clipboard ?? DEFAULT_CLIPBOARD_POLICY;
    this.allowExtra = opts.allowEncoding ?? (() => true);
    this.onPixelFormat = opts.onPixelFormat;
    const toMachine = clipboardToMachine(this.clipboard);
    this.framer = new ClientMessageFramer({
      maxClientCutText: toMachine ? Math.min(this.clipboard.maxBytes ?? Limits.MAX_CLIENT_CUT_TEXT_BYTES, Limits.MAX_CLIENT_CUT_TEXT_BYTES) : 0,
      oversizedCutText: 'skip',
    });
  }

  get isViewOnly(): boolean {
    return this.viewOnly;
  }

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.framer.buffered;
  }

  /** Whether the server may be asked for encoding `e` in the current mode. */
  allows(e: number): boolean {
    if (!this.allowExtra(e)) return false;
    if (this.viewOnly) return isViewOnlyEncodingAllowed(e);
    if (e === PseudoEncoding.EXTENDED_MOUSE_BUTTONS) return false;
    if (e === PseudoEncoding.EXTENDED_CLIPBOARD && this.clipboard.direction !== 'both') return false;
    return true;
  }

  /**
   * Switches mode. Returns the bytes to send to the server now (a SetEncodings, or nothing); they
   * belong after everything `push` has returned so far.
   */
  setViewOnly(on: boolean): Uint8Array[] {
    if (on === this.viewOnly) return [];
    this.viewOnly = on;
    if (!this.requested) return [];
    const next = this.requested.filter((e) => this.allows(e));
    if (sameList(next, this.sent)) return [];
    this.sent = next;
    return [encodeSetEncodings(next)];
  }

  /** Client bytes in; the bytes that may reach the server out. Throws RfbError (side 'client'). */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const frame of this.framer.push(chunk)) {
      const type = frame.type;
      if (this.viewOnly && VIEW_ONLY_DROPPED.has(type)) {
        this.counters.droppedInput++;
        continue;
      }
      if (type === ClientMessageType.CLIENT_CUT_TEXT) {
        // discarded: over the cap (or the direction is closed: cap 0), body streamed away unread.
        if (frame.discarded || !clipboardToMachine(this.clipboard)) {
          this.counters.droppedClipboard++;
          continue;
        }
      }
      if (type === ClientMessageType.SET_PIXEL_FORMAT) this.onPixelFormat?.(decodePixelFormat(frame.bytes, 4));
      if (type === ClientMessageType.SET_ENCODINGS) {
        out.push(this.rewriteSetEncodings(frame.bytes));
        continue;
      }
      out.push(frame.bytes);
    }
    return out;
  }

  private rewriteSetEncodings(frame: Uint8Array): Uint8Array {
    const v = new DataView(frame.buffer, frame.byteOffset, frame.length);
    const n = v.getUint16(2);
    const requested: number[] = [];
    for (let i = 0; i < n; i++) requested.push(v.getInt32(4 + 4 * i));
    this.requested = requested;
    const kept = requested.filter((e) => this.allows(e));
    this.sent = kept;
    return kept.length === n ? frame : encodeSetEncodings(kept);
  }
}

function sameList(a: readonly number[], b: readonly number[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}
