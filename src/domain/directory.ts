/**
 * Who administers what, and the directory itself: domains, projects, users and their role bindings.
 *
 * Every admin action needs a domain administrator. A domain administrator manages their own domain;
 * the administrators of operator domains are gateway operators and manage every domain, and only they
 * create, rename or delete domains. Objects outside what the caller manages are "not found", so their
 * ids cannot be probed.
 *
 * Operator domains are recorded by id (DomainRecord.operator), never decided by a name alone: a domain
 * becomes one when it is created under a name in `admin.operator_domains` by the gateway itself (demo,
 * `serve --fleet`) or by an operator, or — once, for domains from before flags were recorded — when
 * the gateway starts (adoptOperatorDomains). Its administrators operate the gateway while its name is
 * still in `admin.operator_domains` (removing the name revokes). A rename never grants the flag or
 * moves it to another domain.
 *
 * Credentials scoped to one project (an IAM project token, AK/SK with X-Project-Id) act on that
 * project only (security review #3): they see and manage its machines, endpoints, console links and
 * sessions; everything domain-wide (domains, projects' lifecycle, users and roles, access keys, fleet
 * files, master keys, nodes, the audit trail) needs a domain-scoped credential, and an operator's
 * project-scoped credential is no operator.
 *
 * Ids are derived from names as in fleet files (domain/fleet-model.ts) unless given, so an object made
 * here and the same name in a fleet file are one object.
 *
 * Taking access away takes it away now: a password change or disabling a user deletes their IAM
 * tokens (the next call with one is 401); deleting, disabling or demoting a user (domain
 * administrator flag dropped, a role removed or lowered to viewer) revokes the console links they
 * minted where they may no longer open consoles and ends such live consoles on every node
 * (`usersChanged`, wired in gateway.ts).
 */
import { ApiError } from '../errors.js';
import type { DomainRecord, ProjectRecord, ResourceKind, ResourceRecord, Role, RoleBinding, Store, UserRecord } from '../store/types.js';
import type { Principal } from './authz.js';
import type { Clock } from './clock.js';
import { HEX32_RE, MIN_PASSWORD_LENGTH, NAME_RE, deriveDomainId, deriveProjectId, deriveUserId } from './fleet-model.js';
import { hashPassword } from './passwords.js';
import { randomBytes } from 'node:crypto';

export const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];

const notFound = (what: string, id: string) => new ApiError('not_found', `Could not find ${what}: ${id.slice(0, 64)}.`);
const conflict = (msg: string) => new ApiError('conflict', msg);
const bad = (msg: string) => new ApiError('bad_request', msg);

export function checkName(field: string, v: unknown): string {
  if (typeof v !== 'string' || !NAME_RE.test(v)) throw bad(`${field} must be a name of 1–64 letters, digits, space . _ @ - (starting with a letter or digit).`);
  return v;
}

export function checkPassword(field: string, v: unknown): string {
  if (typeof v !== 'string' || v.length < MIN_PASSWORD_LENGTH || v.length > 1024) throw bad(`${field} must be ${MIN_PASSWORD_LENGTH}–1024 characters.`);
  return v;
}

/** The admin scope of a principal. */
export class AdminAccess {
  private readonly operatorDomains: ReadonlySet<string>;
  constructor(private readonly store: Store, operatorDomains: readonly string[]) {
    this.operatorDomains = new Set(operatorDomains);
  }

  /** Throws 403 unless `p` is a domain administrator. */
  require(p: Principal, action: string): void {
    if (!p.domainAdmin) throw new ApiError('forbidden', `The IAM user is not authorized to perform ${action}: a domain administrator is required.`);
  }

  /** Throws 403 unless `p` is a domain administrator with a domain-scoped credential (domain-wide actions). */
  requireDomainScope(p: Principal, action: string): void {
    this.require(p, action);
    if (p.scopeProjectId !== null) {
      throw new ApiError('forbidden', `The IAM user is not authorized to perform ${action}: the credential is scoped to project ${p.scopeProjectId}; a domain-scoped credential is required.`);
    }
  }

