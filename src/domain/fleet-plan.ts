/**
 * Fleet apply in two steps. `planFleet` reads the store and compares it with a parsed fleet file:
 * it returns the changes (what a `--dry-run` prints) and the writes that make them, or throws
 * FleetError when the file conflicts with the store (a name or id that belongs to something else, a
 * prune that would delete the caller's own user). Everything slow or fallible — password hashing,
 * sealing, conflict checks — happens here, before anything is written. `executeFleetPlan` then runs
 * the writes in one store transaction: a file is applied whole or not at all.
 *
 * Matching: domains, projects and users by name (or by the id the file gives); machines by id, else
 * by (project, kind, name), so objects created through the admin API under the same names are the
 * same objects. With `prune`, the named domains lose what the file does not name: machines,
 * projects, users and role bindings. Other domains are never touched.
 *
 * Changing or deleting a machine revokes its outstanding console tokens (in the transaction); the
 * plan lists those machines in `revoked` so the caller can end their live sessions by policy.
 * A changed password or a disabled user deletes the user's IAM tokens (in the transaction); users
 * deleted, disabled or demoted (domain administrator flag dropped, a role removed or lowered to
 * viewer) are listed in `users` so the caller revokes their console links and ends their live
 * consoles (AdminServices.usersChanged).
 *
 * Authorization is the caller's (api/routes/admin-inventory.ts): every change names the domain it
 * is in (`domainId`), and `resolveFleetDomain` tells which stored domains a file's entry matches.
 * A domain the plan creates is recorded as an operator domain when its name is in
 * `operatorDomainNames` (given only when the gateway itself or an operator applies the file).
 */
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { ConsoleEndpoint, DomainRecord, ProjectRecord, ResourceKind, ResourceRecord, Role, Store, UserRecord } from '../store/types.js';
import type { BackendPolicy } from './backend-policy.js';
import { endpointsEqual, sealEndpoint } from './endpoint-spec.js';
import { FleetError, deriveUserId, type FleetSpec } from './fleet-model.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { SecretBox } from './secrets.js';

export type FleetObjectType = 'domain' | 'project' | 'user' | 'role' | ResourceKind;

export interface FleetChange {
  action: 'create' | 'update' | 'delete';
  type: FleetObjectType;
  id: string;
  /** domain · domain/project · domain/project/machine · domain/user · domain/user@project */
  name: string;
  /** The domain the object is in (the domain itself for domain changes): what authorization checks. */
  domainId: string;
  /** For updates: which fields change (never their values: some are secrets). */
  fields?: string[];
}

export interface FleetPlan {
  changes: FleetChange[];
  /** Objects the file names that are already as described. */
  unchanged: number;
  /** Machines changed or deleted: their console tokens are revoked, their sessions end by policy. */
  revoked: string[];
  /** Users deleted, disabled or demoted: their console links are revoked and their live consoles ended. */
  users: string[];
}

type Write = (tx: Store, now: number) => Promise<void>;

export interface PlannedFleet { plan: FleetPlan; writes: Write[] }

export interface PlanOptions {
  prune: boolean;
  /** The caller's own user: a prune that would delete it is refused. */
  protectUserId?: string;
  /** Names under which a created domain is recorded as an operator domain (admin.operator_domains). */
  operatorDomainNames?: ReadonlySet<string>;
  /** Where console endpoints may point (backends.allowed_networks); default anywhere. */
  backends?: BackendPolicy;
}

/**
 * The stored domains a file's domain entry matches: `byName` holds its name; `match` is the domain it
 * describes (the one with the id the file gives, else `byName`, else the one with the derived id).
 * `match` undefined: the plan creates it; `match.name` differing from the entry: the plan renames it.
 */
export async function resolveFleetDomain(store: Store, d: FleetSpec['domains'][number]): Promise<{ byName?: DomainRecord; match?: DomainRecord }> {
  const byName = await store.identity.findDomainByName(d.name);
  const match = d.idGiven ? await store.identity.getDomain(d.id) : byName ?? (await store.identity.getDomain(d.id));
  return { ...(byName ? { byName } : {}), ...(match ? { match } : {}) };
}

/** Deletes a machine: tokens revoked, probe result and the row removed. */
function deleteResourceWrite(id: string): Write {
  return async (tx, now) => {
    await tx.consoleTokens.revokeForResource(id, now);
    await tx.probes.delete(id);
    await tx.inventory.deleteResource(id);
  };
}

