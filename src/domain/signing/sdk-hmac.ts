/**
 * Huawei Cloud `SDK-HMAC-SHA256` AK/SK request signatures: verification on the server side, and a
 * signer for our own tests and CLI that canonicalizes exactly the same way (reference A.1–A.3).
 *
 * CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n PayloadHash
 * StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(sha256(CanonicalRequest))
 * Signature        = hex(HMAC-SHA256(SK, StringToSign))
 *
 * The server rebuilds the canonical request from the bytes it received (raw path, raw query, the
 * header names the client listed in SignedHeaders, raw body) and never from parsed or re-serialized
 * data: GO's JSON body ends with `\n`, NODE double-encodes path parameters, and only the wire form
 * shows either. Where the two SDKs disagree (the path, reference A.1 QUIRK) verification accepts
 * both forms. Everything here is pure: no I/O, and no function throws on malformed client input.
 *
 * Header values are hashed as Node presents them (a latin1 view of the received bytes), so only
 * ASCII values, which is all the SDKs send, can verify.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SDK_HMAC_SHA256 = 'SDK-HMAC-SHA256';

/** Largest tolerated |server time − X-Sdk-Date| (reference A.1: APIG rejects more than 15 min). */
export const DATE_SKEW_WINDOW_MS = 15 * 60 * 1000;

/** Limits on what a client can make us parse (STYLE rule 3). */
export const MAX_AUTHORIZATION_LENGTH = 4096;
export const MAX_SIGNED_HEADERS = 64;

/** sha256 of zero bytes: the payload hash of a request with no body. */
export const EMPTY_PAYLOAD_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** `X-Sdk-Content-Sha256` value the SDKs send when the body is not JSON (reference A.1). */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

const HEADER_DATE = 'x-sdk-date';
const HEADER_CONTENT_SHA256 = 'x-sdk-content-sha256';

/** Algorithms the current SDKs can be configured to use and that we deliberately do not accept (reference A.4). */
export const UNSUPPORTED_ALGORITHMS: readonly string[] = ['SDK-HMAC-SM3', 'SDK-ECDSA-P256-SHA256', 'SDK-SM2-SM3', 'V11-HMAC-SHA256'];

/**
 * Why an AK/SK authentication failed. `ak_unknown` and `ak_locked` are decided by the caller (SK
 * lookup, lockout) and are listed here so that `errorSuffix` covers every APIGW.0301 case.
 */
export type SigningFailure =
  | 'authorization_missing'
  | 'authorization_malformed'
  | 'algorithm_unsupported' // a Huawei algorithm we do not implement (SM3, ECDSA, SM2, derived V11)
  | 'algorithm_unknown' // not a Huawei AK/SK scheme at all
  | 'date_missing'
  | 'date_unsigned'
  | 'date_malformed'
  | 'date_skew'
  | 'header_missing'
  | 'payload_hash_mismatch' // X-Sdk-Content-Sha256 claims a hash the body does not have
  | 'payload_unsigned' // UNSIGNED-PAYLOAD while the caller requires a signed body
  | 'signature_mismatch'
  | 'ak_unknown'
  | 'ak_locked';

export interface SigningError {
  readonly ok: false;
  readonly reason: SigningFailure;
}

export interface ParsedAuthorization {
  readonly ok: true;
  readonly algorithm: typeof SDK_HMAC_SHA256;
  readonly accessKey: string;
  /** Lower-case header names, in the order the client listed them. */
  readonly signedHeaders: readonly string[];
  /** 64 lower-case hex digits. */
  readonly signature: string;
}

export type VerifyResult = { readonly ok: true } | SigningError;

