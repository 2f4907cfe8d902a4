/**
 * Frames the server-to-client stream (RFC 6143 §7.6) so the proxy can apply the clipboard policy to
 * ServerCutText, the one server message that carries data off the machine. Everything else passes
 * through unchanged and without copies: the parser reads only headers (at most a Tight palette, 1 KiB)
 * and counts the bodies past.
 *
 * A FramebufferUpdate can only be delimited by walking every rectangle (consoles-prior-art.md §5),
 * so this filter is used only when the policy must see ServerCutText (clipboard `to_machine`/`off`,
 * or an explicit size cap), and the client's SetEncodings is then cut to `isFramableEncoding`:
 * Raw, CopyRect, RRE, CoRRE, Hextile, Zlib, ZRLE, Tight, TightPNG and the pseudo-encodings below.
 * JPEG (21), H.264 (50), TRLE, ZlibHex, CursorWithAlpha, VMware cursor and gii are refused — their
 * data would have to be decoded (or is undocumented) to find where it ends. Cost: those encodings are
 * unavailable to the viewer (noVNC falls back to Tight/ZRLE), and a little CPU per Hextile tile.
 * A server that sends an encoding it was not asked for ends the session (RfbError, side 'server').
 *
 * The pixel format (bytes per pixel, Tight's 3-byte TPIXEL) starts as ServerInit's and follows the
 * client's SetPixelFormat as it is forwarded (`setPixelFormat`).
 *
 * Written as a generator: each `yield` asks the driver for header bytes (`read`), or to forward
 * (`pass`) or discard (`drop`) a counted body, so the parser resumes at any byte boundary.
 */
import { Encoding, PseudoEncoding, QemuAudioOperation, ServerMessageType } from './constants.js';
import { RfbError } from './errors.js';
import type { PixelFormat } from './messages.js';

const FRAMABLE_ENCODINGS = new Set<number>([
  Encoding.RAW,
  Encoding.COPY_RECT,
  Encoding.RRE,
  Encoding.CORRE,
  Encoding.HEXTILE,
  Encoding.ZLIB,
  Encoding.TIGHT,
  Encoding.ZRLE,
  Encoding.TIGHT_PNG,
  PseudoEncoding.DESKTOP_SIZE,
  PseudoEncoding.LAST_RECT,
  PseudoEncoding.POINTER_POS,
  PseudoEncoding.CURSOR,
  PseudoEncoding.X_CURSOR,
  PseudoEncoding.QEMU_EXTENDED_KEY_EVENT,
  PseudoEncoding.QEMU_AUDIO,
  PseudoEncoding.QEMU_LED_STATE,
  PseudoEncoding.DESKTOP_NAME,
  PseudoEncoding.EXTENDED_DESKTOP_SIZE,
  PseudoEncoding.XVP,
  PseudoEncoding.FENCE,
  PseudoEncoding.CONTINUOUS_UPDATES,
  PseudoEncoding.EXTENDED_MOUSE_BUTTONS,
  PseudoEncoding.EXTENDED_CLIPBOARD,
]);

const inRange = (e: number, lo: number, hi: number): boolean => e >= lo && e <= hi;

/** Whether the server may be asked for encoding `e` while its stream is framed. */
export function isFramableEncoding(e: number): boolean {
  return (
    FRAMABLE_ENCODINGS.has(e) ||
    inRange(e, PseudoEncoding.QUALITY_LEVEL_0, PseudoEncoding.QUALITY_LEVEL_9) ||
    inRange(e, PseudoEncoding.COMPRESS_LEVEL_0, PseudoEncoding.COMPRESS_LEVEL_9) ||
    inRange(e, PseudoEncoding.JPEG_FINE_QUALITY_FIRST, PseudoEncoding.JPEG_FINE_QUALITY_LAST) ||
    inRange(e, PseudoEncoding.JPEG_SUBSAMPLING_FIRST, PseudoEncoding.JPEG_SUBSAMPLING_LAST)
  );
}

/** Hextile subencoding bits (RFC 6143 §7.7.4). */
const HEXTILE_RAW = 1;
const HEXTILE_BACKGROUND = 2;
const HEXTILE_FOREGROUND = 4;
const HEXTILE_ANY_SUBRECTS = 8;
const HEXTILE_SUBRECTS_COLOURED = 16;
/** Tight (rfbproto §7.7.6): data shorter than this is sent uncompressed, without a length. */
const TIGHT_MIN_TO_COMPRESS = 12;

