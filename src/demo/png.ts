/**
 * A minimal PNG encoder (8-bit RGB, no interlace, filter 0 on every row) over `node:zlib`, so the
 * demo desktop's screen can be saved as an image for tests and docs without an image library.
 * Format: PNG specification (ISO/IEC 15948) §5 chunk layout, §11.2.2 IHDR.
 */
import { deflateSync } from 'node:zlib';

const SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encode `width`×`height` pixels given as `0x00RRGGBB` values (row-major) into a PNG file. */
export function encodePng(width: number, height: number, pixels: ArrayLike<number>): Buffer {
  if (pixels.length < width * height) throw new RangeError('not enough pixels');
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour RGB
  // compression 0, filter 0, interlace 0 are the zeroes already there
  const raw = Buffer.alloc(height * (1 + width * 3));
  let o = 0;
  for (let y = 0; y < height; y++) {
    raw[o++] = 0; // filter type None
    for (let x = 0; x < width; x++) {
      const p = pixels[y * width + x]!;
      raw[o++] = (p >> 16) & 0xff;
      raw[o++] = (p >> 8) & 0xff;
      raw[o++] = p & 0xff;
    }
  }
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}
