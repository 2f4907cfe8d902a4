// Builds the console page into dist/web/: console.ts (with noVNC core and close-codes) bundled by
// esbuild into one minified ES module, console.css minified, the HTML and icon copied. Run by
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

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

await build({
  entryPoints: [`${src}console.ts`, `${src}console.css`],
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target,
  minify: true,
  sourcemap: 'linked',
  sourcesContent: true,
  legalComments: 'inline',
  banner: { js: banner },
  logLevel: 'warning',
});

// The page runs under `script-src 'self'` without 'unsafe-eval': refuse to ship a bundle that evals.
const bundle = await readFile(`${out}console.js`, 'utf8');
const evalUse = bundle.match(/\beval\(|\bnew Function\(|\bFunction\(["'`]/);
if (evalUse) throw new Error(`dist/web/console.js uses ${evalUse[0]}, which the console CSP forbids`);

for (const file of ['vnc_auto.html', 'favicon.svg']) {
  await copyFile(`${src}${file}`, `${out}${file}`);
}

// The remote-assistance join page (src/web/join/), into dist/web/join/: its own build, so the console
// page's output paths stay as they are. Same CSP rules: no eval.
const joinSrc = `${root}src/web/join/`;
const joinOut = `${out}join/`;
await mkdir(joinOut, { recursive: true });
await build({
  entryPoints: [`${joinSrc}join.ts`, `${joinSrc}join.css`],
  outdir: joinOut,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target,
  minify: true,
  sourcemap: 'linked',
  sourcesContent: true,
  logLevel: 'warning',
});
const joinBundle = await readFile(`${joinOut}join.js`, 'utf8');
const joinEval = joinBundle.match(/\beval\(|\bnew Function\(|\bFunction\(["'`]/);
if (joinEval) throw new Error(`dist/web/join/join.js uses ${joinEval[0]}, which the join page's CSP forbids`);
await copyFile(`${joinSrc}join.html`, `${joinOut}join.html`);
await copyFile(`${src}favicon.svg`, `${joinOut}favicon.svg`);
