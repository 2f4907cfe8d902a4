/**
 * Turning the end of a console connection into a reason key the page can put into words.
 *
 * Keys come from `src/close-codes.ts` (`ReasonText`) wherever the gateway said why; the few cases only
 * the browser can see (the network dropped, the gateway could not be reached) have page-local words
 * here. Pure functions, no DOM, so they are unit tested in Node.
 */
import { CloseCode, CloseReason, ReasonText, type CloseCodeName } from '../../close-codes.js';

/** Words for endings the gateway cannot name, because the browser alone sees them. */
export const PageReasonText: Record<string, string> = {
  connection_lost: 'The connection to the console gateway was lost.',
  connect_failed: 'Could not connect to the console gateway. Request a new console link and try again.',
  console_error: 'The console connection failed.',
  closed: 'The console session ended.',
};

const TOKEN_STATES = ['expired', 'used', 'revoked', 'invalid', 'busy'] as const;

function own(table: Record<string, string>, key: string): boolean {
  // Not `key in table`: a server-sent reason such as "constructor" must not match Object.prototype.
  return Object.prototype.hasOwnProperty.call(table, key);
}

/** Words for a reason key (gateway or page key); unknown keys get the generic ending. */
export function reasonText(key: string): string {
  if (own(ReasonText, key)) return ReasonText[key] as string;
  if (own(PageReasonText, key)) return PageReasonText[key] as string;
  return PageReasonText.closed as string;
}

const NAME_BY_CODE = new Map<number, CloseCodeName>(
  (Object.entries(CloseCode) as [CloseCodeName, number][]).map(([name, code]) => [code, name]),
);

/**
 * Reason key for how the WebSocket ended, or null when the page must ask `token-state`: the socket
 * never opened, which is how a browser sees the gateway refusing the upgrade with a 4xx (it reports
 * only close code 1006, RFC 6455 §7.1.5, and hides the HTTP status).
 *
 * `close` is null when no close event has arrived. `clientGaveUp` is true when noVNC ended the
 * session itself (an RFB error) before the socket closed: the close that follows is the browser's
 * own (1005/1006) and says nothing, so only a gateway reason may override "the console failed".
 */
export function reasonForClose(
  close: { code: number; reason: string } | null,
  opened: boolean,
  clientGaveUp = false,
): string | null {
  if (close !== null) {
    if (close.reason !== '' && own(ReasonText, close.reason)) return close.reason;
    const name = NAME_BY_CODE.get(close.code);
    if (name !== undefined) return CloseReason[name];
  }
  if (!opened) return null;
  if (close === null || clientGaveUp) return 'console_error';
  return close.code === 1000 ? 'closed' : 'connection_lost';
}

/** Reason key for a `token-state` answer (`{"state": …}`); anything unexpected means "could not connect". */
export function reasonForTokenState(body: unknown): string {
  const state = typeof body === 'object' && body !== null ? (body as { state?: unknown }).state : undefined;
  return (TOKEN_STATES as readonly unknown[]).includes(state) ? `token_${state as string}` : 'connect_failed';
}
