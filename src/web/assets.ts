/**
 * The console page's static files, for the server: read once at startup from the esbuild output
 * (`dist/web/`, made by scripts/build-web.mjs) and served from memory.
 *
 * A fixed allow-list of names, no directory serving, no redirects — the generic file handler is how
 * nova-novncproxy got its open redirect (CVE-2021-3654). The HTML is also listed as `vnc_lite.html`
 * and `vnc.html`, the names noVNC clients and docs use for the same page. Pages go out with
 * `CONSOLE_CSP`; the page contains no inline script or style, so it needs nothing looser.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The console page's Content-Security-Policy. `connect-src 'self'` covers the same-origin ws:/wss:
 * socket in Chromium and Firefox and Safari ≥ 16; Safari 15 needs the ws origin spelled out, which
 * `consoleCsp(publicUrl)` adds. noVNC needs `img-src data:` (JPEG/TightPNG rects are decoded through
 * data: images, cursors are data: URLs); it starts no workers, so there is no `worker-src`.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * `CONSOLE_CSP` with the gateway's WebSocket origin added to `connect-src` (for Safari 15, WebKit bug
 * 201591, where `'self'` does not match ws:/wss:). `publicUrl` is the configured public URL,
 * never a request header. Falls back to `CONSOLE_CSP` when it is not an http(s) URL.
 */
export function consoleCsp(publicUrl?: string): string {
  if (publicUrl === undefined) return CONSOLE_CSP;
  let url: URL;
  try {
    url = new URL(publicUrl);
  } catch {
    return CONSOLE_CSP;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return CONSOLE_CSP;
  const ws = `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}`;
  return CONSOLE_CSP.replace("connect-src 'self'", `connect-src 'self' ${ws}`);
}

/** Headers to send with every console-page response besides the CSP (noVNC EMBEDDING.md; the token is in the URL). */
export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
});

export interface WebAsset {
  body: Buffer;
  contentType: string;
  /** Strong ETag (quoted) over the body. */
  etag: string;
}

/** The only names the server may serve from the console directory `/vnc/{zone}/`. */
export const WEB_ASSET_NAMES = [
  'vnc_auto.html',
  'vnc_lite.html',
  'vnc.html',
  'console.js',
  'console.css',
  'favicon.svg',
  'console.js.map',
  'console.css.map',
] as const;
export type WebAssetName = (typeof WEB_ASSET_NAMES)[number];

export interface WebAssets {
  /** The asset for a file name in `WEB_ASSET_NAMES`, or undefined for anything else. */
  get(name: string): WebAsset | undefined;
  /** The directory the files were read from (for the startup log). */
  readonly dir: string;
  /** The remote-assistance join page (`/assist/…`, names in JOIN_ASSET_NAMES), when it was built. */
  readonly join?: WebAssets;
}

/** The join page's files, served under `/assist/` (join.html as `/assist/join`), from `dist/web/join/`. */
export const JOIN_ASSET_NAMES = ['join.html', 'join.js', 'join.css', 'join.js.map', 'join.css.map', 'favicon.svg'] as const;

/** The join page's CSP: like the console page's, with nothing but its own origin to talk to. */
export const JOIN_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Reads the join page's files from `dir` (default `dist/web/join/`); undefined when it was not built. */
export function loadJoinAssets(dir?: string): WebAssets | undefined {
  const base = dir ?? `${defaultDir().replace(/\/+$/, '')}/join/`;
  const byName = new Map<string, WebAsset>();
  for (const name of JOIN_ASSET_NAMES) {
    let body: Buffer;
    try {
      body = readFileSync(`${base}${name}`);
    } catch {
      if (name === 'join.html' || name === 'join.js') return undefined;
      continue;
    }
    byName.set(name, Object.freeze({ body, contentType: contentTypeOf(name), etag: etagOf(body) }));
  }
  return Object.freeze({ dir: base, get: (name: string) => byName.get(name) });
}

/** File on disk for each served name (the HTML aliases share one file). */
const FILES: Record<WebAssetName, string> = {
  'vnc_auto.html': 'vnc_auto.html',
  'vnc_lite.html': 'vnc_auto.html',
  'vnc.html': 'vnc_auto.html',
  'console.js': 'console.js',
  'console.css': 'console.css',
  'favicon.svg': 'favicon.svg',
  'console.js.map': 'console.js.map',
  'console.css.map': 'console.css.map',
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json; charset=utf-8',
};

function contentTypeOf(file: string): string {
  const ext = file.slice(file.lastIndexOf('.'));
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

/**
 * Where the build puts the files, seen from this module: `dist/web/` next to `dist/src/web/assets.js`
 * when compiled, or `dist/web/` at the repository root when run from source (tsx).
 */
function defaultDir(): string {
  const candidates = [new URL('../../web/', import.meta.url), new URL('../../dist/web/', import.meta.url)];
  for (const candidate of candidates) {
    const dir = fileURLToPath(candidate);
    if (existsSync(`${dir}vnc_auto.html`)) return dir;
  }
  return fileURLToPath(candidates[0] as URL);
}

/**
 * Reads every allow-listed file from `dir` (default: the build output) into memory. Throws if one is
 * missing, so a gateway without a built console page fails at startup rather than on first use.
 */
export function loadWebAssets(dir: string = defaultDir()): WebAssets {
  const base = dir.endsWith('/') ? dir : `${dir}/`;
  const byFile = new Map<string, WebAsset>();
  const byName = new Map<string, WebAsset>();
  for (const name of WEB_ASSET_NAMES) {
    const file = FILES[name];
    let asset = byFile.get(file);
    if (asset === undefined) {
      let body: Buffer;
      try {
        body = readFileSync(`${base}${file}`);
      } catch (err) {
        throw new Error(`console page file ${base}${file} is missing; run \`npm run build\``, { cause: err });
      }
      asset = Object.freeze({ body, contentType: contentTypeOf(file), etag: etagOf(body) });
      byFile.set(file, asset);
    }
    byName.set(name, asset);
  }
  const join = loadJoinAssets(`${base}join/`);
  return Object.freeze({
    dir: base,
    get: (name: string) => byName.get(name),
    ...(join ? { join } : {}),
  });
}

export interface ConsolePageOptions {
  /** Shows the "View only" badge and makes the page's input cosmetic-read-only (the proxy enforces it). */
  viewOnly?: boolean;
  /** Machine name shown until the VNC server's desktop name arrives. */
  title?: string;
}

const ATTR_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeAttr(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ATTR_ESCAPES[c] ?? c);
}

const BODY_TAG = '<body data-state="connecting">';

/**
 * The console HTML with per-request values as `<body>` data attributes (escaped; the page reads them
 * as text). With no options it is the static file. Serve it with `CONSOLE_CSP` and no ETag of the
 * static file (the body differs).
 */
export function renderConsolePage(assets: WebAssets, options: ConsolePageOptions = {}): string {
  const page = assets.get('vnc_auto.html');
  if (page === undefined) throw new Error('console page not loaded');
  const html = page.body.toString('utf8');
  let attrs = '';
  if (options.viewOnly === true) attrs += ' data-view-only="true"';
  if (options.title !== undefined && options.title !== '') attrs += ` data-title="${escapeAttr(options.title.slice(0, 200))}"`;
  if (attrs === '') return html;
  if (!html.includes(BODY_TAG)) throw new Error('console page has no <body> tag to annotate');
  // A function replacement, so `$&` and friends in a title stay literal.
  return html.replace(BODY_TAG, () => `<body data-state="connecting"${attrs}>`);
}
