/**
 * Builds the Fastify application: request ids, raw-body capture (AK/SK signatures are computed over
 * the exact bytes), one error handler that renders each service's error shape, the audit hook, and
 * the routes. WebSocket upgrades never reach Fastify: proxy/upgrade.ts handles them on the server's
 * 'upgrade' event first.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerFactory } from 'fastify';
import type { Logger } from 'pino';
import { ApiError, renderErrorBody } from '../errors.js';
import { clientErrorHandler, newRequestId } from '../http-errors.js';
import { redactUrl } from '../observability/redact.js';
import type { ApiContext } from './context.js';
import { serviceOf } from './http.js';
import { akskAuthenticator, makeAuthenticate, type AkSkAuthenticator } from './auth.js';
import { AddressThrottle } from './ratelimit.js';
import type { AuditEvent } from '../store/types.js';
import { systemClock } from '../domain/clock.js';
import { registerIamRoutes } from './routes/iam.js';
import { registerCredentialRoutes } from './routes/credentials.js';
import { registerAdminRoutes } from './routes/admin.js';
import { registerConsoleRoutes } from './routes/consoles.js';
import { registerListRoutes } from './routes/lists.js';
import { registerAdminDirectoryRoutes } from './routes/admin-directory.js';
import { registerAdminInventoryRoutes } from './routes/admin-inventory.js';
import { registerAdminConsoleRoutes } from './routes/admin-consoles.js';
import { registerAdminNodeRoutes } from './routes/admin-nodes.js';
import { isStoreUnavailable } from '../store/errors.js';
import { registerWebRoutes } from './routes/web.js';
import { registerAssistanceRoutes } from './routes/assistance.js';
import { registerOpsRoutes, type HealthSource } from './routes/ops.js';
import { trackRoutes } from './openapi.js';
import type { GatewayMetrics } from '../observability/metrics.js';

export interface BuildApiOptions {
  logger: Logger;
  serverFactory?: FastifyServerFactory;
  aksk?: AkSkAuthenticator;
  /** Serves /metrics and records API latency and throttling. */
  metrics?: GatewayMetrics;
  /** Node facts and the draining flag for /healthz and /readyz. */
  health?: HealthSource;
}

/** What API clients read during a database outage (503 APIGW.0613). */
export const STORE_UNAVAILABLE_MESSAGE = 'The service is temporarily unavailable: the gateway cannot reach its database. Retry in a few seconds.';

/** Paths a draining node still answers: health, readiness and metrics. */
const DRAIN_EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

