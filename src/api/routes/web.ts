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
    if (file === 'token-state') {
      const token = (req.query as Record<string, unknown>).token;
      const state = typeof token === 'string' ? await ctx.consoles.state(token, zone) : 'invalid';
      reply.header('cache-control', 'no-store');
      return { state };
    }
    const asset = ctx.web.get(file);
    if (!asset) return reply.code(404).send(notFound);
    for (const [k, v] of Object.entries(CONSOLE_SECURITY_HEADERS)) reply.header(k, v);
    if (file.endsWith('.html')) {
      const q = req.query as Record<string, unknown>;
      reply.header('content-security-policy', csp);
      reply.header('cache-control', 'no-store');
      return reply.type(asset.contentType).send(renderConsolePage(ctx.web, { viewOnly: q.view_only === '1' || q.view_only === 'true' }));
    }
    reply.header('etag', asset.etag);
    if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.contentType).send(asset.body);
  });

  app.get('/', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('Porthole console gateway. See the README for the API.\n'));
}
