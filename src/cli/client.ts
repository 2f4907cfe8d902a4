/**
 * The CLI's HTTP client for a running gateway's admin API: `--url` / `PORTHOLE_URL`, and credentials
 * from `PORTHOLE_AK` + `PORTHOLE_SK` (requests signed SDK-HMAC-SHA256 with the project's own signer,
 * as the Huawei Node SDK signs them) or `PORTHOLE_TOKEN` (an IAM token, sent as X-Auth-Token).
 * Gateway errors become CliError with the documented exit code; the message is the gateway's
 * `error_msg` plus its code and request id, never a credential.
 */
import { signRequest } from '../domain/signing/sdk-hmac.js';

/** Exit codes (README "CLI"). */
export const ExitCode = { OK: 0, FAILURE: 1, USAGE: 2, NOT_FOUND: 3, AUTH: 4, CONFLICT: 5 } as const;

export class CliError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
    this.name = 'CliError';
  }
}

export interface Credentials { token?: string; ak?: string; sk?: string }

export interface ApiAnswer { status: number; body: unknown; requestId: string | null }

/** RFC 3986 query encoding (what the signer canonicalises to). */
export function queryString(params: Record<string, string | number | boolean | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v)).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

export class AdminClient {
  private readonly base: URL;

  constructor(baseUrl: string, private readonly creds: Credentials, private readonly fetchImpl: typeof fetch = fetch) {
    let u: URL;
    try { u = new URL(baseUrl); } catch { throw new CliError(`--url ${JSON.stringify(baseUrl)} is not a URL like http://127.0.0.1:8080`, ExitCode.USAGE); }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliError('--url must be http:// or https://', ExitCode.USAGE);
    this.base = u;
  }

  /** The gateway's base URL without a trailing slash. */
  get url(): string {
    return this.base.toString().replace(/\/+$/, '');
  }

  private authHeaders(method: string, path: string, query: string, headers: Record<string, string>, body: string | undefined): Record<string, string> {
    if (this.creds.ak && this.creds.sk) {
      const prefix = this.base.pathname.replace(/\/+$/, '');
      return signRequest(
        { method, rawPath: prefix + path, rawQuery: query.replace(/^\?/, ''), headers: { ...headers, host: this.base.host }, ...(body === undefined ? {} : { body }) },
        { accessKey: this.creds.ak, secretKey: this.creds.sk, signedHeaders: 'node' },
      ) as unknown as Record<string, string>;
    }
    if (this.creds.token) return { 'x-auth-token': this.creds.token };
    throw new CliError('no credentials: set PORTHOLE_AK and PORTHOLE_SK, or PORTHOLE_TOKEN (see `porthole login`)', ExitCode.AUTH);
  }

  /** Calls the API without raising on HTTP errors. */
  async raw(method: string, path: string, opts: { query?: string; json?: unknown; auth?: boolean } = {}): Promise<ApiAnswer & { headers: Headers }> {
    const query = opts.query ?? '';
    const body = opts.json === undefined ? undefined : JSON.stringify(opts.json);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'porthole-cli' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const auth = opts.auth === false ? {} : this.authHeaders(method, path, query, headers, body);
    const prefix = this.base.pathname.replace(/\/+$/, '');
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.base.origin}${prefix}${path}${query}`, { method, headers: { ...headers, ...auth }, ...(body === undefined ? {} : { body }) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new CliError(`cannot reach the gateway at ${this.url}: ${cause}`, ExitCode.FAILURE);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = text; }
    return { status: res.status, body: parsed, requestId: res.headers.get('x-request-id'), headers: res.headers };
  }

  /** Calls the API; an HTTP error becomes a CliError with the matching exit code. */
  async call(method: string, path: string, opts: { query?: string; json?: unknown } = {}): Promise<unknown> {
    const r = await this.raw(method, path, opts);
    if (r.status < 400) return r.body;
    throw httpError(r);
  }
}

export function exitCodeForStatus(status: number): number {
  if (status === 400 || status === 413 || status === 415) return ExitCode.USAGE;
  if (status === 401 || status === 403) return ExitCode.AUTH;
  if (status === 404) return ExitCode.NOT_FOUND;
  if (status === 409) return ExitCode.CONFLICT;
  return ExitCode.FAILURE;
}

export function httpError(r: ApiAnswer): CliError {
  const b = r.body as { error_code?: string; error_msg?: string; error?: { code?: string; message?: string } } | undefined;
  const code = b?.error_code ?? b?.error?.code;
  const msg = b?.error_msg ?? b?.error?.message ?? `HTTP ${r.status}`;
  const tail = [code, r.requestId ? `request ${r.requestId}` : undefined].filter(Boolean).join(', ');
  return new CliError(tail ? `${msg} (${tail})` : msg, exitCodeForStatus(r.status));
}
