/**
 * The four seed console/detail APIs:
 *  - ECS     POST /v1/{project_id}/cloudservers/{server_id}/remote_console      → {remote_console:{type,protocol,url}}
 *  - CloudDC GET  /v1/{project_id}/physicalservers/{id}/remote-console-address  → {url}
 *  - WKS     GET  /v2/{project_id}/desktops/{desktop_id}/remote-consoles        → {type,url,protocol}
 *  - WKS     GET  /v2/{project_id}/desktops/{desktop_id}                        → {desktop: DesktopDetailInfo}
 * Order of checks: authenticate → path syntax → project scope and role → resource lookup, so that an
 * unauthorized caller learns nothing about which resources exist.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.js';
import { authorize, type Action } from '../../domain/authz.js';
import { notFoundMessage } from '../../domain/consoles.js';
import type { ResourceKind, ResourceRecord } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { jsonBody, PROJECT_ID_RE, RESOURCE_ID_RE, setNoStore } from '../http.js';
import type { makeAuthenticate } from '../auth.js';
import { DESKTOP_DETAIL_FIELDS, unsetValue, workspaceStatusOf } from '../../domain/desktop.js';
import { loginStatusOf } from '../../domain/liveness.js';
import { systemClock } from '../../domain/clock.js';

type Authenticate = ReturnType<typeof makeAuthenticate>;

/** Every DesktopDetailInfo field (reference E.5); only these leave the gateway. */
export { DESKTOP_DETAIL_FIELDS } from '../../domain/desktop.js';

/**
 * DesktopDetailInfo of a stored desktop; `loginStatus` is the live one (domain/liveness.ts) when known.
 * Every documented field is there, an unset one as [] (list), {} (map) or null, and `status` is one of
 * Workspace's: typed clients find the model they expect.
 */
export function desktopDetail(r: ResourceRecord, loginStatus?: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of DESKTOP_DETAIL_FIELDS) out[k] = Object.prototype.hasOwnProperty.call(r.attributes, k) ? r.attributes[k] : unsetValue(k);
  out.desktop_id = r.id;
  out.computer_name = r.attributes.computer_name ?? r.name;
  out.status = workspaceStatusOf(r.status);
  if (loginStatus !== undefined) out.login_status = loginStatus;
  if (out.created === null) out.created = new Date(r.createdAt).toISOString().replace(/\.\d{3}Z$/, '.000Z');
  return out;
}

/**
 * The guard of every project-scoped Huawei API (consoles here, lists in routes/lists.ts):
 * authenticate (and throttle) → path project syntax → project scope and role for `action` → the
 * resource id's syntax. `id` is '*' for a list.
 */
export function makeProjectGuard(ctx: ApiContext, authenticate: Authenticate) {
  return async function guard(req: FastifyRequest, projectId: string, kind: ResourceKind, id: string, action: Action) {
    // Recorded before authentication so that refused attempts show what they aimed at (ids from the path only).
    req.auditResource = { kind, id: id.slice(0, 128), projectId: PROJECT_ID_RE.test(projectId) ? projectId : null };
    const principal = await authenticate(req);
    // A malformed project id is a bad request (the service's 400), not another project's.
    if (!PROJECT_ID_RE.test(projectId)) throw new ApiError('bad_request', 'Invalid request parameter: project_id must be a project ID (32 lower-case hexadecimal characters).');
    const project = await ctx.iam.project(projectId);
    authorize(principal, projectId, project?.domainId, action);
    if (id !== '*' && !RESOURCE_ID_RE.test(id)) {
      // CloudDC and Workspace document 400 for a malformed request (seeds 001, 003, 004); ECS documents no 400 for its id: it cannot be found.
      if (kind === 'cloudserver') throw new ApiError('not_found', notFoundMessage(kind, id.slice(0, 64)));
      throw new ApiError('bad_request', kind === 'desktop' ? 'Invalid request parameter: desktop_id is not a desktop ID.'
        : 'A request parameter contains invalid or unsupported value: id');
    }
    return principal;
  };
}

