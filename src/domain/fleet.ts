/**
 * Fleet files: a declarative YAML description of domains, projects, users (with roles) and machines
 * (cloud servers, physical servers, desktops) with their console endpoints. `parseFleet` validates the
 * whole file first and reports every problem with its line number; `applyFleet` then converges the
 * store to it in one transaction (domain/fleet-plan.ts): idempotent (a second apply changes nothing:
 * unchanged passwords keep their hash, unchanged secrets keep their sealed value, so no token is
 * revoked needlessly), all or nothing, and with `prune` it removes what the file no longer names.
 */
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { ResourceKind, Role, Store } from '../store/types.js';
import type { Clock } from './clock.js';
import { desktopAttributeProblems } from './desktop.js';
import { checkEndpoint } from './endpoint-spec.js';
import { ENDPOINT_OPTION_KEYS } from './endpoint-options.js';
import {
  FleetError, HEX32_RE, MIN_PASSWORD_LENGTH, NAME_RE, STATUS_RE, UUID_RE, deriveDomainId, deriveProjectId, deriveResourceId,
  type FleetDomain, type FleetEndpoint, type FleetProject, type FleetResource, type FleetSpec, type FleetUser,
} from './fleet-model.js';
import { executeFleetPlan, planFleet, type FleetPlan, type PlanOptions } from './fleet-plan.js';
import type { SecretBox } from './secrets.js';

export {
  FleetError, deriveDomainId, deriveProjectId, deriveResourceId, deriveUserId,
  type FleetDomain, type FleetEndpoint, type FleetProject, type FleetResource, type FleetSpec, type FleetUser,
} from './fleet-model.js';
export { parseVncUrl } from './endpoint-spec.js';

