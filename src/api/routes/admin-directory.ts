/**
 * Admin API, directory part (domain administrators; operators for other domains — domain/directory.ts):
 *  - GET, POST                 /admin/v1/domains                        {domain:{name, id?, admin:{name, password}}}
 *  - GET, PATCH, DELETE        /admin/v1/domains/{domain_id}            PATCH {domain:{name}}; DELETE only when it has no projects
 *  - GET (?domain_id=), POST   /admin/v1/projects                       {project:{name, id?, domain_id?}}
 *  - GET, PATCH, DELETE        /admin/v1/projects/{project_id}          DELETE only when it has no machines
 *  - GET (?domain_id=), POST   /admin/v1/users                          {user:{name, password, domain_admin?, disabled?, domain_id?}}
 *  - GET, PATCH, DELETE        /admin/v1/users/{user_id}                PATCH {user:{name?, password?, domain_admin?, disabled?}}
 *  - PUT, DELETE               /admin/v1/users/{user_id}/roles/{project_id}   PUT {role: admin|operator|viewer}
 *  - GET (?user_id=), POST     /admin/v1/access-keys                    {access_key:{user_id, description?}} → 201 with the SK, once
 *  - GET, PATCH, DELETE        /admin/v1/access-keys/{access_key}       PATCH {access_key:{status?, description?}}
 * Creation answers 201, deletion 204. Errors `{error_code: "PH.04xx", error_msg, request_id}`. Passwords
 * and SKs never appear in a response except the SK in the creation answer.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.js';
import { MAX_DESCRIPTION_LENGTH } from '../../domain/access-keys.js';
import type { UserView } from '../../domain/directory.js';
import type { AccessKeyRecord, AccessKeyStatus, DomainRecord, ProjectRecord } from '../../store/types.js';
import type { AdminServices, ApiContext } from '../context.js';
import { jsonBody, setNoStore } from '../http.js';
import type { makeAuthenticate } from '../auth.js';

type Authenticate = ReturnType<typeof makeAuthenticate>;
type Json = Record<string, unknown>;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export const domainView = (d: DomainRecord): Json => ({ id: d.id, name: d.name, created_at: iso(d.createdAt) });
export const projectView = (p: ProjectRecord): Json => ({ id: p.id, name: p.name, domain_id: p.domainId, created_at: iso(p.createdAt) });
export const userView = ({ user: u, roles }: UserView): Json => ({
  id: u.id, name: u.name, domain_id: u.domainId, domain_admin: u.domainAdmin, disabled: u.disabled, created_at: iso(u.createdAt),
  roles: roles.map((r) => ({ project_id: r.projectId, role: r.role })),
});
export const accessKeyView = (k: AccessKeyRecord): Json => ({
  access_key: k.accessKey, user_id: k.userId, domain_id: k.domainId, status: k.status, description: k.description,
  created_at: iso(k.createdAt), last_used_at: iso(k.lastUsedAt),
});

/** The JSON body's `key` object (`{"project": {...}}`). */
export function wrapped(req: FastifyRequest, key: string): Json {
  const body = jsonBody(req);
  if (!isObj(body) || !isObj(body[key])) throw new ApiError('bad_request', `Request body must be {"${key}": {…}}.`);
  return body[key];
}

export function queryString(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > 128) throw new ApiError('bad_request', `Query parameter ${name} is invalid.`);
  return v;
}

export function adminServices(ctx: ApiContext): AdminServices {
  if (!ctx.admin) throw new ApiError('unavailable', 'The admin API is not enabled on this gateway.');
  return ctx.admin;
}

