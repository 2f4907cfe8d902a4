/**
 * Encoders and decoders for whole RFB messages: PIXEL_FORMAT, ServerInit, the client-to-server
 * messages a server (the demo desktop) acts on, and Raw-encoded FramebufferUpdates. These work on
 * complete messages; delimiting a stream into messages is `ClientMessageFramer`'s job and the
 * handshakes are in `server-handshake.ts` / `client-handshake.ts`.
 */
import {
  ClientMessageType,
  Encoding,
  Limits,
  PIXEL_FORMAT_LENGTH,
  SERVER_INIT_FIXED_LENGTH,
  ServerMessageType,
} from './constants.js';
import { RfbError, type RfbSide } from './errors.js';

/** RFC 6143 §7.4 PIXEL_FORMAT. */
export interface PixelFormat {
  bitsPerPixel: 8 | 16 | 32 | number;
  depth: number;
  bigEndian: boolean;
  trueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

/** 32 bpp, depth 24, little-endian true colour, 0x00RRGGBB — what Xvnc and QEMU announce. */
export const DEFAULT_PIXEL_FORMAT: Readonly<PixelFormat> = Object.freeze({
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 16,
  greenShift: 8,
  blueShift: 0,
});

export function encodePixelFormat(pf: PixelFormat): Uint8Array {
  const b = new Uint8Array(PIXEL_FORMAT_LENGTH);
  const v = new DataView(b.buffer);
  b[0] = pf.bitsPerPixel;
  b[1] = pf.depth;
  b[2] = pf.bigEndian ? 1 : 0;
  b[3] = pf.trueColour ? 1 : 0;
  v.setUint16(4, pf.redMax);
  v.setUint16(6, pf.greenMax);
  v.setUint16(8, pf.blueMax);
  b[10] = pf.redShift;
  b[11] = pf.greenShift;
  b[12] = pf.blueShift;
  return b;
}

export function decodePixelFormat(bytes: Uint8Array, offset = 0): PixelFormat {
  if (bytes.length - offset < PIXEL_FORMAT_LENGTH) throw new RangeError('PIXEL_FORMAT needs 16 bytes');
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, PIXEL_FORMAT_LENGTH);
  return {
    bitsPerPixel: v.getUint8(0),
    depth: v.getUint8(1),
    bigEndian: v.getUint8(2) !== 0,
    trueColour: v.getUint8(3) !== 0,
    redMax: v.getUint16(4),
    greenMax: v.getUint16(6),
    blueMax: v.getUint16(8),
    redShift: v.getUint8(10),
    greenShift: v.getUint8(11),
    blueShift: v.getUint8(12),
  };
}

/** Whether we can produce/consume pixels in this format (true colour, 8/16/32 bpp). */
export function isSupportedPixelFormat(pf: PixelFormat): boolean {
  return pf.trueColour && (pf.bitsPerPixel === 8 || pf.bitsPerPixel === 16 || pf.bitsPerPixel === 32);
}

/** §7.3.2 ServerInit. */
export interface ServerInit {
  width: number;
  height: number;
  pixelFormat: PixelFormat;
  /** Desktop name, decoded as UTF-8 (servers send Latin-1 or UTF-8; render it as text only). */
  name: string;
}

export function encodeServerInit(init: ServerInit): Uint8Array {
  const name = new TextEncoder().encode(init.name);
  if (name.length > Limits.MAX_DESKTOP_NAME_BYTES) throw new RangeError('desktop name too long');
  const b = new Uint8Array(SERVER_INIT_FIXED_LENGTH + name.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, init.width);
  v.setUint16(2, init.height);
  b.set(encodePixelFormat(init.pixelFormat), 4);
  v.setUint32(20, name.length);
  b.set(name, SERVER_INIT_FIXED_LENGTH);
  return b;
}

/** Decodes one complete ServerInit; throws RfbError (side 'server') if it is short, long or over a limit. */
export function decodeServerInit(bytes: Uint8Array): ServerInit {
  if (bytes.length < SERVER_INIT_FIXED_LENGTH) {
    throw new RfbError('RFB_UNEXPECTED', 'server', 'ServerInit is shorter than 24 bytes');
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const nameLength = v.getUint32(20);
  if (nameLength > Limits.MAX_DESKTOP_NAME_BYTES) {
    throw new RfbError('RFB_LIMIT_EXCEEDED', 'server', `desktop name of ${nameLength} bytes exceeds ${Limits.MAX_DESKTOP_NAME_BYTES}`);
  }
  if (bytes.length !== SERVER_INIT_FIXED_LENGTH + nameLength) {
    throw new RfbError('RFB_UNEXPECTED', 'server', 'ServerInit length does not match its name length');
  }
  return {
    width: v.getUint16(0),
    height: v.getUint16(2),
    pixelFormat: decodePixelFormat(bytes, 4),
    name: decodeText(bytes.subarray(SERVER_INIT_FIXED_LENGTH)),
  };
}

/** UTF-8 decode, invalid sequences replaced; used for names and reasons (never interpreted as markup). */
export function decodeText(bytes: Uint8Array): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
}

