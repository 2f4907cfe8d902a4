/**
 * Fleet files: a declarative YAML description of domains, projects, users (with roles) and machines
 * (cloud servers, physical servers, desktops) with their console endpoints. `parseFleet` validates the
 * whole file first and reports every problem with its line number; `applyFleet` then converges the
 * store to it idempotently (a second apply changes nothing: unchanged passwords keep their hash,
 * unchanged VNC passwords keep their sealed value, so no token is revoked needlessly).
 */
import { createHash } from 'node:crypto';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { EndpointSecurity, ResourceKind, Role, Store, ConsoleEndpoint } from '../store/types.js';
import type { Clock } from './clock.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { SecretBox } from './secrets.js';

export interface FleetEndpoint { host: string; port: number; security: EndpointSecurity; password: string | null; zone: string | null }
export interface FleetResource { id: string; kind: ResourceKind; name: string; status: string; attributes: Record<string, unknown>; console: FleetEndpoint | null }
export interface FleetUser { name: string; password: string; domainAdmin: boolean; roles: Record<string, Role> }
export interface FleetProject { id: string; name: string; resources: FleetResource[] }
export interface FleetDomain { id: string; name: string; users: FleetUser[]; projects: FleetProject[] }
export interface FleetSpec { domains: FleetDomain[] }

export class FleetError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid fleet file:\n  ${problems.join('\n  ')}`);
    this.name = 'FleetError';
  }
}

const hex = (s: string) => createHash('sha256').update(s).digest('hex');
/** Stable ids derived from names, so a fleet file need not invent ids and re-applying finds the same rows. */
export const deriveProjectId = (domain: string, project: string) => hex(`project:${domain}/${project}`).slice(0, 32);
export const deriveDomainId = (domain: string) => hex(`domain:${domain}`).slice(0, 32);
export const deriveUserId = (domain: string, user: string) => hex(`user:${domain}/${user}`).slice(0, 32);
export function deriveResourceId(projectId: string, kind: string, name: string): string {
  const h = hex(`resource:${projectId}/${kind}/${name}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/;
const ZONE_RE = /^[A-Za-z0-9._-]{1,64}$/;
const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];
const KIND_KEYS: Record<string, ResourceKind> = { cloudservers: 'cloudserver', physicalservers: 'physicalserver', desktops: 'desktop' };

