/**
 * The one error type of the RFB codec. `code` is stable (callers map it to a WebSocket close code);
 * `side` says which peer sent the bytes that were wrong or refused, so the proxy can tell a broken
 * browser from a broken VNC server. `reason` carries text the peer itself sent (capped, sanitised)
 * and belongs in logs only. `farewell` holds bytes the state machine wants delivered to the peer
 * before the connection is closed (e.g. a 3.8 SecurityResult failure with its reason).
 */

export type RfbErrorCode =
  /** ProtocolVersion was not `RFB xxx.yyy\n` or names a version we cannot speak. */
  | 'RFB_BAD_VERSION'
  /** No security type both sides can use (or the peer chose one that was not offered). */
  | 'RFB_NO_SECURITY_TYPE'
  /** Authentication failed (SecurityResult ≠ 0, or a wrong VNC password on our server side). */
  | 'RFB_AUTH_FAILED'
  /** The server refused the connection before authentication (security count 0 / type 0). */
  | 'RFB_SERVER_REFUSED'
  /** A length read from the wire exceeded its named limit (see `Limits`). */
  | 'RFB_LIMIT_EXCEEDED'
  /** A message type the framer does not know how to delimit. */
  | 'RFB_UNKNOWN_MESSAGE'
  /** Any other value the protocol does not allow at this point. */
  | 'RFB_UNEXPECTED';

export type RfbSide = 'client' | 'server';

export class RfbError extends Error {
  override readonly name = 'RfbError';
  constructor(
    readonly code: RfbErrorCode,
    readonly side: RfbSide,
    message: string,
    readonly details: { reason?: string; farewell?: Uint8Array[] } = {},
  ) {
    super(message);
  }
  /** Text the peer sent with its refusal/failure, at most Limits.MAX_REASON_REPORT_BYTES. */
  get reason(): string | undefined {
    return this.details.reason;
  }
  /** Bytes to send to the peer before closing (may be empty). */
  get farewell(): Uint8Array[] {
    return this.details.farewell ?? [];
  }
}

export function isRfbError(err: unknown): err is RfbError {
  return err instanceof RfbError;
}
