/**
 * The demo desktop's pixels: a 32-bit framebuffer with simple drawing (rectangles, discs, bitmap
 * text), tile-based damage detection, per-viewer dirty regions, and conversion of rectangles to a
 * viewer's pixel format for Raw encoding (RFC 6143 §7.7.1).
 *
 * Pixels are stored as `0x00RRGGBB` in a `Uint32Array`. The scene is redrawn whole into a back
 * buffer and {@link Framebuffer.commitTo} compares it with the front buffer tile by tile, so drawing
 * code never has to work out what it changed (erasing a faded pointer dot is just "not drawing it").
 *
 * No sockets here: this module is pure and unit-tested with bytes.
 */
import type { PixelFormat } from '../rfb/messages.js';
import { CELL_HEIGHT, CELL_WIDTH, GLYPH_ROWS, GLYPH_WIDTH, glyphColumns } from './font.js';

/** An RGB colour, each channel 0–255. */
export type Rgb = readonly [number, number, number];

/** A rectangle in framebuffer pixels; `w`/`h` may be 0 (empty). */
export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

/** Side of the square tiles compared by {@link Framebuffer.commitTo}. */
export const DAMAGE_TILE = 16;

/** Pack an RGB triple into the framebuffer's `0x00RRGGBB` form. */
export function rgb(r: number, g: number, b: number): number {
  return ((r & 0xff) << 16) | ((g & 0xff) << 8) | (b & 0xff);
}

/** `0x00RRGGBB` from an {@link Rgb}. */
export function packRgb(c: Rgb): number {
  return rgb(c[0], c[1], c[2]);
}

/** Linear blend of two packed colours: t = 0 gives `a`, t = 1 gives `b`. */
export function mix(a: number, b: number, t: number): number {
  const k = t <= 0 ? 0 : t >= 1 ? 1 : t;
  const ch = (shift: number): number => {
    const x = (a >> shift) & 0xff;
    const y = (b >> shift) & 0xff;
    return Math.round(x + (y - x) * k);
  };
  return rgb(ch(16), ch(8), ch(0));
}

/** Intersection of two rectangles (possibly empty). */
export function intersect(a: Rect, b: Rect): Rect {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  const r = Math.min(a.x + a.w, b.x + b.w);
  const bottom = Math.min(a.y + a.h, b.y + b.h);
  return { x, y, w: Math.max(0, r - x), h: Math.max(0, bottom - y) };
}

/** Smallest rectangle containing both. */
export function union(a: Rect, b: Rect): Rect {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y };
}

export function isEmpty(r: Rect): boolean {
  return r.w <= 0 || r.h <= 0;
}

/** Whether `inner` lies entirely inside `outer`. */
export function contains(outer: Rect, inner: Rect): boolean {
  return (
    inner.x >= outer.x &&
    inner.y >= outer.y &&
    inner.x + inner.w <= outer.x + outer.w &&
    inner.y + inner.h <= outer.y + outer.h
  );
}

/** Width in pixels of `text` drawn with {@link Framebuffer.drawText} at `scale`. */
export function textWidth(text: string, scale = 1): number {
  return text.length * CELL_WIDTH * scale;
}

export class Framebuffer {
  readonly pixels: Uint32Array;
  private clip: Rect;

