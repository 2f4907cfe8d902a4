/**
 * Authenticates an API request: `X-Auth-Token` (an IAM token from POST /v3/auth/tokens). AK/SK
 * signatures (`Authorization: SDK-HMAC-SHA256 …`) are verified by the identity module when enabled.
 * Errors are gateway-level (APIGW.*) as APIG in front of Huawei services returns them.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { Principal } from '../domain/authz.js';
import type { ApiContext } from './context.js';

export type AkSkAuthenticator = (req: FastifyRequest) => Promise<Principal>;

export function makeAuthenticate(ctx: ApiContext, aksk?: AkSkAuthenticator) {
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
    return principal;
  };
}
