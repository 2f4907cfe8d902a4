/**
 * Huawei-shaped list and detail APIs over the stored machines, with live status (domain/liveness.ts):
 *  - ECS       GET /v1/{project_id}/cloudservers/detail   ListServersDetails → {count, servers:[ServerDetail]}
 *              ?limit (1–1000, default 25) &offset (page number from 1; 0 = 1) &name (substring) &status &flavor &ip
 *  - ECS       GET /v1/{project_id}/cloudservers/{id}     ShowServer → {server: ServerDetail}
 *  - CloudDC   GET /v1/{project_id}/physicalservers       ListServers → {servers:[PhysicalServer], page_info, count}
 *              ?manage_state &marker (id of the previous page's last server) &limit (10–1000; less or unset = 10)
 *  - Workspace GET /v2/{project_id}/desktops              ListDesktops → {total_count, desktops:[SimpleDesktopInfo]}
 *              ?user_name &computer_name &desktop_ip &desktop_type &subnet_id &enterprise_project_id &pool_id &offset (from 0) &limit (0–1000, default 1000)
 *  - Workspace GET /v2/{project_id}/desktops/detail       ListDesktopsDetail → {desktops:[DesktopDetailInfo], total_count}
 *              ?status &user_name &user_id &computer_name &desktop_ip &desktop_id (repeatable) &desktop_type &in_maintenance_mode
 *              &is_support_internet &availability_zone &subnet_id &enterprise_project_id &user_attached &tag (k=v,…) &without_any_tag
 *              &sort_field (created|computer_name) &sort_type (ASC|DESC) &offset (from 0) &limit (0–500, default 500)
 * Field and parameter names follow the GO SDK models (model_server_detail.go, model_list_servers_details_request.go,
 * clouddc model_physical_server.go / model_list_servers_request.go, workspace model_list_desktops_request.go,
 * model_simple_desktop_info.go, model_list_desktops_detail_request.go). Only fields Porthole can fill truthfully
 * are returned: its own (id, name, status, times, project) and the attributes the operator stored.
 * Same guard (authentication, project scope, role, throttling) as the console APIs; viewers may list.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import { systemClock } from '../../domain/clock.js';
import {
  loginStatusOf, physicalHealthOf, physicalPowerStateOf, serverPowerStateOf, serverStatusOf, serverVmStateOf,
} from '../../domain/liveness.js';
import { notFoundMessage } from '../../domain/consoles.js';
import type { ProbeRecord, ResourceKind, ResourceRecord, SessionActivity } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import type { makeAuthenticate } from '../auth.js';
import { desktopDetail, makeProjectGuard } from './consoles.js';

type Authenticate = ReturnType<typeof makeAuthenticate>;
type Json = Record<string, unknown>;

/** ServerDetail fields an operator may store as attributes of a cloud server (they pass through as given). */
export const SERVER_DETAIL_FIELDS = [
  'hostId', 'OS-EXT-SRV-ATTR:host', 'addresses', 'key_name', 'image', 'OS-EXT-STS:task_state', 'OS-EXT-SRV-ATTR:instance_name',
  'OS-EXT-SRV-ATTR:hypervisor_hostname', 'flavor', 'security_groups', 'OS-EXT-AZ:availability_zone', 'user_id', 'OS-DCF:diskConfig',
  'accessIPv4', 'accessIPv6', 'progress', 'config_drive', 'metadata', 'OS-SRV-USG:launched_at', 'os-extended-volumes:volumes_attached',
  'description', 'host_status', 'OS-EXT-SRV-ATTR:hostname', 'locked', 'tags', 'enterprise_project_id', 'sys_tags', 'auto_terminate_time',
  'os:scheduler_hints', 'OS-EXT-SRV-ATTR:root_device_name',
] as const;

/** CloudDC manage_state values (model_manage_state.go / model_list_servers_request.go). */
const MANAGE_STATES = ['delivering', 'received', 'onboard', 'ready', 'in-use', 'frozen', 'offboarding'];