/** A request as it arrived on the wire. */
export interface WireRequest {
  method: string;
  /** As received: percent-encoded, without the query. */
  rawPath: string;
  /** The part after `?`, as received; '' when there is none. */
  rawQuery: string;
  /** Lower-case names, as Node gives them. */
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

export interface CanonicalOptions {
  /** Percent-decode each path segment before encoding it (GO); default: encode it as received (NODE). */
  decodePath?: boolean;
}

export interface VerifyOptions {
  /** Accept `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` (the body is then not covered). Default true. */
  allowUnsignedPayload?: boolean;
}

function fail(reason: SigningFailure): SigningError {
  return { ok: false, reason };
}

// ---------------------------------------------------------------------------------------------
// Encoding (RFC 3986 unreserved set, upper-case hex: NODE `noEscape`, GO `shouldEscape`)

const UNRESERVED = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~') UNRESERVED[c.charCodeAt(0)] = 1;
const HEX_UPPER = '0123456789ABCDEF';

/** Percent-encodes every byte outside `A-Z a-z 0-9 - _ . ~` (strings are taken as UTF-8). */
export function uriEscape(input: string | Uint8Array): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  let out = '';
  for (const b of bytes) {
    out += UNRESERVED[b] === 1 ? String.fromCharCode(b) : '%' + HEX_UPPER.charAt(b >> 4) + HEX_UPPER.charAt(b & 15);
  }
  return out;
}

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Percent-decodes to bytes. In a path `+` stays `+`; with `plusIsSpace` (queries) it is a space, as
 * the route's query parser reads it — so a signature covers the value the route acts on (both SDKs
 * send a space as `%20` and a plus as `%2B`, so they sign the same either way). A `%` not followed by
 * two hex digits is kept literally rather than rejected: the request then simply fails to verify,
 * and this function cannot throw.
 */
