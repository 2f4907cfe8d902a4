/**
 * Machines (cloud servers, physical servers, desktops) and their console endpoints as the admin API
 * manages them, plus their outstanding console tokens.
 *
 * Revocation: any change to a machine or its endpoint, and its deletion, revokes its outstanding
 * console tokens in the same transaction, then calls `onChanged` — the gateway ends the machine's
 * live sessions there when `console.end_sessions_on_change` is on (close code 4007 `revoked`).
 *
 * Endpoint input (`url`, `security`, `password`, `zone`, `ca_cert`, `client_cert`, `client_key`) is
 * validated by domain/endpoint-spec.ts. Secrets left out of an update keep their current value while
 * the endpoint's target (host, port, security, CA, server name, VeNCrypt subtypes) stays the same, so
 * an operator can change its zone or policies without retyping its VNC password; a new target drops
 * them unless they are given again (a secret is never handed to another machine); `null` clears.
 */
import { ApiError } from '../errors.js';
import type { ConsoleEndpoint, ConsoleTokenRecord, ProjectRecord, ResourceKind, ResourceRecord, Store } from '../store/types.js';
import type { Principal } from './authz.js';
import { ANY_BACKEND, type BackendPolicy } from './backend-policy.js';
import type { Clock } from './clock.js';
import { assignDesktopUser, defaultUserGroup, desktopAttributeProblems, unassignDesktopUser, userGroupsFor } from './desktop.js';
import { checkName, type AdminAccess } from './directory.js';
import { checkEndpoint, endpointTarget, endpointsEqual, openEndpointSecret, rawEndpointTarget, sameTarget, sealEndpoint, vncUrl } from './endpoint-spec.js';
import { STATUS_RE, UUID_RE, deriveResourceId } from './fleet-model.js';
import { ENDPOINT_OPTION_KEYS, endpointOptionsView } from './endpoint-options.js';
import type { SecretBox } from './secrets.js';

/** Shown instead of a console token: a prefix of its SHA-256 (the token itself is never stored). */
export const TOKEN_ID_LENGTH = 12;
export const MAX_ATTRIBUTES_BYTES = 64 * 1024;

const bad = (msg: string) => new ApiError('bad_request', msg);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const KIND_NOUN: Record<ResourceKind, string> = { cloudserver: 'cloud server', physicalserver: 'physical server', desktop: 'desktop' };

export interface MachineInput {
  projectId?: unknown;
  name?: unknown;
  id?: unknown;
  status?: unknown;
  attributes?: unknown;
  console?: unknown;
}

function checkAttributes(kind: ResourceKind, v: unknown): Record<string, unknown> {
  if (!isObj(v)) throw bad('attributes must be a mapping.');
  if (JSON.stringify(v).length > MAX_ATTRIBUTES_BYTES) throw bad(`attributes are larger than ${MAX_ATTRIBUTES_BYTES} bytes.`);
  if (kind === 'desktop') {
    const problems = desktopAttributeProblems(v);
    if (problems.length > 0) throw bad(`attributes: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}.`);
  }
  return v;
}

function checkStatus(v: unknown): string {
  if (typeof v !== 'string' || !STATUS_RE.test(v)) throw bad('status must be an upper-case status such as ACTIVE or SHUTOFF.');
  return v;
}

export class InventoryService {
  constructor(
    private readonly store: Store,
    private readonly secrets: SecretBox,
    private readonly clock: Clock,
    private readonly access: AdminAccess,
    /** After a change or deletion has committed: ends live sessions by policy. Must not throw. */
    private readonly onChanged: (resourceIds: string[]) => Promise<void> = async () => {},
    /** Where endpoints may point (backends.allowed_networks). */
    private readonly backends: BackendPolicy = ANY_BACKEND,
  ) {}

