/**
 * Admin API, console links (domain administrators over the machines of the projects they manage):
 *  - POST /admin/v1/{cloudservers|physicalservers|desktops}/{id}/console-url  {view_only?: boolean}
 *        → 201 {console_url: {url, view_only, expires_at, resource_id, resource_type}}
 *
 * A view-only link is a property of its token, not of the URL: the gateway drops every input message
 * of such a session (proxy/console-session.ts), forces the shared flag, and serves the console page
 * with its "View only" badge because the token says so — editing the URL changes neither.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import type { ResourceKind } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { jsonBody } from '../http.js';
import type { makeAuthenticate } from '../auth.js';
import { adminServices } from './admin-directory.js';

type Authenticate = ReturnType<typeof makeAuthenticate>;

const KINDS: readonly ResourceKind[] = ['cloudserver', 'physicalserver', 'desktop'];

export function registerAdminConsoleRoutes(app: FastifyInstance, ctx: ApiContext, authenticate: Authenticate): void {
  for (const kind of KINDS) {
    const plural = `${kind}s`;
    const action = `admin:${plural}:console`;
    app.post<{ Params: { id: string } }>(`/admin/v1/${plural}/:id/console-url`, { config: { service: 'admin' as const, action } }, async (req, reply) => {
      const p = await authenticate(req);
      const access = adminServices(ctx).access;
      access.require(p, action);
      const { resource } = await access.resource(p, req.params.id, kind);
      const raw = Buffer.isBuffer(req.body) && req.body.length > 0 ? jsonBody(req) : {};
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ApiError('bad_request', 'Request body must be {"view_only": true|false} or empty.');
      const viewOnly = (raw as Record<string, unknown>).view_only ?? false;
      if (typeof viewOnly !== 'boolean') throw new ApiError('bad_request', 'view_only must be true or false.');
      req.auditResource = { kind, id: resource.id, projectId: resource.projectId };
      const minted = await ctx.consoles.mint(resource.projectId, kind, resource.id, { userId: p.userId, viewOnly });
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({
        console_url: { url: minted.url, view_only: viewOnly, expires_at: new Date(minted.expiresAt).toISOString(), resource_id: resource.id, resource_type: kind },
      });
    });
  }
}