/** Maps Fastify's own client errors (body too large, bad content length…) to our kinds. */
function fromFastifyError(err: { code?: string; statusCode?: number; message?: string }): ApiError {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('payload_too_large', 'Request entity too large.', { status: 413, code: 'APIGW.0201' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('bad_request', 'Invalid request body.');
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return new ApiError('bad_request', 'API request error.', { status: err.statusCode, code: 'APIGW.0201' });
  return new ApiError('internal');
}

/**
 * Requests the router refuses before any route or hook runs (Fastify `frameworkErrors`): a path that is
 * not valid percent-encoding, a path parameter longer than `maxParamLength`. They get the APIG body and
 * `X-Request-Id` like everything else; the message does not echo the path.
 */
function frameworkError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const [status, code, message] = err.code === 'FST_ERR_BAD_URL' ? [400, 'APIGW.0201', 'API request error: the URL is not valid percent-encoding.']
    : err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? [414, 'APIGW.0201', 'Request URI too large.']
    : [500, 'APIGW.0601', 'Internal server error.'];
  if (status === 500) req.log.error({ reqId: req.id, err }, 'request failed in the router');
  else req.log.info({ reqId: req.id, status, code: err.code }, 'request refused by the router');
  void reply.code(status).header('x-request-id', req.id).header('x-porthole-error-code', code).type('application/json')
    .send(renderErrorBody('apigw', code, message, req.id));
}

export async function buildApi(ctx: ApiContext, opts: BuildApiOptions): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: opts.logger as unknown as FastifyBaseLogger,
    // One line per request from our onResponse hook (redacted URL, status, time) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.config.bodyLimitBytes,
    trustProxy: ctx.config.trustProxy,
    requestIdHeader: false,
    genReqId: newRequestId,
    return503OnClosing: true,
    // Node's parser refusals (malformed request, headers too large…) in the APIG shape, not Fastify's.
    clientErrorHandler: clientErrorHandler(opts.logger),
    frameworkErrors: frameworkError,
    ...(opts.serverFactory ? { serverFactory: opts.serverFactory } : {}),
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: false },
  });

  // Keep every body as raw bytes; routes parse JSON themselves so that (a) signatures are checked over
  // the exact received bytes and (b) malformed JSON gets each service's own error code.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // Before any route: every registered route is checked against the OpenAPI document by a test.
  trackRoutes(app);

  // Hooks in callback style: on every request an async hook costs Fastify a promise round of its own.
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    done();
  });

  // A draining node (SIGTERM) refuses every API call before doing anything, so a load balancer can
  // send it to another node; only the operations endpoints answer until the node exits.
  const health = opts.health;
  if (health) {
    app.addHook('onRequest', (req, reply, done) => {
      if (!health.draining() || DRAIN_EXEMPT.has((req.url.split('?')[0] ?? ''))) { done(); return; }
      reply.header('connection', 'close');
      done(new ApiError('unavailable', 'This gateway node is shutting down; send the request again (another node answers it).', { headers: { 'retry-after': '1' } }));
    });
  }

  // Per source address, before anything else is done for the request (authentication included), so
  // an unauthenticated client cannot make the gateway verify, look up or record without bound.
  const addressThrottle = ctx.rateLimits ? new AddressThrottle(ctx.rateLimits, ctx.clock ?? systemClock, ctx.config.rateLimit) : undefined;
  if (addressThrottle) {
    app.addHook('onRequest', (req, _reply, done) => {
      if (DRAIN_EXEMPT.has(req.url.split('?')[0] ?? '')) { done(); return; }
      addressThrottle.check(req.ip).then(() => done(), done);
    });
  }

  app.addHook('onResponse', (req, reply, done) => {
    try {
      recordResponse(req, reply);
    } catch (err) {
      req.log.error({ err, reqId: req.id }, 'recording a finished request failed');
    }
    done();
  });

  const recordResponse = (req: FastifyRequest, reply: FastifyReply) => {
    const action = req.routeOptions.config?.action;
    if ((req.log as unknown as Logger).isLevelEnabled('info')) req.log.info({ method: req.method, url: redactUrl(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    opts.metrics?.apiRequest(req.method, req.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
    if (!action || req.url.startsWith('/vnc/')) return;
    const p = req.principal;
    const ok = reply.statusCode < 400;
    // Identifiers only: never a token, password, SK or signature. A refused AK/SK call keeps the AK it
    // claimed and why it failed; the owner's domain administrator sees it.
    const attempt = req.auditAttempt;
    const event: AuditEvent = {
      at: (ctx.clock ?? systemClock).now(), requestId: req.id, actorUserId: p?.userId ?? req.auditActor?.userId ?? null,
      actorName: p?.userName ?? req.auditActor?.userName ?? null, actorAk: p?.accessKey ?? attempt?.accessKey ?? null,
      action: String(action), resourceKind: req.auditResource?.kind ?? null, resourceId: req.auditResource?.id ?? null,
      projectId: req.auditResource?.projectId ?? null, sourceIp: req.ip, userAgent: String(req.headers['user-agent'] ?? '').slice(0, 256) || null,
      result: ok ? 'success' : 'failure', code: ok ? String(reply.statusCode) : (reply.getHeader('x-porthole-error-code') as string | undefined) ?? String(reply.statusCode),
      detail: attempt?.failure ? `aksk:${attempt.failure}` : null, domainId: p?.domainId ?? req.auditActor?.domainId ?? attempt?.domainId ?? null,
    };
    if (p || ok) { ctx.audit.record(event); return; }
    // Refused before the caller authenticated: aggregated per source address (domain/audit.ts), and
    // nothing the client chose (the project or machine in the path, its user agent) goes in the row.
    // The claimed identity stays only when it exists (a known AK or user): its domain sees the attempts.
    ctx.audit.recordRefusal({ ...event, resourceKind: null, resourceId: null, projectId: null, userAgent: null });
  };

  app.setErrorHandler((err, req, reply) => {
    const service = serviceOf(req);
    // A database outage is a 503 APIGW.0613 on every route, whatever was asked; the cause goes to the log.
    const apiErr = err instanceof ApiError ? err
      : isStoreUnavailable(err) ? new ApiError('unavailable', STORE_UNAVAILABLE_MESSAGE, { cause: err, headers: { 'retry-after': '5' } })
      : fromFastifyError(err as { code?: string; statusCode?: number });
    const code = apiErr.codeFor(service);
    if (apiErr.kind === 'rate_limited') opts.metrics?.apiThrottled(service, req.routeOptions.url);
    if (apiErr.kind === 'unavailable' && !(err instanceof ApiError)) {
      req.log.warn({ reqId: req.id, err, url: redactUrl(req.url) }, 'request failed: database unreachable');
    } else if (apiErr.kind === 'internal' || !(err instanceof ApiError)) {
      req.log.error({ reqId: req.id, err, url: redactUrl(req.url) }, 'request failed');
    } else if (err.cause !== undefined) {
      req.log.warn({ reqId: req.id, code, cause: err.cause }, 'request refused');
    }
    for (const [k, v] of Object.entries(apiErr.headers)) reply.header(k, v);
    reply.header('x-porthole-error-code', code);
    const message = apiErr.kind === 'internal' ? 'Internal server error.' : apiErr.message;
    return reply.code(apiErr.status).type('application/json').send(renderErrorBody(service, code, message, req.id, apiErr.detail));
  });

  app.setNotFoundHandler((req, reply) => {
    const code = 'APIGW.0101';
    reply.header('x-porthole-error-code', code);
    return reply.code(404).type('application/json').send(renderErrorBody('apigw', code, 'The API does not exist or has not been published in the environment.', req.id));
  });

  const authenticate = makeAuthenticate(ctx, opts.aksk ?? (ctx.accessKeys ? akskAuthenticator(ctx.accessKeys) : undefined));
  registerIamRoutes(app, ctx);
  registerCredentialRoutes(app, ctx, authenticate);
  registerAdminRoutes(app, ctx, authenticate);
  registerConsoleRoutes(app, ctx, authenticate);
  registerListRoutes(app, ctx, authenticate);
  if (ctx.admin) {
    registerAdminDirectoryRoutes(app, ctx, authenticate);
    registerAdminInventoryRoutes(app, ctx, authenticate);
    registerAdminConsoleRoutes(app, ctx, authenticate);
    registerAdminNodeRoutes(app, ctx, authenticate);
  }
  registerAssistanceRoutes(app, ctx, authenticate);
  registerWebRoutes(app, ctx);
  registerOpsRoutes(app, ctx, opts);
  return app;
}
