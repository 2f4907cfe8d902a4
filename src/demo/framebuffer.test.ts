/**
 * Unit tests for the demo desktop's pure parts: font table, drawing, damage detection, dirty
 * regions, pixel-format conversion, the scene's guaranteed background frame, and the PNG encoder.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inflateSync } from 'node:zlib';
import { DESCENDERS, FIRST_CHAR, GLYPH_COUNT, LAST_CHAR, glyphColumns, glyphPixel } from './font.js';
import {
  DirtyRegion,
  Framebuffer,
  MAX_DIRTY_RECTS,
  PixelConverter,
  mix,
  rgb,
  unsupportedPixelFormat,
  type Rect,
} from './framebuffer.js';
import { DEFAULT_PIXEL_FORMAT, type PixelFormat } from '../rfb/messages.js';
import { encodePng } from './png.js';
import { DEFAULT_BACKGROUND, DemoScene, GUARANTEED_MARGIN, TRAIL_FADE_MS } from './scene.js';

describe('font', () => {
  it('has one 5-column glyph per printable ASCII character, 7 rows high plus descenders', () => {
    assert.equal(GLYPH_COUNT, LAST_CHAR - FIRST_CHAR + 1);
    for (let c = FIRST_CHAR; c <= LAST_CHAR; c++) {
      const cols = glyphColumns(c);
      const ch = String.fromCharCode(c);
      assert.equal(cols.length, 5);
      assert.equal(cols.some((col) => col & 0x80), DESCENDERS.includes(ch), `descender row use of ${ch}`);
      for (const col of cols) assert.ok(col <= 0xff);
      if (c !== 32) assert.ok(cols.some((col) => col !== 0), `glyph ${String.fromCharCode(c)} is blank`);
    }
  });

  it('draws distinct glyphs for distinct characters', () => {
    const seen = new Map<string, number>();
    for (let c = FIRST_CHAR; c <= LAST_CHAR; c++) {
      const key = glyphColumns(c).join(',');
      assert.equal(seen.get(key), undefined, `${String.fromCharCode(c)} looks like ${String.fromCharCode(seen.get(key) ?? 0)}`);
      seen.set(key, c);
    }
  });

  it("draws characters outside ASCII as '?'", () => {
    assert.deepEqual(glyphColumns(0xe9), glyphColumns(0x3f));
    assert.deepEqual(glyphColumns(10), glyphColumns(0x3f));
    // 'I' has a full vertical bar in its middle column.
    for (let row = 0; row < 7; row++) assert.ok(glyphPixel(0x49, 2, row));
  });
});

describe('Framebuffer drawing', () => {
  it('fills rectangles clipped to the buffer and the clip rectangle', () => {
    const fb = new Framebuffer(8, 8, 1);
    fb.fillRect(-2, -2, 4, 4, 7);
    assert.equal(fb.getPixel(0, 0), 7);
    assert.equal(fb.getPixel(1, 1), 7);
    assert.equal(fb.getPixel(2, 2), 1);
    fb.setClip({ x: 4, y: 4, w: 2, h: 2 });
    fb.fillRect(0, 0, 8, 8, 9);
    assert.equal(fb.getPixel(3, 3), 1);
    assert.equal(fb.getPixel(4, 4), 9);
    assert.equal(fb.getPixel(5, 5), 9);
    assert.equal(fb.getPixel(6, 6), 1);
  });

  it('draws text scaled, one cell per character', () => {
    const fb = new Framebuffer(40, 20, 0);
    const adv = fb.drawText(0, 0, 'I', 5, 2);
    assert.equal(adv, 12);
    // The middle column of 'I' (font x 2) covers x 4..5 at scale 2, all 14 rows.
    for (let y = 0; y < 14; y++) assert.equal(fb.getPixel(4, y), 5);
    assert.equal(fb.getPixel(4, 14), 0);
    assert.equal(fb.getPixel(0, 6), 0);
  });

  it('rejects sizes RFB cannot express', () => {
    assert.throws(() => new Framebuffer(0, 10), RangeError);
    assert.throws(() => new Framebuffer(70000, 10), RangeError);
  });

  it('mixes colours linearly', () => {
    assert.equal(mix(rgb(0, 0, 0), rgb(200, 100, 50), 0.5), rgb(100, 50, 25));
    assert.equal(mix(rgb(1, 2, 3), rgb(9, 9, 9), 0), rgb(1, 2, 3));
    assert.equal(mix(rgb(1, 2, 3), rgb(9, 9, 9), 2), rgb(9, 9, 9));
  });
});

describe('Framebuffer.commitTo damage', () => {
  it('reports nothing when nothing changed', () => {
    const back = new Framebuffer(64, 64, 3);
    const front = new Framebuffer(64, 64, 3);
    assert.deepEqual(back.commitTo(front), []);
  });

  it('reports the changed tiles and makes the front equal the back', () => {
    const back = new Framebuffer(100, 50, 0);
    const front = new Framebuffer(100, 50, 0);
    back.fillRect(20, 5, 20, 20, 1); // tiles x 16..47, y 0..31
    back.fillRect(99, 49, 1, 1, 2); // last, partial tile
    const rects = back.commitTo(front);
    assert.deepEqual(sortRects(rects), sortRects([
      { x: 16, y: 0, w: 32, h: 32 },
      { x: 96, y: 48, w: 4, h: 2 },
    ]));
    assert.deepEqual(front.pixels, back.pixels);
    assert.deepEqual(back.commitTo(front), []);
  });

  it('covers every changed pixel whatever the change (random)', () => {
    for (let round = 0; round < 20; round++) {
      const w = 1 + Math.floor(Math.random() * 90);
      const h = 1 + Math.floor(Math.random() * 90);
      const back = new Framebuffer(w, h, 0);
      const front = new Framebuffer(w, h, 0);
      const changed: [number, number][] = [];
      for (let i = 0; i < 10; i++) {
        const x = Math.floor(Math.random() * w);
        const y = Math.floor(Math.random() * h);
        back.fillRect(x, y, 1, 1, 1);
        changed.push([x, y]);
      }
      const rects = back.commitTo(front);
      for (const [x, y] of changed) {
        assert.ok(rects.some((r) => x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h), `(${x},${y}) not reported`);
      }
      for (const r of rects) assert.ok(r.x + r.w <= w && r.y + r.h <= h && r.w > 0 && r.h > 0);
    }
  });
});

describe('DirtyRegion', () => {
  it('merges overlapping rectangles and keeps separate ones apart', () => {
    const d = new DirtyRegion();
    d.add({ x: 0, y: 0, w: 10, h: 10 });
    d.add({ x: 5, y: 5, w: 10, h: 10 });
    d.add({ x: 100, y: 100, w: 1, h: 1 });
    d.add({ x: 0, y: 0, w: 0, h: 5 });
    assert.equal(d.size, 2);
    assert.deepEqual(sortRects(d.takeWithin({ x: 0, y: 0, w: 200, h: 200 })), [
      { x: 0, y: 0, w: 15, h: 15 },
      { x: 100, y: 100, w: 1, h: 1 },
    ]);
    assert.equal(d.size, 0);
  });

  it('clips to the requested area and keeps what lies partly outside it', () => {
    const d = new DirtyRegion();
    d.add({ x: 0, y: 0, w: 20, h: 20 });
    assert.deepEqual(d.takeWithin({ x: 10, y: 10, w: 50, h: 50 }), [{ x: 10, y: 10, w: 10, h: 10 }]);
    assert.equal(d.size, 1);
    assert.ok(d.intersects({ x: 0, y: 0, w: 1, h: 1 }));
    assert.ok(!d.intersects({ x: 30, y: 30, w: 5, h: 5 }));
    d.forgetWithin({ x: 0, y: 0, w: 20, h: 20 });
    assert.equal(d.size, 0);
  });

  it('collapses to a bounding box when it holds too many rectangles', () => {
    const d = new DirtyRegion();
    for (let i = 0; i <= MAX_DIRTY_RECTS; i++) d.add({ x: i * 2, y: 0, w: 1, h: 1 });
    assert.equal(d.size, 1);
    assert.deepEqual(d.takeWithin({ x: 0, y: 0, w: 1000, h: 10 }), [{ x: 0, y: 0, w: MAX_DIRTY_RECTS * 2 + 1, h: 1 }]);
  });
});

describe('PixelConverter', () => {
  const fb = new Framebuffer(2, 1, 0);
  fb.fillRect(0, 0, 1, 1, rgb(0x12, 0x34, 0x56));
  fb.fillRect(1, 0, 1, 1, rgb(0xff, 0x80, 0x00));
  const all: Rect = { x: 0, y: 0, w: 2, h: 1 };
  const convert = (pf: Partial<PixelFormat>): number[] => {
    const c = new PixelConverter({ ...DEFAULT_PIXEL_FORMAT, ...pf });
    const out = new Uint8Array(c.byteLength(all));
    assert.equal(c.write(fb, all, out, 0), out.length);
    return [...out];
  };

  it('writes the native format (32 bpp little-endian xRGB) as is', () => {
    assert.deepEqual(convert({}), [0x56, 0x34, 0x12, 0, 0x00, 0x80, 0xff, 0]);
  });

  it('honours other shifts and big-endian at 32 bpp (noVNC RGBx, BGRx)', () => {
    assert.deepEqual(convert({ redShift: 0, greenShift: 8, blueShift: 16 }), [0x12, 0x34, 0x56, 0, 0xff, 0x80, 0x00, 0]);
    assert.deepEqual(convert({ bigEndian: true }), [0, 0x12, 0x34, 0x56, 0, 0xff, 0x80, 0x00]);
    assert.deepEqual(convert({ redShift: 24, greenShift: 16, blueShift: 8, bigEndian: true }), [0x12, 0x34, 0x56, 0, 0xff, 0x80, 0x00, 0]);
  });

  it('writes at an unaligned offset too', () => {
    const c = new PixelConverter(DEFAULT_PIXEL_FORMAT);
    const out = new Uint8Array(1 + c.byteLength(all));
    c.write(fb, all, out, 1);
    assert.deepEqual([...out.subarray(1)], [0x56, 0x34, 0x12, 0, 0x00, 0x80, 0xff, 0]);
  });

  it('scales channels for 16 bpp RGB565 in both byte orders', () => {
    const rgb565 = { bitsPerPixel: 16, depth: 16, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
    // round(v·max/255): 0x12→2, 0x34→13, 0x56→10 : (2<<11)|(13<<5)|10 = 0x11aa ; 0xff→31, 0x80→32, 0→0 : 0xfc00
    assert.deepEqual(convert(rgb565), [0xaa, 0x11, 0x00, 0xfc]);
    assert.deepEqual(convert({ ...rgb565, bigEndian: true }), [0x11, 0xaa, 0xfc, 0x00]);
  });

  it('scales channels for 8 bpp BGR233', () => {
    const bgr233 = { bitsPerPixel: 8, depth: 8, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 };
    // round(v·max/255): 0x12→0, 0x34→1, 0x56→1 : 0|(1<<3)|(1<<6) = 0x48 ; 0xff→7, 0x80→4, 0→0 : 7|(4<<3) = 0x27
    assert.deepEqual(convert(bgr233), [0x48, 0x27]);
  });

  it('refuses colour maps, odd sizes and channels that do not fit', () => {
    assert.match(unsupportedPixelFormat({ ...DEFAULT_PIXEL_FORMAT, trueColour: false }) ?? '', /colour-map/);
    assert.match(unsupportedPixelFormat({ ...DEFAULT_PIXEL_FORMAT, bitsPerPixel: 24 }) ?? '', /bits-per-pixel/);
    assert.match(unsupportedPixelFormat({ ...DEFAULT_PIXEL_FORMAT, bitsPerPixel: 16 }) ?? '', /does not fit/);
    assert.match(unsupportedPixelFormat({ ...DEFAULT_PIXEL_FORMAT, redMax: 0 }) ?? '', /maximum/);
    assert.equal(unsupportedPixelFormat(DEFAULT_PIXEL_FORMAT), undefined);
    assert.throws(() => new PixelConverter({ ...DEFAULT_PIXEL_FORMAT, trueColour: false }), RangeError);
  });
});

describe('DemoScene', () => {
  const bg = rgb(...DEFAULT_BACKGROUND);
  const render = (scene: DemoScene, now: number): Framebuffer => {
    const fb = new Framebuffer(scene.width, scene.height, 0);
    scene.render(fb, now);
    return fb;
  };
  const frameIsBackground = (fb: Framebuffer): boolean => {
    for (let y = 0; y < fb.height; y++) {
      for (let x = 0; x < fb.width; x++) {
        const inFrame = x < GUARANTEED_MARGIN || y < GUARANTEED_MARGIN || x >= fb.width - GUARANTEED_MARGIN || y >= fb.height - GUARANTEED_MARGIN;
        if (inFrame && fb.getPixel(x, y) !== bg) return false;
      }
    }
    return true;
  };

  it('keeps the frame along the edges exactly the background, even under the pointer', () => {
    const scene = new DemoScene({ width: 320, height: 240, name: 'x'.repeat(80), background: DEFAULT_BACKGROUND });
    const now = Date.now();
    scene.pointer(0, 0, 1, now);
    scene.pointer(319, 239, 0, now);
    scene.pointer(5, 120, 0, now);
    for (const c of 'y'.repeat(200)) scene.key(c.charCodeAt(0), true);
    scene.clipboardText('z'.repeat(500));
    assert.ok(frameIsBackground(render(scene, now)));
  });

  it('edits text: printable keys append, Backspace deletes, Return starts a line, releases do nothing', () => {
    const scene = new DemoScene({ width: 1024, height: 768, name: 'demo', background: DEFAULT_BACKGROUND });
    assert.equal(scene.key(0x68, true), true); // h
    assert.equal(scene.key(0x68, false), false);
    scene.key(0x69, true); // i
    scene.key(0xff0d, true); // Return
    scene.key(0x78, true); // x
    scene.key(0xff08, true); // BackSpace
    scene.key(0xff08, true); // BackSpace joins back to the previous line
    assert.deepEqual(scene.text(), ['hi']);
    assert.equal(scene.key(0xffe1, true), false); // Shift_L draws nothing
  });

  it('changes pixels when a key is typed, and lets pointer dots fade out', () => {
    const scene = new DemoScene({ width: 640, height: 480, name: 'demo', background: DEFAULT_BACKGROUND });
    const now = Date.UTC(2024, 0, 1, 12, 0, 0);
    const before = render(scene, now);
    scene.key(0x41, true);
    const after = render(scene, now);
    assert.ok(after.commitTo(before).length > 0);
    scene.pointer(300, 400, 0, now);
    assert.ok(scene.animating(now + 10));
    const dot = render(scene, now + 10);
    assert.notEqual(dot.getPixel(300, 400), after.getPixel(300, 400));
    assert.ok(!scene.animating(now + TRAIL_FADE_MS));
    const faded = render(scene, now + TRAIL_FADE_MS);
    assert.equal(faded.getPixel(300, 400), after.getPixel(300, 400));
  });
});

describe('encodePng', () => {
  it('writes a valid PNG whose pixels inflate back', () => {
    const png = encodePng(3, 2, [rgb(1, 2, 3), rgb(4, 5, 6), rgb(7, 8, 9), 0, 0xffffff, 0x808080]);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
    assert.equal(png.readUInt32BE(16), 3);
    assert.equal(png.readUInt32BE(20), 2);
    const idatLen = png.readUInt32BE(33);
    assert.equal(png.subarray(37, 41).toString('latin1'), 'IDAT');
    const raw = inflateSync(png.subarray(41, 41 + idatLen));
    assert.deepEqual([...raw], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0, 255, 255, 255, 128, 128, 128]);
    assert.equal(png.subarray(png.length - 8, png.length - 4).toString('latin1'), 'IEND');
  });
});

function sortRects(rects: Rect[]): Rect[] {
  return [...rects].sort((a, b) => a.y - b.y || a.x - b.x);
}