/** Parses `vnc://host:port`. */
export function parseVncUrl(url: string): { host: string; port: number } | undefined {
  const m = /^vnc:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/.exec(url);
  if (!m) return undefined;
  const port = m[2] === undefined ? 5900 : Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function parseFleet(text: string, source = 'fleet'): FleetSpec {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  const problems: string[] = [];
  for (const e of doc.errors) problems.push(`${source}:${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`);
  if (problems.length) throw new FleetError(problems);
  const at = (path: (string | number)[]): string => {
    const node = (doc as Document).getIn(path, true) as { range?: [number, number, number] } | undefined;
    const line = node?.range ? lc.linePos(node.range[0]).line : undefined;
    return `${source}:${line ?? '?'}: ${path.join('.')}`;
  };
  const root = doc.toJS() as unknown;
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(root)) throw new FleetError([`${source}:1: the file must be a mapping with a domains: list`]);
  const allowKeys = (obj: Record<string, unknown>, keys: string[], path: (string | number)[]) => {
    for (const k of Object.keys(obj)) if (!keys.includes(k)) problems.push(`${at([...path, k])}: unknown key`);
  };
  allowKeys(root, ['domains'], []);
  const domains: FleetDomain[] = [];
  const seenIds = new Set<string>();
  const list = (v: unknown, path: (string | number)[]): unknown[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) { problems.push(`${at(path)}: must be a list`); return []; }
    return v;
  };
  const name = (v: unknown, path: (string | number)[]): string => {
    if (typeof v !== 'string' || !NAME_RE.test(v)) { problems.push(`${at(path)}: must be a name of 1–64 letters, digits, space . _ @ -`); return ''; }
    return v;
  };
  list(root.domains, ['domains']).forEach((d, di) => {
    const dp = ['domains', di];
    if (!isObj(d)) { problems.push(`${at(dp)}: must be a mapping`); return; }
    allowKeys(d, ['name', 'id', 'users', 'projects'], dp);
    const dname = name(d.name, [...dp, 'name']);
    const did = typeof d.id === 'string' && /^[0-9a-f]{32}$/.test(d.id) ? d.id : deriveDomainId(dname);
    if (d.id !== undefined && did !== d.id) problems.push(`${at([...dp, 'id'])}: must be 32 lower-case hex characters`);
    const projects: FleetProject[] = [];
    list(d.projects, [...dp, 'projects']).forEach((p, pi) => {
      const pp = [...dp, 'projects', pi];
      if (!isObj(p)) { problems.push(`${at(pp)}: must be a mapping`); return; }
      allowKeys(p, ['name', 'id', 'cloudservers', 'physicalservers', 'desktops'], pp);
      const pname = name(p.name, [...pp, 'name']);
      let pid = deriveProjectId(dname, pname);
      if (p.id !== undefined) {
        if (typeof p.id === 'string' && /^[0-9a-f]{32}$/.test(p.id)) pid = p.id;
        else problems.push(`${at([...pp, 'id'])}: must be 32 lower-case hex characters`);
      }
      const resources: FleetResource[] = [];
      for (const [key, kind] of Object.entries(KIND_KEYS)) {
        list(p[key], [...pp, key]).forEach((r, ri) => {
          const rp = [...pp, key, ri];
          if (!isObj(r)) { problems.push(`${at(rp)}: must be a mapping`); return; }
          allowKeys(r, ['id', 'name', 'status', 'console', 'attributes'], rp);
          const rname = name(r.name, [...rp, 'name']);
          let rid = deriveResourceId(pid, kind, rname);
          if (r.id !== undefined) {
            if (typeof r.id === 'string' && UUID_RE.test(r.id)) rid = r.id;
            else problems.push(`${at([...rp, 'id'])}: must be a lower-case UUID`);
          }
          if (seenIds.has(rid)) problems.push(`${at(rp)}: duplicate resource id ${rid}`);
          seenIds.add(rid);
          const status = r.status === undefined ? 'ACTIVE' : r.status;
          if (typeof status !== 'string' || !/^[A-Z_]{2,32}$/.test(status)) problems.push(`${at([...rp, 'status'])}: must be an upper-case status such as ACTIVE or SHUTOFF`);
          let attributes: Record<string, unknown> = {};
          if (r.attributes !== undefined) {
            if (isObj(r.attributes)) attributes = r.attributes;
            else problems.push(`${at([...rp, 'attributes'])}: must be a mapping`);
          }
          let endpoint: FleetEndpoint | null = null;
          if (r.console !== undefined && r.console !== null) {
            const cp = [...rp, 'console'];
            const c = r.console;
            if (!isObj(c)) problems.push(`${at(cp)}: must be a mapping`);
            else {
              allowKeys(c, ['url', 'security', 'password', 'zone'], cp);
              const parsed = typeof c.url === 'string' ? parseVncUrl(c.url) : undefined;
              if (!parsed) problems.push(`${at([...cp, 'url'])}: must be vnc://host:port`);
              const security = c.security ?? (c.password !== undefined ? 'vncauth' : 'none');
              if (security !== 'none' && security !== 'vncauth') problems.push(`${at([...cp, 'security'])}: must be none or vncauth`);
              if (security === 'vncauth' && (typeof c.password !== 'string' || c.password.length === 0)) problems.push(`${at([...cp, 'password'])}: vncauth needs a password`);
              if (c.zone !== undefined && (typeof c.zone !== 'string' || !ZONE_RE.test(c.zone))) problems.push(`${at([...cp, 'zone'])}: must be 1–64 of A-Z a-z 0-9 . _ -`);
              if (parsed) endpoint = { ...parsed, security: security as EndpointSecurity, password: typeof c.password === 'string' ? c.password : null, zone: typeof c.zone === 'string' ? c.zone : null };
            }
          }
          resources.push({ id: rid, kind, name: rname, status: typeof status === 'string' ? status : 'ACTIVE', attributes, console: endpoint });
        });
      }
      projects.push({ id: pid, name: pname, resources });
    });
    const projectNames = new Set(projects.map((p) => p.name));
    const users: FleetUser[] = [];
    list(d.users, [...dp, 'users']).forEach((u, ui) => {
      const up = [...dp, 'users', ui];
      if (!isObj(u)) { problems.push(`${at(up)}: must be a mapping`); return; }
      allowKeys(u, ['name', 'password', 'domain_admin', 'roles'], up);
      const uname = name(u.name, [...up, 'name']);
      if (typeof u.password !== 'string' || u.password.length < 8) problems.push(`${at([...up, 'password'])}: must be at least 8 characters`);
      const roles: Record<string, Role> = {};
      if (u.roles !== undefined) {
        if (!isObj(u.roles)) problems.push(`${at([...up, 'roles'])}: must map project names to roles`);
        else for (const [pn, role] of Object.entries(u.roles)) {
          if (!projectNames.has(pn)) problems.push(`${at([...up, 'roles', pn])}: no project named ${pn} in this domain`);
          if (!ROLES.includes(role as Role)) problems.push(`${at([...up, 'roles', pn])}: role must be admin, operator or viewer`);
          roles[pn] = role as Role;
        }
      }
      users.push({ name: uname, password: typeof u.password === 'string' ? u.password : '', domainAdmin: u.domain_admin === true, roles });
    });
    domains.push({ id: did, name: dname, users, projects });
  });
  if (problems.length) throw new FleetError(problems);
  return { domains };
}

