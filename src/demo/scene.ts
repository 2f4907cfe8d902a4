/**
 * What the demo desktop shows, as plain state plus a renderer: a title bar with the machine name and
 * a live clock, a seconds bar, the viewer count and last pointer position, the text typed so far
 * (Backspace deletes, Return starts a new line), the last clipboard text, and a fading trail of
 * pointer positions. The renderer redraws everything into a framebuffer; damage is found by
 * comparing frames (see {@link Framebuffer.commitTo}), so nothing here tracks what it changed.
 *
 * Pixel guarantee (tests rely on it): every pixel within {@link GUARANTEED_MARGIN} pixels of the
 * screen edge is always exactly the background colour. All drawing, including pointer dots, is
 * clipped to the inner content area.
 */
import { Framebuffer, mix, packRgb, rgb, textWidth, type Rgb } from './framebuffer.js';

/** Width of the frame along every screen edge that always stays the background colour. */
export const GUARANTEED_MARGIN = 16;
/** Default background: a dark slate blue. */
export const DEFAULT_BACKGROUND: Rgb = [24, 28, 40];
/** Pointer positions kept for the trail. */
export const TRAIL_LENGTH = 48;
/** A trail dot fades from full colour to the background over this long. */
export const TRAIL_FADE_MS = 1500;
/** Typed lines kept (only as many as fit are shown). */
export const MAX_TEXT_LINES = 32;

/** X11 keysyms the scene reacts to (X11 keysymdef.h; RFC 6143 §7.5.4). */
const XK_BackSpace = 0xff08;
const XK_Tab = 0xff09;
const XK_Return = 0xff0d;
const XK_KP_Enter = 0xff8d;
const XK_KP_0 = 0xffb0;
const XK_KP_9 = 0xffb9;

const TEXT = rgb(230, 234, 242);
const MUTED = rgb(138, 147, 168);
const ACCENT = rgb(94, 200, 242);
const TRAIL = rgb(255, 180, 84);
const TRAIL_PRESSED = rgb(255, 105, 120);

interface TrailDot {
  x: number;
  y: number;
  pressed: boolean;
  at: number;
}

export interface SceneOptions {
  width: number;
  height: number;
  name: string;
  background: Rgb;
}

export class DemoScene {
  readonly width: number;
  readonly height: number;
  readonly name: string;
  readonly background: number;
  private readonly panel: number;
  private lines: string[] = [''];
  private trail: TrailDot[] = [];
  private pointerAt: { x: number; y: number; mask: number } | undefined;
  private clipboard = '';
  private viewers = 0;

  constructor(opts: SceneOptions) {
    this.width = opts.width;
    this.height = opts.height;
    this.name = opts.name;
    this.background = packRgb(opts.background);
    this.panel = mix(this.background, rgb(255, 255, 255), 0.07);
  }

  /** Apply a KeyEvent; returns whether the screen changes. Only key presses edit text. */
  key(keysym: number, down: boolean): boolean {
    if (!down) return false;
    const last = this.lines.length - 1;
    if (keysym === XK_BackSpace) {
      const line = this.lines[last] ?? '';
      if (line.length > 0) this.lines[last] = line.slice(0, -1);
      else if (this.lines.length > 1) this.lines.pop();
      else return false;
      return true;
    }
    if (keysym === XK_Return || keysym === XK_KP_Enter) {
      this.lines.push('');
      if (this.lines.length > MAX_TEXT_LINES) this.lines.shift();
      return true;
    }
    let ch: string | undefined;
    if (keysym === XK_Tab) ch = '    ';
    else if (keysym >= XK_KP_0 && keysym <= XK_KP_9) ch = String(keysym - XK_KP_0);
    // Latin-1 keysyms equal their code points (keysymdef.h); non-ASCII ones render as '?'.
    else if ((keysym >= 0x20 && keysym <= 0x7e) || (keysym >= 0xa0 && keysym <= 0xff)) ch = String.fromCharCode(keysym);
    if (ch === undefined) return false;
    this.lines[last] = (this.lines[last] ?? '') + ch;
    // Wrap long lines so that typed text never runs off the panel.
    const cols = this.textColumns();
    const current = this.lines[last] ?? '';
    if (cols > 0 && current.length > cols) {
      this.lines[last] = current.slice(0, cols);
      this.lines.push(current.slice(cols));
      if (this.lines.length > MAX_TEXT_LINES) this.lines.shift();
    }
    return true;
  }

  /** Apply a PointerEvent at time `now` (ms). */
  pointer(x: number, y: number, mask: number, now: number): boolean {
    const prev = this.pointerAt;
    this.pointerAt = { x, y, mask };
    if (prev && prev.x === x && prev.y === y && prev.mask === mask) return false;
    this.trail.push({ x, y, pressed: (mask & 0x7f) !== 0, at: now });
    if (this.trail.length > TRAIL_LENGTH) this.trail.shift();
    return true;
  }

