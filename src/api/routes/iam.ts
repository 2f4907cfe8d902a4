/**
 * IAM: POST /v3/auth/tokens (password method) → 201 with the token in X-Subject-Token (reference C).
 * Logins are throttled twice: every call per source address like any API (ratelimit.per_second /
 * per_minute), and failed passwords per user and per address (iam.login_failures_*), both 429
 * APIGW.0308 with Retry-After.
 */
import type { FastifyInstance } from 'fastify';
import { systemClock } from '../../domain/clock.js';
import type { ApiContext } from '../context.js';
import { jsonBody, setNoStore } from '../http.js';
import { ApiThrottle, LoginThrottle } from '../ratelimit.js';

export function registerIamRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const clock = ctx.clock ?? systemClock;
  const throttle = ctx.rateLimits ? new ApiThrottle(ctx.rateLimits, clock, ctx.config.rateLimit) : undefined;
  const logins = ctx.rateLimits ? new LoginThrottle(ctx.rateLimits, clock, ctx.config.rateLimit) : undefined;

  app.post('/v3/auth/tokens', { config: { service: 'iam', action: 'iam:tokens:create' } }, async (req, reply) => {
    await throttle?.check(req, `addr:${req.ip}`);
    const q = req.query as Record<string, string | undefined>;
    const { token, body, user } = await ctx.iam.issueToken(jsonBody(req), q.nocatalog === 'true', logins?.guard(req.ip));
    req.auditActor = { userId: user.id, userName: user.name, domainId: user.domainId };
    setNoStore(reply);
    reply.header('x-subject-token', token);
    return reply.code(201).send(body);
  });
}