export function registerConsoleRoutes(app: FastifyInstance, ctx: ApiContext, authenticate: Authenticate): void {
  const guard = makeProjectGuard(ctx, authenticate);

  app.post<{ Params: { project_id: string; server_id: string } }>('/v1/:project_id/cloudservers/:server_id/remote_console',
    { config: { service: 'ecs', action: 'ecs:cloudServers:vnc' } }, async (req, reply) => {
      const { project_id: projectId, server_id: serverId } = req.params;
      const principal = await guard(req, projectId, 'cloudserver', serverId, 'ecs:cloudServers:vnc');
      const body = jsonBody(req) as { remote_console?: { protocol?: unknown; type?: unknown } } | null;
      const rc = body && typeof body === 'object' ? body.remote_console : undefined;
      if (!rc || typeof rc !== 'object' || Array.isArray(rc)) throw new ApiError('bad_request', 'Invalid request body: remote_console is required.');
      if (rc.protocol !== 'vnc') throw new ApiError('bad_request', 'Invalid request body: remote_console.protocol must be vnc.');
      if (rc.type !== 'novnc') throw new ApiError('bad_request', 'Invalid request body: remote_console.type must be novnc.');
      const { url } = await ctx.consoles.mint(projectId, 'cloudserver', serverId, { userId: principal.userId });
      setNoStore(reply);
      return { remote_console: { type: 'novnc', protocol: 'vnc', url } };
    });

  app.get<{ Params: { project_id: string; id: string } }>('/v1/:project_id/physicalservers/:id/remote-console-address',
    { config: { service: 'clouddc', action: 'clouddc:physicalServers:console' }, exposeHeadRoute: false }, async (req, reply) => {
      const { project_id: projectId, id } = req.params;
      const principal = await guard(req, projectId, 'physicalserver', id, 'clouddc:physicalServers:console');
      const server = await ctx.store.inventory.getResource(projectId, 'physicalserver', id);
      if (!server) throw new ApiError('not_found', notFoundMessage('physicalserver', id));
      if (server.status !== 'ACTIVE' && server.status !== 'RUNNING') throw new ApiError('not_ready', `Physical servers state is not ready: [${id}]`);
      const { url } = await ctx.consoles.mint(projectId, 'physicalserver', id, { userId: principal.userId });
      setNoStore(reply);
      return { url };
    });

  app.get<{ Params: { project_id: string; desktop_id: string } }>('/v2/:project_id/desktops/:desktop_id/remote-consoles',
    { config: { service: 'workspace', action: 'workspace:desktops:createConsole' }, exposeHeadRoute: false }, async (req, reply) => {
      const { project_id: projectId, desktop_id: id } = req.params;
      const principal = await guard(req, projectId, 'desktop', id, 'workspace:desktops:createConsole');
      const { url } = await ctx.consoles.mint(projectId, 'desktop', id, { userId: principal.userId });
      setNoStore(reply);
      return { type: 'novnc', url, protocol: 'vnc' };
    });

  app.get<{ Params: { project_id: string; desktop_id: string } }>('/v2/:project_id/desktops/:desktop_id',
    { config: { service: 'workspace', action: 'workspace:desktops:get' } }, async (req) => {
      const { project_id: projectId, desktop_id: id } = req.params;
      await guard(req, projectId, 'desktop', id, 'workspace:desktops:get');
      const desktop = await ctx.store.inventory.getResource(projectId, 'desktop', id);
      if (!desktop) throw new ApiError('not_found', notFoundMessage('desktop', id));
      const [probe, activity] = await Promise.all([ctx.store.probes.get(id), ctx.store.sessions.activity([id])]);
      return { desktop: desktopDetail(desktop, loginStatusOf(desktop, probe, activity.get(id), (ctx.clock ?? systemClock).now())) };
    });
}
