/**
 * RFB wire constants and the limits Porthole applies to every length read from the wire.
 *
 * Byte layouts and clause numbers refer to RFC 6143 ("The Remote Framebuffer Protocol") and, for
 * extensions the RFC does not cover, to the community specification (rfbproto.rst). All multi-byte
 * integers on the wire are big-endian (RFC 6143 §7). Nothing here does I/O.
 */

/**
 * §7.1.1 ProtocolVersion: exactly 12 bytes, `"RFB xxx.yyy\n"`, xxx/yyy zero-padded decimal.
 * The published versions are 3.3, 3.7 and 3.8; 3.5 must be read as 3.3.
 */
export const VERSION_MESSAGE_LENGTH = 12;
export const VERSION_3_3 = 'RFB 003.003\n';
export const VERSION_3_7 = 'RFB 003.007\n';
export const VERSION_3_8 = 'RFB 003.008\n';
export type RfbVersion = '3.3' | '3.7' | '3.8';
export const VERSION_STRINGS: Readonly<Record<RfbVersion, string>> = {
  '3.3': VERSION_3_3,
  '3.7': VERSION_3_7,
  '3.8': VERSION_3_8,
};

/**
 * §7.1.2 / §7.2 security types. 3.7+: U8 count, U8[count] types (count 0 → U32 reason-length +
 * reason, then close); the client answers one U8. 3.3: the server sends one U32 type (0 → reason).
 */
export const SecurityType = {
  INVALID: 0,
  NONE: 1,
  VNC_AUTH: 2,
  RA2: 5,
  RA2NE: 6,
  RA2_TWO_STEP: 13,
  TIGHT: 16,
  VENCRYPT: 19,
  SASL: 20,
  XVP: 22,
  DIFFIE_HELLMAN: 30,
  MS_LOGON_II: 113,
  RA2_256: 129,
  RA2NE_256: 130,
  RA2_256_TWO_STEP: 133,
} as const;

/**
 * VeNCrypt (type 19) subtypes, rfbproto §7.2.19: after `U8 major, U8 minor` (0.2) and the client's
 * echo + server ack U8, the server sends `U8 count, U32[count]` subtypes; the client answers U32, the
 * server answers U8 (1 = accepted) and, for TLS/X509 subtypes, the TLS handshake starts. Nova's enum
 * swaps 263/264; these are rfbproto's numbers.
 */
export const VeNCryptSubtype = {
  PLAIN: 256,
  TLS_NONE: 257,
  TLS_VNC: 258,
  TLS_PLAIN: 259,
  X509_NONE: 260,
  X509_VNC: 261,
  X509_PLAIN: 262,
  TLS_SASL: 263,
  X509_SASL: 264,
} as const;

/** §7.1.3 SecurityResult: U32. In 3.8 a failure is followed by U32 reason-length + reason. */
export const SecurityResult = {
  OK: 0,
  FAILED: 1,
  /** Tight security only: too many attempts. Treated as a failure. */
  FAILED_TOO_MANY: 2,
} as const;

/** §7.2.2 VNC Authentication: a 16-byte challenge, answered with 16 bytes of DES output. */
export const VNC_AUTH_CHALLENGE_LENGTH = 16;
/** Only the first 8 bytes of a VNC password are used (the DES key size). */
export const VNC_PASSWORD_MAX_BYTES = 8;

/** §7.3.1 ClientInit: one U8 shared-flag (0 = exclusive: the server should drop other clients). */
export const CLIENT_INIT_LENGTH = 1;

/**
 * §7.3.2 ServerInit: U16 width, U16 height, PIXEL_FORMAT (16 bytes), U32 name-length, U8[] name.
 * §7.4 PIXEL_FORMAT: U8 bpp, U8 depth, U8 big-endian, U8 true-colour, U16 red-max, U16 green-max,
 * U16 blue-max, U8 red-shift, U8 green-shift, U8 blue-shift, 3 bytes padding.
 */
export const PIXEL_FORMAT_LENGTH = 16;
export const SERVER_INIT_FIXED_LENGTH = 24;

/** §7.5 client-to-server message types (plus registered extensions from rfbproto). */
export const ClientMessageType = {
  /** §7.5.1: U8 type, 3 pad, PIXEL_FORMAT — 20 bytes. */
  SET_PIXEL_FORMAT: 0,
  /** §7.5.2: U8 type, pad, U16 n, S32[n] — 4 + 4n bytes. */
  SET_ENCODINGS: 2,
  /** §7.5.3: U8 type, U8 incremental, U16 x, y, w, h — 10 bytes. */
  FRAMEBUFFER_UPDATE_REQUEST: 3,
  /** §7.5.4: U8 type, U8 down, 2 pad, U32 keysym — 8 bytes. */
  KEY_EVENT: 4,
  /** §7.5.5: U8 type, U8 button-mask, U16 x, U16 y — 6 bytes (7 with ExtendedMouseButtons and mask bit 0x80). */
  POINTER_EVENT: 5,
  /** §7.5.6: U8 type, 3 pad, U32 length, text — 8 + L (ExtendedClipboard: S32 < 0 → 8 + |L|). */
  CLIENT_CUT_TEXT: 6,
  /** rfbproto EnableContinuousUpdates: U8 type, U8 enable, U16 x, y, w, h — 10 bytes. */
  ENABLE_CONTINUOUS_UPDATES: 150,
  /** rfbproto ClientFence: U8 type, 3 pad, U32 flags, U8 p, U8[p] payload (p ≤ 64) — 9 + p. */
  CLIENT_FENCE: 248,
  /** rfbproto xvp: U8 type, pad, U8 version, U8 code (2 shutdown, 3 reboot, 4 reset) — 4 bytes. */
  XVP: 250,
  /** rfbproto SetDesktopSize: U8 type, pad, U16 w, U16 h, U8 s, pad, s × 16-byte screens — 8 + 16s. */
  SET_DESKTOP_SIZE: 251,
  /** rfbproto gii: U8 type, U8 endian+subtype (bit 7 = big-endian), EU16 length, body — 4 + length. */
  GII: 253,
  /** rfbproto QEMU client message: U8 type, U8 subtype, ... (see QemuClientSubtype). */
  QEMU: 255,
} as const;