  /** An administrator of a recorded operator domain whose name is still configured (see above), with a domain-scoped credential. */
  isOperator(p: Principal): boolean {
    return p.domainAdmin && p.scopeProjectId === null && p.operatorDomain && this.operatorDomains.has(p.domainName);
  }

  /** Whether a domain created under `name` by an operator or the gateway itself is recorded as an operator domain. */
  isOperatorDomainName(name: string): boolean {
    return this.operatorDomains.has(name);
  }

  /** The configured operator domain names (admin.operator_domains, plus the demo domain on the demo). */
  get operatorDomainNames(): ReadonlySet<string> {
    return this.operatorDomains;
  }

  requireOperator(p: Principal, action: string): void {
    this.require(p, action);
    if (!this.isOperator(p)) throw new ApiError('forbidden', `The IAM user is not authorized to perform ${action}: only administrators of an operator domain (admin.operator_domains) may.`);
  }

  /** Domain-wide management: never with a project-scoped credential. */
  canManageDomain(p: Principal, domainId: string): boolean {
    return p.domainAdmin && p.scopeProjectId === null && (p.domainId === domainId || this.isOperator(p));
  }

  /** A project's machines, endpoints, links and sessions: its domain's administrator, or one whose credential is scoped to it. */
  canManageProject(p: Principal, project: ProjectRecord): boolean {
    if (p.scopeProjectId !== null) return p.domainAdmin && project.id === p.scopeProjectId && project.domainId === p.domainId;
    return this.canManageDomain(p, project.domainId);
  }

  async domainIds(p: Principal): Promise<string[]> {
    if (!p.domainAdmin || p.scopeProjectId !== null) return [];
    if (this.isOperator(p)) return (await this.store.identity.listDomains()).map((d) => d.id);
    return [p.domainId];
  }

  /** The projects `p` manages (optionally of one domain): with a project-scoped credential, that project only. */
  async projects(p: Principal, domainId?: string): Promise<ProjectRecord[]> {
    if (!p.domainAdmin) return [];
    if (p.scopeProjectId !== null) {
      const own = await this.store.identity.getProject(p.scopeProjectId);
      return own && this.canManageProject(p, own) && (domainId === undefined || own.domainId === domainId) ? [own] : [];
    }
    if (domainId !== undefined) return this.canManageDomain(p, domainId) ? this.store.identity.listProjects(domainId) : [];
    if (this.isOperator(p)) return this.store.identity.listProjects();
    return this.store.identity.listProjects(p.domainId);
  }

  async domain(p: Principal, id: string): Promise<DomainRecord> {
    const d = HEX32_RE.test(id) ? await this.store.identity.getDomain(id) : undefined;
    if (!d || !this.canManageDomain(p, d.id)) throw notFound('domain', id);
    return d;
  }

  async project(p: Principal, id: string): Promise<ProjectRecord> {
    const pr = HEX32_RE.test(id) ? await this.store.identity.getProject(id) : undefined;
    if (!pr || !this.canManageProject(p, pr)) throw notFound('project', id);
    return pr;
  }

  async user(p: Principal, id: string): Promise<UserRecord> {
    const u = /^[0-9A-Za-z_-]{1,64}$/.test(id) ? await this.store.identity.getUser(id) : undefined;
    if (!u || !this.canManageDomain(p, u.domainId)) throw notFound('user', id);
    return u;
  }

  /** A machine in a project `p` manages (of `kind`, when given). */
  async resource(p: Principal, id: string, kind?: ResourceKind): Promise<{ resource: ResourceRecord; project: ProjectRecord }> {
    const r = /^[0-9A-Za-z-]{1,64}$/.test(id) ? await this.store.inventory.getResourceById(id) : undefined;
    const project = r && (await this.store.identity.getProject(r.projectId));
    if (!r || !project || (kind !== undefined && r.kind !== kind) || !this.canManageProject(p, project)) throw notFound(kind ?? 'machine', id);
    return { resource: r, project };
  }
}

export interface UserView { user: UserRecord; roles: RoleBinding[] }

/** Users deleted, disabled or demoted: revoke their console links and end their live consoles (gateway.ts). */
export type UsersChanged = (userIds: readonly string[]) => Promise<void>;

