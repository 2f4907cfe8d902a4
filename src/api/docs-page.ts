/**
 * The /docs page: a small static HTML page, its script and its style, that renders /openapi.json.
 * No CDN and no inline script or style, so it runs under `DOCS_CSP` (script and style from 'self'
 * only, fetch to 'self' only). The script builds the page with textContent/createElement, never
 * innerHTML, so nothing in the document can inject markup. The files are kept here as strings so that
 * the server needs no build step or file lookup for them.
 */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Porthole API</title>
<link rel="icon" href="docs/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="docs/docs.css">
<script type="module" src="docs/docs.js"></script>
</head>
<body>
<header><h1 id="title">Porthole API</h1><p id="meta"></p><p id="description"></p><p><a href="openapi.json">openapi.json</a></p></header>
<nav id="toc"></nav>
<main id="ops"><p>Loading openapi.json…</p></main>
<section id="schemas"></section>
</body>
</html>
`;

export const DOCS_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="#1c4f9c"/><circle cx="8" cy="8" r="3.5" fill="#fff"/></svg>
`;

export const DOCS_CSS = `body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70em;padding:1em 2em;color:#1d232a;background:#fff}
h1{margin:.2em 0}h2{border-bottom:1px solid #ccd;padding-bottom:.2em;margin-top:1.6em}
nav a{margin-right:1em}
details{border:1px solid #dde;border-radius:4px;margin:.4em 0;padding:.3em .6em}
summary{cursor:pointer}
.m{display:inline-block;min-width:4.5em;font:bold 13px monospace;text-transform:uppercase}
.m.get{color:#17653a}.m.post{color:#1c4f9c}.m.put{color:#8a5a00}.m.delete{color:#a01c1c}
.p{font-family:monospace}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #dde;padding:.2em .5em;text-align:left;vertical-align:top}
pre{background:#f5f6f8;padding:.5em;overflow:auto;font-size:13px}
.status{font-family:monospace;font-weight:bold}
`;

export const DOCS_JS = `// Renders openapi.json (same origin). DOM built with textContent only.
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
};
const refName = (s) => (s && typeof s.$ref === 'string' ? s.$ref.split('/').pop() : null);
function schemaView(s) {
  const name = refName(s);
  if (name) return el('a', { href: '#schema-' + name }, name);
  return el('pre', {}, JSON.stringify(s, null, 2));
}
function contentView(content) {
  const box = el('div');
  for (const [type, media] of Object.entries(content || {})) {
    box.append(el('div', {}, el('code', {}, type)));
    if (media && media.schema) box.append(schemaView(media.schema));
  }
  return box;
}
function operationView(path, method, o) {
  const d = el('details', { id: o.operationId || method + path });
  d.append(el('summary', {}, el('span', { class: 'm ' + method }, method), ' ', el('span', { class: 'p' }, path), ' — ', o.summary || ''));
  if (o.description) d.append(el('p', {}, o.description));
  if (o.security) d.append(el('p', {}, 'Authentication: ', o.security.map((s) => Object.keys(s).join('+')).join(' or ')));
  if (o.parameters && o.parameters.length) {
    const t = el('table', {}, el('tr', {}, el('th', {}, 'parameter'), el('th', {}, 'in'), el('th', {}, 'required'), el('th', {}, 'description')));
    for (const p of o.parameters) t.append(el('tr', {}, el('td', {}, el('code', {}, p.name)), el('td', {}, p.in), el('td', {}, p.required ? 'yes' : ''), el('td', {}, p.description || '')));
    d.append(t);
  }
  if (o.requestBody) d.append(el('h4', {}, 'Request body'), contentView(o.requestBody.content));
  d.append(el('h4', {}, 'Responses'));
  const t = el('table');
  for (const [status, r] of Object.entries(o.responses || {})) {
    t.append(el('tr', {}, el('td', { class: 'status' }, status), el('td', {}, r.description || '', contentView(r.content))));
  }
  d.append(t);
  return d;
}
async function main() {
  const ops = document.getElementById('ops');
  let doc;
  try {
    const res = await fetch('openapi.json', { headers: { accept: 'application/json' } });
    doc = await res.json();
  } catch (err) {
    ops.textContent = 'Could not load openapi.json: ' + err;
    return;
  }
  document.getElementById('title').textContent = doc.info.title;
  document.getElementById('meta').textContent = 'Version ' + doc.info.version + ' · OpenAPI ' + doc.openapi + ' · ' + (doc.servers || []).map((s) => s.url).join(', ');
  document.getElementById('description').textContent = doc.info.description || '';
  const byTag = new Map((doc.tags || []).map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, o] of Object.entries(item)) {
      const tag = (o.tags && o.tags[0]) || 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(path, method, o));
    }
  }
  ops.textContent = '';
  const toc = document.getElementById('toc');
  const tagText = new Map((doc.tags || []).map((t) => [t.name, t.description]));
  for (const [tag, views] of byTag) {
    if (!views.length) continue;
    toc.append(el('a', { href: '#tag-' + tag }, tag));
    ops.append(el('h2', { id: 'tag-' + tag }, tag), el('p', {}, tagText.get(tag) || ''), ...views);
  }
  const schemas = document.getElementById('schemas');
  schemas.append(el('h2', {}, 'Schemas'));
  for (const [name, s] of Object.entries((doc.components && doc.components.schemas) || {})) {
    schemas.append(el('details', { id: 'schema-' + name }, el('summary', {}, name), el('pre', {}, JSON.stringify(s, null, 2))));
  }
  toc.append(el('a', { href: '#schemas' }, 'schemas'));
}
main();
`;