  /**
   * Endpoint input for `resourceId` → stored endpoint. `merge`: omitted fields keep `prev`'s values
   * (PATCH); `replace`: omitted fields are unset, except secrets, which keep `prev`'s (PUT) — but only
   * while the target stays the same (host, port, security, CA, server name, VeNCrypt subtypes,
   * anonymous TLS: domain/endpoint-spec.ts `EndpointTarget`). A secret is never carried to another
   * target: it is dropped unless given again, and `dropped` names it (`password`, `client_key`).
   */
  private endpointFrom(resourceId: string, input: unknown, prev: ConsoleEndpoint | null, mode: 'merge' | 'replace'): { endpoint: ConsoleEndpoint | null; dropped: string[] } {
    if (input === null) return { endpoint: null, dropped: [] };
    if (!isObj(input)) throw bad('console must be a mapping with url, security, password, zone, ca_cert, client_cert, client_key.');
    for (const k of Object.keys(input)) if (!['url', 'security', 'password', 'zone', 'ca_cert', 'client_cert', 'client_key', ...ENDPOINT_OPTION_KEYS].includes(k)) throw bad(`console.${k} is not a console field.`);
    const raw: Record<string, unknown> = { ...input };
    const open = (kind: 'password' | 'tlsKey'): string | null => {
      try { return openEndpointSecret(this.secrets, kind, resourceId, prev as ConsoleEndpoint)?.plain ?? null; } catch (err) { throw new ApiError('internal', undefined, { cause: err }); }
    };
    if (prev && mode === 'merge') {
      raw.url ??= vncUrl(prev.host, prev.port);
      if (!('security' in raw)) raw.security = prev.security;
      if (!('zone' in raw)) raw.zone = prev.zone;
      // Certificates carry over only while the endpoint stays VeNCrypt.
      if (raw.security === 'vencrypt' && !('ca_cert' in raw)) raw.ca_cert = prev.tlsCa ?? null;
      if (raw.security === 'vencrypt' && !('client_cert' in raw)) raw.client_cert = prev.tlsCert ?? null;
      // Options carry over too (the VeNCrypt ones only while the endpoint stays VeNCrypt).
      const kept = endpointOptionsView(prev.options);
      for (const [k, v] of Object.entries(kept)) {
        if (k in raw) continue;
        if (raw.security !== 'vencrypt' && ['servername', 'vencrypt_subtypes', 'allow_anonymous_tls', 'username'].includes(k)) continue;
        raw[k] = v;
      }
    }
    const dropped: string[] = [];
    if (prev) {
      // The security the result will have when the input leaves it out (PUT): vncauth with a password.
      const security = raw.security ?? ('password' in raw ? (raw.password === null ? 'none' : 'vncauth') : prev.passwordSealed !== null ? 'vncauth' : 'none');
      const target = rawEndpointTarget({ ...raw, security });
      const sameTargetAsBefore = target !== undefined && sameTarget(target, endpointTarget(prev));
      if (!('password' in raw) && prev.passwordSealed !== null && security !== 'none') {
        if (sameTargetAsBefore) raw.password = open('password');
        else {
          dropped.push('password');
          raw.security ??= security; // not a silent switch to security none: vncauth then asks for the password
        }
      }
      if (!('client_key' in raw) && prev.tlsKeySealed && raw.client_cert) {
        if (sameTargetAsBefore) raw.client_key = open('tlsKey');
        else {
          dropped.push('client_key');
          // A certificate carried over without its key goes with it (given in the input: the key is asked for).
          if (!('client_cert' in input)) raw.client_cert = null;
        }
      }
    }
    const { spec, problems } = checkEndpoint(raw);
    if (!spec) {
      const why = dropped.length > 0 ? ` (the stored ${dropped.join(' and ')} was not kept: the endpoint's address, security or TLS settings changed, so give it again)` : '';
      throw bad(`console: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}${why}.`);
    }
    const hostProblem = this.backends.hostProblem(spec.host, spec.port);
    if (hostProblem) throw bad(`console.url: ${hostProblem}.`);
    return { endpoint: sealEndpoint(this.secrets, resourceId, spec, prev), dropped };
  }

  async list(p: Principal, kind: ResourceKind, projectId?: string): Promise<{ resources: ResourceRecord[]; projects: Map<string, ProjectRecord> }> {
    this.access.require(p, `admin:${kind}s:list`);
    const projects = projectId !== undefined ? [await this.access.project(p, projectId)] : await this.access.projects(p);
    const resources = await this.store.inventory.listResources({ kind, projectIds: projects.map((x) => x.id) });
    return { resources, projects: new Map(projects.map((x) => [x.id, x])) };
  }

  async get(p: Principal, kind: ResourceKind | undefined, id: string): Promise<{ resource: ResourceRecord; project: ProjectRecord }> {
    this.access.require(p, `admin:${kind ?? 'machine'}s:get`);
    return this.access.resource(p, id, kind);
  }