type Op =
  /** Header bytes the parser needs (also forwarded unless `hold`). */
  | { op: 'read'; n: number; hold: boolean }
  /** The next byte without consuming it (message start only). */
  | { op: 'peek' }
  | { op: 'pass'; n: number }
  | { op: 'drop'; n: number }
  /** Forward bytes read with `hold`. */
  | { op: 'emit'; bytes: Uint8Array };
type Parser = Generator<Op, void, Uint8Array | undefined>;

export interface ServerFilterOptions {
  pixelFormat: PixelFormat;
  /** Whether ServerCutText of this wire length (|S32|) may reach the viewer. */
  allowCutText: (length: number) => boolean;
}

export class ServerStreamFilter {
  private bpp: number;
  private tpixel: number;
  private readonly allowCutText: (length: number) => boolean;
  private readonly parser: Parser;
  private op: Op;
  private failure: RfbError | undefined;
  /** Partial `read`: bytes gathered so far. */
  private gather: Uint8Array | undefined;
  private gathered = 0;
  /** Remaining bytes of the current pass/drop. */
  private remaining = 0;
  /** ServerCutText messages dropped by the policy. */
  droppedCutText = 0;
  /** Whole server messages delimited so far. */
  messagesFramed = 0;

  constructor(opts: ServerFilterOptions) {
    this.bpp = 4;
    this.tpixel = 3;
    this.setPixelFormat(opts.pixelFormat);
    this.allowCutText = opts.allowCutText;
    this.parser = this.messages();
    this.op = this.advance(undefined);
  }

  /** Bytes held for an incomplete header. */
  get buffered(): number {
    return this.gathered;
  }

  /** True between messages (nothing of the next one seen yet). */
  get atMessageBoundary(): boolean {
    return this.op.op === 'peek' && this.gathered === 0;
  }

  /** The client's SetPixelFormat, as it is forwarded to the server. Throws RfbError (side 'client'). */
  setPixelFormat(pf: PixelFormat): void {
    if (pf.bitsPerPixel !== 8 && pf.bitsPerPixel !== 16 && pf.bitsPerPixel !== 32) {
      throw new RfbError('RFB_UNEXPECTED', 'client', `pixel format with ${pf.bitsPerPixel} bits per pixel`);
    }
    this.bpp = pf.bitsPerPixel / 8;
    // Tight TPIXEL: 3 bytes for 32 bpp depth-24 true colour with 8-bit channels.
    const rgb888 = pf.trueColour && pf.bitsPerPixel === 32 && pf.depth === 24 && pf.redMax === 255 && pf.greenMax === 255 && pf.blueMax === 255;
    this.tpixel = rgb888 ? 3 : this.bpp;
  }

