/**
 * AK/SK-signed calls for tests, signed with the project's own signer (src/domain/signing) the way the
 * Node SDK (`node`: content-type;host;x-project-id;x-sdk-date) or the Go SDK (`go`:
 * user-agent;x-project-id;x-sdk-date, JSON body ending in "\n") signs them.
 */
import { signRequest, type SignedHeaderSelection } from '../../src/domain/signing/sdk-hmac.js';
import { call, type HttpResult } from './gateway.js';

export interface AkSk { ak: string; sk: string }

export interface SignedCallInit {
  method?: string;
  /** Path as sent (already encoded), with an optional `?query`. */
  path: string;
  /** JSON-serialized (Go style adds the trailing newline). */
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
  /** Sent as X-Project-Id and signed. */
  projectId?: string;
  /** Signing time (default: now on the gateway's clock). */
  now?: Date;
  style?: SignedHeaderSelection;
  /** Signs with this SK instead of the key's (a wrong SK). */
  signWith?: string;
}

/** The request's headers and body after signing (for replaying the exact same request later). */
export interface SignedRequest { url: string; method: string; headers: Record<string, string>; body: string | undefined }

export function signedRequest(baseUrl: string, key: AkSk, init: SignedCallInit, clockOffsetMs = 0): SignedRequest {
  const style = init.style ?? 'node';
  const method = init.method ?? (init.json === undefined && init.body === undefined ? 'GET' : 'POST');
  let body = init.body;
  if (init.json !== undefined) body = JSON.stringify(init.json) + (style === 'go' ? '\n' : '');
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  if (init.projectId !== undefined) headers['x-project-id'] = init.projectId;
  if (style === 'go') headers['user-agent'] ??= 'huaweicloud-usdk-go/3.0';
  const q = init.path.indexOf('?');
  const rawPath = q < 0 ? init.path : init.path.slice(0, q);
  const rawQuery = q < 0 ? '' : init.path.slice(q + 1);
  const host = new URL(baseUrl).host;
  const signed = signRequest(
    { method, rawPath, rawQuery, headers: style === 'node' ? { ...headers, host } : headers, ...(body === undefined ? {} : { body }) },
    { accessKey: key.ak, secretKey: init.signWith ?? key.sk, now: init.now ?? new Date(Date.now() + clockOffsetMs), signedHeaders: style },
  );
  return { url: baseUrl + init.path, method, headers: { ...headers, ...signed }, body };
}

export async function signedCall(baseUrl: string, key: AkSk, init: SignedCallInit, clockOffsetMs = 0): Promise<HttpResult> {
  return send(signedRequest(baseUrl, key, init, clockOffsetMs));
}

export function send(r: SignedRequest): Promise<HttpResult> {
  return call(r.url, { method: r.method, headers: r.headers, ...(r.body === undefined ? {} : { body: r.body }) });
}
