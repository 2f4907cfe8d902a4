/**
 * WebSocket close codes Porthole uses on console connections, shared by the proxy (which sends them)
 * and the console page (which turns them into words). 4000–4999 is the range RFC 6455 §7.4.2 leaves
 * to applications. The reason string sent with a close is the `reason` key below (stable, ≤ 123 bytes);
 * backend failure detail never goes to the browser, only to the log.
 *
 * This module must stay free of Node imports: the browser bundle includes it.
 */
export const CloseCode = {
  /** The VNC server ended the session (machine shut down, server restarted). */
  BACKEND_CLOSED: 4000,
  /** TCP connect to the machine's VNC endpoint failed or timed out. */
  BACKEND_UNREACHABLE: 4001,
  /** The VNC server spoke something Porthole could not accept (bad version, no usable security type, garbage). */
  BACKEND_PROTOCOL: 4002,
  /** The VNC server refused Porthole's credentials for it. */
  BACKEND_AUTH_FAILED: 4003,
  /** No traffic in either direction for the idle timeout. */
  IDLE_TIMEOUT: 4004,
  /** The session reached its maximum length. */
  MAX_DURATION: 4005,
  /** An administrator ended the session. */
  KILLED: 4006,
  /** The machine or its console endpoint changed or was deleted. */
  REVOKED: 4007,
  /** The browser sent bytes that are not valid RFB for this session. */
  CLIENT_PROTOCOL: 4008,
  /** The browser could not keep up and the per-session buffer ceiling was reached. */
  SLOW_CONSUMER: 4009,
  /** The gateway node is shutting down. */
  SHUTDOWN: 4010,
  /** A handshake phase (browser or backend) took longer than its timeout. */
  HANDSHAKE_TIMEOUT: 4011,
  /** Unexpected failure inside the gateway. */
  INTERNAL: 4012,
  /** The VNC server refused the connection before authentication (e.g. TigerVNC's "Too many security failures"). */
  BACKEND_REFUSED: 4013,
  // 4020–4029: remote assistance (domain/assistance.ts).
  /** The share space was closed (ended by the desktop user, cancelled, declined or expired): every helper is disconnected. */
  ASSISTANCE_ENDED: 4020,
  /** The desktop user removed this helper from the share space. */
  ASSISTANCE_REMOVED: 4021,
} as const;

export type CloseCodeName = keyof typeof CloseCode;

/** Stable reason keys sent as the WebSocket close reason, one per code. */
export const CloseReason: Record<CloseCodeName, string> = {
  BACKEND_CLOSED: 'backend_closed',
  BACKEND_UNREACHABLE: 'backend_unreachable',
  BACKEND_PROTOCOL: 'backend_protocol_error',
  BACKEND_AUTH_FAILED: 'backend_auth_failed',
  IDLE_TIMEOUT: 'idle_timeout',
  MAX_DURATION: 'max_duration',
  KILLED: 'killed',
  REVOKED: 'revoked',
  CLIENT_PROTOCOL: 'client_protocol_error',
  SLOW_CONSUMER: 'slow_consumer',
  SHUTDOWN: 'shutdown',
  HANDSHAKE_TIMEOUT: 'handshake_timeout',
  INTERNAL: 'internal_error',
  BACKEND_REFUSED: 'backend_refused',
  ASSISTANCE_ENDED: 'assistance_ended',
  ASSISTANCE_REMOVED: 'assistance_removed',
};

/** Words the console page shows for each close reason (and for token states found before connecting). */
export const ReasonText: Record<string, string> = {
  backend_closed: 'The machine ended the console session.',
  backend_unreachable: 'The machine is unreachable: its console did not answer.',
  backend_protocol_error: 'The machine’s console answered in a way Porthole cannot use.',
  backend_auth_failed: 'The machine’s console refused Porthole’s credentials. Ask an administrator to check the endpoint password.',
  idle_timeout: 'The console was closed after being idle for too long.',
  max_duration: 'The console reached its maximum session length.',
  killed: 'An administrator ended this console session.',
  revoked: 'Access to this machine was revoked (it was changed or deleted).',
  client_protocol_error: 'The browser sent data the gateway could not accept.',
  slow_consumer: 'The connection was too slow to keep up with the screen.',
  shutdown: 'The gateway is restarting. Request a new console link.',
  handshake_timeout: 'The console took too long to start.',
  internal_error: 'The gateway hit an internal error.',
  backend_refused: 'The machine’s console refused the connection (for example after too many failed logins). Try again later, or ask an administrator.',
  assistance_ended: 'Remote assistance has ended: the desktop user ended it, or it was cancelled or expired.',
  assistance_removed: 'The desktop user removed you from this remote assistance.',
  token_expired: 'This console link has expired. Request a new one.',
  token_used: 'This console link has already been used. Console links work once: request a new one.',
  token_revoked: 'This console link was revoked.',
  token_invalid: 'This console link is not valid.',
  token_busy: 'Someone else is using this console, which allows one session at a time. Try again when they have finished.',
  origin_forbidden: 'This page is not allowed to open consoles on this gateway.',
};