/** Huawei time without milliseconds: 2019-05-22T03:30:52Z. */
const hwTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const contains = (hay: unknown, needle: string) => typeof hay === 'string' && hay.toLowerCase().includes(needle.toLowerCase());

/** Query parameters with each service's 400. */
class Query {
  constructor(private readonly q: Record<string, unknown>) {}
  str(name: string): string | undefined {
    const v = this.q[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.length > 256) throw new ApiError('bad_request', `Query parameter ${name} is invalid.`);
    return v;
  }
  list(name: string): string[] | undefined {
    const v = this.q[name];
    if (v === undefined) return undefined;
    const arr = Array.isArray(v) ? v : [v];
    if (arr.length > 100 || !arr.every((x) => typeof x === 'string' && x.length <= 256)) throw new ApiError('bad_request', `Query parameter ${name} is invalid.`);
    return (arr as string[]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
  }
  int(name: string, min: number, max: number): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const n = /^\d{1,10}$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new ApiError('bad_request', `Query parameter ${name} must be an integer from ${min} to ${max}.`);
    return n;
  }
  bool(name: string): boolean | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false') throw new ApiError('bad_request', `Query parameter ${name} must be true or false.`);
    return v === 'true';
  }
}

/** Oldest first; machines created together (one fleet apply) by name, so pages are stable. */
export const byCreation = (a: ResourceRecord, b: ResourceRecord) => a.createdAt - b.createdAt || a.name.localeCompare(b.name) || a.id.localeCompare(b.id);

function ipsOf(r: ResourceRecord): string[] {
  const a = r.attributes;
  const ips: string[] = [];
  if (Array.isArray(a.ip_addresses)) for (const x of a.ip_addresses) if (typeof x === 'string') ips.push(x);
  for (const k of ['ipv4', 'ipv6', 'accessIPv4', 'accessIPv6']) if (typeof a[k] === 'string' && a[k]) ips.push(a[k] as string);
  if (isObj(a.addresses)) for (const list of Object.values(a.addresses)) if (Array.isArray(list)) for (const x of list) if (isObj(x) && typeof x.addr === 'string') ips.push(x.addr);
  return ips;
}

/** ECS ServerDetail of a stored cloud server. */
export function serverDetail(r: ResourceRecord, probe: ProbeRecord | undefined): Json {
  const out: Json = {};
  for (const k of SERVER_DETAIL_FIELDS) if (Object.prototype.hasOwnProperty.call(r.attributes, k)) out[k] = r.attributes[k];
  // A flavor stored as its id (fleet shorthand) becomes the ServerFlavor object.
  if (typeof out.flavor === 'string') out.flavor = { id: out.flavor, name: out.flavor };
  const status = serverStatusOf(r, probe);
  Object.assign(out, {
    id: r.id, name: r.name, status, tenant_id: r.projectId, created: hwTime(r.createdAt), updated: hwTime(r.updatedAt),
    'OS-EXT-STS:vm_state': serverVmStateOf(status), 'OS-EXT-STS:power_state': serverPowerStateOf(r, probe),
  });
  out.addresses ??= {};
  out.metadata ??= {};
  return out;
}

/** CloudDC PhysicalServer of a stored physical server. */
export function physicalServer(r: ResourceRecord, domainId: string, probe: ProbeRecord | undefined): Json {
  const a = r.attributes;
  const out: Json = {
    id: r.id, name: r.name, project_id: r.projectId, domain_id: domainId,
    manage_state: typeof a.manage_state === 'string' && MANAGE_STATES.includes(a.manage_state) ? a.manage_state : 'in-use',
  };
  const power = physicalPowerStateOf(r, probe);
  if (power) out.power_state = power;
  out.health_state = physicalHealthOf(r, probe);
  out.onboard_time = typeof a.onboard_time === 'string' ? a.onboard_time : hwTime(r.createdAt);
  out.location = isObj(a.location) ? a.location : {};
  out.hardware_attributes = isObj(a.hardware_attributes) ? a.hardware_attributes : {};
  if (Array.isArray(a.tags)) out.tags = a.tags;
  return out;
}

