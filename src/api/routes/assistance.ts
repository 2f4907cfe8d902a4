/**
 * Remote assistance over HTTP (domain/assistance.ts does the work):
 *
 * Workspace API, `/v2/{project_id}/desktops/{desktop_id}/remote-assistance` — the guard of the other
 * project-scoped APIs (authenticate + throttle → project → action → desktop), Workspace error bodies:
 * - `POST` CreateRemoteAssistance (no body) → 200 `{share_space_id, status, desktop_id, initiator_type}`
 * - `GET` ShowDesktopRemoteAssistanceInfo → 200 with exactly the seed's nine fields (reference E.6)
 * - `DELETE` CancelRemoteAssistance → 204
 * - `POST …/remote-assistance/actions` `{"action": "accept"|"decline"|"close"}`: the desktop user's answer → 200 (GET's body)
 * Who may (security #7): create needs the right to open the desktop's console (operator or admin in
 * the project, or domain administrator), whoever asks: being assigned to the desktop decides only the
 * initiator type (the assigned user's request is ENDUSER_INITIATE, anyone else's ADMIN_INITIATE). Show
 * and cancel need that right or being an assigned user; only assigned users answer. The join password
 * (`share_space_passwd`, in GET and in the answer's body) goes only to callers who may open the console
 * themselves, and only while the space is active: anyone else (an assigned viewer) gets "" — a
 * password is a way onto the screen, so it never reaches someone the screen is otherwise closed to.
 *
 * Browser endpoints (no IAM credentials; errors `{error_code: "PH.0xxx", error_msg, request_id}`):
 * - `GET /assist/join` (+ its files): the join page, strict CSP
 * - `POST /assist/v1/join` `{code, password, name}` → `{console_url, share_space_id}` (locked out after
 *   wrong attempts: 401 PH.0401, then 429 PH.0429 with Retry-After). No credentials needed; IAM
 *   credentials when sent (X-Auth-Token or AK/SK) are checked and identify the helper: 403 PH.0403
 *   for the desktop's own side (domain/assistance.ts, "Who may join")
 * - `GET /assist/v1/page`, `POST /assist/v1/page/actions`: the console page's channel, authenticated
 *   by its page key (`X-Porthole-Page-Key`, domain/assist-page-key.ts)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.js';
import { mayOperate, type Action } from '../../domain/authz.js';
import { isAssignedUser, type Actor, type AssistAction } from '../../domain/assistance.js';
import { notFoundMessage } from '../../domain/consoles.js';
import { PAGE_KEY_HEADER } from '../../domain/assist-page-key.js';
import { CONSOLE_SECURITY_HEADERS, JOIN_CSP } from '../../web/assets.js';
import type { ApiContext } from '../context.js';
import type { makeAuthenticate } from '../auth.js';
import { jsonBody, setNoStore } from '../http.js';
import { makeProjectGuard } from './consoles.js';

type Authenticate = ReturnType<typeof makeAuthenticate>;
type DesktopParams = { Params: { project_id: string; desktop_id: string } };

const RESPONSES: readonly AssistAction[] = ['accept', 'decline', 'close'];
const JOIN_FILE_RE = /^[a-z]+\.(?:js|css|svg|js\.map|css\.map)$/;

function actorOf(req: FastifyRequest, user: { userId: string | null; userName: string | null }): Actor {
  return { ...user, sourceIp: req.ip, userAgent: String(req.headers['user-agent'] ?? '').slice(0, 256) || null, requestId: req.id };
}

/** A JSON body for the browser endpoints, with their error codes. */
function browserJson(req: FastifyRequest): Record<string, unknown> {
  let body: unknown;
  try {
    body = jsonBody(req);
  } catch (err) {
    if (err instanceof ApiError) throw new ApiError('bad_request', err.message, { code: 'PH.0400' });
    throw err;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('bad_request', 'The body must be a JSON object.', { code: 'PH.0400' });
  return body as Record<string, unknown>;
}

/** Does the request carry IAM credentials (a token or an AK/SK signature)? */
function hasCredentials(req: FastifyRequest): boolean {
  const token = req.headers['x-auth-token'];
  const authz = req.headers.authorization;
  return (typeof token === 'string' && token !== '') || (typeof authz === 'string' && authz !== '');
}

function pageKeyOf(req: FastifyRequest): string | undefined {
  const v = req.headers[PAGE_KEY_HEADER];
  return typeof v === 'string' ? v : undefined;
}

export function registerAssistanceRoutes(app: FastifyInstance, ctx: ApiContext, authenticate: Authenticate): void {
  const svc = ctx.assistance;
  if (!svc) return;
  const guard = makeProjectGuard(ctx, authenticate);
  const base = '/v2/:project_id/desktops/:desktop_id/remote-assistance';

  /** The guard, then the desktop, then who may: the assigned user, or (unless `userOnly`) an operator. */
  async function authorized(req: FastifyRequest<DesktopParams>, action: Action, userOnly = false) {
    const { project_id: projectId, desktop_id: desktopId } = req.params;
    const principal = await guard(req, projectId, 'desktop', desktopId, action);
    const desktop = await ctx.store.inventory.getResource(projectId, 'desktop', desktopId);
    if (!desktop) throw new ApiError('not_found', notFoundMessage('desktop', desktopId));
    const assigned = isAssignedUser(desktop.attributes, principal.userName);
    const mayOpenConsole = mayOperate(principal, projectId);
    if (!assigned && (userOnly || !mayOpenConsole)) {
      const need = userOnly ? 'only the desktop\'s assigned user may' : 'it needs the operator role in the project, or to be the desktop\'s assigned user';
      throw new ApiError('forbidden', `The IAM user is not authorized to perform ${action} on this desktop: ${need}.`, { code: 'APIGW.0302' });
    }
    return { desktop, assigned, mayOpenConsole, actor: actorOf(req, { userId: principal.userId, userName: principal.userName }) };
  }

  app.post<DesktopParams>(base, { config: { service: 'workspace', action: 'workspace:desktops:createRemoteAssistance' } }, async (req, reply) => {
    const { desktop, assigned, actor } = await authorized(req, 'workspace:desktops:createRemoteAssistance');
    const created = await svc.create(desktop, assigned ? 'ENDUSER_INITIATE' : 'ADMIN_INITIATE', actor);
    setNoStore(reply);
    return created;
  });

  app.get<DesktopParams>(base, { config: { service: 'workspace', action: 'workspace:desktops:getRemoteAssistance' } }, async (req, reply) => {
    const { desktop, mayOpenConsole } = await authorized(req, 'workspace:desktops:getRemoteAssistance');
    const space = await svc.current(desktop.id);
    if (!space) throw new ApiError('not_found', `The desktop ${desktop.id} has no remote assistance.`);
    setNoStore(reply);
    return svc.view(space, { password: mayOpenConsole });
  });

  app.delete<DesktopParams>(base, { config: { service: 'workspace', action: 'workspace:desktops:cancelRemoteAssistance' } }, async (req, reply) => {
    const { desktop, actor } = await authorized(req, 'workspace:desktops:cancelRemoteAssistance');
    await svc.cancel(desktop.id, actor);
    return reply.code(204).send();
  });

  app.post<DesktopParams>(`${base}/actions`, { config: { service: 'workspace', action: 'workspace:desktops:respondRemoteAssistance' } }, async (req, reply) => {
    const { desktop, actor, mayOpenConsole } = await authorized(req, 'workspace:desktops:respondRemoteAssistance', true);
    const body = jsonBody(req) as { action?: unknown } | null;
    const action = body && typeof body === 'object' ? body.action : undefined;
    if (typeof action !== 'string' || !(RESPONSES as readonly string[]).includes(action)) {
      throw new ApiError('bad_request', `Invalid request body: action must be one of ${RESPONSES.join(', ')}.`);
    }
    const space = await svc.respond(desktop.id, action as AssistAction, actor);
    setNoStore(reply);
    return svc.view(space, { password: mayOpenConsole });
  });

  // --- The join page and the console pages' channel -------------------------------------------

  const sendJoinFile = (reply: FastifyReply, name: string, req: FastifyRequest) => {
    const assets = ctx.web.join;
    if (!assets) throw new ApiError('unavailable', 'The join page is not built (npm run build).', { code: 'PH.0503' });
    const asset = assets.get(name);
    if (!asset) throw new ApiError('route_not_found', 'No such file.', { code: 'PH.0404' });
    for (const [k, v] of Object.entries(CONSOLE_SECURITY_HEADERS)) reply.header(k, v);
    if (name.endsWith('.html')) {
      reply.header('content-security-policy', JOIN_CSP).header('cache-control', 'no-store');
      return reply.type(asset.contentType).send(asset.body);
    }
    reply.header('etag', asset.etag);
    if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.contentType).send(asset.body);
  };

  app.get('/assist/join', { config: { service: 'console' } }, async (req, reply) => sendJoinFile(reply, 'join.html', req));

  app.get<{ Params: { file: string } }>('/assist/:file', { config: { service: 'console' } }, async (req, reply) => {
    const { file } = req.params;
    if (!JOIN_FILE_RE.test(file) || file === 'join.html') throw new ApiError('route_not_found', 'No such file.', { code: 'PH.0404' });
    return sendJoinFile(reply, file, req);
  });

  app.post('/assist/v1/join', { config: { service: 'console' } }, async (req, reply) => {
    const body = browserJson(req);
    // Helpers need no credentials; a request that carries some is authenticated (a bad one is refused,
    // not taken as anonymous) and names the helper, whom the domain then checks (domain/assistance.ts).
    const signedIn = hasCredentials(req) ? await authenticate(req) : null;
    const joined = await svc.join({ code: body.code, password: body.password, name: body.name },
      actorOf(req, { userId: signedIn?.userId ?? null, userName: signedIn?.userName ?? null }),
      signedIn && { userId: signedIn.userId, userName: signedIn.userName, domainId: signedIn.domainId });
    setNoStore(reply);
    return { console_url: joined.consoleUrl, share_space_id: joined.shareSpaceId };
  });

  app.get('/assist/v1/page', { config: { service: 'console' } }, async (req, reply) => {
    const state = await svc.pageState(pageKeyOf(req));
    setNoStore(reply);
    return state;
  });

  app.post('/assist/v1/page/actions', { config: { service: 'console' } }, async (req, reply) => {
    const body = browserJson(req);
    const state = await svc.pageAction(pageKeyOf(req), body, { sourceIp: req.ip, userAgent: String(req.headers['user-agent'] ?? '').slice(0, 256) || null, requestId: req.id });
    setNoStore(reply);
    return state;
  });
}
