/**
 * One error hierarchy for the whole gateway. An `ApiError` carries a *kind* (what went wrong, in
 * Porthole's terms), an HTTP status, a client-facing message, and optionally an explicit service code.
 * Each Huawei service renders errors in its own body shape and code space (reference D.1–D.5), so the
 * code is chosen at render time from the route's service unless the thrower fixed it (gateway-level
 * authentication and throttling errors are always APIGW.*). The `cause` is for the log only: it never
 * reaches a response body.
 */

export type Service = 'iam' | 'ecs' | 'clouddc' | 'workspace' | 'apigw' | 'admin' | 'console';

export type ErrorKind =
  | 'bad_request' // malformed or invalid parameters / body
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'unauthorized' // missing / invalid credentials
  | 'token_expired'
  | 'forbidden' // authenticated, but not allowed
  | 'project_mismatch' // credentials are for another project
  | 'not_found' // the resource does not exist (in this project)
  | 'not_ready' // the resource exists but its console cannot be used now
  | 'route_not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'rate_limited'
  | 'unavailable' // a dependency (database) is down
  | 'internal';

/** Default status and per-service codes for each kind. `null` = fall back to the APIGW code. */
const TABLE: Record<ErrorKind, { status: number; codes: Partial<Record<Service, string>>; apigw: string; message: string }> = {
  bad_request: { status: 400, codes: { ecs: 'Ecs.0005', clouddc: 'iMetal.0001', workspace: 'WKS.0001', iam: 'IAM.0003', admin: 'PH.0400' }, apigw: 'APIGW.0201', message: 'Invalid request.' },
  unsupported_media_type: { status: 400, codes: { ecs: 'Ecs.0005', clouddc: 'iMetal.0001', workspace: 'WKS.0001', iam: 'IAM.0003', admin: 'PH.0400' }, apigw: 'APIGW.0201', message: 'Content-Type must be application/json.' },
  payload_too_large: { status: 413, codes: {}, apigw: 'APIGW.0201', message: 'Request entity too large.' },
  unauthorized: { status: 401, codes: { clouddc: 'APIGW.0301' }, apigw: 'APIGW.0301', message: 'Incorrect IAM authentication information' },
  token_expired: { status: 401, codes: {}, apigw: 'APIGW.0307', message: 'The token must be updated.' },
  forbidden: { status: 403, codes: { ecs: 'Ecs.0003', clouddc: 'iMetal.0004', workspace: 'WKS.0003', admin: 'PH.0403', iam: 'IAM.0002' }, apigw: 'APIGW.0302', message: 'The IAM user is not authorized to access the API.' },
  project_mismatch: { status: 403, codes: {}, apigw: 'APIGW.0302', message: 'The IAM user is not authorized to access the API: the credentials are scoped to another project.' },
  not_found: { status: 404, codes: { ecs: 'Ecs.0114', clouddc: 'iMetal.0100', workspace: 'WKS.0202', admin: 'PH.0404', iam: 'IAM.0004' }, apigw: 'APIGW.0101', message: 'The resource could not be found.' },
  not_ready: { status: 400, codes: { ecs: 'Ecs.0000', clouddc: 'iMetal.0101', workspace: 'WKS.0001', admin: 'PH.0409' }, apigw: 'APIGW.0201', message: 'The resource is not ready.' },
  route_not_found: { status: 404, codes: {}, apigw: 'APIGW.0101', message: 'The API does not exist or has not been published in the environment.' },
  method_not_allowed: { status: 405, codes: {}, apigw: 'APIGW.0101', message: 'The API does not exist or has not been published in the environment.' },
  conflict: { status: 409, codes: { admin: 'PH.0409', workspace: 'WKS.0001' }, apigw: 'APIGW.0201', message: 'Conflict.' },
  rate_limited: { status: 429, codes: { clouddc: 'iMetal.0005' }, apigw: 'APIGW.0308', message: 'The throttling threshold has been reached.' },
  unavailable: { status: 503, codes: {}, apigw: 'APIGW.0613', message: 'The service is currently unavailable.' },
  internal: { status: 500, codes: { ecs: 'Ecs.0002', clouddc: 'iMetal.0099', workspace: 'WKS.00000003', admin: 'PH.0500' }, apigw: 'APIGW.0601', message: 'Internal server error.' },
};

export interface ApiErrorOptions {
  /** Fixes the code regardless of service (e.g. APIGW.0301 for signature failures). */
  code?: string;
  /** Overrides the HTTP status of the kind. */
  status?: number;
  /** Extra detail for Workspace's `error_detail` (client-safe text only). */
  detail?: string;
  /** Underlying cause: logged, never rendered. */
  cause?: unknown;
  /** Response headers to add (e.g. Retry-After). */
  headers?: Record<string, string>;
}

export class ApiError extends Error {
  readonly kind: ErrorKind;
  readonly status: number;
  readonly fixedCode: string | undefined;
  readonly detail: string | undefined;
  readonly headers: Record<string, string>;

  constructor(kind: ErrorKind, message?: string, opts: ApiErrorOptions = {}) {
    super(message ?? TABLE[kind].message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ApiError';
    this.kind = kind;
    this.status = opts.status ?? TABLE[kind].status;
    this.fixedCode = opts.code;
    this.detail = opts.detail;
    this.headers = opts.headers ?? {};
  }

  /** The stable code this error has when rendered for `service`. */
  codeFor(service: Service): string {
    return this.fixedCode ?? TABLE[this.kind].codes[service] ?? TABLE[this.kind].apigw;
  }
}

/** Renders an error body in the shape the service's clients (and the official SDKs) expect. */
export function renderErrorBody(service: Service, code: string, message: string, requestId: string, detail?: string): object {
  // Gateway-level codes keep the APIG shape whatever the service: that is what APIG in front of
  // every Huawei service returns (reference D.1), and both SDKs parse it.
  if (code.startsWith('APIGW.')) return { error_code: code, error_msg: message, request_id: requestId };
  switch (service) {
    case 'ecs':
      return { error: { code, message } };
    case 'workspace':
      return detail === undefined ? { error_code: code, error_msg: message } : { error_code: code, error_msg: message, error_detail: detail };
    case 'iam':
      return { error_code: code, error_msg: message, request_id: requestId };
    default:
      return { error_code: code, error_msg: message, request_id: requestId };
  }
}

/** Errors of configuration: the process refuses to start and prints the message. */
export class ConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(`config: ${key}: ${message}`);
    this.name = 'ConfigError';
  }
}
