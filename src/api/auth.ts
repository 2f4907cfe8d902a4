/**
 * Authenticates an API request: `X-Auth-Token` (an IAM token from POST /v3/auth/tokens), or an AK/SK
 * signature (`Authorization: SDK-HMAC-SHA256 …`, verified by domain/access-keys.ts over the request
 * as received). Then the credential's throttle for this API is counted (api/ratelimit.ts).
 * Errors are gateway-level (APIGW.*) as APIG in front of Huawei services returns them.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { Principal } from '../domain/authz.js';
import type { AccessKeyService, AkSkAttempt } from '../domain/access-keys.js';
import type { WireRequest } from '../domain/signing/sdk-hmac.js';
import { systemClock } from '../domain/clock.js';
import type { ApiContext } from './context.js';
import { ApiThrottle, credentialKey } from './ratelimit.js';

export type AkSkAuthenticator = (req: FastifyRequest) => Promise<Principal>;

/** The request as the client signed it: raw path and query from the request line, every header value, raw body bytes. */
export function wireRequest(req: FastifyRequest): WireRequest {
  // An absolute-form request target (RFC 9112 §3.2.2, from proxies) signs only its path and query.
  const rawUrl = (req.raw.url ?? '/').replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/, '') || '/';
  const q = rawUrl.indexOf('?');
  return {
    method: req.method,
    rawPath: q < 0 ? rawUrl : rawUrl.slice(0, q),
    rawQuery: q < 0 ? '' : rawUrl.slice(q + 1),
    headers: req.raw.headersDistinct as WireRequest['headers'],
    body: Buffer.isBuffer(req.body) ? req.body : new Uint8Array(0),
  };
}

/** AK/SK authentication over the access-key service; notes the attempt on the request for the audit trail. */
export function akskAuthenticator(accessKeys: AccessKeyService): AkSkAuthenticator {
  return async (req) => {
    const params = req.params as Record<string, unknown> | undefined;
    // The path's project is the scope on the project APIs (/v1/{project_id}/…); an admin route's
    // project_id names the object acted on, not the credential's scope (only X-Project-Id scopes there).
    const admin = (req.routeOptions.config as { service?: string } | undefined)?.service === 'admin';
    const pathProject = !admin && typeof params?.project_id === 'string' ? params.project_id : null;
    const attempt: AkSkAttempt = {};
    try {
      return await accessKeys.authenticate(wireRequest(req), pathProject, attempt);
    } finally {
      req.auditAttempt = attempt;
    }
  };
}

export function makeAuthenticate(ctx: ApiContext, aksk?: AkSkAuthenticator) {
  const throttle = ctx.rateLimits ? new ApiThrottle(ctx.rateLimits, ctx.clock ?? systemClock, ctx.config.rateLimit) : undefined;
  return async function authenticate(req: FastifyRequest): Promise<Principal> {
    const token = req.headers['x-auth-token'];
    const authz = req.headers.authorization;
    let principal: Principal;
    if (typeof token === 'string' && token.length > 0) {
      principal = await ctx.iam.authenticate(token);
    } else if (typeof authz === 'string' && authz.length > 0 && aksk) {
      principal = await aksk(req);
    } else {
      throw new ApiError('unauthorized', 'Incorrect IAM authentication information: x-auth-token not found', { code: 'APIGW.0301' });
    }
    req.principal = principal;
    await throttle?.check(req, credentialKey(principal));
    return principal;
  };
}
