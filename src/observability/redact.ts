/**
 * Log redaction. Tokens travel in console URLs (`?token=`), IAM tokens in X-Auth-Token / X-Subject-Token,
 * signatures in Authorization: none of them may reach a log line (LP#1492140, websockify TokenRedis).
 * Every logged URL goes through redactUrl; request/response serializers never include those headers.
 */
const SECRET_PARAMS = /([?&](?:token|path|password|passwd|sk|signature)=)[^&#]*/gi;

export function redactUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  // `path=` may carry `?token=` in noVNC's form; redact the whole value.
  return url.replace(SECRET_PARAMS, '$1[redacted]');
}

/** pino serializers for Fastify's req/res that keep only safe fields. */
export const logSerializers = {
  req(req: { method?: string; url?: string; ip?: string; headers?: Record<string, unknown>; id?: string }) {
    return { method: req.method, url: redactUrl(req.url), remoteAddress: req.ip, userAgent: req.headers?.['user-agent'] };
  },
  res(res: { statusCode?: number }) {
    return { statusCode: res.statusCode };
  },
};

/** Paths pino must censor if a whole object is ever logged. */
export const redactPaths = [
  'req.headers.authorization', 'req.headers["x-auth-token"]', 'headers.authorization', 'headers["x-auth-token"]',
  'password', '*.password', 'token', '*.token', 'sk', '*.sk', 'secretKey', '*.secretKey',
];