function simpleDesktop(r: ResourceRecord): Json {
  const a = r.attributes;
  const out: Json = { desktop_id: r.id, computer_name: typeof a.computer_name === 'string' ? a.computer_name : r.name };
  out.created = typeof a.created === 'string' ? a.created : new Date(r.createdAt).toISOString().replace(/\.\d{3}Z$/, '.000Z');
  const ip = ipsOf(r)[0];
  if (ip !== undefined) out.ip_address = ip;
  for (const k of ['user_name', 'user_group', 'sid', 'ou_name']) if (typeof a[k] === 'string') out[k] = a[k];
  return out;
}

function usersOf(r: ResourceRecord): { names: string[]; ids: string[] } {
  const a = r.attributes;
  const names = new Set<string>();
  const ids = new Set<string>();
  if (typeof a.user_name === 'string') names.add(a.user_name);
  if (Array.isArray(a.user_list)) for (const x of a.user_list) if (typeof x === 'string') names.add(x);
  if (Array.isArray(a.attach_user_infos)) {
    for (const x of a.attach_user_infos) {
      if (!isObj(x)) continue;
      if (typeof x.user_name === 'string') names.add(x.user_name);
      if (typeof x.user_id === 'string') ids.add(x.user_id);
    }
  }
  return { names: [...names], ids: [...ids] };
}

function tagsOf(r: ResourceRecord): Map<string, string> {
  const out = new Map<string, string>();
  if (Array.isArray(r.attributes.tags)) for (const t of r.attributes.tags) if (isObj(t) && typeof t.key === 'string') out.set(t.key, typeof t.value === 'string' ? t.value : '');
  return out;
}