/** A peer-sent reason made safe for a log line: at most MAX_REASON_REPORT_BYTES, no control characters. */
export function sanitiseReason(bytes: Uint8Array): string {
  const capped = bytes.subarray(0, Limits.MAX_REASON_REPORT_BYTES);
  // eslint-disable-next-line no-control-regex
  return decodeText(capped).replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
}

/** U32 length + text, as used by failure reasons (§7.1.2, §7.1.3). */
export function encodeReason(text: string): Uint8Array {
  const t = new TextEncoder().encode(text);
  const b = new Uint8Array(4 + t.length);
  new DataView(b.buffer).setUint32(0, t.length);
  b.set(t, 4);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Pixels and Raw rectangles (§7.7.1)

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

function scale(value8: number, max: number): number {
  return Math.round((value8 * max) / 255);
}

/** One pixel with 8-bit components packed into `pf` (bytes per pixel = bpp / 8). */
export function packPixel(pf: PixelFormat, colour: Rgb): Uint8Array {
  const value =
    (scale(colour.r, pf.redMax) << pf.redShift) |
    (scale(colour.g, pf.greenMax) << pf.greenShift) |
    (scale(colour.b, pf.blueMax) << pf.blueShift);
  const bpp = pf.bitsPerPixel / 8;
  const out = new Uint8Array(bpp);
  for (let i = 0; i < bpp; i++) {
    const byte = (value >>> (8 * i)) & 0xff;
    out[pf.bigEndian ? bpp - 1 - i : i] = byte;
  }
  return out;
}

/** Reads one pixel at `offset` and expands its components to 8 bits. */
export function unpackPixel(pf: PixelFormat, bytes: Uint8Array, offset: number): Rgb {
  const bpp = pf.bitsPerPixel / 8;
  let value = 0;
  for (let i = 0; i < bpp; i++) {
    const byte = bytes[offset + (pf.bigEndian ? i : bpp - 1 - i)] ?? 0;
    value = value * 256 + byte;
  }
  const comp = (shift: number, max: number): number =>
    max === 0 ? 0 : Math.round(((Math.floor(value / 2 ** shift) & max) * 255) / max);
  return { r: comp(pf.redShift, pf.redMax), g: comp(pf.greenShift, pf.greenMax), b: comp(pf.blueShift, pf.blueMax) };
}

/** A solid rectangle's Raw pixel data in `pf`. */
export function solidRawPixels(pf: PixelFormat, width: number, height: number, colour: Rgb): Uint8Array {
  const px = packPixel(pf, colour);
  const out = new Uint8Array(width * height * px.length);
  for (let i = 0; i < out.length; i += px.length) out.set(px, i);
  return out;
}

export interface Rectangle {
  x: number;
  y: number;
  width: number;
  height: number;
  encoding: number;
  /** Encoded rectangle data (for Raw: width × height × bytes-per-pixel). */
  data: Uint8Array;
}

/** §7.6.1 FramebufferUpdate with the given rectangles (U8 0, pad, U16 n, rect headers + data). */
export function encodeFramebufferUpdate(rects: readonly Rectangle[]): Uint8Array {
  let total = 4;
  for (const r of rects) total += 12 + r.data.length;
  const b = new Uint8Array(total);
  const v = new DataView(b.buffer);
  b[0] = ServerMessageType.FRAMEBUFFER_UPDATE;
  v.setUint16(2, rects.length);
  let o = 4;
  for (const r of rects) {
    v.setUint16(o, r.x);
    v.setUint16(o + 2, r.y);
    v.setUint16(o + 4, r.width);
    v.setUint16(o + 6, r.height);
    v.setInt32(o + 8, r.encoding);
    b.set(r.data, o + 12);
    o += 12 + r.data.length;
  }
  return b;
}

/** FramebufferUpdate of Raw rectangles whose pixels are already in the client's pixel format. */
export function encodeFramebufferUpdateRaw(
  rects: readonly { x: number; y: number; width: number; height: number; pixels: Uint8Array }[],
): Uint8Array {
  return encodeFramebufferUpdate(rects.map((r) => ({ ...r, encoding: Encoding.RAW, data: r.pixels })));
}

/** §7.6.3 Bell. */
export function encodeBell(): Uint8Array {
  return Uint8Array.of(ServerMessageType.BELL);
}

/** §7.6.4 ServerCutText (Latin-1 text per the RFC; bytes are passed as given). */
export function encodeServerCutText(text: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + text.length);
  b[0] = ServerMessageType.SERVER_CUT_TEXT;
  new DataView(b.buffer).setUint32(4, text.length);
  b.set(text, 8);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Client-to-server messages (§7.5)

export function encodeSetPixelFormat(pf: PixelFormat): Uint8Array {
  const b = new Uint8Array(20);
  b[0] = ClientMessageType.SET_PIXEL_FORMAT;
  b.set(encodePixelFormat(pf), 4);
  return b;
}

export function encodeSetEncodings(encodings: readonly number[]): Uint8Array {
  const b = new Uint8Array(4 + 4 * encodings.length);
  const v = new DataView(b.buffer);
  b[0] = ClientMessageType.SET_ENCODINGS;
  v.setUint16(2, encodings.length);
  encodings.forEach((e, i) => v.setInt32(4 + 4 * i, e));
  return b;
}

export function encodeFramebufferUpdateRequest(r: {
  incremental: boolean;
  x: number;
  y: number;
  width: number;
  height: number;
}): Uint8Array {
  const b = new Uint8Array(10);
  const v = new DataView(b.buffer);
  b[0] = ClientMessageType.FRAMEBUFFER_UPDATE_REQUEST;
  b[1] = r.incremental ? 1 : 0;
  v.setUint16(2, r.x);
  v.setUint16(4, r.y);
  v.setUint16(6, r.width);
  v.setUint16(8, r.height);
  return b;
}

export function encodeKeyEvent(down: boolean, keysym: number): Uint8Array {
  const b = new Uint8Array(8);
  b[0] = ClientMessageType.KEY_EVENT;
  b[1] = down ? 1 : 0;
  new DataView(b.buffer).setUint32(4, keysym >>> 0);
  return b;
}

export function encodePointerEvent(buttonMask: number, x: number, y: number): Uint8Array {
  const b = new Uint8Array(6);
  const v = new DataView(b.buffer);
  b[0] = ClientMessageType.POINTER_EVENT;
  b[1] = buttonMask & 0xff;
  v.setUint16(2, x);
  v.setUint16(4, y);
  return b;
}

export function encodeClientCutText(text: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + text.length);
  b[0] = ClientMessageType.CLIENT_CUT_TEXT;
  new DataView(b.buffer).setUint32(4, text.length);
  b.set(text, 8);
  return b;
}

