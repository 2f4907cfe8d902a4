/**
 * Admin API, operations part (domain administrators over the projects they manage):
 *  - GET (?project_id=&name=&status=), POST  /admin/v1/{cloudservers|physicalservers|desktops}
 *        POST {cloudserver|physicalserver|desktop: {project_id, name, id?, status?, attributes?, console?}}
 *  - GET, PATCH, DELETE                      /admin/v1/{kind}s/{id}       PATCH merges attributes (null removes a key)
 *  - POST /admin/v1/desktops/{id}/users {user_name, user_group?}; DELETE /admin/v1/desktops/{id}/users/{user_name}
 *  - GET, PUT, DELETE /admin/v1/endpoints/{resource_id}   PUT {endpoint:{url, security, password?, zone?, ca_cert?, client_cert?, client_key?}}
 *  - GET /admin/v1/console-tokens?resource_id=            outstanding tokens: id = a 12-hex prefix of the token's SHA-256, never the token
 *  - DELETE /admin/v1/console-tokens/{token_id}; DELETE /admin/v1/console-tokens?resource_id=  revoke one / all of a machine
 *  - GET /admin/v1/sessions?resource_id=&all=true&limit=  live sessions (all=true: ended ones too), node, user, bytes, since;
 *        with resource_id only the sessions of the machine as it is now (none of an earlier one with the same id)
 *  - DELETE /admin/v1/sessions/{session_id}               kill: close code 4006 killed, on the node holding it
 *  - POST /admin/v1/fleet {fleet: "<yaml>", source?, dry_run?, prune?}   transactional apply; the diff either way
 *  - GET /admin/v1/keys; POST /admin/v1/keys/rotate       master-key status and rotation (operators)
 * Changing or deleting a machine or its endpoint revokes its outstanding console tokens and, with
 * `console.end_sessions_on_change`, ends its live sessions (4007 revoked). Secrets are never returned:
 * an endpoint shows `has_password` / `has_client_key`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.js';
import { CloseCode, CloseReason } from '../../close-codes.js';
import { systemClock } from '../../domain/clock.js';
import { vncUrl } from '../../domain/endpoint-spec.js';
import { endpointOptionsView } from '../../domain/endpoint-options.js';
import { FleetError, parseFleet } from '../../domain/fleet.js';
import { executeFleetPlan, planFleet, resolveFleetDomain } from '../../domain/fleet-plan.js';
import { TOKEN_ID_LENGTH } from '../../domain/inventory.js';
import { keyStatus, rotateKeys } from '../../domain/key-rotation.js';
import { loginStatusOf, probeStateOf, reachabilityOf, serverStatusOf } from '../../domain/liveness.js';
import type { ConsoleSessionRecord, ConsoleTokenRecord, ProbeRecord, ProjectRecord, ResourceKind, ResourceRecord, SessionActivity } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import type { Principal } from '../../domain/authz.js';
import { jsonBody } from '../http.js';
import type { makeAuthenticate } from '../auth.js';
import { adminServices, queryString, wrapped } from './admin-directory.js';
import { byCreation } from './lists.js';

type Authenticate = ReturnType<typeof makeAuthenticate>;
type Json = Record<string, unknown>;

const KINDS: readonly ResourceKind[] = ['cloudserver', 'physicalserver', 'desktop'];
/** Largest fleet file the apply endpoint takes. */
export const FLEET_BODY_LIMIT = 4 * 1024 * 1024;
const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function endpointView(r: ResourceRecord, defaultZone: string): Json | null {
  const e = r.endpoint;
  if (!e) return null;
  const out: Json = {
    url: vncUrl(e.host, e.port), security: e.security, zone: e.zone ?? defaultZone, has_password: e.passwordSealed !== null, generation: r.endpointGeneration,
  };
  if (e.security === 'vencrypt') {
    out.ca_cert = e.tlsCa ?? null;
    out.client_cert = e.tlsCert ?? null;
    out.has_client_key = (e.tlsKeySealed ?? null) !== null;
  }
  Object.assign(out, endpointOptionsView(e.options));
  return out;
}

/**
 * The machine's live status. `state` (up, down, auth_failed, refused, unknown) is what the console
 * can do; `failure` says why not (a stable code); `reason` is the VNC server's own text for
 * auth_failed/refused (e.g. "Too many security failures"), or the gateway's for no_security_type/tls.
 * `failure` and `reason` are shown to gateway operators only: to a tenant they would tell open from
 * closed from filtered ports of whatever host an endpoint names (security review #10).
 */