export class DirectoryService {
  constructor(
    private readonly store: Store, private readonly clock: Clock, readonly access: AdminAccess,
    private readonly usersChanged: UsersChanged = async () => {},
  ) {}

  // ---------------------------------------------------------------------------------------------
  // Domains

  async listDomains(p: Principal): Promise<DomainRecord[]> {
    this.access.requireDomainScope(p, 'admin:domains:list');
    const ids = new Set(await this.access.domainIds(p));
    return (await this.store.identity.listDomains()).filter((d) => ids.has(d.id));
  }

  async getDomain(p: Principal, id: string): Promise<DomainRecord> {
    this.access.requireDomainScope(p, 'admin:domains:get');
    return this.access.domain(p, id);
  }

  /** A new domain with its first domain administrator (operators only). */
  async createDomain(p: Principal, input: { name: unknown; id?: unknown; admin: { name: unknown; password: unknown } }): Promise<{ domain: DomainRecord; admin: UserRecord }> {
    this.access.requireOperator(p, 'admin:domains:create');
    const name = checkName('domain.name', input.name);
    if (input.id !== undefined && (typeof input.id !== 'string' || !HEX32_RE.test(input.id))) throw bad('domain.id must be 32 lower-case hex characters.');
    const id = (input.id as string | undefined) ?? deriveDomainId(name);
    const adminName = checkName('domain.admin.name', input.admin.name);
    const password = checkPassword('domain.admin.password', input.admin.password);
    if (await this.store.identity.findDomainByName(name)) throw conflict(`A domain named ${name} already exists.`);
    if (await this.store.identity.getDomain(id)) throw conflict(`A domain with id ${id} already exists.`);
    const now = this.clock.now();
    // Created by an operator: under a configured operator-domain name it is recorded as one.
    const domain: DomainRecord = { id, name, createdAt: now, operator: this.access.isOperatorDomainName(name) };
    const admin: UserRecord = {
      id: await this.freeUserId(deriveUserId(name, adminName)), domainId: id, name: adminName, passwordHash: await hashPassword(password),
      domainAdmin: true, disabled: false, passwordExpiresAt: null, createdAt: now,
    };
    await this.store.transaction(async (tx) => {
      await tx.identity.upsertDomain(domain);
      await tx.identity.upsertUser(admin);
    });
    return { domain, admin };
  }

  async renameDomain(p: Principal, id: string, name: unknown): Promise<DomainRecord> {
    this.access.requireOperator(p, 'admin:domains:update');
    const d = await this.access.domain(p, id);
    const newName = checkName('domain.name', name);
    if (newName === d.name) return d;
    if (await this.store.identity.findDomainByName(newName)) throw conflict(`A domain named ${newName} already exists.`);
    const out = { ...d, name: newName };
    await this.store.identity.upsertDomain(out);
    return out;
  }

  /** Deletes an empty domain (no projects) with its users. Never the caller's own. */
  async deleteDomain(p: Principal, id: string): Promise<void> {
    this.access.requireOperator(p, 'admin:domains:delete');
    const d = await this.access.domain(p, id);
    if (d.id === p.domainId) throw conflict('You cannot delete the domain you are signed in to.');
    if ((await this.store.identity.listProjects(d.id)).length > 0) throw conflict(`Domain ${d.name} still has projects; delete them first.`);
    const users = await this.store.identity.listUsers(d.id);
    await this.store.transaction(async (tx) => {
      for (const u of users) await tx.identity.deleteUser(u.id);
      await tx.identity.deleteDomain(d.id);
    });
    await this.usersChanged(users.map((u) => u.id));
  }

  // ---------------------------------------------------------------------------------------------
  // Projects

  async listProjects(p: Principal, domainId?: string): Promise<ProjectRecord[]> {
    this.access.require(p, 'admin:projects:list');
    return this.access.projects(p, domainId);
  }

  async getProject(p: Principal, id: string): Promise<ProjectRecord> {
    this.access.require(p, 'admin:projects:get');
    return this.access.project(p, id);
  }