export function registerListRoutes(app: FastifyInstance, ctx: ApiContext, authenticate: Authenticate): void {
  const guard = makeProjectGuard(ctx, authenticate);
  const now = () => (ctx.clock ?? systemClock).now();

  async function machines(projectId: string, kind: ResourceKind): Promise<{ list: ResourceRecord[]; probes: Map<string, ProbeRecord> }> {
    const list = (await ctx.store.inventory.listResources({ projectId, kind })).sort(byCreation);
    const probes = new Map((await ctx.store.probes.list(list.map((r) => r.id))).map((p) => [p.resourceId, p]));
    return { list, probes };
  }

  app.get<{ Params: { project_id: string } }>('/v1/:project_id/cloudservers/detail',
    { config: { service: 'ecs', action: 'ecs:cloudServers:list' } }, async (req) => {
      const projectId = req.params.project_id;
      await guard(req, projectId, 'cloudserver', '*', 'ecs:cloudServers:list');
      const q = new Query(req.query as Record<string, unknown>);
      const limit = q.int('limit', 1, 1000) ?? 25;
      const page = Math.max(1, q.int('offset', 0, 1_000_000) ?? 1);
      const name = q.str('name');
      const status = q.str('status');
      const flavor = q.str('flavor');
      const ip = q.str('ip');
      const { list, probes } = await machines(projectId, 'cloudserver');
      const servers = list.map((r) => serverDetail(r, probes.get(r.id))).filter((s) => {
        if (name !== undefined && !contains(s.name, name)) return false;
        if (status !== undefined && s.status !== status.toUpperCase()) return false;
        if (flavor !== undefined && (s.flavor as Json | undefined)?.id !== flavor) return false;
        if (ip !== undefined) {
          const r = list.find((x) => x.id === s.id)!;
          if (!ipsOf(r).some((x) => x.includes(ip))) return false;
        }
        return true;
      });
      return { count: servers.length, servers: servers.slice((page - 1) * limit, page * limit) };
    });

  app.get<{ Params: { project_id: string; server_id: string } }>('/v1/:project_id/cloudservers/:server_id',
    { config: { service: 'ecs', action: 'ecs:cloudServers:get' } }, async (req) => {
      const { project_id: projectId, server_id: id } = req.params;
      await guard(req, projectId, 'cloudserver', id, 'ecs:cloudServers:get');
      const r = await ctx.store.inventory.getResource(projectId, 'cloudserver', id);
      if (!r) throw new ApiError('not_found', notFoundMessage('cloudserver', id));
      return { server: serverDetail(r, await ctx.store.probes.get(id)) };
    });

  app.get<{ Params: { project_id: string } }>('/v1/:project_id/physicalservers',
    { config: { service: 'clouddc', action: 'clouddc:physicalServers:list' } }, async (req) => {
      const projectId = req.params.project_id;
      await guard(req, projectId, 'physicalserver', '*', 'clouddc:physicalServers:list');
      const q = new Query(req.query as Record<string, unknown>);
      const manageState = q.str('manage_state');
      if (manageState !== undefined && !MANAGE_STATES.includes(manageState)) throw new ApiError('bad_request', `A request parameter contains invalid or unsupported value: manage_state`);
      const marker = q.str('marker');
      // "When unset or below 10, 10; above 1000, 1000" (model_list_servers_request.go).
      const rawLimit = q.str('limit');
      let limit = 10;
      if (rawLimit !== undefined) {
        if (!/^-?\d{1,10}$/.test(rawLimit)) throw new ApiError('bad_request', 'A request parameter contains invalid or unsupported value: limit');
        limit = Math.min(1000, Math.max(10, Number(rawLimit)));
      }
      const project = await ctx.store.identity.getProject(projectId);
      const { list, probes } = await machines(projectId, 'physicalserver');
      const all = list.map((r) => physicalServer(r, project?.domainId ?? '', probes.get(r.id))).filter((s) => manageState === undefined || s.manage_state === manageState);
      let start = 0;
      if (marker !== undefined) {
        const i = all.findIndex((s) => s.id === marker);
        if (i < 0) throw new ApiError('bad_request', 'A request parameter contains invalid or unsupported value: marker');
        start = i + 1;
      }
      const servers = all.slice(start, start + limit);
      const pageInfo: Json = { current_count: servers.length };
      if (start + limit < all.length) pageInfo.next_marker = servers[servers.length - 1]!.id;
      const prevStart = start - limit;
      if (prevStart > 0) pageInfo.previous_marker = all[prevStart - 1]!.id;
      return { servers, page_info: pageInfo, count: all.length };
    });

  async function desktops(projectId: string): Promise<{ list: ResourceRecord[]; probes: Map<string, ProbeRecord>; activity: Map<string, SessionActivity> }> {
    const { list, probes } = await machines(projectId, 'desktop');
    return { list, probes, activity: await ctx.store.sessions.activity(list.map((r) => r.id)) };
  }

  app.get<{ Params: { project_id: string } }>('/v2/:project_id/desktops',
    { config: { service: 'workspace', action: 'workspace:desktops:list' } }, async (req) => {
      const projectId = req.params.project_id;
      await guard(req, projectId, 'desktop', '*', 'workspace:desktops:list');
      const q = new Query(req.query as Record<string, unknown>);
      const offset = q.int('offset', 0, 1_000_000) ?? 0;
      const limit = q.int('limit', 0, 1000) ?? 1000;
      const userName = q.str('user_name');
      const computerName = q.str('computer_name');
      const ip = q.str('desktop_ip');
      const types = q.list('desktop_type');
      const subnet = q.str('subnet_id');
      const eps = q.str('enterprise_project_id');
      const pool = q.str('pool_id');
      const { list } = await desktops(projectId);
      const matched = list.filter((r) => {
        const a = r.attributes;
        // Porthole has no desktop pools: a pool filter matches nothing.
        if (pool !== undefined) return false;
        if (userName !== undefined && !usersOf(r).names.includes(userName)) return false;
        if (computerName !== undefined && !contains(a.computer_name ?? r.name, computerName)) return false;
        if (ip !== undefined && !ipsOf(r).includes(ip)) return false;
        if (types !== undefined && !types.includes(String(a.desktop_type ?? 'DEDICATED'))) return false;
        if (subnet !== undefined && a.subnet_id !== subnet) return false;
        if (eps !== undefined && a.enterprise_project_id !== eps) return false;
        return true;
      });
      return { total_count: matched.length, desktops: matched.slice(offset, offset + limit).map(simpleDesktop) };
    });

  app.get<{ Params: { project_id: string } }>('/v2/:project_id/desktops/detail',
    { config: { service: 'workspace', action: 'workspace:desktops:list' } }, async (req) => {
      const projectId = req.params.project_id;
      await guard(req, projectId, 'desktop', '*', 'workspace:desktops:list');
      const q = new Query(req.query as Record<string, unknown>);
      const offset = q.int('offset', 0, 1_000_000) ?? 0;
      const limit = q.int('limit', 0, 500) ?? 500;
      const status = q.str('status');
      const userName = q.str('user_name');
      const userNames = q.list('user_names');
      const userId = q.str('user_id');
      const computerName = q.str('computer_name');
      const computerNames = q.list('computer_names');
      const ip = q.str('desktop_ip');
      const ids = q.list('desktop_id');
      const types = q.list('desktop_type');
      const maintenance = q.bool('in_maintenance_mode');
      const internet = q.bool('is_support_internet');
      const az = q.str('availability_zone');
      const subnet = q.str('subnet_id');
      const eps = q.str('enterprise_project_id');
      const attached = q.bool('user_attached');
      const tag = q.str('tag');
      const withoutTags = q.bool('without_any_tag');
      const sortField = q.str('sort_field');
      const sortType = q.str('sort_type');
      if (sortField !== undefined && sortField !== 'created' && sortField !== 'computer_name') throw new ApiError('bad_request', 'Query parameter sort_field must be created or computer_name.');
      if (sortType !== undefined && sortType !== 'ASC' && sortType !== 'DESC') throw new ApiError('bad_request', 'Query parameter sort_type must be ASC or DESC.');
      const tags = tag === undefined ? undefined : tag.split(',').map((kv) => {
        const i = kv.indexOf('=');
        return i < 0 ? [kv.trim(), undefined] as const : [kv.slice(0, i).trim(), kv.slice(i + 1).trim()] as const;
      });
      const { list, probes, activity } = await desktops(projectId);
      const t = now();
      let rows = list.map((r) => ({ r, d: desktopDetail(r, loginStatusOf(r, probes.get(r.id), activity.get(r.id), t)) })).filter(({ r, d }) => {
        const users = usersOf(r);
        if (status !== undefined && d.status !== status) return false;
        if (userNames !== undefined ? !userNames.some((u) => users.names.includes(u)) : userName !== undefined && !users.names.includes(userName)) return false;
        if (userId !== undefined && !users.ids.includes(userId)) return false;
        if (computerName !== undefined && !contains(d.computer_name, computerName)) return false;
        if (computerNames !== undefined && !computerNames.includes(String(d.computer_name))) return false;
        if (ip !== undefined && !ipsOf(r).includes(ip)) return false;
        if (ids !== undefined && !ids.includes(r.id)) return false;
        if (types !== undefined && !types.includes(String(d.desktop_type ?? 'DEDICATED'))) return false;
        if (maintenance !== undefined && (d.in_maintenance_mode === true) !== maintenance) return false;
        if (internet !== undefined && (d.is_support_internet === true) !== internet) return false;
        if (az !== undefined && d.availability_zone !== az) return false;
        if (subnet !== undefined && d.subnet_id !== subnet) return false;
        if (eps !== undefined && d.enterprise_project_id !== eps) return false;
        if (attached !== undefined && (users.names.length > 0) !== attached) return false;
        const rt = tagsOf(r);
        if (withoutTags === true && rt.size > 0) return false;
        if (tags !== undefined && !tags.every(([k, v]) => rt.has(k) && (v === undefined || rt.get(k) === v))) return false;
        return true;
      });
      if (sortField !== undefined) {
        const key = (d: Json) => String(sortField === 'created' ? d.created : d.computer_name);
        rows = rows.sort((x, y) => key(x.d).localeCompare(key(y.d)) * (sortType === 'DESC' ? -1 : 1));
      }
      return { desktops: rows.slice(offset, offset + limit).map((x) => x.d), total_count: rows.length };
    });
}
