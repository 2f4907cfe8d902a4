// Builds the console page into dist/web/: console.ts (with noVNC core and close-codes) bundled by
// esbuild into one minified ES module, console.css minified, the HTML and icon copied; and the same
// for the remote-assistance join page into dist/web/join/. Run by
// `npm run build` after tsc; paths are resolved from this file, so it works from any cwd.
//
// ES module, not IIFE: noVNC 1.7 probes H.264 support with a top-level await (core/util/browser.js),
// which only a module can hold. The page loads it with <script type="module" src="console.js">.
import { build } from 'esbuild';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = `${root}src/web/console/`;
const out = `${root}dist/web/`;

// Browsers noVNC 1.7 supports, narrowed to those with top-level await in modules.
const target = ['chrome100', 'firefox100', 'safari15'];

const banner =
  '/*! Porthole console page. Bundles noVNC core (MPL-2.0, https://github.com/novnc/noVNC) ' +
  'and pako (MIT, https://github.com/nodeca/pako); sources in the sourcemap. */';

/**
 * Bundles one page's `${name}.ts` and `${name}.css` from `from` into `to`, then refuses the bundle if
 * it evals: the pages run under `script-src 'self'` without 'unsafe-eval'. `extra` adds esbuild
 * options for that page only.
 */
async function bundlePage(name, from, to, extra = {}) {
  await mkdir(to, { recursive: true });
  await build({
    entryPoints: [`${from}${name}.ts`, `${from}${name}.css`],
    outdir: to,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target,
    minify: true,
    sourcemap: 'linked',
    sourcesContent: true,
    logLevel: 'warning',
    ...extra,
  });
  const bundle = await readFile(`${to}${name}.js`, 'utf8');
  const evalUse = bundle.match(/\beval\(|\bnew Function\(|\bFunction\(["'`]/);
  if (evalUse) throw new Error(`${to.slice(root.length)}${name}.js uses ${evalUse[0]}, which the page's CSP forbids`);
}

await rm(out, { recursive: true, force: true });

// Only the console page bundles third-party code (noVNC, pako), so only it carries their licences.
await bundlePage('console', src, out, { legalComments: 'inline', banner: { js: banner } });
for (const file of ['vnc_auto.html', 'favicon.svg']) {
  await copyFile(`${src}${file}`, `${out}${file}`);
}

// The remote-assistance join page (src/web/join/), into dist/web/join/: its own build, so the console
// page's output paths stay as they are.
const joinSrc = `${root}src/web/join/`;
const joinOut = `${out}join/`;
await bundlePage('join', joinSrc, joinOut);
await copyFile(`${joinSrc}join.html`, `${joinOut}join.html`);
await copyFile(`${src}favicon.svg`, `${joinOut}favicon.svg`);