const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];
const KIND_KEYS: Record<string, ResourceKind> = { cloudservers: 'cloudserver', physicalservers: 'physicalserver', desktops: 'desktop' };
const CONSOLE_KEYS = ['url', 'security', 'password', 'zone', 'ca_cert', 'client_cert', 'client_key', ...ENDPOINT_OPTION_KEYS];

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
    const did = typeof d.id === 'string' && HEX32_RE.test(d.id) ? d.id : deriveDomainId(dname);
    if (d.id !== undefined && did !== d.id) problems.push(`${at([...dp, 'id'])}: must be 32 lower-case hex characters`);
    const projects: FleetProject[] = [];
    list(d.projects, [...dp, 'projects']).forEach((p, pi) => {
      const pp = [...dp, 'projects', pi];
      if (!isObj(p)) { problems.push(`${at(pp)}: must be a mapping`); return; }
      allowKeys(p, ['name', 'id', 'cloudservers', 'physicalservers', 'desktops'], pp);
      const pname = name(p.name, [...pp, 'name']);
      let pid = deriveProjectId(dname, pname);
      if (p.id !== undefined) {
        if (typeof p.id === 'string' && HEX32_RE.test(p.id)) pid = p.id;
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
          if (typeof status !== 'string' || !STATUS_RE.test(status)) problems.push(`${at([...rp, 'status'])}: must be an upper-case status such as ACTIVE or SHUTOFF`);
          let attributes: Record<string, unknown> = {};
          if (r.attributes !== undefined) {
            if (isObj(r.attributes)) attributes = r.attributes;
            else problems.push(`${at([...rp, 'attributes'])}: must be a mapping`);
          }
          if (kind === 'desktop') for (const pr of desktopAttributeProblems(attributes)) problems.push(`${at([...rp, 'attributes', ...pr.path])}: ${pr.message}`);
          let endpoint: FleetEndpoint | null = null;
          if (r.console !== undefined && r.console !== null) {
            const cp = [...rp, 'console'];
            const c = r.console;
            if (!isObj(c)) problems.push(`${at(cp)}: must be a mapping`);
            else {
              allowKeys(c, CONSOLE_KEYS, cp);
              const checked = checkEndpoint(c);
              for (const pr of checked.problems) problems.push(`${at(c[pr.field] === undefined ? cp : [...cp, pr.field])}${c[pr.field] === undefined ? '.' + pr.field : ''}: ${pr.message}`);
              const e = checked.spec;
              if (e) {
                endpoint = { host: e.host, port: e.port, security: e.security, password: e.password, zone: e.zone };
                if (e.security === 'vencrypt') Object.assign(endpoint, { caCert: e.caCert, clientCert: e.clientCert, clientKey: e.clientKey });
                if (e.options) endpoint.options = e.options;
              }
            }
          }
          resources.push({ id: rid, kind, name: rname, status: typeof status === 'string' ? status : 'ACTIVE', attributes, console: endpoint, idGiven: r.id !== undefined });
        });
      }
      projects.push({ id: pid, name: pname, resources, idGiven: p.id !== undefined });
    });
    const projectNames = new Set(projects.map((p) => p.name));
    const users: FleetUser[] = [];
    list(d.users, [...dp, 'users']).forEach((u, ui) => {
      const up = [...dp, 'users', ui];
      if (!isObj(u)) { problems.push(`${at(up)}: must be a mapping`); return; }
      allowKeys(u, ['name', 'password', 'domain_admin', 'disabled', 'roles'], up);
      const uname = name(u.name, [...up, 'name']);
      if (typeof u.password !== 'string' || u.password.length < MIN_PASSWORD_LENGTH) problems.push(`${at([...up, 'password'])}: must be at least ${MIN_PASSWORD_LENGTH} characters`);
      for (const flag of ['domain_admin', 'disabled']) if (u[flag] !== undefined && typeof u[flag] !== 'boolean') problems.push(`${at([...up, flag])}: must be true or false`);
      const roles: Record<string, Role> = {};
      if (u.roles !== undefined) {
        if (!isObj(u.roles)) problems.push(`${at([...up, 'roles'])}: must map project names to roles`);
        else for (const [pn, role] of Object.entries(u.roles)) {
          if (!projectNames.has(pn)) problems.push(`${at([...up, 'roles', pn])}: no project named ${pn} in this domain`);
          if (!ROLES.includes(role as Role)) problems.push(`${at([...up, 'roles', pn])}: role must be admin, operator or viewer`);
          roles[pn] = role as Role;
        }
      }
      users.push({ name: uname, password: typeof u.password === 'string' ? u.password : '', domainAdmin: u.domain_admin === true, disabled: u.disabled === true, roles });
    });
    const userNames = new Set<string>();
    users.forEach((u, ui) => { if (userNames.has(u.name)) problems.push(`${at([...dp, 'users', ui, 'name'])}: duplicate user ${u.name}`); userNames.add(u.name); });
    const pNames = new Set<string>();
    projects.forEach((p, pi) => { if (pNames.has(p.name)) problems.push(`${at([...dp, 'projects', pi, 'name'])}: duplicate project ${p.name}`); pNames.add(p.name); });
    domains.push({ id: did, name: dname, users, projects, idGiven: d.id !== undefined });
  });
  const domainNames = new Set<string>();
  domains.forEach((d, di) => { if (domainNames.has(d.name)) problems.push(`${at(['domains', di, 'name'])}: duplicate domain ${d.name}`); domainNames.add(d.name); });
  if (problems.length) throw new FleetError(problems);
  return { domains };
}

export interface ApplyResult { created: number; updated: number; deleted: number; unchanged: number; revokedResources: string[]; plan: FleetPlan }

/**
 * Converges the store to `spec` in one transaction and revokes the outstanding console tokens of
 * every changed or deleted machine. Callers end the live sessions of `revokedResources` (by policy).
 * Throws FleetError (nothing written) when the file conflicts with the store.
 */
export async function applyFleet(
  store: Store, secrets: SecretBox, clock: Clock, spec: FleetSpec,
  opts: Partial<PlanOptions> = {},
): Promise<ApplyResult> {
  const planned = await planFleet(store, secrets, spec, { ...opts, prune: opts.prune ?? false });
  await executeFleetPlan(store, planned, clock.now());
  const count = (a: string) => planned.plan.changes.filter((c) => c.action === a).length;
  return { created: count('create'), updated: count('update'), deleted: count('delete'), unchanged: planned.plan.unchanged, revokedResources: planned.plan.revoked, plan: planned.plan };
}