  async create(p: Principal, kind: ResourceKind, input: MachineInput): Promise<ResourceRecord> {
    this.access.require(p, `admin:${kind}s:create`);
    if (typeof input.projectId !== 'string') throw bad('project_id is required.');
    const project = await this.access.project(p, input.projectId);
    const name = checkName('name', input.name);
    if (input.id !== undefined && (typeof input.id !== 'string' || !UUID_RE.test(input.id))) throw bad('id must be a lower-case UUID.');
    const id = (input.id as string | undefined) ?? deriveResourceId(project.id, kind, name);
    if (await this.store.inventory.getResourceById(id)) throw new ApiError('conflict', `A machine with id ${id} already exists.`);
    const existing = await this.store.inventory.listResources({ projectId: project.id, kind });
    if (existing.some((r) => r.name === name)) throw new ApiError('conflict', `Project ${project.name} already has a ${KIND_NOUN[kind]} named ${name}.`);
    const status = input.status === undefined ? 'ACTIVE' : checkStatus(input.status);
    const attributes = input.attributes === undefined ? {} : checkAttributes(kind, input.attributes);
    const endpoint = input.console === undefined ? null : this.endpointFrom(id, input.console, null, 'replace').endpoint;
    const { record } = await this.store.inventory.upsertResource({ id, projectId: project.id, kind, name, status, attributes, endpoint }, this.clock.now());
    return record;
  }

  /** Applies a change; revokes tokens (and ends sessions by policy) when anything changed. */
  /** `dropped`: stored endpoint secrets not carried to a new target (listed as `console.password`, `console.client_key`). */
  private async commit(before: ResourceRecord, after: Omit<ResourceRecord, 'endpointGeneration' | 'createdAt' | 'updatedAt'>, dropped: string[] = []): Promise<{ resource: ResourceRecord; changed: string[] }> {
    const changed: string[] = [];
    if (before.name !== after.name) changed.push('name');
    if (before.status !== after.status) changed.push('status');
    if (JSON.stringify(before.attributes) !== JSON.stringify(after.attributes)) changed.push('attributes');
    if (!endpointsEqual(before.endpoint, after.endpoint)) changed.push('console', ...dropped.map((d) => `console.${d}`));
    if (changed.length === 0) return { resource: before, changed };
    const now = this.clock.now();
    const resource = await this.store.transaction(async (tx) => {
      const { record } = await tx.inventory.upsertResource(after, now);
      await tx.consoleTokens.revokeForResource(before.id, now);
      return record;
    });
    await this.onChanged([before.id]);
    return { resource, changed };
  }

  async update(p: Principal, kind: ResourceKind, id: string, patch: MachineInput): Promise<{ resource: ResourceRecord; changed: string[] }> {
    this.access.require(p, `admin:${kind}s:update`);
    const { resource: r, project } = await this.access.resource(p, id, kind);
    const after = { id: r.id, projectId: r.projectId, kind: r.kind, name: r.name, status: r.status, attributes: r.attributes, endpoint: r.endpoint };
    if (patch.name !== undefined) {
      after.name = checkName('name', patch.name);
      if (after.name !== r.name && (await this.store.inventory.listResources({ projectId: project.id, kind })).some((x) => x.name === after.name)) {
        throw new ApiError('conflict', `Project ${project.name} already has a ${KIND_NOUN[kind]} named ${after.name}.`);
      }
    }
    if (patch.status !== undefined) after.status = checkStatus(patch.status);
    if (patch.attributes !== undefined) {
      // A merge: keys given replace, `null` removes (DesktopDetailInfo `process` keeps a null value).
      if (!isObj(patch.attributes)) throw bad('attributes must be a mapping.');
      const merged: Record<string, unknown> = { ...r.attributes };
      for (const [k, v] of Object.entries(patch.attributes)) {
        if (v === null && !(kind === 'desktop' && k === 'process')) delete merged[k];
        else merged[k] = v;
      }
      after.attributes = checkAttributes(kind, merged);
    }
    let dropped: string[] = [];
    if (patch.console !== undefined) ({ endpoint: after.endpoint, dropped } = this.endpointFrom(r.id, patch.console, r.endpoint, 'merge'));
    return this.commit(r, after, dropped);
  }

  async delete(p: Principal, kind: ResourceKind, id: string): Promise<ResourceRecord> {
    this.access.require(p, `admin:${kind}s:delete`);
    const { resource: r } = await this.access.resource(p, id, kind);
    const now = this.clock.now();
    await this.store.transaction(async (tx) => {
      await tx.consoleTokens.revokeForResource(r.id, now);
      await tx.probes.delete(r.id);
      await tx.inventory.deleteResource(r.id);
    });
    await this.onChanged([r.id]);
    return r;
  }

  // ---------------------------------------------------------------------------------------------
  // Console endpoints (of any kind of machine)