/** A decoded client-to-server message; types the demo desktop does not act on stay as bytes. */
export type ClientMessage =
  | { type: 'SetPixelFormat'; pixelFormat: PixelFormat }
  | { type: 'SetEncodings'; encodings: number[] }
  | { type: 'FramebufferUpdateRequest'; incremental: boolean; x: number; y: number; width: number; height: number }
  | { type: 'KeyEvent'; down: boolean; keysym: number }
  | { type: 'PointerEvent'; buttonMask: number; x: number; y: number }
  | { type: 'ClientCutText'; text: Uint8Array; extended: boolean }
  | { type: 'Other'; messageType: number; bytes: Uint8Array };

/**
 * Decodes one complete client message as delimited by ClientMessageFramer. Throws RfbError (side
 * 'client') if the frame's length does not match its type.
 */
export function decodeClientMessage(frame: Uint8Array): ClientMessage {
  const side: RfbSide = 'client';
  const type = frame[0];
  if (type === undefined) throw new RfbError('RFB_UNEXPECTED', side, 'empty client message');
  const v = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const need = (n: number): void => {
    if (frame.length !== n) throw new RfbError('RFB_UNEXPECTED', side, `client message ${type} must be ${n} bytes, got ${frame.length}`);
  };
  switch (type) {
    case ClientMessageType.SET_PIXEL_FORMAT:
      need(20);
      return { type: 'SetPixelFormat', pixelFormat: decodePixelFormat(frame, 4) };
    case ClientMessageType.SET_ENCODINGS: {
      if (frame.length < 4) need(4);
      const n = v.getUint16(2);
      need(4 + 4 * n);
      const encodings: number[] = [];
      for (let i = 0; i < n; i++) encodings.push(v.getInt32(4 + 4 * i));
      return { type: 'SetEncodings', encodings };
    }
    case ClientMessageType.FRAMEBUFFER_UPDATE_REQUEST:
      need(10);
      return {
        type: 'FramebufferUpdateRequest',
        incremental: v.getUint8(1) !== 0,
        x: v.getUint16(2),
        y: v.getUint16(4),
        width: v.getUint16(6),
        height: v.getUint16(8),
      };
    case ClientMessageType.KEY_EVENT:
      need(8);
      return { type: 'KeyEvent', down: v.getUint8(1) !== 0, keysym: v.getUint32(4) };
    case ClientMessageType.POINTER_EVENT:
      // ExtendedMouseButtons: marker bit 0x80 in byte 1, buttons 8+ in a 7th byte.
      if (frame.length !== 7) need(6);
      return {
        type: 'PointerEvent',
        buttonMask: frame.length === 7 ? (v.getUint8(1) & 0x7f) | (v.getUint8(6) << 7) : v.getUint8(1),
        x: v.getUint16(2),
        y: v.getUint16(4),
      };
    case ClientMessageType.CLIENT_CUT_TEXT: {
      if (frame.length < 8) need(8);
      const len = v.getInt32(4);
      need(8 + Math.abs(len));
      return { type: 'ClientCutText', text: frame.subarray(8), extended: len < 0 };
    }
    default:
      return { type: 'Other', messageType: type, bytes: frame };
  }
}