export interface ApplyResult { created: number; updated: number; unchanged: number; revokedResources: string[] }

/** Converges the store to `spec`. Endpoint changes are reported so callers revoke tokens and sessions. */
export async function applyFleet(store: Store, secrets: SecretBox, clock: Clock, spec: FleetSpec): Promise<ApplyResult> {
  const res: ApplyResult = { created: 0, updated: 0, unchanged: 0, revokedResources: [] };
  const now = clock.now();
  for (const d of spec.domains) {
    const existingDomain = await store.identity.getDomain(d.id);
    if (!existingDomain || existingDomain.name !== d.name) await store.identity.upsertDomain({ id: d.id, name: d.name, createdAt: existingDomain?.createdAt ?? now });
    const projectIds = new Map<string, string>();
    for (const p of d.projects) {
      projectIds.set(p.name, p.id);
      const existing = await store.identity.getProject(p.id);
      if (!existing || existing.name !== p.name) await store.identity.upsertProject({ id: p.id, domainId: d.id, name: p.name, createdAt: existing?.createdAt ?? now });
      for (const r of p.resources) {
        const prev = await store.inventory.getResourceById(r.id);
        let endpoint: ConsoleEndpoint | null = null;
        if (r.console) {
          let sealed: string | null = null;
          if (r.console.password !== null) {
            const aad = `endpoint:${r.id}`;
            const prevSealed = prev?.endpoint?.passwordSealed ?? null;
            let same = false;
            if (prevSealed !== null) { try { same = secrets.open(prevSealed, aad) === r.console.password; } catch { same = false; } }
            sealed = same ? prevSealed : secrets.seal(r.console.password, aad);
          }
          endpoint = { host: r.console.host, port: r.console.port, security: r.console.security, passwordSealed: sealed, zone: r.console.zone };
        }
        const unchanged = prev !== undefined && prev.name === r.name && prev.status === r.status && prev.projectId === p.id &&
          JSON.stringify(prev.attributes) === JSON.stringify(r.attributes) && JSON.stringify(prev.endpoint) === JSON.stringify(endpoint);
        if (unchanged) { res.unchanged++; continue; }
        const out = await store.inventory.upsertResource({ id: r.id, projectId: p.id, kind: r.kind, name: r.name, status: r.status, attributes: r.attributes, endpoint }, now);
        if (out.created) res.created++; else res.updated++;
        if (out.endpointChanged) {
          await store.consoleTokens.revokeForResource(r.id, now);
          res.revokedResources.push(r.id);
        }
      }
    }
    for (const u of d.users) {
      const id = deriveUserId(d.name, u.name);
      const prev = await store.identity.findUserByName(d.id, u.name);
      const keepHash = prev !== undefined && (await verifyPassword(u.password, prev.passwordHash));
      if (!prev || !keepHash || prev.domainAdmin !== u.domainAdmin) {
        await store.identity.upsertUser({
          id: prev?.id ?? id, domainId: d.id, name: u.name, passwordHash: keepHash ? prev!.passwordHash : await hashPassword(u.password),
          domainAdmin: u.domainAdmin, disabled: false, passwordExpiresAt: null, createdAt: prev?.createdAt ?? now,
        });
        if (prev) res.updated++; else res.created++;
      } else res.unchanged++;
      const userId = prev?.id ?? id;
      const current = new Map((await store.identity.rolesOf(userId)).map((b) => [b.projectId, b.role]));
      for (const [pn, role] of Object.entries(u.roles)) {
        const pid = projectIds.get(pn)!;
        if (current.get(pid) !== role) await store.identity.setRole({ userId, projectId: pid, role });
      }
    }
  }
  return res;
}