export function registerAdminDirectoryRoutes(app: FastifyInstance, ctx: ApiContext, authenticate: Authenticate): void {
  const dir = () => adminServices(ctx).directory;
  const cfg = (action: string) => ({ config: { service: 'admin' as const, action } });
  const audit = (req: FastifyRequest, kind: string, id: string, projectId: string | null = null) => {
    req.auditResource = { kind, id: id.slice(0, 128), projectId };
  };

  // Domains
  app.get('/admin/v1/domains', cfg('admin:domains:list'), async (req) => {
    const p = await authenticate(req);
    const list = await dir().listDomains(p);
    return { domains: list.map(domainView), count: list.length };
  });
  app.post('/admin/v1/domains', cfg('admin:domains:create'), async (req, reply) => {
    const p = await authenticate(req);
    const b = wrapped(req, 'domain');
    const admin = isObj(b.admin) ? b.admin : {};
    const { domain, admin: user } = await dir().createDomain(p, { name: b.name, id: b.id, admin: { name: admin.name, password: admin.password } });
    audit(req, 'domain', domain.id);
    return reply.code(201).send({ domain: { ...domainView(domain), admin: userView({ user, roles: [] }) } });
  });
  app.get<{ Params: { domain_id: string } }>('/admin/v1/domains/:domain_id', cfg('admin:domains:get'), async (req) => {
    audit(req, 'domain', req.params.domain_id);
    const p = await authenticate(req);
    return { domain: domainView(await dir().getDomain(p, req.params.domain_id)) };
  });
  app.patch<{ Params: { domain_id: string } }>('/admin/v1/domains/:domain_id', cfg('admin:domains:update'), async (req) => {
    audit(req, 'domain', req.params.domain_id);
    const p = await authenticate(req);
    const b = wrapped(req, 'domain');
    return { domain: domainView(await dir().renameDomain(p, req.params.domain_id, b.name)) };
  });
  app.delete<{ Params: { domain_id: string } }>('/admin/v1/domains/:domain_id', cfg('admin:domains:delete'), async (req, reply) => {
    audit(req, 'domain', req.params.domain_id);
    const p = await authenticate(req);
    await dir().deleteDomain(p, req.params.domain_id);
    return reply.code(204).send();
  });

  // Projects
  app.get('/admin/v1/projects', cfg('admin:projects:list'), async (req) => {
    const p = await authenticate(req);
    const list = await dir().listProjects(p, queryString(req, 'domain_id'));
    return { projects: list.map(projectView), count: list.length };
  });
  app.post('/admin/v1/projects', cfg('admin:projects:create'), async (req, reply) => {
    const p = await authenticate(req);
    const b = wrapped(req, 'project');
    const rec = await dir().createProject(p, { name: b.name, id: b.id, domainId: b.domain_id });
    audit(req, 'project', rec.id, rec.id);
    return reply.code(201).send({ project: projectView(rec) });
  });
  app.get<{ Params: { project_id: string } }>('/admin/v1/projects/:project_id', cfg('admin:projects:get'), async (req) => {
    audit(req, 'project', req.params.project_id);
    const p = await authenticate(req);
    return { project: projectView(await dir().getProject(p, req.params.project_id)) };
  });
  app.patch<{ Params: { project_id: string } }>('/admin/v1/projects/:project_id', cfg('admin:projects:update'), async (req) => {
    audit(req, 'project', req.params.project_id);
    const p = await authenticate(req);
    const b = wrapped(req, 'project');
    return { project: projectView(await dir().renameProject(p, req.params.project_id, b.name)) };
  });
  app.delete<{ Params: { project_id: string } }>('/admin/v1/projects/:project_id', cfg('admin:projects:delete'), async (req, reply) => {
    audit(req, 'project', req.params.project_id);
    const p = await authenticate(req);
    await dir().deleteProject(p, req.params.project_id);
    return reply.code(204).send();
  });

  // Users and role bindings
  app.get('/admin/v1/users', cfg('admin:users:list'), async (req) => {
    const p = await authenticate(req);
    const list = await dir().listUsers(p, queryString(req, 'domain_id'));
    return { users: list.map(userView), count: list.length };
  });
  app.post('/admin/v1/users', cfg('admin:users:create'), async (req, reply) => {
    const p = await authenticate(req);
    const b = wrapped(req, 'user');
    const v = await dir().createUser(p, { name: b.name, password: b.password, domainAdmin: b.domain_admin, disabled: b.disabled, domainId: b.domain_id, id: b.id });
    audit(req, 'user', v.user.id);
    setNoStore(reply);
    return reply.code(201).send({ user: userView(v) });
  });
  app.get<{ Params: { user_id: string } }>('/admin/v1/users/:user_id', cfg('admin:users:get'), async (req) => {
    audit(req, 'user', req.params.user_id);
    const p = await authenticate(req);
    return { user: userView(await dir().getUser(p, req.params.user_id)) };
  });
  app.patch<{ Params: { user_id: string } }>('/admin/v1/users/:user_id', cfg('admin:users:update'), async (req) => {
    audit(req, 'user', req.params.user_id);
    const p = await authenticate(req);
    const b = wrapped(req, 'user');
    return { user: userView(await dir().updateUser(p, req.params.user_id, { name: b.name, password: b.password, domainAdmin: b.domain_admin, disabled: b.disabled })) };
  });
  app.delete<{ Params: { user_id: string } }>('/admin/v1/users/:user_id', cfg('admin:users:delete'), async (req, reply) => {
    audit(req, 'user', req.params.user_id);
    const p = await authenticate(req);
    await dir().deleteUser(p, req.params.user_id);
    return reply.code(204).send();
  });
  app.put<{ Params: { user_id: string; project_id: string } }>('/admin/v1/users/:user_id/roles/:project_id', cfg('admin:roles:set'), async (req) => {
    audit(req, 'user', req.params.user_id, req.params.project_id.slice(0, 64));
    const p = await authenticate(req);
    const body = jsonBody(req);
    if (!isObj(body)) throw new ApiError('bad_request', 'Request body must be {"role": "admin"|"operator"|"viewer"}.');
    return { user: userView(await dir().setRole(p, req.params.user_id, req.params.project_id, body.role)) };
  });
  app.delete<{ Params: { user_id: string; project_id: string } }>('/admin/v1/users/:user_id/roles/:project_id', cfg('admin:roles:remove'), async (req) => {
    audit(req, 'user', req.params.user_id, req.params.project_id.slice(0, 64));
    const p = await authenticate(req);
    return { user: userView(await dir().removeRole(p, req.params.user_id, req.params.project_id)) };
  });

  // Access keys (the IAM access-key service; here for domain administrators, over their domain's users)
  const keys = () => {
    if (!ctx.accessKeys) throw new ApiError('unavailable', 'Access keys are not enabled on this gateway.');
    return ctx.accessKeys;
  };
  // Domain-wide: other users' keys are never reachable with a project-scoped credential.
  const requireAdmin = (p: Awaited<ReturnType<Authenticate>>, action: string) => adminServices(ctx).access.requireDomainScope(p, action);
  const description = (v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.length > MAX_DESCRIPTION_LENGTH) throw new ApiError('bad_request', `access_key.description must be at most ${MAX_DESCRIPTION_LENGTH} characters.`);
    return v;
  };
  app.get('/admin/v1/access-keys', cfg('admin:accessKeys:list'), async (req) => {
    const p = await authenticate(req);
    requireAdmin(p, 'admin:accessKeys:list');
    const userId = queryString(req, 'user_id');
    const list = await keys().list(p, userId);
    return { access_keys: list.map(accessKeyView), count: list.length };
  });
  app.post('/admin/v1/access-keys', cfg('admin:accessKeys:create'), async (req, reply) => {
    const p = await authenticate(req);
    requireAdmin(p, 'admin:accessKeys:create');
    const b = wrapped(req, 'access_key');
    if (typeof b.user_id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(b.user_id)) throw new ApiError('bad_request', 'access_key.user_id is required.');
    const { record, secret } = await keys().create(p, b.user_id, description(b.description) ?? '');
    audit(req, 'access_key', record.accessKey);
    setNoStore(reply);
    return reply.code(201).send({ access_key: { ...accessKeyView(record), secret_key: secret } });
  });
  app.get<{ Params: { access_key: string } }>('/admin/v1/access-keys/:access_key', cfg('admin:accessKeys:get'), async (req) => {
    audit(req, 'access_key', req.params.access_key);
    const p = await authenticate(req);
    requireAdmin(p, 'admin:accessKeys:get');
    return { access_key: accessKeyView(await keys().get(p, req.params.access_key)) };
  });
  app.patch<{ Params: { access_key: string } }>('/admin/v1/access-keys/:access_key', cfg('admin:accessKeys:update'), async (req) => {
    audit(req, 'access_key', req.params.access_key);
    const p = await authenticate(req);
    requireAdmin(p, 'admin:accessKeys:update');
    const b = wrapped(req, 'access_key');
    const patch: { status?: AccessKeyStatus; description?: string } = {};
    if (b.status !== undefined) {
      if (b.status !== 'active' && b.status !== 'inactive') throw new ApiError('bad_request', 'access_key.status must be active or inactive.');
      patch.status = b.status;
    }
    const d = description(b.description);
    if (d !== undefined) patch.description = d;
    return { access_key: accessKeyView(await keys().update(p, req.params.access_key, patch)) };
  });
  app.delete<{ Params: { access_key: string } }>('/admin/v1/access-keys/:access_key', cfg('admin:accessKeys:delete'), async (req, reply) => {
    audit(req, 'access_key', req.params.access_key);
    const p = await authenticate(req);
    requireAdmin(p, 'admin:accessKeys:delete');
    await keys().delete(p, req.params.access_key);
    return reply.code(204).send();
  });
}