  async createProject(p: Principal, input: { name: unknown; id?: unknown; domainId?: unknown }): Promise<ProjectRecord> {
    this.access.requireDomainScope(p, 'admin:projects:create');
    const name = checkName('project.name', input.name);
    const domainId = input.domainId === undefined ? p.domainId : input.domainId;
    if (typeof domainId !== 'string') throw bad('project.domain_id must be a domain id.');
    const domain = await this.access.domain(p, domainId);
    if (input.id !== undefined && (typeof input.id !== 'string' || !HEX32_RE.test(input.id))) throw bad('project.id must be 32 lower-case hex characters.');
    const id = (input.id as string | undefined) ?? deriveProjectId(domain.name, name);
    if (await this.store.identity.findProjectByName(domain.id, name)) throw conflict(`Domain ${domain.name} already has a project named ${name}.`);
    if (await this.store.identity.getProject(id)) throw conflict(`A project with id ${id} already exists.`);
    const rec: ProjectRecord = { id, domainId: domain.id, name, createdAt: this.clock.now() };
    await this.store.identity.upsertProject(rec);
    return rec;
  }

  async renameProject(p: Principal, id: string, name: unknown): Promise<ProjectRecord> {
    this.access.requireDomainScope(p, 'admin:projects:update');
    const pr = await this.access.project(p, id);
    const newName = checkName('project.name', name);
    if (newName === pr.name) return pr;
    if (await this.store.identity.findProjectByName(pr.domainId, newName)) throw conflict(`The domain already has a project named ${newName}.`);
    const out = { ...pr, name: newName };
    await this.store.identity.upsertProject(out);
    return out;
  }

  /** Deletes a project without machines (its role bindings go with it). */
  async deleteProject(p: Principal, id: string): Promise<void> {
    this.access.requireDomainScope(p, 'admin:projects:delete');
    const pr = await this.access.project(p, id);
    if ((await this.store.inventory.listResources({ projectId: pr.id })).length > 0) throw conflict(`Project ${pr.name} still has machines; delete them first.`);
    await this.store.identity.deleteProject(pr.id);
  }

  // ---------------------------------------------------------------------------------------------
  // Users and role bindings

  async listUsers(p: Principal, domainId?: string): Promise<UserView[]> {
    this.access.requireDomainScope(p, 'admin:users:list');
    const ids = domainId !== undefined ? [(await this.access.domain(p, domainId)).id] : [p.domainId];
    const out: UserView[] = [];
    for (const d of ids) for (const u of await this.store.identity.listUsers(d)) out.push({ user: u, roles: await this.store.identity.rolesOf(u.id) });
    return out;
  }

  async getUser(p: Principal, id: string): Promise<UserView> {
    this.access.requireDomainScope(p, 'admin:users:get');
    const u = await this.access.user(p, id);
    return { user: u, roles: await this.store.identity.rolesOf(u.id) };
  }

  async createUser(p: Principal, input: { name: unknown; password: unknown; domainAdmin?: unknown; disabled?: unknown; domainId?: unknown; id?: unknown }): Promise<UserView> {
    this.access.requireDomainScope(p, 'admin:users:create');
    const name = checkName('user.name', input.name);
    const password = checkPassword('user.password', input.password);
    const domainId = input.domainId === undefined ? p.domainId : input.domainId;
    if (typeof domainId !== 'string') throw bad('user.domain_id must be a domain id.');
    const domain = await this.access.domain(p, domainId);
    for (const f of ['domainAdmin', 'disabled'] as const) if (input[f] !== undefined && typeof input[f] !== 'boolean') throw bad(`user.${f === 'domainAdmin' ? 'domain_admin' : f} must be true or false.`);
    if (input.id !== undefined && (typeof input.id !== 'string' || !HEX32_RE.test(input.id))) throw bad('user.id must be 32 lower-case hex characters.');
    if (await this.store.identity.findUserByName(domain.id, name)) throw conflict(`Domain ${domain.name} already has a user named ${name}.`);
    if (input.id !== undefined && (await this.store.identity.getUser(input.id as string))) throw conflict(`A user with id ${input.id as string} already exists.`);
    const rec: UserRecord = {
      id: (input.id as string | undefined) ?? (await this.freeUserId(deriveUserId(domain.name, name))), domainId: domain.id, name,
      passwordHash: await hashPassword(password), domainAdmin: input.domainAdmin === true, disabled: input.disabled === true, passwordExpiresAt: null,
      createdAt: this.clock.now(),
    };
    await this.store.identity.upsertUser(rec);
    return { user: rec, roles: [] };
  }