  async setEndpoint(p: Principal, id: string, input: unknown): Promise<{ resource: ResourceRecord; changed: string[] }> {
    this.access.require(p, 'admin:endpoints:set');
    const { resource: r } = await this.access.resource(p, id);
    if (input === null || input === undefined) throw bad('console is required (DELETE removes an endpoint).');
    const { endpoint, dropped } = this.endpointFrom(r.id, input, r.endpoint, 'replace');
    return this.commit(r, { ...r, endpoint }, dropped);
  }

  async deleteEndpoint(p: Principal, id: string): Promise<{ resource: ResourceRecord; changed: string[] }> {
    this.access.require(p, 'admin:endpoints:delete');
    const { resource: r } = await this.access.resource(p, id);
    if (r.endpoint === null) throw new ApiError('not_found', `Machine ${id} has no console endpoint.`);
    return this.commit(r, { ...r, endpoint: null });
  }

  // ---------------------------------------------------------------------------------------------
  // Desktop users

  async assignUser(p: Principal, desktopId: string, userName: unknown, group: unknown): Promise<{ resource: ResourceRecord; changed: string[] }> {
    this.access.require(p, 'admin:desktops:assignUser');
    const { resource: r, project } = await this.access.resource(p, desktopId, 'desktop');
    const name = checkName('user_name', userName);
    // The group is one of the desktop's OS (Linux sudo/default, Windows administrators/users); by default its standard users'.
    const osType = isObj(r.attributes.metadata) ? r.attributes.metadata.os_type : undefined;
    const groups = userGroupsFor(osType);
    const g = group ?? defaultUserGroup(osType);
    if (typeof g !== 'string' || !groups.includes(g)) throw bad(`user_group must be ${groups.join(', ')}${typeof osType === 'string' ? ` on a ${osType} desktop` : ''}.`);
    const user = await this.store.identity.findUserByName(project.domainId, name);
    if (!user) throw new ApiError('not_found', `Could not find user ${name} in the desktop's domain.`);
    return this.commit(r, { ...r, attributes: assignDesktopUser(r.attributes, { id: user.id, name: user.name }, g) });
  }

  async unassignUser(p: Principal, desktopId: string, userName: string): Promise<{ resource: ResourceRecord; changed: string[] }> {
    this.access.require(p, 'admin:desktops:unassignUser');
    const { resource: r } = await this.access.resource(p, desktopId, 'desktop');
    const { attributes, found } = unassignDesktopUser(r.attributes, userName);
    if (!found) throw new ApiError('not_found', `User ${userName.slice(0, 64)} is not assigned to desktop ${desktopId}.`);
    return this.commit(r, { ...r, attributes });
  }

  // ---------------------------------------------------------------------------------------------
  // Outstanding console tokens

  async listTokens(p: Principal, resourceId?: string): Promise<ConsoleTokenRecord[]> {
    this.access.require(p, 'admin:consoleTokens:list');
    if (resourceId !== undefined) {
      const { resource } = await this.access.resource(p, resourceId);
      return this.store.consoleTokens.listOutstanding({ now: this.clock.now(), resourceId: resource.id });
    }
    const projects = await this.access.projects(p);
    return this.store.consoleTokens.listOutstanding({ now: this.clock.now(), projectIds: projects.map((x) => x.id) });
  }

  /** Revokes the outstanding token whose id (hash prefix) is `tokenId`. */
  async revokeToken(p: Principal, tokenId: string): Promise<ConsoleTokenRecord> {
    this.access.require(p, 'admin:consoleTokens:revoke');
    if (!new RegExp(`^[0-9a-f]{${TOKEN_ID_LENGTH},64}$`).test(tokenId)) throw new ApiError('not_found', `Could not find console token ${tokenId.slice(0, 64)}.`);
    const projects = await this.access.projects(p);
    const found = await this.store.consoleTokens.listOutstanding({ now: this.clock.now(), projectIds: projects.map((x) => x.id), hashPrefix: tokenId, limit: 2 });
    if (found.length === 0) throw new ApiError('not_found', `Could not find an outstanding console token ${tokenId}.`);
    if (found.length > 1) throw new ApiError('conflict', `Console token id ${tokenId} is ambiguous; give more characters of it.`);
    const t = found[0]!;
    await this.store.consoleTokens.revoke(t.tokenHash, this.clock.now());
    return t;
  }

  /** Revokes every outstanding token of a machine. */
  async revokeResourceTokens(p: Principal, resourceId: string): Promise<number> {
    this.access.require(p, 'admin:consoleTokens:revoke');
    const { resource } = await this.access.resource(p, resourceId);
    return this.store.consoleTokens.revokeForResource(resource.id, this.clock.now());
  }
}
