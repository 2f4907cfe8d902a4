/**
 * ProtocolVersion parsing and the version each side settles on (RFC 6143 §7.1.1).
 *
 * The message is exactly `"RFB xxx.yyy\n"` with three decimal digits each. Only 3.3, 3.7 and 3.8 are
 * published; other 3.x below 3.7 behave as 3.3 (3.5 was wrongly sent by old clients, 3.6 is
 * UltraVNC); versions above 3.8 (3.889 Apple, 4.0 Intel AMT, 4.1 RealVNC 4.6, 5.0 RealVNC 5) speak
 * the 3.8 handshake to a 3.8 peer.
 */
import type { ByteQueue } from './byte-queue.js';
import { VERSION_MESSAGE_LENGTH, type RfbVersion } from './constants.js';
import { RfbError, type RfbSide } from './errors.js';
import { sanitiseReason } from './messages.js';

const VERSION_RE = /^RFB (\d{3})\.(\d{3})\n$/;

/** Parses the 12 version bytes; throws RFB_BAD_VERSION (blamed on `side`) on anything else. */
export function parseVersion(bytes: Uint8Array, side: RfbSide): { major: number; minor: number } {
  if (bytes.length !== VERSION_MESSAGE_LENGTH) {
    throw new RfbError('RFB_BAD_VERSION', side, 'ProtocolVersion must be 12 bytes');
  }
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  const m = VERSION_RE.exec(text);
  if (!m) {
    throw new RfbError('RFB_BAD_VERSION', side, 'not an RFB ProtocolVersion message', { reason: sanitiseReason(bytes) });
  }
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/**
 * The version to speak with a peer that announced `major.minor`, ours being 3.8 at most.
 * Below 3.3 (including the UltraVNC repeater's 000.000) is refused.
 */
export function negotiatedVersion(v: { major: number; minor: number }, side: RfbSide): RfbVersion {
  if (v.major > 3) return '3.8';
  if (v.major === 3) {
    if (v.minor >= 8) return '3.8';
    if (v.minor === 7) return '3.7';
    if (v.minor >= 3) return '3.3';
  }
  const shown = `${String(v.major).padStart(3, '0')}.${String(v.minor).padStart(3, '0')}`;
  throw new RfbError('RFB_BAD_VERSION', side, `unsupported RFB version ${shown}`);
}

const TEMPLATE = 'RFB ddd.ddd\n';

/**
 * Early rejection: checks the bytes received so far against `"RFB ddd.ddd\n"`, so a peer speaking
 * HTTP, TLS or junk fails on its first bytes instead of after 12 bytes or a handshake timeout.
 */
export function checkVersionPrefix(queue: ByteQueue, side: RfbSide): void {
  const n = Math.min(queue.length, VERSION_MESSAGE_LENGTH);
  for (let i = 0; i < n; i++) {
    const b = queue.peekU8(i);
    const t = TEMPLATE.charCodeAt(i);
    const ok = t === 0x64 /* d */ ? b >= 0x30 && b <= 0x39 : b === t;
    if (!ok) {
      throw new RfbError('RFB_BAD_VERSION', side, `not an RFB ProtocolVersion (byte ${i} is 0x${b.toString(16).padStart(2, '0')})`);
    }
  }
}