export function liveView(r: ResourceRecord, probe: ProbeRecord | undefined, activity: SessionActivity | undefined, now: number, showFailure: boolean): Json {
  const reach = reachabilityOf(r, probe);
  const state = probeStateOf(r, probe);
  const out: Json = {
    reachability: reach, state, checked_at: reach === 'unknown' ? null : iso(probe?.checkedAt), since: reach === 'unknown' ? null : iso(probe?.changedAt),
    failure: !showFailure || state === 'unknown' || state === 'up' ? null : probe?.failure ?? null,
    reason: !showFailure || state === 'unknown' || state === 'up' ? null : probe?.reason ?? null,
    rfb_version: reach === 'up' ? probe?.rfbVersion ?? null : null,
    sessions_open: activity?.open ?? 0,
  };
  if (r.kind === 'desktop') out.login_status = loginStatusOf(r, probe, activity, now);
  else out.status = serverStatusOf(r, probe);
  return out;
}

function machineView(
  r: ResourceRecord, project: ProjectRecord | undefined, probe: ProbeRecord | undefined, activity: SessionActivity | undefined, now: number, defaultZone: string, showFailure: boolean,
): Json {
  return {
    id: r.id, type: r.kind, name: r.name, project_id: r.projectId, domain_id: project?.domainId ?? null, status: r.status, attributes: r.attributes,
    console: endpointView(r, defaultZone), live: liveView(r, probe, activity, now, showFailure), created_at: iso(r.createdAt), updated_at: iso(r.updatedAt),
  };
}

export const tokenView = (t: ConsoleTokenRecord): Json => ({
  id: t.tokenHash.slice(0, TOKEN_ID_LENGTH), resource_id: t.resourceId, resource_type: t.resourceKind, project_id: t.projectId, purpose: t.purpose,
  user_id: t.userId, zone: t.zone, view_only: t.viewOnly, created_at: iso(t.createdAt), expires_at: iso(t.expiresAt),
});