  constructor(
    readonly width: number,
    readonly height: number,
    fill = 0,
  ) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 0xffff || height > 0xffff) {
      throw new RangeError(`framebuffer size must be 1..65535 in each dimension, got ${width}x${height}`);
    }
    this.pixels = new Uint32Array(width * height).fill(fill);
    this.clip = this.bounds();
  }

  bounds(): Rect {
    return { x: 0, y: 0, w: this.width, h: this.height };
  }

  /** Restrict subsequent drawing to `rect` (within the framebuffer); `undefined` resets it. */
  setClip(rect: Rect | undefined): void {
    this.clip = rect ? intersect(rect, this.bounds()) : this.bounds();
  }

  getPixel(x: number, y: number): number {
    return this.pixels[y * this.width + x] ?? 0;
  }

  fillRect(x: number, y: number, w: number, h: number, color: number): void {
    const r = intersect({ x: Math.round(x), y: Math.round(y), w: Math.round(w), h: Math.round(h) }, this.clip);
    for (let row = r.y; row < r.y + r.h; row++) {
      const start = row * this.width + r.x;
      this.pixels.fill(color, start, start + r.w);
    }
  }

  /** A filled disc centred on (cx, cy). */
  fillCircle(cx: number, cy: number, radius: number, color: number): void {
    const r2 = radius * radius;
    const top = Math.max(this.clip.y, Math.floor(cy - radius));
    const bottom = Math.min(this.clip.y + this.clip.h - 1, Math.ceil(cy + radius));
    for (let y = top; y <= bottom; y++) {
      const dy = y - cy;
      if (dy * dy > r2) continue;
      const half = Math.sqrt(r2 - dy * dy);
      const x0 = Math.max(this.clip.x, Math.ceil(cx - half));
      const x1 = Math.min(this.clip.x + this.clip.w - 1, Math.floor(cx + half));
      if (x1 >= x0) this.pixels.fill(color, y * this.width + x0, y * this.width + x1 + 1);
    }
  }

  /**
   * Draw `text` with the 5×7 font (descenders one row lower), top-left of the first cell at (x, y), each font pixel a
   * `scale`×`scale` block. Characters without a glyph are drawn as '?'. Returns the advance in pixels.
   */
  drawText(x: number, y: number, text: string, color: number, scale = 1): number {
    let cx = x;
    for (let i = 0; i < text.length; i++) {
      const columns = glyphColumns(text.charCodeAt(i));
      for (let col = 0; col < GLYPH_WIDTH; col++) {
        const bits = columns[col] ?? 0;
        if (bits === 0) continue;
        for (let row = 0; row < GLYPH_ROWS; row++) {
          if ((bits >> row) & 1) this.fillRect(cx + col * scale, y + row * scale, scale, scale, color);
        }
      }
      cx += CELL_WIDTH * scale;
    }
    return cx - x;
  }

  /** Line height of text at `scale`. */
  static lineHeight(scale = 1): number {
    return CELL_HEIGHT * scale;
  }

  /**
   * Make `front` equal to this buffer and return the rectangles that changed (tile granular, at most
   * {@link DAMAGE_TILE} pixels coarser than the real change). Changed tiles on a tile row are merged
   * into horizontal runs, and runs spanning the same columns on consecutive tile rows are merged.
   */
  commitTo(front: Framebuffer): Rect[] {
    if (front.width !== this.width || front.height !== this.height) throw new RangeError('framebuffer size mismatch');
    const src = this.pixels;
    const dst = front.pixels;
    const width = this.width;
    const out: Rect[] = [];
    let open: { x: number; y: number; w: number; h: number }[] = [];
    for (let ty = 0; ty < this.height; ty += DAMAGE_TILE) {
      const th = Math.min(DAMAGE_TILE, this.height - ty);
      const runs: { x: number; w: number }[] = [];
      for (let tx = 0; tx < width; tx += DAMAGE_TILE) {
        const tw = Math.min(DAMAGE_TILE, width - tx);
        let changed = false;
        for (let row = ty; row < ty + th && !changed; row++) {
          const base = row * width + tx;
          for (let i = base; i < base + tw; i++) {
            if (src[i] !== dst[i]) {
              changed = true;
              break;
            }
          }
        }
        if (!changed) continue;
        for (let row = ty; row < ty + th; row++) {
          const base = row * width + tx;
          dst.set(src.subarray(base, base + tw), base);
        }
        const last = runs[runs.length - 1];
        if (last && last.x + last.w === tx) last.w += tw;
        else runs.push({ x: tx, w: tw });
      }
      // Extend open rectangles whose columns match a run on this row; close the rest.
      const next: typeof open = [];
      for (const run of runs) {
        const i = open.findIndex((o) => o.x === run.x && o.w === run.w && o.y + o.h === ty);
        if (i >= 0) {
          const o = open.splice(i, 1)[0]!;
          o.h += th;
          next.push(o);
        } else {
          next.push({ x: run.x, y: ty, w: run.w, h: th });
        }
      }
      out.push(...open);
      open = next;
    }
    out.push(...open);
    return out;
  }
}

/** Above this many rectangles a {@link DirtyRegion} collapses to their bounding box. */
export const MAX_DIRTY_RECTS = 64;

/**
 * The parts of the screen one viewer has not yet been sent. Overlapping rectangles are merged;
 * past {@link MAX_DIRTY_RECTS} the region collapses to its bounding box (sending a few extra pixels
 * is cheaper than many tiny rectangles).
 */
export class DirtyRegion {
  private rects: Rect[] = [];

  add(rect: Rect): void {
    if (isEmpty(rect)) return;
    let merged = rect;
    let again = true;
    while (again) {
      again = false;
      for (let i = 0; i < this.rects.length; i++) {
        const r = this.rects[i]!;
        if (!isEmpty(intersect(r, merged))) {
          merged = union(r, merged);
          this.rects.splice(i, 1);
          again = true;
          break;
        }
      }
    }
    this.rects.push(merged);
    if (this.rects.length > MAX_DIRTY_RECTS) {
      this.rects = [this.rects.reduce(union)];
    }
  }

  /** Whether any dirty pixel lies inside `area`. */
  intersects(area: Rect): boolean {
    return this.rects.some((r) => !isEmpty(intersect(r, area)));
  }

  /**
   * The dirty rectangles clipped to `area`. Rectangles wholly inside `area` are forgotten; ones only
   * partly inside are kept whole (their outside part is still owed; resending the inside is harmless).
   */
  takeWithin(area: Rect): Rect[] {
    const out: Rect[] = [];
    const keep: Rect[] = [];
    for (const r of this.rects) {
      const clipped = intersect(r, area);
      if (!isEmpty(clipped)) out.push(clipped);
      if (!contains(area, r)) keep.push(r);
    }
    this.rects = keep;
    return out;
  }