  /** Apply ClientCutText. */
  clipboardText(text: string): boolean {
    if (text === this.clipboard) return false;
    this.clipboard = text;
    return true;
  }

  setViewers(n: number): boolean {
    if (n === this.viewers) return false;
    this.viewers = n;
    return true;
  }

  /** The typed lines (for tests and logs). */
  text(): readonly string[] {
    return this.lines;
  }

  /** Whether some pointer dot is still fading at `now` (the caller keeps animating until false). */
  animating(now: number): boolean {
    const newest = this.trail[this.trail.length - 1];
    return newest !== undefined && now - newest.at < TRAIL_FADE_MS;
  }

  /** Draw the whole scene for wall-clock time `now` (ms since the epoch) into `fb`. */
  render(fb: Framebuffer, now: number): void {
    const W = this.width;
    const H = this.height;
    const M = GUARANTEED_MARGIN;
    fb.setClip(undefined);
    fb.fillRect(0, 0, W, H, this.background);
    fb.setClip({ x: M, y: M, w: W - 2 * M, h: H - 2 * M });

    // Title bar: name on the left, clock on the right, a seconds bar along its bottom edge.
    const date = new Date(now);
    const titleH = 48;
    fb.fillRect(M, M, W - 2 * M, titleH, this.panel);
    fb.fillRect(M + 14, M + 14, 6, 20, ACCENT);
    fb.drawText(M + 30, M + 14, this.name, TEXT, 3);
    const clock = [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
    fb.drawText(W - M - 16 - textWidth(clock, 3), M + 14, clock, ACCENT, 3);
    const seconds = date.getSeconds() + 1;
    fb.fillRect(M, M + titleH - 3, Math.round(((W - 2 * M) * seconds) / 60), 3, ACCENT);

    // Status line.
    let y = M + titleH + 16;
    const p = this.pointerAt;
    const viewers = `${this.viewers} viewer${this.viewers === 1 ? '' : 's'}`;
    const pointer = p ? `pointer ${p.x},${p.y}${p.mask & 0x7f ? ` buttons ${p.mask & 0x7f}` : ''}` : 'pointer -';
    fb.drawText(M + 16, y, viewers, TEXT, 2);
    fb.drawText(M + 16 + textWidth(viewers + '   ', 2), y, pointer, MUTED, 2);
    y += 32;

    // Keyboard panel: the last lines typed, with a block cursor.
    fb.drawText(M + 16, y, 'Type something:', MUTED, 2);
    y += 24;
    const lineH = Framebuffer.lineHeight(2) + 4;
    const clipH = 40;
    const footerH = 24;
    const panelH = Math.max(0, H - M - footerH - clipH - y - 8);
    fb.fillRect(M + 8, y, W - 2 * M - 16, panelH, this.panel);
    const visible = Math.max(1, Math.floor((panelH - 16) / lineH));
    const shown = this.lines.slice(-visible);
    let ty = y + 10;
    for (let i = 0; i < shown.length; i++) {
      const line = shown[i] ?? '';
      const adv = fb.drawText(M + 20, ty, line, TEXT, 2);
      if (i === shown.length - 1) fb.fillRect(M + 20 + adv, ty, 10, 14, ACCENT);
      ty += lineH;
    }
    y += panelH + 12;

    // Clipboard line.
    const clip = this.clipboard.replace(/[\r\n\t]+/g, ' ');
    const clipCols = Math.max(0, Math.floor((W - 2 * M - 32) / 12) - 11);
    const clipShown = clip.length > clipCols ? `${clip.slice(0, Math.max(0, clipCols - 3))}...` : clip;
    fb.drawText(M + 16, y, 'Clipboard:', MUTED, 2);
    fb.drawText(M + 16 + textWidth('Clipboard: ', 2), y, clipShown || '(empty)', clip ? TEXT : MUTED, 2);

    // Footer.
    fb.drawText(M + 16, H - M - 12, 'Porthole built-in demo desktop - an RFB server in src/demo. Keys, pointer and clipboard echo here.', MUTED, 1);

    // Pointer trail on top of everything, fading into the background.
    for (const dot of this.trail) {
      const age = now - dot.at;
      if (age >= TRAIL_FADE_MS) continue;
      const t = age / TRAIL_FADE_MS;
      const colour = mix(dot.pressed ? TRAIL_PRESSED : TRAIL, this.background, t);
      fb.fillCircle(dot.x, dot.y, dot.pressed ? 7 : 5 - 2 * t, colour);
    }
    fb.setClip(undefined);
  }

  private textColumns(): number {
    return Math.floor((this.width - 2 * GUARANTEED_MARGIN - 56) / 12);
  }
}
