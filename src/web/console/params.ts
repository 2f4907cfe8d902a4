/**
 * What the console page takes from its own URL, as pure functions (no DOM) so they can be unit tested.
 *
 * The page accepts the token in the forms clients actually send: Huawei's top-level `?token=T`
 * (reference/seeds, `vnc_auto.html?token=…&lang=EN`) and noVNC's `path` form (`path=websockify?token=T`
 * or `path=?token=T`, URL-encoded), in the query or the fragment. It deliberately ignores `host`,
 * `port`, `encrypt` and the location part of `path`: letting a link choose the WebSocket target is
 * the phishing hole of noVNC #2011/#2051, so the page only ever connects to its own origin.
 */

/** Longest token accepted from the URL; real tokens are far shorter (≥128 random bits, encoded). */
export const MAX_TOKEN_LENGTH = 512;

function cleanToken(value: string | null): string | null {
  if (value === null) return null;
  const token = value.trim();
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return null;
  return token;
}

/** The token inside a noVNC `path` value: only its query is read; any scheme, host or path is ignored. */
export function tokenFromPath(path: string): string | null {
  const q = path.indexOf('?');
  if (q < 0) return null;
  const hash = path.indexOf('#', q);
  const query = path.slice(q + 1, hash < 0 ? undefined : hash);
  return cleanToken(new URLSearchParams(query).get('token'));
}

function tokenFromParams(params: URLSearchParams): string | null {
  const direct = cleanToken(params.get('token'));
  if (direct !== null) return direct;
  const path = params.get('path');
  return path === null ? null : tokenFromPath(path);
}

/**
 * The console token from a page URL's `search` and `hash` (as in `location`). Query first (the
 * Huawei form), then the fragment (noVNC's vnc.html also reads settings from it). Null when absent.
 */
export function tokenFromLocation(search: string, hash: string): string | null {
  const fromQuery = tokenFromParams(new URLSearchParams(search));
  if (fromQuery !== null) return fromQuery;
  return tokenFromParams(new URLSearchParams(hash.startsWith('#') ? hash.slice(1) : hash));
}

/**
 * The only WebSocket URL the page ever opens: `ws(s)://{host}{directory of pathname}/websockify?token=T`,
 * wss when the page itself is https. For `/vnc/z1/vnc_auto.html` the directory is `/vnc/z1/`.
 */
export function websocketUrl(loc: { protocol: string; host: string; pathname: string }, token: string): string {
  const scheme = loc.protocol === 'https:' ? 'wss' : 'ws';
  const dir = loc.pathname.slice(0, loc.pathname.lastIndexOf('/') + 1) || '/';
  return `${scheme}://${loc.host}${dir}websockify?token=${encodeURIComponent(token)}`;
}

/** The `token-state` URL next to the page (relative, so it stays on the page's origin and directory). */
export function tokenStateUrl(token: string): string {
  return `token-state?token=${encodeURIComponent(token)}`;
}
