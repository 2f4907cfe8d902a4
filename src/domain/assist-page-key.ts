/**
 * The console page's own key for remote assistance, shared by the gateway and the browser bundle (so
 * no Node import here).
 *
 * A console token works once, at the WebSocket upgrade. The desktop user's page (consent banner,
 * helper list) and a helper's page (control granted or not) still need to talk to the gateway
 * afterwards, authenticated by something they legitimately hold — not the spent token. So the page
 * makes a random key itself and offers it once, as the WebSocket subprotocol `porthole-page.<key>` of
 * the upgrade that redeems its token; the gateway echoes that subprotocol (RFC 6455 §4.2.2, as
 * Kubernetes does for bearer tokens in browsers) and binds the key's SHA-256 to the new console
 * session. Later requests carry the key in the `X-Porthole-Page-Key` header. Being a header, it stays
 * out of URLs and access logs, and a request carrying it cross-site needs a CORS preflight the gateway
 * never grants.
 */

/** WebSocket subprotocol prefix that carries the page key at the upgrade. */
export const PAGE_PROTOCOL_PREFIX = 'porthole-page.';

/** The request header that carries the page key afterwards. */
export const PAGE_KEY_HEADER = 'x-porthole-page-key';

/** A page key: base64url, 32–128 characters (the page makes 43: 32 random bytes). Every character is an HTTP token character. */
export const PAGE_KEY_RE = /^[A-Za-z0-9_-]{32,128}$/;

/** The subprotocol the page offers for `key`. */
export function pageProtocol(key: string): string {
  return `${PAGE_PROTOCOL_PREFIX}${key}`;
}

/**
 * The page key among offered subprotocols (a `Sec-WebSocket-Protocol` header value, comma-separated),
 * or null when none is offered or it is malformed. The first well-formed one wins.
 */
export function pageKeyFromProtocols(header: string | readonly string[] | undefined): string | null {
  if (header === undefined) return null;
  const values = (typeof header === 'string' ? [header] : header).flatMap((h) => h.split(','));
  for (const raw of values) {
    const p = raw.trim();
    if (!p.startsWith(PAGE_PROTOCOL_PREFIX)) continue;
    const key = p.slice(PAGE_PROTOCOL_PREFIX.length);
    if (PAGE_KEY_RE.test(key)) return key;
  }
  return null;
}