  /** Server bytes in; the bytes that may reach the viewer out. Throws RfbError (side 'server'). */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure) throw this.failure;
    const out: Uint8Array[] = [];
    let runStart = 0;
    let runEnd = 0;
    const flush = (): void => {
      if (runEnd > runStart) out.push(chunk.subarray(runStart, runEnd));
      runStart = runEnd;
    };
    const forward = (a: number, b: number): void => {
      if (a !== runEnd) {
        flush();
        runStart = a;
      }
      runEnd = b;
    };
    let pos = 0;
    try {
      while (pos < chunk.length || this.op.op === 'emit') {
        const op = this.op;
        switch (op.op) {
          case 'peek':
            this.op = this.advance(chunk.subarray(pos, pos + 1));
            break;
          case 'read': {
            if (this.gathered === 0 && chunk.length - pos >= op.n) {
              const bytes = chunk.subarray(pos, pos + op.n);
              if (!op.hold) forward(pos, pos + op.n);
              pos += op.n;
              this.op = this.advance(bytes);
              break;
            }
            this.gather ??= new Uint8Array(op.n);
            const k = Math.min(op.n - this.gathered, chunk.length - pos);
            this.gather.set(chunk.subarray(pos, pos + k), this.gathered);
            if (!op.hold) forward(pos, pos + k);
            pos += k;
            this.gathered += k;
            if (this.gathered === op.n) {
              const bytes = this.gather;
              this.gather = undefined;
              this.gathered = 0;
              this.op = this.advance(bytes);
            }
            break;
          }
          case 'pass':
          case 'drop': {
            if (this.remaining === 0) this.remaining = op.n;
            const k = Math.min(this.remaining, chunk.length - pos);
            if (op.op === 'pass') forward(pos, pos + k);
            pos += k;
            this.remaining -= k;
            if (this.remaining === 0) this.op = this.advance(undefined);
            break;
          }
          case 'emit':
            flush();
            out.push(op.bytes);
            this.op = this.advance(undefined);
            break;
        }
      }
    } catch (err) {
      if (err instanceof RfbError) this.failure = err;
      throw err;
    }
    flush();
    return out;
  }

  private advance(input: Uint8Array | undefined): Op {
    const r = this.parser.next(input);
    if (r.done) throw new Error('server filter: parser ended');
    // Zero-length bodies complete at once.
    if ((r.value.op === 'pass' || r.value.op === 'drop') && r.value.n === 0) return this.advance(undefined);
    return r.value;
  }

  // ---------------------------------------------------------------------------------------------
  // The parser

  private *messages(): Parser {
    for (;;) {
      yield* this.message();
      this.messagesFramed++;
    }
  }

  private *read(n: number, hold = false): Generator<Op, Uint8Array, Uint8Array | undefined> {
    return (yield { op: 'read', n, hold }) as Uint8Array;
  }

  private *u8(): Generator<Op, number, Uint8Array | undefined> {
    return (yield* this.read(1))[0] as number;
  }

  private *u32(): Generator<Op, number, Uint8Array | undefined> {
    const b = yield* this.read(4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }

  private *message(): Parser {
    const type = ((yield { op: 'peek' }) as Uint8Array)[0] as number;
    if (type === ServerMessageType.SERVER_CUT_TEXT) {
      // §7.6.4: U8 type, 3 pad, U32 length (ExtendedClipboard: negative S32, |L| bytes).
      const head = yield* this.read(8, true);
      const length = Math.abs(new DataView(head.buffer, head.byteOffset, 8).getInt32(4));
      if (this.allowCutText(length)) {
        yield { op: 'emit', bytes: head.slice() };
        yield { op: 'pass', n: length };
      } else {
        this.droppedCutText++;
        yield { op: 'drop', n: length };
      }
      return;
    }
    yield* this.read(1);
    switch (type) {
      case ServerMessageType.FRAMEBUFFER_UPDATE: {
        // §7.6.1: pad, U16 n-rects (0xFFFF with LastRect: until the LastRect rectangle).
        const head = yield* this.read(3);
        const n = (head[1] as number) * 256 + (head[2] as number);
        for (let i = 0; i < n; i++) {
          const r = yield* this.read(12);
          const v = new DataView(r.buffer, r.byteOffset, 12);
          const enc = v.getInt32(8);
          if (enc === PseudoEncoding.LAST_RECT) return;
          yield* this.rectangle(v.getUint16(4), v.getUint16(6), enc);
        }
        return;
      }
      case ServerMessageType.SET_COLOUR_MAP_ENTRIES: {
        // §7.6.2: pad, U16 first, U16 n, n × 6.
        const head = yield* this.read(5);
        yield { op: 'pass', n: 6 * ((head[3] as number) * 256 + (head[4] as number)) };
        return;
      }
      case ServerMessageType.BELL:
      case ServerMessageType.END_OF_CONTINUOUS_UPDATES:
        return;
      case ServerMessageType.SERVER_FENCE: {
        // rfbproto ServerFence: 3 pad, U32 flags, U8 length, payload.
        const head = yield* this.read(8);
        yield { op: 'pass', n: head[7] as number };
        return;
      }
      case ServerMessageType.XVP:
        // rfbproto xvp: pad, U8 version, U8 message.
        yield* this.read(3);
        return;
      case ServerMessageType.QEMU: {
        // rfbproto QEMU server message: U8 subtype 1 (audio), U16 operation; 2 (data) has U32 length + data.
        const sub = yield* this.u8();
        if (sub !== 1) throw unknown(`QEMU server message subtype ${sub}`);
        const op = yield* this.read(2);
        const operation = (op[0] as number) * 256 + (op[1] as number);
        if (operation === 2) yield { op: 'pass', n: yield* this.u32() };
        else if (operation !== QemuAudioOperation.ENABLE && operation !== QemuAudioOperation.DISABLE) throw unknown(`QEMU audio operation ${operation}`);
        return;
      }
      case 253: {
        // rfbproto gii: U8 endian+subtype (bit 7 big-endian), EU16 length, body.
        const head = yield* this.read(3);
        const be = ((head[0] as number) & 0x80) !== 0;
        yield { op: 'pass', n: be ? (head[1] as number) * 256 + (head[2] as number) : (head[2] as number) * 256 + (head[1] as number) };
        return;
      }
      default:
        throw unknown(`server message type ${type}`);
    }
  }

  private *rectangle(w: number, h: number, enc: number): Parser {
    const bpp = this.bpp;
    switch (enc) {
      case Encoding.RAW:
        yield { op: 'pass', n: w * h * bpp };
        return;
      case Encoding.COPY_RECT:
        yield { op: 'pass', n: 4 };
        return;
      case Encoding.RRE:
      case Encoding.CORRE: {
        // §7.7.3: U32 n-subrects, background pixel, n × (pixel, U16 x,y,w,h) — CoRRE: U8 x,y,w,h.
        const n = yield* this.u32();
        yield { op: 'pass', n: bpp + n * (bpp + (enc === Encoding.RRE ? 8 : 4)) };
        return;
      }
      case Encoding.HEXTILE:
        for (let ty = 0; ty < h; ty += 16) {
          const th = Math.min(16, h - ty);
          for (let tx = 0; tx < w; tx += 16) {
            const tw = Math.min(16, w - tx);
            const sub = yield* this.u8();
            if (sub & HEXTILE_RAW) {
              yield { op: 'pass', n: tw * th * bpp };
              continue;
            }
            if (sub > 31) throw unknown(`Hextile subencoding ${sub}`);
            yield { op: 'pass', n: (sub & HEXTILE_BACKGROUND ? bpp : 0) + (sub & HEXTILE_FOREGROUND ? bpp : 0) };
            if (sub & HEXTILE_ANY_SUBRECTS) {
              const count = yield* this.u8();
              yield { op: 'pass', n: count * (sub & HEXTILE_SUBRECTS_COLOURED ? bpp + 2 : 2) };
            }
          }
        }
        return;
      case Encoding.ZLIB:
      case Encoding.ZRLE:
        // U32 length, zlib data.
        yield { op: 'pass', n: yield* this.u32() };
        return;
      case Encoding.TIGHT:
      case Encoding.TIGHT_PNG:
        yield* this.tight(w, h, enc === Encoding.TIGHT_PNG);
        return;
      case PseudoEncoding.CURSOR:
        yield { op: 'pass', n: w * h * bpp + ((w + 7) >> 3) * h };
        return;
      case PseudoEncoding.X_CURSOR:
        if (w * h > 0) yield { op: 'pass', n: 6 + 2 * ((w + 7) >> 3) * h };
        return;
      case PseudoEncoding.QEMU_LED_STATE:
        yield { op: 'pass', n: 1 };
        return;
      case PseudoEncoding.DESKTOP_NAME:
        yield { op: 'pass', n: yield* this.u32() };
        return;
      case PseudoEncoding.EXTENDED_DESKTOP_SIZE: {
        const head = yield* this.read(4);
        yield { op: 'pass', n: 16 * (head[0] as number) };
        return;
      }
      case PseudoEncoding.DESKTOP_SIZE:
      case PseudoEncoding.POINTER_POS:
      case PseudoEncoding.QEMU_EXTENDED_KEY_EVENT:
      case PseudoEncoding.QEMU_AUDIO:
      case PseudoEncoding.EXTENDED_MOUSE_BUTTONS:
        return;
      default:
        throw unknown(`rectangle encoding ${enc}`);
    }
  }

  /** rfbproto §7.7.6 Tight / TightPNG. */
  private *tight(w: number, h: number, png: boolean): Parser {
    const control = yield* this.u8();
    const kind = control >> 4;
    if (kind === 8) {
      yield { op: 'pass', n: this.tpixel }; // fill
      return;
    }
    if (kind === 9 || (kind === 10 && png)) {
      yield { op: 'pass', n: yield* this.compactLength() }; // JPEG / PNG
      return;
    }
    if (kind > 7) throw unknown(`Tight compression control 0x${control.toString(16)}`);
    let filter = 0;
    if (control & 0x40) filter = yield* this.u8();
    let size: number;
    if (filter === 1) {
      const colours = (yield* this.u8()) + 1;
      yield { op: 'pass', n: colours * this.tpixel };
      size = colours <= 2 ? ((w + 7) >> 3) * h : w * h;
    } else if (filter === 0 || filter === 2) {
      size = w * h * this.tpixel;
    } else {
      throw unknown(`Tight filter ${filter}`);
    }
    yield { op: 'pass', n: size < TIGHT_MIN_TO_COMPRESS ? size : yield* this.compactLength() };
  }

  /** Tight compact length: 1–3 bytes, 7 bits each (the third 8), little end first. */
  private *compactLength(): Generator<Op, number, Uint8Array | undefined> {
    let b = yield* this.u8();
    let length = b & 0x7f;
    if (b & 0x80) {
      b = yield* this.u8();
      length |= (b & 0x7f) << 7;
      if (b & 0x80) length |= (yield* this.u8()) << 14;
    }
    return length;
  }
}

function unknown(what: string): RfbError {
  return new RfbError('RFB_UNKNOWN_MESSAGE', 'server', `cannot frame ${what}`);
}