/** QEMU client message (type 255) subtypes. */
export const QemuClientSubtype = {
  /** U8 255, U8 0, U16 down, U32 keysym, U32 keycode — 12 bytes. */
  EXTENDED_KEY_EVENT: 0,
  /** U8 255, U8 1, U16 operation: 0 enable / 1 disable → 4 bytes; 2 set-format → 10 bytes. */
  AUDIO: 1,
} as const;
export const QemuAudioOperation = { ENABLE: 0, DISABLE: 1, SET_FORMAT: 2 } as const;

/** §7.6 server-to-client message types (plus registered extensions). */
export const ServerMessageType = {
  /** §7.6.1: U8 type, pad, U16 n-rects, then rects: U16 x, y, w, h, S32 encoding, data. */
  FRAMEBUFFER_UPDATE: 0,
  /** §7.6.2: U8 type, pad, U16 first-colour, U16 n, n × (U16 r, g, b). */
  SET_COLOUR_MAP_ENTRIES: 1,
  /** §7.6.3: U8 type — 1 byte. */
  BELL: 2,
  /** §7.6.4: U8 type, 3 pad, U32 (ExtendedClipboard: S32) length, text. */
  SERVER_CUT_TEXT: 3,
  END_OF_CONTINUOUS_UPDATES: 150,
  SERVER_FENCE: 248,
  XVP: 250,
  QEMU: 255,
} as const;

/** §7.7 encodings (rectangle encodings). */
export const Encoding = {
  RAW: 0,
  COPY_RECT: 1,
  RRE: 2,
  CORRE: 4,
  HEXTILE: 5,
  ZLIB: 6,
  TIGHT: 7,
  ZLIBHEX: 8,
  TRLE: 15,
  ZRLE: 16,
  JPEG: 21,
  H264: 50,
  TIGHT_PNG: -260,
} as const;

/** §7.8 pseudo-encodings and rfbproto extensions (values are S32 as on the wire). */
export const PseudoEncoding = {
  /** -32 … -23: JPEG quality level 0–9. */
  QUALITY_LEVEL_0: -32,
  QUALITY_LEVEL_9: -23,
  /** -256 … -247: compression level 0–9. */
  COMPRESS_LEVEL_0: -256,
  COMPRESS_LEVEL_9: -247,
  DESKTOP_SIZE: -223,
  LAST_RECT: -224,
  POINTER_POS: -232,
  CURSOR: -239,
  X_CURSOR: -240,
  QEMU_EXTENDED_KEY_EVENT: -258,
  QEMU_AUDIO: -259,
  QEMU_LED_STATE: -261,
  GII: -305,
  DESKTOP_NAME: -307,
  EXTENDED_DESKTOP_SIZE: -308,
  XVP: -309,
  FENCE: -312,
  CONTINUOUS_UPDATES: -313,
  CURSOR_WITH_ALPHA: -314,
  EXTENDED_MOUSE_BUTTONS: -316,
  /** -412 … -512: JPEG fine-grained quality; -763 … -768: JPEG subsampling. */
  JPEG_FINE_QUALITY_FIRST: -512,
  JPEG_FINE_QUALITY_LAST: -412,
  JPEG_SUBSAMPLING_FIRST: -768,
  JPEG_SUBSAMPLING_LAST: -763,
  /** 0xC0A1E5CE as S32. */
  EXTENDED_CLIPBOARD: 0xc0a1e5ce | 0,
  /** 0x574D5664 ("WMVd"). */
  VMWARE_CURSOR: 0x574d5664,
} as const;

/** Button-mask bit that, with ExtendedMouseButtons acknowledged, announces a 7th PointerEvent byte. */
export const POINTER_EXTENDED_MASK_BIT = 0x80;

/**
 * Named limits for every length read from the wire (STYLE §3). Exceeding one ends the exchange with
 * RFB_LIMIT_EXCEEDED (or, for reasons, the error the reason belonged to, without the text).
 */
export const Limits = {
  /** A failure reason longer than this is not read at all (we do not wait for it). */
  MAX_REASON_READ_BYTES: 4096,
  /** At most this many bytes of a reason are reported (Nova caps at 256). */
  MAX_REASON_REPORT_BYTES: 256,
  /** ServerInit desktop name; longer names are refused rather than buffered. */
  MAX_DESKTOP_NAME_BYTES: 4096,
  /** Security types offered in one list (the U8 count allows 255; real servers offer a handful). */
  MAX_SECURITY_TYPES: 64,
  /** ClientCutText (and ServerCutText) payload kept in memory; longer ones are refused or skipped. */
  MAX_CLIENT_CUT_TEXT_BYTES: 1024 * 1024,
  /** SetEncodings entries (the U16 count allows 65535 ≈ 256 KiB). */
  MAX_ENCODINGS: 1024,
  /** ClientFence payload (rfbproto: at most 64). */
  MAX_FENCE_PAYLOAD_BYTES: 64,
  /** gii message body (EU16 allows 65535; real gii events and device creations are far smaller). */
  MAX_GII_BODY_BYTES: 4096,
} as const;