export async function planFleet(store: Store, secrets: SecretBox, spec: FleetSpec, opts: PlanOptions): Promise<PlannedFleet> {
  const problems: string[] = [];
  const changes: FleetChange[] = [];
  const writes: Write[] = [];
  const revoked: string[] = [];
  const users: string[] = [];
  let unchanged = 0;

  for (const d of spec.domains) {
    const { byName, match: dom } = await resolveFleetDomain(store, d);
    if (byName && dom && byName.id !== dom.id) problems.push(`domain ${d.name}: the name belongs to domain ${byName.id}, not ${dom.id}`);
    const domainId = dom?.id ?? d.id;
    const change = (c: Omit<FleetChange, 'domainId'>, w: Write[]) => { changes.push({ ...c, domainId }); writes.push(...w); };
    if (!dom) {
      const operator = opts.operatorDomainNames?.has(d.name) ?? false;
      change({ action: 'create', type: 'domain', id: domainId, name: d.name }, [(tx, now) => tx.identity.upsertDomain({ id: domainId, name: d.name, createdAt: now, operator })]);
    } else if (dom.name !== d.name) {
      // A rename keeps the operator flag as it is (upsertDomain writes it on insert only).
      change({ action: 'update', type: 'domain', id: domainId, name: d.name, fields: ['name'] }, [(tx) => tx.identity.upsertDomain({ ...dom, name: d.name })]);
    } else unchanged++;

    // Projects and their machines.
    const existingProjects: ProjectRecord[] = dom ? await store.identity.listProjects(domainId) : [];
    const projectIdByName = new Map<string, string>();
    const keptProjects = new Set<string>();
    for (const p of d.projects) {
      const named = existingProjects.find((x) => x.name === p.name);
      const proj = p.idGiven ? await store.identity.getProject(p.id) : named ?? (await store.identity.getProject(p.id));
      if (proj && proj.domainId !== domainId) { problems.push(`project ${d.name}/${p.name}: id ${proj.id} belongs to another domain`); continue; }
      if (named && proj && named.id !== proj.id) problems.push(`project ${d.name}/${p.name}: the name belongs to project ${named.id}`);
      const pid = proj?.id ?? p.id;
      projectIdByName.set(p.name, pid);
      keptProjects.add(pid);
      const label = `${d.name}/${p.name}`;
      if (!proj) change({ action: 'create', type: 'project', id: pid, name: label }, [(tx, now) => tx.identity.upsertProject({ id: pid, domainId, name: p.name, createdAt: now })]);
      else if (proj.name !== p.name) change({ action: 'update', type: 'project', id: pid, name: label, fields: ['name'] }, [(tx) => tx.identity.upsertProject({ ...proj, name: p.name })]);
      else unchanged++;

      const existing: ResourceRecord[] = proj ? await store.inventory.listResources({ projectId: pid }) : [];
      const kept = new Set<string>();
      for (const r of p.resources) {
        let prev = await store.inventory.getResourceById(r.id);
        if (!prev && !r.idGiven) prev = existing.find((x) => x.kind === r.kind && x.name === r.name);
        const rlabel = `${label}/${r.name}`;
        if (prev && (prev.projectId !== pid || prev.kind !== r.kind)) { problems.push(`${r.kind} ${rlabel}: id ${prev.id} belongs to another project or kind`); continue; }
        const rid = prev?.id ?? r.id;
        if (kept.has(rid)) { problems.push(`${r.kind} ${rlabel}: names the same machine (${rid}) twice`); continue; }
        kept.add(rid);
        const hostProblem = r.console && opts.backends?.hostProblem(r.console.host, r.console.port);
        if (hostProblem) { problems.push(`${r.kind} ${rlabel}: console.url: ${hostProblem}`); continue; }
        let endpoint: ConsoleEndpoint | null;
        try {
          endpoint = r.console ? sealEndpoint(secrets, rid, r.console, prev?.endpoint) : null;
        } catch (err) {
          problems.push(`${r.kind} ${rlabel}: its console secrets cannot be sealed (${(err as Error).message})`);
          continue;
        }
        const record = { id: rid, projectId: pid, kind: r.kind, name: r.name, status: r.status, attributes: r.attributes, endpoint };
        const upsert: Write = (tx, now) => tx.inventory.upsertResource(record, now).then(() => undefined);
        if (!prev) { change({ action: 'create', type: r.kind, id: rid, name: rlabel }, [upsert]); continue; }
        const fields: string[] = [];
        if (prev.name !== r.name) fields.push('name');
        if (prev.status !== r.status) fields.push('status');
        if (!isDeepStrictEqual(prev.attributes, r.attributes)) fields.push('attributes');
        if (!endpointsEqual(prev.endpoint, endpoint)) fields.push('console');
        if (fields.length === 0) { unchanged++; continue; }
        revoked.push(rid);
        change({ action: 'update', type: r.kind, id: rid, name: rlabel, fields }, [upsert, (tx, now) => tx.consoleTokens.revokeForResource(rid, now).then(() => undefined)]);
      }
      if (opts.prune) {
        for (const x of existing) {
          if (kept.has(x.id)) continue;
          revoked.push(x.id);
          change({ action: 'delete', type: x.kind, id: x.id, name: `${label}/${x.name}` }, [deleteResourceWrite(x.id)]);
        }
      }
    }
    if (opts.prune) {
      for (const x of existingProjects) {
        if (keptProjects.has(x.id)) continue;
        for (const r of await store.inventory.listResources({ projectId: x.id })) {
          revoked.push(r.id);
          change({ action: 'delete', type: r.kind, id: r.id, name: `${d.name}/${x.name}/${r.name}` }, [deleteResourceWrite(r.id)]);
        }
        change({ action: 'delete', type: 'project', id: x.id, name: `${d.name}/${x.name}` }, [(tx) => tx.identity.deleteProject(x.id).then(() => undefined)]);
      }
    }

    // Users and their role bindings.
    const existingUsers: UserRecord[] = dom ? await store.identity.listUsers(domainId) : [];
    const domainProjects = new Set([...existingProjects.map((x) => x.id), ...projectIdByName.values()]);
    const keptUsers = new Set<string>();
    for (const u of d.users) {
      const prev = existingUsers.find((x) => x.name === u.name);
      let uid = prev?.id ?? deriveUserId(d.name, u.name);
      // A derived id already taken (a user renamed through the API) must not be overwritten.
      if (!prev && (await store.identity.getUser(uid))) uid = randomBytes(16).toString('hex');
      keptUsers.add(uid);
      const ulabel = `${d.name}/${u.name}`;
      const disabled = u.disabled ?? false;
      if (!prev) {
        const rec: UserRecord = {
          id: uid, domainId, name: u.name, passwordHash: await hashPassword(u.password), domainAdmin: u.domainAdmin, disabled,
          passwordExpiresAt: null, createdAt: 0,
        };
        change({ action: 'create', type: 'user', id: uid, name: ulabel }, [(tx, now) => tx.identity.upsertUser({ ...rec, createdAt: now })]);
      } else {
        const fields: string[] = [];
        const samePassword = await verifyPassword(u.password, prev.passwordHash);
        if (!samePassword) fields.push('password');
        if (prev.domainAdmin !== u.domainAdmin) fields.push('domain_admin');
        if (prev.disabled !== disabled) fields.push('disabled');
        if (fields.length === 0) unchanged++;
        else {
          const rec: UserRecord = { ...prev, passwordHash: samePassword ? prev.passwordHash : await hashPassword(u.password), domainAdmin: u.domainAdmin, disabled };
          // A new password or a disabled user ends every IAM token of the user (security #13).
          const endTokens = !samePassword || (disabled && !prev.disabled);
          if ((disabled && !prev.disabled) || (prev.domainAdmin && !u.domainAdmin)) users.push(uid);
          change({ action: 'update', type: 'user', id: uid, name: ulabel, fields }, [async (tx) => {
            await tx.identity.upsertUser(rec);
            if (endTokens) await tx.identity.deleteIamTokensOfUser(uid);
          }]);
        }
      }
      const current = new Map<string, Role>(prev ? (await store.identity.rolesOf(uid)).map((b) => [b.projectId, b.role]) : []);
      const desired = new Map<string, Role>();
      for (const [pn, role] of Object.entries(u.roles)) {
        const pid = projectIdByName.get(pn);
        if (pid !== undefined) desired.set(pid, role);
      }
      for (const [pid, role] of desired) {
        const was = current.get(pid);
        const pname = [...projectIdByName].find(([, id]) => id === pid)?.[0] ?? pid;
        if (was === role) { unchanged++; continue; }
        if (role === 'viewer' && was !== undefined) users.push(uid);
        change({ action: was === undefined ? 'create' : 'update', type: 'role', id: `${uid}:${pid}`, name: `${ulabel}@${pname}`, ...(was === undefined ? {} : { fields: ['role'] }) },
          [(tx) => tx.identity.setRole({ userId: uid, projectId: pid, role })]);
      }
      if (opts.prune) {
        for (const [pid] of current) {
          if (desired.has(pid) || !domainProjects.has(pid)) continue;
          const pname = existingProjects.find((x) => x.id === pid)?.name ?? pid;
          users.push(uid);
          change({ action: 'delete', type: 'role', id: `${uid}:${pid}`, name: `${ulabel}@${pname}` }, [(tx) => tx.identity.removeRole(uid, pid).then(() => undefined)]);
        }
      }
    }
    if (opts.prune) {
      for (const x of existingUsers) {
        if (keptUsers.has(x.id)) continue;
        if (x.id === opts.protectUserId) { problems.push(`user ${d.name}/${x.name}: the file does not name it, but it is the user applying the file; add it or apply as another user`); continue; }
        users.push(x.id);
        change({ action: 'delete', type: 'user', id: x.id, name: `${d.name}/${x.name}` }, [(tx) => tx.identity.deleteUser(x.id).then(() => undefined)]);
      }
    }
  }
  if (problems.length > 0) throw new FleetError(problems);
  return { plan: { changes, unchanged, revoked: [...new Set(revoked)], users: [...new Set(users)] }, writes };
}

/** Runs the plan's writes in one transaction (all or nothing). */
export async function executeFleetPlan(store: Store, planned: PlannedFleet, now: number): Promise<void> {
  if (planned.writes.length === 0) return;
  await store.transaction(async (tx) => {
    for (const w of planned.writes) await w(tx, now);
  });
}
