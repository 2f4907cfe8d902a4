/**
 * Error responses written outside the Fastify routes, so that *every* answer of the gateway carries
 * `X-Request-Id` and the APIG error body `{"error_code","error_msg","request_id"}` (errors.ts,
 * reference D.1) — also those Node's HTTP server or the router would otherwise make up themselves:
 *  - requests Node's parser refuses ('clientError': malformed request line or header, unknown
 *    method, headers too large, Content-Length with Transfer-Encoding, a broken chunk, a timeout).
 *    The framing of whatever follows is unknown, so the answer says `Connection: close` and the
 *    socket is destroyed once it is written (Node's own handler does the same, with an empty body);
 *  - CONNECT, which Node otherwise answers by dropping the connection;
 *  - a node that is still starting or already stopped (gateway.ts).
 * Request ids have the format Fastify's requests get (app.ts `genReqId`): 32 lower-hex characters.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { renderErrorBody } from './errors.js';

/** A new request id: 32 lower-hex characters (a UUID v4 without dashes). */
export function newRequestId(): string {
  return randomUUID().replace(/-/g, '');
}

/** Bounded wait for a refused client to take its answer before its socket is destroyed. */
const REFUSAL_FLUSH_MS = 2000;

export interface RawError {
  status: number;
  code: string;
  message: string;
  requestId: string;
  headers?: Record<string, string>;
}

/** The APIG error body for `e` (what `renderErrorBody('apigw', …)` gives every APIGW code). */
export function rawErrorBody(e: Pick<RawError, 'code' | 'message' | 'requestId'>): string {
  return JSON.stringify(renderErrorBody('apigw', e.code, e.message, e.requestId));
}

/** A complete HTTP/1.1 error response closing the connection, as bytes to write on a raw socket. */
export function rawErrorResponse(e: RawError): string {
  const body = rawErrorBody(e);
  const extra = Object.entries(e.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\nX-Request-Id: ${e.requestId}\r\nX-Porthole-Error-Code: ${e.code}\r\n` +
    `Content-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** Writes `response` and ends the socket; destroys it once written, or after a bounded wait. */
export function endSocketWith(socket: Duplex, response: string): void {
  if (socket.destroyed) return;
  const t = setTimeout(() => socket.destroy(), REFUSAL_FLUSH_MS);
  t.unref();
  socket.end(response, () => { clearTimeout(t); socket.destroy(); });
}

/** Answers a request the gateway will not route (starting, stopped, no Host) and closes the connection. */
export function writeErrorResponse(res: ServerResponse, e: RawError): void {
  const body = rawErrorBody(e);
  res.shouldKeepAlive = false;
  res.writeHead(e.status, {
    ...e.headers, 'x-request-id': e.requestId, 'x-porthole-error-code': e.code, 'content-type': 'application/json',
    'cache-control': 'no-store', connection: 'close', 'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Status and message for an error of Node's HTTP parser (llhttp `HPE_*` codes, Node's request timeout). */
export function clientErrorAnswer(code: string | undefined): { status: number; message: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, message: 'Request headers too large.' };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, message: 'Request entity too large.' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, message: 'API request error: the request was not received in time.' };
    default:
      return { status: 400, message: 'API request error: malformed HTTP request.' };
  }
}

/** Sockets whose refusal is being written. */
const answering = new WeakSet<Duplex>();

export interface ClientErrorLog {
  info(obj: object, msg: string): void;
}

/**
 * The server's 'clientError' listener. As Node's own: nothing is written on a connection reset, on
 * a destroyed socket, or where a response has already begun on the connection (that would corrupt
 * it); the socket is destroyed in every case. The refusal is logged under its request id (the parser's
 * error code only: the raw bytes may hold credentials).
 */
export function clientErrorHandler(log: ClientErrorLog): (err: Error & { code?: string }, socket: Duplex) => void {
  return (err, socket) => {
    if (answering.has(socket)) return; // already being answered (a second listener during start-up)
    if (err.code === 'ECONNRESET' || socket.destroyed) { socket.destroy(); return; }
    // As Node: answer unless a response has started on this connection (the answer would be cut into
    // it). One not started yet is this request's own (e.g. its chunked body is malformed).
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (!socket.writable || inFlight?.headersSent === true) { socket.destroy(); return; }
    answering.add(socket);
    const requestId = newRequestId();
    const { status, message } = clientErrorAnswer(err.code);
    const remote = (socket as Duplex & { remoteAddress?: string }).remoteAddress ?? null;
    log.info({ reqId: requestId, status, code: err.code ?? null, remote }, 'malformed HTTP request refused');
    endSocketWith(socket, rawErrorResponse({ status, code: 'APIGW.0201', message, requestId }));
  };
}