  /** Forget what lies wholly inside `area` (it was just sent in full). */
  forgetWithin(area: Rect): void {
    this.rects = this.rects.filter((r) => !contains(area, r));
  }

  get size(): number {
    return this.rects.length;
  }
}

/**
 * Why the demo desktop cannot serve `pf`, or `undefined` if it can. Supported: true-colour at 8, 16
 * or 32 bits per pixel, any shifts and maxima that fit in the pixel, either byte order. Colour-map
 * formats are not supported (the viewer is then disconnected).
 */
export function unsupportedPixelFormat(pf: PixelFormat): string | undefined {
  if (!pf.trueColour) return 'colour-map pixel formats are not supported';
  if (pf.bitsPerPixel !== 8 && pf.bitsPerPixel !== 16 && pf.bitsPerPixel !== 32) {
    return `bits-per-pixel ${pf.bitsPerPixel} is not supported`;
  }
  const channels: [number, number][] = [
    [pf.redMax, pf.redShift],
    [pf.greenMax, pf.greenShift],
    [pf.blueMax, pf.blueShift],
  ];
  for (const [max, shift] of channels) {
    if (!Number.isInteger(max) || max < 1 || max > 0xffff) return `colour maximum ${max} is not supported`;
    if (shift + Math.floor(Math.log2(max)) + 1 > pf.bitsPerPixel) return 'a colour channel does not fit in the pixel';
  }
  return undefined;
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Converts framebuffer rectangles to a viewer's pixel format (Raw encoding, RFC 6143 §7.7.1). */
export class PixelConverter {
  readonly bytesPerPixel: number;
  private readonly red: Uint32Array;
  private readonly green: Uint32Array;
  private readonly blue: Uint32Array;
  /** The format is 32 bpp little-endian 0x00RRGGBB, like the framebuffer on a little-endian host: rows copy as they are. */
  private readonly identity: boolean;

  constructor(readonly format: PixelFormat) {
    const why = unsupportedPixelFormat(format);
    if (why) throw new RangeError(why);
    this.bytesPerPixel = format.bitsPerPixel / 8;
    const table = (max: number, shift: number): Uint32Array => {
      const t = new Uint32Array(256);
      for (let v = 0; v < 256; v++) t[v] = (Math.round((v * max) / 255) << shift) >>> 0;
      return t;
    };
    this.red = table(format.redMax, format.redShift);
    this.green = table(format.greenMax, format.greenShift);
    this.blue = table(format.blueMax, format.blueShift);
    this.identity =
      HOST_LITTLE_ENDIAN &&
      format.bitsPerPixel === 32 &&
      !format.bigEndian &&
      format.redMax === 255 &&
      format.greenMax === 255 &&
      format.blueMax === 255 &&
      format.redShift === 16 &&
      format.greenShift === 8 &&
      format.blueShift === 0;
  }

  /** Bytes needed for `rect` in this format. */
  byteLength(rect: Rect): number {
    return rect.w * rect.h * this.bytesPerPixel;
  }

  /** One framebuffer pixel (`0x00RRGGBB`) as this format's pixel value. */
  pixelValue(p: number): number {
    return (this.red[(p >> 16) & 0xff]! | this.green[(p >> 8) & 0xff]! | this.blue[p & 0xff]!) >>> 0;
  }

  /** Write `rect` of `fb` into `out` at `offset` (row-major, as Raw encoding wants). Returns the new offset. */
  write(fb: Framebuffer, rect: Rect, out: Uint8Array, offset: number): number {
    const r = intersect(rect, fb.bounds());
    if (r.w !== rect.w || r.h !== rect.h) throw new RangeError('rectangle outside the framebuffer');
    const src = fb.pixels;
    let o = offset;
    if (this.identity && (out.byteOffset + o) % 4 === 0) {
      const words = new Uint32Array(out.buffer, out.byteOffset + o, r.w * r.h);
      for (let row = 0; row < r.h; row++) {
        const base = (r.y + row) * fb.width + r.x;
        words.set(src.subarray(base, base + r.w), row * r.w);
      }
      return o + r.w * r.h * 4;
    }
    const bpp = this.bytesPerPixel;
    const big = this.format.bigEndian;
    for (let row = 0; row < r.h; row++) {
      const base = (r.y + row) * fb.width + r.x;
      for (let i = base; i < base + r.w; i++) {
        const v = this.pixelValue(src[i]!);
        if (bpp === 4) {
          if (big) {
            out[o] = v >>> 24;
            out[o + 1] = v >>> 16;
            out[o + 2] = v >>> 8;
            out[o + 3] = v;
          } else {
            out[o] = v;
            out[o + 1] = v >>> 8;
            out[o + 2] = v >>> 16;
            out[o + 3] = v >>> 24;
          }
        } else if (bpp === 2) {
          if (big) {
            out[o] = v >>> 8;
            out[o + 1] = v;
          } else {
            out[o] = v;
            out[o + 1] = v >>> 8;
          }
        } else {
          out[o] = v;
        }
        o += bpp;
      }
    }
    return o;
  }
}
