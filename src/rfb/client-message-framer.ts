/**
 * Delimits the client-to-server message stream (after ClientInit) into whole messages, using the
 * framing table of RFC 6143 §7.5 and rfbproto's registered extensions. It is the basis of anything
 * that must understand what a viewer sends: the demo desktop's input handling and the proxy's
 * view-only filter.
 *
 * Resumable and streaming: `push()` takes any chunk and returns the complete frames in it; partial
 * messages wait for the next chunk. The framer never holds more than one message (≤ the largest
 * allowed size) between calls. Any message type whose length cannot be known is an error: a proxy
 * that guessed would lose sync and pass attacker-chosen bytes as messages.
 */
import {
  ClientMessageType,
  Limits,
  POINTER_EXTENDED_MASK_BIT,
  QemuAudioOperation,
  QemuClientSubtype,
} from './constants.js';
import { ByteQueue } from './byte-queue.js';
import { RfbError } from './errors.js';

export interface ClientFrame {
  /** The message type byte. */
  type: number;
  /** The whole message (a view that may share memory with the pushed chunk). */
  bytes: Uint8Array;
  /**
   * Set when the body was skipped unread (ClientCutText over the limit in 'skip' mode): `bytes` is
   * only the 8-byte header and must not be forwarded.
   */
  discarded?: boolean;
}

export interface ClientMessageFramerOptions {
  /** ClientCutText payloads above this are refused or skipped. Default Limits.MAX_CLIENT_CUT_TEXT_BYTES. */
  maxClientCutText?: number;
  /** 'error' (default): throw RFB_LIMIT_EXCEEDED. 'skip': stream the body away without buffering it. */
  oversizedCutText?: 'error' | 'skip';
  /**
   * True once the server acknowledged ExtendedMouseButtons (-316): a PointerEvent with mask bit 0x80
   * then carries a 7th byte. A proxy that cannot see the acknowledgement must strip -316 from
   * SetEncodings instead (see view-only.ts).
   */
  extendedMouseButtons?: boolean;
}

export class ClientMessageFramer {
  private readonly queue = new ByteQueue();
  private skipping = 0;
  private failure: RfbError | undefined;
  private readonly maxCutText: number;
  private readonly oversized: 'error' | 'skip';
  extendedMouseButtons: boolean;

  constructor(opts: ClientMessageFramerOptions = {}) {
    this.maxCutText = opts.maxClientCutText ?? Limits.MAX_CLIENT_CUT_TEXT_BYTES;
    this.oversized = opts.oversizedCutText ?? 'error';
    this.extendedMouseButtons = opts.extendedMouseButtons ?? false;
  }

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.queue.length;
  }

  /** Feed client bytes; returns the complete messages. Throws RfbError (side 'client'). */
  push(chunk: Uint8Array): ClientFrame[] {
    if (this.failure) throw this.failure;
    this.queue.push(chunk);
    const frames: ClientFrame[] = [];
    try {
      for (;;) {
        if (this.skipping > 0) {
          this.skipping -= this.queue.skip(this.skipping);
          if (this.skipping > 0) return frames;
        }
        if (this.queue.length === 0) return frames;
        const length = this.messageLength(frames);
        if (length === 'skip') continue;
        if (length === undefined || this.queue.length < length) return frames;
        frames.push({ type: this.queue.peekU8(0), bytes: this.queue.take(length) });
      }
    } catch (err) {
      if (err instanceof RfbError) this.failure = err;
      throw err;
    }
  }

  /**
   * Total length of the message at the head of the queue, or undefined if more header bytes are
   * needed. For a skipped ClientCutText it emits the header frame itself, arranges the skip and
   * returns 'skip'.
   */
  private messageLength(frames: ClientFrame[]): number | undefined | 'skip' {
    const q = this.queue;
    const type = q.peekU8(0);
    const have = (n: number): boolean => q.length >= n;
    switch (type) {
      case ClientMessageType.SET_PIXEL_FORMAT:
        return 20;
      case ClientMessageType.SET_ENCODINGS: {
        if (!have(4)) return undefined;
        const n = q.peekU16(2);
        if (n > Limits.MAX_ENCODINGS) throw limit(`SetEncodings with ${n} encodings (limit ${Limits.MAX_ENCODINGS})`);
        return 4 + 4 * n;
      }
      case ClientMessageType.FRAMEBUFFER_UPDATE_REQUEST:
        return 10;
      case ClientMessageType.KEY_EVENT:
        return 8;
      case ClientMessageType.POINTER_EVENT: {
        if (!this.extendedMouseButtons) return 6;
        if (!have(2)) return undefined;
        return q.peekU8(1) & POINTER_EXTENDED_MASK_BIT ? 7 : 6;
      }
      case ClientMessageType.CLIENT_CUT_TEXT: {
        if (!have(8)) return undefined;
        // ExtendedClipboard sends a negative S32 length: the payload is |L| bytes.
        const length = Math.abs(q.peekS32(4));
        if (length <= this.maxCutText) return 8 + length;
        if (this.oversized === 'error') {
          throw limit(`ClientCutText of ${length} bytes (limit ${this.maxCutText})`);
        }
        frames.push({ type, bytes: q.take(8), discarded: true });
        this.skipping = length;
        return 'skip';
      }
      case ClientMessageType.ENABLE_CONTINUOUS_UPDATES:
        return 10;
      case ClientMessageType.CLIENT_FENCE: {
        if (!have(9)) return undefined;
        const p = q.peekU8(8);
        if (p > Limits.MAX_FENCE_PAYLOAD_BYTES) throw limit(`ClientFence payload of ${p} bytes (limit ${Limits.MAX_FENCE_PAYLOAD_BYTES})`);
        return 9 + p;
      }
      case ClientMessageType.XVP:
        return 4;
      case ClientMessageType.SET_DESKTOP_SIZE: {
        if (!have(7)) return undefined;
        return 8 + 16 * q.peekU8(6);
      }
      case ClientMessageType.GII: {
        if (!have(4)) return undefined;
        const bigEndian = (q.peekU8(1) & 0x80) !== 0;
        const length = bigEndian ? q.peekU16(2) : q.peekU8(2) | (q.peekU8(3) << 8);
        if (length > Limits.MAX_GII_BODY_BYTES) throw limit(`gii message of ${length} bytes (limit ${Limits.MAX_GII_BODY_BYTES})`);
        return 4 + length;
      }
      case ClientMessageType.QEMU: {
        if (!have(2)) return undefined;
        const sub = q.peekU8(1);
        if (sub === QemuClientSubtype.EXTENDED_KEY_EVENT) return 12;
        if (sub === QemuClientSubtype.AUDIO) {
          if (!have(4)) return undefined;
          const op = q.peekU16(2);
          if (op === QemuAudioOperation.ENABLE || op === QemuAudioOperation.DISABLE) return 4;
          if (op === QemuAudioOperation.SET_FORMAT) return 10;
          throw new RfbError('RFB_UNKNOWN_MESSAGE', 'client', `unknown QEMU audio operation ${op}`);
        }
        throw new RfbError('RFB_UNKNOWN_MESSAGE', 'client', `unknown QEMU client message subtype ${sub}`);
      }
      default:
        throw new RfbError('RFB_UNKNOWN_MESSAGE', 'client', `unknown client message type ${type}`);
    }
  }
}

function limit(message: string): RfbError {
  return new RfbError('RFB_LIMIT_EXCEEDED', 'client', message);
}
