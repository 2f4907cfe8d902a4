/**
 * A real browser for end-to-end tests: Debian's chromium driven by playwright-core, plus helpers
 * that observe the console page the way a user would — its status (`body[data-state]`,
 * `body[data-reason]`) and the pixels noVNC drew on its canvas. The page exposes no handle on the
 * RFB object, on purpose; screens arrive asynchronously, so everything here polls with a deadline.
 */
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** noVNC's framebuffer canvas on Porthole's console page. */
export const CONSOLE_CANVAS = '#screen canvas';

export type Rgb = readonly [number, number, number];
export type Rgba = [number, number, number, number];
export type ConsoleState = 'connecting' | 'connected' | 'disconnected';

/**
 * Headless chromium. Playwright gives every launch a fresh temporary profile (user data dir),
 * removed on `close()`, so no state leaks between runs.
 */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined, or throws on timeout. */
export async function poll<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err; // e.g. the page is mid-navigation; try again until the deadline
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * The pixel at framebuffer coordinates (x, y) of the console canvas, as [r, g, b, a], or undefined
 * while there is no canvas or it is still smaller than (x, y).
 */
export async function canvasPixel(page: Page, x: number, y: number, selector = CONSOLE_CANVAS): Promise<Rgba | undefined> {
  return page.evaluate(
    ({ x, y, selector }) => {
      const canvas = document.querySelector(selector);
      if (!(canvas instanceof HTMLCanvasElement) || x >= canvas.width || y >= canvas.height) return undefined;
      const ctx = canvas.getContext('2d');
      if (ctx === null) return undefined;
      const d = ctx.getImageData(x, y, 1, 1).data;
      return [d[0] ?? 0, d[1] ?? 0, d[2] ?? 0, d[3] ?? 0] as [number, number, number, number];
    },
    { x, y, selector },
  );
}

/** Waits until the canvas pixel at (x, y) (default: its centre) is `rgb` (± `tolerance` per channel). */
export async function waitForCanvasColour(
  page: Page,
  rgb: Rgb,
  timeoutMs = 10_000,
  at?: { x: number; y: number },
  tolerance = 2,
): Promise<Rgba> {
  return poll(
    `canvas colour rgb(${rgb.join(',')})`,
    async () => {
      const point =
        at ??
        (await page.evaluate((selector) => {
          const c = document.querySelector(selector);
          return c instanceof HTMLCanvasElement && c.width > 0 ? { x: c.width >> 1, y: c.height >> 1 } : undefined;
        }, CONSOLE_CANVAS));
      if (point === undefined) return undefined;
      const px = await canvasPixel(page, point.x, point.y);
      if (px === undefined) return undefined;
      return rgb.every((v, i) => Math.abs(v - (px[i] ?? -999)) <= tolerance) ? px : undefined;
    },
    timeoutMs,
  );
}

/** Waits until the console page reports `state`; returns `body[data-reason]` ('' if none). */
export async function waitForState(page: Page, state: ConsoleState, timeoutMs = 10_000): Promise<string> {
  return poll(
    `console state ${state}`,
    () =>
      page.evaluate(
        (want) => (document.body.dataset.state === want ? (document.body.dataset.reason ?? '') : undefined),
        state,
      ),
    timeoutMs,
  );
}