export function registerAdminInventoryRoutes(app: FastifyInstance, ctx: ApiContext, authenticate: Authenticate): void {
  const svc = () => adminServices(ctx);
  const now = () => (ctx.clock ?? systemClock).now();
  const cfg = (action: string) => ({ config: { service: 'admin' as const, action } });
  const audit = (req: FastifyRequest, kind: string, id: string, projectId: string | null = null) => {
    req.auditResource = { kind, id: id.slice(0, 128), projectId };
  };
  const defaultZone = ctx.config.console.defaultZone;

  async function views(p: Principal, list: ResourceRecord[], projects: Map<string, ProjectRecord>): Promise<Json[]> {
    const showFailure = svc().access.isOperator(p);
    const ids = list.map((r) => r.id);
    const [probes, activity] = await Promise.all([ctx.store.probes.list(ids), ctx.store.sessions.activity(ids)]);
    const byId = new Map(probes.map((p) => [p.resourceId, p]));
    const t = now();
    return list.map((r) => machineView(r, projects.get(r.projectId), byId.get(r.id), activity.get(r.id), t, defaultZone, showFailure));
  }
  async function oneView(p: Principal, r: ResourceRecord, project: ProjectRecord | undefined): Promise<Json> {
    return (await views(p, [r], new Map(project ? [[project.id, project]] : [])))[0]!;
  }

  // Machines, one set of routes per kind.
  for (const kind of KINDS) {
    const plural = `${kind}s`;
    const base = `/admin/v1/${plural}`;
    app.get(base, cfg(`admin:${plural}:list`), async (req) => {
      const p = await authenticate(req);
      const { resources, projects } = await svc().inventory.list(p, kind, queryString(req, 'project_id'));
      const name = queryString(req, 'name');
      const status = queryString(req, 'status');
      const list = resources.sort(byCreation).filter((r) => (name === undefined || r.name.toLowerCase().includes(name.toLowerCase())) && (status === undefined || r.status === status));
      return { [plural]: await views(p, list, projects), count: list.length };
    });
    app.post(base, cfg(`admin:${plural}:create`), async (req, reply) => {
      const p = await authenticate(req);
      const b = wrapped(req, kind);
      const r = await svc().inventory.create(p, kind, { projectId: b.project_id, name: b.name, id: b.id, status: b.status, attributes: b.attributes, console: b.console });
      audit(req, kind, r.id, r.projectId);
      return reply.code(201).send({ [kind]: await oneView(p, r, await ctx.store.identity.getProject(r.projectId)) });
    });
    app.get<{ Params: { id: string } }>(`${base}/:id`, cfg(`admin:${plural}:get`), async (req) => {
      audit(req, kind, req.params.id);
      const p = await authenticate(req);
      const { resource, project } = await svc().inventory.get(p, kind, req.params.id);
      return { [kind]: await oneView(p, resource, project) };
    });
    app.patch<{ Params: { id: string } }>(`${base}/:id`, cfg(`admin:${plural}:update`), async (req) => {
      audit(req, kind, req.params.id);
      const p = await authenticate(req);
      const b = wrapped(req, kind);
      for (const k of Object.keys(b)) if (!['name', 'status', 'attributes', 'console'].includes(k)) throw new ApiError('bad_request', `${kind}.${k} cannot be changed (name, status, attributes, console can).`);
      const { resource, changed } = await svc().inventory.update(p, kind, req.params.id, b);
      return { [kind]: await oneView(p, resource, await ctx.store.identity.getProject(resource.projectId)), changed };
    });
    app.delete<{ Params: { id: string } }>(`${base}/:id`, cfg(`admin:${plural}:delete`), async (req, reply) => {
      audit(req, kind, req.params.id);
      const p = await authenticate(req);
      await svc().inventory.delete(p, kind, req.params.id);
      return reply.code(204).send();
    });
  }

  // Desktop user assignment.
  app.post<{ Params: { id: string } }>('/admin/v1/desktops/:id/users', cfg('admin:desktops:assignUser'), async (req) => {
    audit(req, 'desktop', req.params.id);
    const p = await authenticate(req);
    const b = jsonBody(req);
    if (!isObj(b)) throw new ApiError('bad_request', 'Request body must be {"user_name": …, "user_group"?: …}.');
    const { resource, changed } = await svc().inventory.assignUser(p, req.params.id, b.user_name, b.user_group);
    return { desktop: await oneView(p, resource, await ctx.store.identity.getProject(resource.projectId)), changed };
  });
  app.delete<{ Params: { id: string; user_name: string } }>('/admin/v1/desktops/:id/users/:user_name', cfg('admin:desktops:unassignUser'), async (req) => {
    audit(req, 'desktop', req.params.id);
    const p = await authenticate(req);
    const { resource, changed } = await svc().inventory.unassignUser(p, req.params.id, req.params.user_name);
    return { desktop: await oneView(p, resource, await ctx.store.identity.getProject(resource.projectId)), changed };
  });

  // Console endpoints.
  const endpointOf = (r: ResourceRecord): Json => ({ resource_id: r.id, resource_type: r.kind, project_id: r.projectId, ...(endpointView(r, defaultZone) ?? {}) });
  app.get<{ Params: { resource_id: string } }>('/admin/v1/endpoints/:resource_id', cfg('admin:endpoints:get'), async (req) => {
    audit(req, 'endpoint', req.params.resource_id);
    const p = await authenticate(req);
    const { resource } = await svc().inventory.get(p, undefined, req.params.resource_id);
    if (!resource.endpoint) throw new ApiError('not_found', `Machine ${resource.id} has no console endpoint.`);
    return { endpoint: endpointOf(resource) };
  });
  app.put<{ Params: { resource_id: string } }>('/admin/v1/endpoints/:resource_id', cfg('admin:endpoints:set'), async (req) => {
    audit(req, 'endpoint', req.params.resource_id);
    const p = await authenticate(req);
    const b = wrapped(req, 'endpoint');
    const { resource, changed } = await svc().inventory.setEndpoint(p, req.params.resource_id, b);
    return { endpoint: endpointOf(resource), changed };
  });
  app.delete<{ Params: { resource_id: string } }>('/admin/v1/endpoints/:resource_id', cfg('admin:endpoints:delete'), async (req, reply) => {
    audit(req, 'endpoint', req.params.resource_id);
    const p = await authenticate(req);
    await svc().inventory.deleteEndpoint(p, req.params.resource_id);
    return reply.code(204).send();
  });

  // Outstanding console tokens.
  app.get('/admin/v1/console-tokens', cfg('admin:consoleTokens:list'), async (req) => {
    const p = await authenticate(req);
    const list = await svc().inventory.listTokens(p, queryString(req, 'resource_id'));
    return { console_tokens: list.map(tokenView), count: list.length };
  });
  app.delete('/admin/v1/console-tokens', cfg('admin:consoleTokens:revoke'), async (req) => {
    const p = await authenticate(req);
    const resourceId = queryString(req, 'resource_id');
    if (resourceId === undefined) throw new ApiError('bad_request', 'Query parameter resource_id is required (or DELETE /admin/v1/console-tokens/{token_id}).');
    audit(req, 'console_token', resourceId);
    return { revoked: await svc().inventory.revokeResourceTokens(p, resourceId) };
  });
  app.delete<{ Params: { token_id: string } }>('/admin/v1/console-tokens/:token_id', cfg('admin:consoleTokens:revoke'), async (req) => {
    audit(req, 'console_token', req.params.token_id);
    const p = await authenticate(req);
    const t = await svc().inventory.revokeToken(p, req.params.token_id);
    return { console_token: tokenView(t), revoked: 1 };
  });

  // Console sessions.
  async function sessionViews(list: ConsoleSessionRecord[]): Promise<Json[]> {
    const live = svc().liveBytes();
    const userNames = new Map<string, string>();
    for (const s of list) {
      if (s.userId !== null && !userNames.has(s.userId)) userNames.set(s.userId, (await ctx.store.identity.getUser(s.userId))?.name ?? '');
    }
    return list.map((s) => {
      const bytes = live.get(s.id);
      return {
        id: s.id, resource_id: s.resourceId, resource_type: s.resourceKind, project_id: s.projectId, user_id: s.userId,
        user_name: s.userId === null ? null : userNames.get(s.userId) || null, node_id: s.nodeId, source_ip: s.sourceIp, since: iso(s.startedAt),
        ended_at: iso(s.endedAt), bytes_to_client: bytes?.toClient ?? s.bytesToClient, bytes_to_backend: bytes?.toBackend ?? s.bytesToBackend,
        close_code: s.closeCode, close_reason: s.closeReason, live: s.endedAt === null,
      };
    });
  }
  app.get('/admin/v1/sessions', cfg('admin:sessions:list'), async (req) => {
    const p = await authenticate(req);
    const { access } = svc();
    access.require(p, 'admin:sessions:list');
    const resourceId = queryString(req, 'resource_id');
    const all = queryString(req, 'all');
    if (all !== undefined && all !== 'true' && all !== 'false') throw new ApiError('bad_request', 'Query parameter all must be true or false.');
    const limitRaw = queryString(req, 'limit');
    const limit = limitRaw === undefined ? 100 : /^\d{1,4}$/.test(limitRaw) && Number(limitRaw) >= 1 && Number(limitRaw) <= 1000 ? Number(limitRaw) : NaN;
    if (Number.isNaN(limit)) throw new ApiError('bad_request', 'Query parameter limit must be an integer from 1 to 1000.');
    let list: ConsoleSessionRecord[];
    if (resourceId !== undefined) {
      const { resource } = await access.resource(p, resourceId);
      // Only this machine's sessions: not those of an earlier machine with the same (name-derived) id.
      // Newest first, so dropping the older ones leaves exactly the right first `limit`.
      list = (await ctx.store.sessions.list({ resourceId: resource.id, limit, ...(all === 'true' ? {} : { open: true }) }))
        .filter((s) => s.projectId === resource.projectId && s.startedAt >= resource.createdAt);
    } else {
      const projects = await access.projects(p);
      list = await ctx.store.sessions.list({ projectIds: projects.map((x) => x.id), limit, ...(all === 'true' ? {} : { open: true }) });
    }
    return { sessions: await sessionViews(list), count: list.length };
  });
  app.delete<{ Params: { session_id: string } }>('/admin/v1/sessions/:session_id', cfg('admin:sessions:kill'), async (req) => {
    audit(req, 'console_session', req.params.session_id);
    const p = await authenticate(req);
    const { access, sessions } = svc();
    access.require(p, 'admin:sessions:kill');
    const id = req.params.session_id;
    const s = /^[0-9a-f-]{36}$/.test(id) ? await ctx.store.sessions.get(id) : undefined;
    const project = s && (await ctx.store.identity.getProject(s.projectId));
    if (!s || !project || !access.canManageProject(p, project)) throw new ApiError('not_found', `Could not find console session: ${id.slice(0, 64)}.`);
    req.auditResource = { kind: 'console_session', id: s.id, projectId: s.projectId };
    if (s.endedAt !== null) throw new ApiError('conflict', `Console session ${s.id} already ended (${s.closeReason ?? 'closed'}).`);
    const outcome = await sessions.endSession(s, CloseCode.KILLED, CloseReason.KILLED);
    if (outcome === 'elsewhere') throw new ApiError('conflict', `Console session ${s.id} is relayed by node ${s.nodeId}, which did not answer (down, or not reachable from this node); try again later.`);
    if (outcome === 'not_live') throw new ApiError('not_found', `Console session ${s.id} is not live on this node.`);
    return { session: (await sessionViews([s]))[0], outcome };
  });

  // Fleet files.
  app.post('/admin/v1/fleet', { ...cfg('admin:fleet:apply'), bodyLimit: FLEET_BODY_LIMIT }, async (req) => {
    const p = await authenticate(req);
    const { access } = svc();
    access.requireDomainScope(p, 'admin:fleet:apply');
    const b = jsonBody(req);
    if (!isObj(b) || typeof b.fleet !== 'string') throw new ApiError('bad_request', 'Request body must be {"fleet": "<YAML text>", "source"?, "dry_run"?, "prune"?}.');
    const source = typeof b.source === 'string' && /^[^\n]{1,200}$/.test(b.source) ? b.source : 'fleet';
    for (const f of ['dry_run', 'prune']) if (b[f] !== undefined && typeof b[f] !== 'boolean') throw new ApiError('bad_request', `${f} must be true or false.`);
    const dryRun = b.dry_run === true;
    const prune = b.prune === true;
    try {
      const spec = parseFleet(b.fleet, source);
      // The same rules as the one-object APIs (security review #1): a domain administrator applies files
      // about their own domain only; creating or renaming a domain needs an operator. Checked against
      // every stored domain an entry matches (by name and by id) before planning, so a refused file
      // learns nothing about other domains, and again over every change of the plan.
      const operator = access.isOperator(p);
      const forbidden = (d: string, why: string) => new ApiError('forbidden', `The fleet file names domain ${d}, ${why}.`);
      for (const d of spec.domains) {
        const { byName, match } = await resolveFleetDomain(ctx.store, d);
        for (const x of [byName, match]) if (x && !access.canManageDomain(p, x.id)) throw forbidden(d.name, 'which you do not administer');
        if (!match && !operator) throw forbidden(d.name, 'which you do not administer (creating domains needs an operator)');
        if (match && match.name !== d.name && !operator) throw forbidden(d.name, `which would rename domain ${match.name} (renaming domains needs an operator)`);
      }
      const planned = await planFleet(ctx.store, svc().secrets, spec, {
        prune, protectUserId: p.userId, backends: svc().backends, ...(operator ? { operatorDomainNames: access.operatorDomainNames } : {}),
      });
      for (const c of planned.plan.changes) {
        if (!access.canManageDomain(p, c.domainId) || (c.type === 'domain' && !operator)) throw forbidden(c.name.split('/')[0] ?? c.name, 'which you do not administer');
      }
      if (!dryRun) {
        await executeFleetPlan(ctx.store, planned, now());
        await svc().resourcesChanged(planned.plan.revoked);
        await svc().usersChanged(planned.plan.users);
      }
      const count = (a: string) => planned.plan.changes.filter((c) => c.action === a).length;
      return {
        dry_run: dryRun, prune,
        changes: planned.plan.changes.map((c) => ({ action: c.action, type: c.type, id: c.id, name: c.name, ...(c.fields ? { fields: c.fields } : {}) })),
        summary: { create: count('create'), update: count('update'), delete: count('delete'), unchanged: planned.plan.unchanged },
      };
    } catch (err) {
      if (err instanceof FleetError) throw new ApiError('bad_request', err.message);
      throw err;
    }
  });

  // Master keys.
  app.get('/admin/v1/keys', cfg('admin:keys:status'), async (req) => {
    const p = await authenticate(req);
    svc().access.requireOperator(p, 'admin:keys:status');
    const s = await keyStatus(ctx.store, svc().secrets);
    return { current_key_id: s.currentKeyId, sealed_values: s.byKey, total: s.total, stale: s.stale, unbound: s.unbound };
  });
  app.post('/admin/v1/keys/rotate', cfg('admin:keys:rotate'), async (req) => {
    const p = await authenticate(req);
    svc().access.requireOperator(p, 'admin:keys:rotate');
    const r = await rotateKeys(ctx.store, svc().secrets);
    const s = await keyStatus(ctx.store, svc().secrets);
    return {
      resealed: r.resealed, already_current: r.current, raced: r.raced, failed: r.failed,
      current_key_id: s.currentKeyId, sealed_values: s.byKey, stale: s.stale, unbound: s.unbound,
    };
  });
}