export function percentDecode(s: string, plusIsSpace = false): Buffer {
  const src = Buffer.from(s, 'utf8');
  if (!src.includes(0x25) && !(plusIsSpace && src.includes(0x2b))) return src;
  const out = Buffer.alloc(src.length);
  let j = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i] ?? 0;
    if (c === 0x2b && plusIsSpace) {
      out[j++] = 0x20;
      continue;
    }
    if (c === 0x25) {
      const hi = hexValue(src[i + 1]);
      const lo = hexValue(src[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[j++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    out[j++] = c;
  }
  return out.subarray(0, j);
}

// ---------------------------------------------------------------------------------------------
// Canonical request

/**
 * Splits on `/`, encodes each segment, and always ends in `/` (reference A.1; GO `CanonicalURI`).
 * With `decode`, each segment is percent-decoded first, which is what GO signs; without it the
 * received segment is encoded again, which is what NODE signs (`p%2F1` → `p%252F1`).
 */
export function canonicalUri(rawPath: string, decode = false): string {
  const joined = rawPath
    .split('/')
    .map((segment) => uriEscape(decode ? percentDecode(segment) : segment))
    .join('/');
  return joined.endsWith('/') ? joined : joined + '/';
}

/**
 * Decodes the raw query (`+` is a space, as the route reads it) and re-encodes it: names sorted by byte order, one `name=value` per value,
 * values sorted, joined with `&` (GO `CanonicalQueryString`). A name without `=` has the value ''.
 */
export function canonicalQueryString(rawQuery: string): string {
  if (rawQuery === '') return '';
  const byName = new Map<string, { name: Buffer; values: Buffer[] }>();
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = percentDecode(eq < 0 ? pair : pair.slice(0, eq), true);
    const value = percentDecode(eq < 0 ? '' : pair.slice(eq + 1), true);
    const key = name.toString('latin1'); // a lossless Map key for arbitrary bytes
    const entry = byName.get(key);
    if (entry) entry.values.push(value);
    else byName.set(key, { name, values: [value] });
  }
  const parts: string[] = [];
  for (const { name, values } of [...byName.values()].sort((a, b) => Buffer.compare(a.name, b.name))) {
    const encodedName = uriEscape(name);
    for (const value of values.sort(Buffer.compare)) parts.push(`${encodedName}=${uriEscape(value)}`);
  }
  return parts.join('&');
}

/** The received values of a header; `undefined` when absent. Own properties only (`constructor` is a valid header name). */
function headerValues(headers: WireRequest['headers'], name: string): string[] | undefined {
  if (!Object.hasOwn(headers, name)) return undefined;
  const value = headers[name];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return undefined;
}

/** The header's value when it is present exactly once. */
function singleHeader(headers: WireRequest['headers'], name: string): string | undefined {
  const values = headerValues(headers, name);
  return values?.length === 1 ? values[0]?.trim() : undefined;
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `X-Sdk-Content-Sha256` when present and non-empty (both SDKs), else the hash of the raw body. */
function payloadHash(req: WireRequest): string {
  return singleHeader(req.headers, HEADER_CONTENT_SHA256) || sha256Hex(req.body);
}

/**
 * Builds the canonical request (reference A.1). Each listed header contributes one `name:value`
 * line per value, trimmed, several values sorted (GO); a missing header contributes nothing, as in
 * GO (verification rejects that case before getting here).
 */
export function canonicalRequest(req: WireRequest, signedHeaders: readonly string[], opts: CanonicalOptions = {}): string {
  const lines: string[] = [];
  for (const name of signedHeaders) {
    const values = (headerValues(req.headers, name) ?? []).map((v) => v.trim()).sort();
    for (const value of values) lines.push(`${name}:${value}`);
  }
  return [
    req.method.toUpperCase(),
    canonicalUri(req.rawPath, opts.decodePath ?? false),
    canonicalQueryString(req.rawQuery),
    lines.join('\n') + '\n', // the header block ends in "\n", so an empty line precedes SignedHeaders
    signedHeaders.join(';'),
    payloadHash(req),
  ].join('\n');
}

/** StringToSign for a canonical request and the X-Sdk-Date value. */
export function stringToSign(canonical: string, sdkDate: string): string {
  return `${SDK_HMAC_SHA256}\n${sdkDate}\n${sha256Hex(canonical)}`;
}

function hmac(secretKey: string, data: string): Buffer {
  return createHmac('sha256', Buffer.from(secretKey, 'utf8')).update(data, 'utf8').digest();
}

// ---------------------------------------------------------------------------------------------
// X-Sdk-Date

const SDK_DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** `YYYYMMDDTHHMMSSZ` (UTC) to epoch ms, or null when malformed or not a real date (month 13, Feb 30). */
export function parseSdkDate(value: string): number | null {
  const m = SDK_DATE_RE.exec(value);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const t = new Date(ms);
  const roundTrips =
    t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d && t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === s;
  return roundTrips ? ms : null;
}

/** Formats a date as X-Sdk-Date (`20260101T000000Z`). */
export function formatSdkDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

// ---------------------------------------------------------------------------------------------
// Authorization header

/** Reference A.3 step 1. `[^,\s]+` cannot overlap its delimiters, so matching is linear. */
const AUTHORIZATION_RE = /^SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/;
/** An HTTP token (RFC 9110 §5.6.2) in lower case: the SDKs lower-case names before signing. */
const SIGNED_HEADER_NAME_RE = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/**
 * Parses `Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b>, Signature=<hex>`.
 * Known Huawei algorithms we do not implement give `algorithm_unsupported`; any other scheme gives
 * `algorithm_unknown`, so a caller can tell "wrong SDK setting" from "not AK/SK at all".
 */
export function parseAuthorization(header: string | undefined): ParsedAuthorization | SigningError {
  if (header === undefined || header.trim() === '') return fail('authorization_missing');
  if (header.length > MAX_AUTHORIZATION_LENGTH) return fail('authorization_malformed');
  const scheme = /^\S+/.exec(header)?.[0] ?? '';
  if (scheme !== SDK_HMAC_SHA256) return fail(UNSUPPORTED_ALGORITHMS.includes(scheme) ? 'algorithm_unsupported' : 'algorithm_unknown');
  const m = AUTHORIZATION_RE.exec(header);
  const [, accessKey, headerList, signature] = m ?? [];
  if (accessKey === undefined || headerList === undefined || signature === undefined) return fail('authorization_malformed');
  const signedHeaders = headerList.split(';');
  if (signedHeaders.length > MAX_SIGNED_HEADERS) return fail('authorization_malformed');
  if (!signedHeaders.every((h) => SIGNED_HEADER_NAME_RE.test(h))) return fail('authorization_malformed');
  if (new Set(signedHeaders).size !== signedHeaders.length) return fail('authorization_malformed');
  return { ok: true, algorithm: SDK_HMAC_SHA256, accessKey, signedHeaders, signature };
}

// ---------------------------------------------------------------------------------------------
// Verification

/**
 * Checks a parsed signature against the request (reference A.3 steps 2, 4, 5). The SK lookup
 * (step 3) and the lockout are the caller's. Order: date presence, date signed, date format, skew,
 * listed headers present, payload header, then the signature itself, compared in constant time,
 * first over the path as received (NODE), then, if the path has escapes, over the decoded path (GO).
 */
export function verifySignature(req: WireRequest, parsed: ParsedAuthorization, secretKey: string, now: Date, opts: VerifyOptions = {}): VerifyResult {
  const sdkDate = singleHeader(req.headers, HEADER_DATE);
  if (sdkDate === undefined) return fail('date_missing');
  if (!parsed.signedHeaders.includes(HEADER_DATE)) return fail('date_unsigned');
  const dateMs = parseSdkDate(sdkDate);
  if (dateMs === null) return fail('date_malformed');
  const nowMs = now.getTime();
  // An invalid `now` must fail closed: NaN > window is false.
  if (!Number.isFinite(nowMs) || !(Math.abs(nowMs - dateMs) <= DATE_SKEW_WINDOW_MS)) return fail('date_skew');
  for (const name of parsed.signedHeaders) {
    if (headerValues(req.headers, name) === undefined) return fail('header_missing');
  }

  const claimed = singleHeader(req.headers, HEADER_CONTENT_SHA256);
  if (claimed) {
    if (claimed === UNSIGNED_PAYLOAD) {
      if (opts.allowUnsignedPayload === false) return fail('payload_unsigned');
    } else if (claimed.toLowerCase() !== sha256Hex(req.body)) {
      // A signed hash that the body does not have means the body was changed after signing.
      return fail('payload_hash_mismatch');
    }
  }

  const expected = Buffer.from(parsed.signature, 'hex');
  if (expected.length !== 32 || !/^[0-9a-f]{64}$/.test(parsed.signature)) return fail('authorization_malformed');
  const pathForms = pathFormsOf(req.rawPath);
  for (const decodePath of pathForms) {
    const actual = hmac(secretKey, stringToSign(canonicalRequest(req, parsed.signedHeaders, { decodePath }), sdkDate));
    if (timingSafeEqual(actual, expected)) return { ok: true };
  }
  return fail('signature_mismatch');
}

/**
 * Which canonical paths a request may have been signed over: the path as received (NODE), and the
 * decoded path (GO) when it has escapes — but not when the decoded path still holds a `%`. Such a
 * path is double-encoded (`%2541` is the text `%41`), and its GO form is the NODE form of another
 * request (`%41`, which the router reads as `A`): accepting it would let one signature cover both.
 */
function pathFormsOf(rawPath: string): boolean[] {
  if (!rawPath.includes('%')) return [false];
  return percentDecode(rawPath).includes(0x25) ? [false] : [false, true];
}

/**
 * The documented APIGW.0301 message suffix for a failure (reference D.1), appended to
 * "Incorrect IAM authentication information". It never contains the AK, the SK or a signature:
 * the unknown-AK text carries the literal `***` that APIG prints.
 */
export function errorSuffix(reason: SigningFailure): string {
  switch (reason) {
    case 'date_skew':
      return ': calc ak sk signature fail:signature expired';
    case 'ak_unknown':
      return ': Get secretKey failed,ak:***,err:ak not exist';
    case 'ak_locked':
      return ': AK access failed to reach the limit,forbidden.';
    case 'authorization_missing':
    case 'authorization_malformed':
    case 'algorithm_unsupported':
    case 'algorithm_unknown':
    case 'date_missing':
    case 'date_unsigned':
    case 'date_malformed':
    case 'header_missing':
    case 'payload_hash_mismatch':
    case 'payload_unsigned':
    case 'signature_mismatch':
      return ': verify aksk signature fail';
  }
}

// ---------------------------------------------------------------------------------------------
// Client-side signer (tests, CLI)

/**
 * Which headers to sign (reference A.2):
 * - `node`: every header present at signing time plus `host` and `x-sdk-date`, as NODE does;
 *   headers NODE's transport adds after signing (User-Agent, Accept, Content-Length…) are skipped.
 *   Typical result: `content-type;host;x-project-id;x-sdk-date`.
 * - `go`: every header except names starting with `content-type` or containing `_`; `host` is not
 *   in GO's header map so it is not signed; `user-agent` is. Typical: `user-agent;x-project-id;x-sdk-date`.
 * - an explicit list: exactly those names (lower-cased, sorted). `x-sdk-date` is not added, so
 *   tests can produce requests with an unsigned date.
 */
export type SignedHeaderSelection = 'node' | 'go' | readonly string[];

export interface SignableRequest {
  method: string;
  /** The path as it will be sent (already percent-encoded). */
  rawPath: string;
  rawQuery?: string;
  /** Any case; `host` is required for the `node` selection. */
  headers?: Record<string, string | string[] | undefined>;
  body?: Uint8Array | string;
}

export interface SignOptions {
  accessKey: string;
  secretKey: string;
  /** Signing time; default the current time. */
  now?: Date;
  /** Default `node`. */
  signedHeaders?: SignedHeaderSelection;
  /** Sign the decoded path like GO (default: the path as sent, like NODE). */
  decodePath?: boolean;
}

export interface SignedRequestHeaders {
  Authorization: string;
  'X-Sdk-Date': string;
}

const NODE_UNSIGNED = new Set(['authorization', 'user-agent', 'accept', 'accept-encoding', 'content-length', 'connection']);
const GO_UNSIGNED = new Set(['authorization', 'host', 'accept-encoding', 'content-length', 'connection']);

function selectSignedHeaders(selection: SignedHeaderSelection, present: readonly string[]): string[] {
  let names: string[];
  if (selection === 'node') names = [...present.filter((n) => !NODE_UNSIGNED.has(n)), 'host', HEADER_DATE];
  else if (selection === 'go') names = [...present.filter((n) => !GO_UNSIGNED.has(n) && !n.startsWith('content-type') && !n.includes('_')), HEADER_DATE];
  else names = selection.map((n) => n.toLowerCase());
  return [...new Set(names)].sort();
}

/**
 * Signs a request the way the Huawei SDKs do and returns the two headers to add. Throws TypeError
 * on caller mistakes (an AK the header format cannot carry, `host` missing for `node`).
 */
export function signRequest(req: SignableRequest, opts: SignOptions): SignedRequestHeaders {
  if (!/^[^,\s]+$/.test(opts.accessKey)) throw new TypeError('signRequest: the access key must be non-empty and contain no comma or whitespace');
  const sdkDate = formatSdkDate(opts.now ?? new Date());
  const headers: WireRequest['headers'] = Object.create(null) as WireRequest['headers'];
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    if (value !== undefined && name.toLowerCase() !== HEADER_DATE) headers[name.toLowerCase()] = value;
  }
  const selection = opts.signedHeaders ?? 'node';
  if (selection === 'node' && headers['host'] === undefined) throw new TypeError('signRequest: the node selection signs host, so headers.host is required');
  const signedHeaders = selectSignedHeaders(selection, Object.keys(headers));
  headers[HEADER_DATE] = sdkDate;
  const wire: WireRequest = {
    method: req.method,
    rawPath: req.rawPath,
    rawQuery: req.rawQuery ?? '',
    headers,
    body: typeof req.body === 'string' ? Buffer.from(req.body, 'utf8') : (req.body ?? new Uint8Array(0)),
  };
  const canonical = canonicalRequest(wire, signedHeaders, { decodePath: opts.decodePath ?? false });
  const signature = hmac(opts.secretKey, stringToSign(canonical, sdkDate)).toString('hex');
  return {
    Authorization: `${SDK_HMAC_SHA256} Access=${opts.accessKey}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`,
    'X-Sdk-Date': sdkDate,
  };
}