  async updateUser(p: Principal, id: string, patch: { name?: unknown; password?: unknown; domainAdmin?: unknown; disabled?: unknown }): Promise<UserView> {
    this.access.requireDomainScope(p, 'admin:users:update');
    const u = await this.access.user(p, id);
    const out: UserRecord = { ...u };
    if (patch.name !== undefined) {
      out.name = checkName('user.name', patch.name);
      const other = out.name !== u.name ? await this.store.identity.findUserByName(u.domainId, out.name) : undefined;
      if (other) throw conflict(`The domain already has a user named ${out.name}.`);
    }
    if (patch.password !== undefined) out.passwordHash = await hashPassword(checkPassword('user.password', patch.password));
    for (const f of ['domainAdmin', 'disabled'] as const) {
      if (patch[f] === undefined) continue;
      if (typeof patch[f] !== 'boolean') throw bad(`user.${f === 'domainAdmin' ? 'domain_admin' : f} must be true or false.`);
      out[f] = patch[f];
    }
    if (u.id === p.userId && (out.disabled || !out.domainAdmin)) throw conflict('You cannot disable yourself or drop your own domain administrator flag.');
    // A new password or a disabled user ends every IAM token of the user (security #13).
    const endTokens = out.passwordHash !== u.passwordHash || (out.disabled && !u.disabled);
    await this.store.transaction(async (tx) => {
      await tx.identity.upsertUser(out);
      if (endTokens) await tx.identity.deleteIamTokensOfUser(u.id);
    });
    if ((out.disabled && !u.disabled) || (u.domainAdmin && !out.domainAdmin)) await this.usersChanged([u.id]);
    return { user: out, roles: await this.store.identity.rolesOf(u.id) };
  }

  /** Deletes a user with their keys, tokens and role bindings. Never the caller. */
  async deleteUser(p: Principal, id: string): Promise<void> {
    this.access.requireDomainScope(p, 'admin:users:delete');
    const u = await this.access.user(p, id);
    if (u.id === p.userId) throw conflict('You cannot delete the user you are signed in as.');
    await this.store.identity.deleteUser(u.id);
    await this.usersChanged([u.id]);
  }

  async setRole(p: Principal, userId: string, projectId: string, role: unknown): Promise<UserView> {
    this.access.requireDomainScope(p, 'admin:roles:set');
    if (typeof role !== 'string' || !ROLES.includes(role as Role)) throw bad('role must be admin, operator or viewer.');
    const u = await this.access.user(p, userId);
    const pr = await this.access.project(p, projectId);
    if (pr.domainId !== u.domainId) throw bad('The user and the project belong to different domains.');
    await this.store.identity.setRole({ userId: u.id, projectId: pr.id, role: role as Role });
    if (role === 'viewer') await this.usersChanged([u.id]);
    return { user: u, roles: await this.store.identity.rolesOf(u.id) };
  }

  async removeRole(p: Principal, userId: string, projectId: string): Promise<UserView> {
    this.access.requireDomainScope(p, 'admin:roles:remove');
    const u = await this.access.user(p, userId);
    const pr = await this.access.project(p, projectId);
    if (!(await this.store.identity.removeRole(u.id, pr.id))) throw notFound('role binding', `${u.id}@${pr.id}`);
    await this.usersChanged([u.id]);
    return { user: u, roles: await this.store.identity.rolesOf(u.id) };
  }

  /** `preferred` unless a (renamed) user already holds it. */
  private async freeUserId(preferred: string): Promise<string> {
    return (await this.store.identity.getUser(preferred)) ? randomBytes(16).toString('hex') : preferred;
  }
}
