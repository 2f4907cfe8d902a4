/**
 * The console page and its assets under /vnc/{zone}/, from a fixed in-memory allow-list (no directory
 * serving, no redirects: CVE-2021-3654), plus the non-consuming token-state look-up the page uses to
 * explain a refused connection. The page itself never carries or needs a VNC secret.
 */
import type { FastifyInstance } from 'fastify';
import { consoleCsp, CONSOLE_SECURITY_HEADERS, renderConsolePage } from '../../web/assets.js';
import type { ApiContext } from '../context.js';

const ZONE_RE = /^[A-Za-z0-9._-]{1,64}$/;

export function registerWebRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const csp = consoleCsp(ctx.config.publicUrl);
  const notFound = { error_code: 'APIGW.0101', error_msg: 'The API does not exist or has not been published in the environment.' };

  app.get<{ Params: { zone: string; file: string } }>('/vnc/:zone/:file', async (req, reply) => {
    const { zone, file } = req.params;
    if (!ZONE_RE.test(zone)) return reply.code(404).send(notFound);
    const token = (req.query as Record<string, unknown>).token;
    if (file === 'token-state') {
      const peek = typeof token === 'string' ? await ctx.consoles.peek(token, zone) : { state: 'invalid' as const };
      reply.header('cache-control', 'no-store');
      // A valid link refused at the upgrade: its machine is exclusive and in use (proxy/upgrade.ts).
      if (peek.state === 'valid' && 'resource' in peek && peek.resource?.endpoint?.options?.sessionMode === 'exclusive') {
        if ((await ctx.store.sessions.list({ resourceId: peek.resource.id, open: true, limit: 1 })).length > 0) return { state: 'busy' };
      }
      return { state: peek.state };
    }
    const asset = ctx.web.get(file);
    if (!asset) return reply.code(404).send(notFound);
    for (const [k, v] of Object.entries(CONSOLE_SECURITY_HEADERS)) reply.header(k, v);
    if (file.endsWith('.html')) {
      const q = req.query as Record<string, unknown>;
      reply.header('content-security-policy', csp);
      reply.header('cache-control', 'no-store');
      // View-only comes from the token (minted view-only), never from a URL parameter the user can edit.
      const minted = typeof q.token === 'string' ? await ctx.consoles.peek(q.token, zone) : undefined;
      return reply.type(asset.contentType).send(renderConsolePage(ctx.web, { viewOnly: minted?.token?.viewOnly === true }));
    }
    reply.header('etag', asset.etag);
    if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.contentType).send(asset.body);
  });

  app.get('/', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('Porthole console gateway. See the README for the API.\n'));
}
