/**
 * Who may do what. Each API names its action (IAM style, e.g. `ecs:cloudServers:vnc`); an action needs
 * a minimum role in the path's project. A domain administrator may do everything in the domain's
 * projects. Credentials scoped to one project never act on another (403 before any lookup, so no field
 * of another project's resources can leak).
 */
import { ApiError } from '../errors.js';
import type { Role } from '../store/types.js';

export interface Principal {
  userId: string;
  userName: string;
  domainId: string;
  domainName: string;
  /** The project the credential is scoped to (IAM project-scoped token, or AK/SK with X-Project-Id); null = domain scope. */
  scopeProjectId: string | null;
  domainAdmin: boolean;
  /**
   * The principal's domain (by id) is a recorded operator domain (DomainRecord.operator). Whether its
   * administrators operate the gateway is decided by AdminAccess.isOperator (domain/directory.ts).
   */
  operatorDomain: boolean;
  /** Role per project id. */
  roles: ReadonlyMap<string, Role>;
  via: 'token' | 'aksk';
  accessKey?: string;
}

export type Action =
  | 'ecs:cloudServers:vnc'
  | 'ecs:cloudServers:get'
  | 'clouddc:physicalServers:console'
  | 'clouddc:physicalServers:get'
  | 'workspace:desktops:createConsole'
  | 'workspace:desktops:get'
  | 'ecs:cloudServers:list'
  | 'clouddc:physicalServers:list'
  | 'workspace:desktops:list'
  // Remote assistance (routes/assistance.ts). Creating needs the right to open the desktop's console
  // (security #7: else a viewer assigned to it could watch it by joining their own space). The others'
  // minimum lets the desktop's assigned user in; the route then requires operator (or admin) unless the
  // caller is that user, and shows the join password only to who may open the console. respond: that user only.
  | 'workspace:desktops:createRemoteAssistance'
  | 'workspace:desktops:getRemoteAssistance'
  | 'workspace:desktops:cancelRemoteAssistance'
  | 'workspace:desktops:respondRemoteAssistance';

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export const ACTION_MIN_ROLE: Record<Action, Role> = {
  'ecs:cloudServers:vnc': 'operator',
  'ecs:cloudServers:get': 'viewer',
  'clouddc:physicalServers:console': 'operator',
  'clouddc:physicalServers:get': 'viewer',
  'workspace:desktops:createConsole': 'operator',
  'workspace:desktops:get': 'viewer',
  'ecs:cloudServers:list': 'viewer',
  'clouddc:physicalServers:list': 'viewer',
  'workspace:desktops:list': 'viewer',
  'workspace:desktops:createRemoteAssistance': 'operator',
  'workspace:desktops:getRemoteAssistance': 'viewer',
  'workspace:desktops:cancelRemoteAssistance': 'viewer',
  'workspace:desktops:respondRemoteAssistance': 'viewer',
};

/** Operator or admin in the project, or administrator of its domain (authorize() has checked the domain). */
export function mayOperate(p: Principal, projectId: string): boolean {
  if (p.domainAdmin) return true;
  const role = p.roles.get(projectId);
  return role !== undefined && RANK[role] >= RANK.operator;
}

/**
 * Actions outside any project: a user's own access keys, and the domain's audit trail. IAM names
 * (Huawei `iam:credentials:*`) where one exists.
 */
export type UserAction =
  | 'iam:credentials:createCredential'
  | 'iam:credentials:listCredentials'
  | 'iam:credentials:getCredential'
  | 'iam:credentials:updateCredential'
  | 'iam:credentials:deleteCredential';
export type DomainAction = 'admin:auditEvents:list';

/**
 * Domain-wide powers: an administrator of the domain holding a domain-scoped credential. A credential
 * scoped to one project never acts domain-wide, whoever holds it (security review #3).
 */
export function actsDomainWide(p: Principal): boolean {
  return p.domainAdmin && p.scopeProjectId === null;
}

/**
 * May `p` act on user `target`'s own things (their access keys)? The user themself, or an
 * administrator of the user's domain with a domain-scoped credential.
 */
export function mayActOnUser(p: Principal, target: { id: string; domainId: string }): boolean {
  return p.userId === target.id || (actsDomainWide(p) && p.domainId === target.domainId);
}

/** Throws 403 unless `p` acts domain-wide (domain-wide actions such as the audit trail). */
export function authorizeDomainAdmin(p: Principal, action: DomainAction): void {
  if (!p.domainAdmin) throw new ApiError('forbidden', `The IAM user is not authorized to perform ${action}: a domain administrator is required.`);
  if (p.scopeProjectId !== null) throw new ApiError('forbidden', `The IAM user is not authorized to perform ${action}: a domain-scoped credential is required.`);
}

/** Throws 403 unless `p` may perform `action` in `projectId` (whose domain is `projectDomainId`, or undefined if unknown). */
export function authorize(p: Principal, projectId: string, projectDomainId: string | undefined, action: Action): void {
  if (p.scopeProjectId !== null && p.scopeProjectId !== projectId) throw new ApiError('project_mismatch');
  if (projectDomainId !== undefined && projectDomainId !== p.domainId) throw new ApiError('project_mismatch');
  if (p.domainAdmin && projectDomainId === p.domainId) return;
  const role = p.roles.get(projectId);
  if (role === undefined) throw new ApiError('forbidden', `The IAM user is not authorized to access the API: no role in project ${projectId}.`, { code: 'APIGW.0302' });
  if (RANK[role] < RANK[ACTION_MIN_ROLE[action]]) {
    throw new ApiError('forbidden', `The IAM user is not authorized to perform ${action}.`, { code: 'APIGW.0302' });
  }
}
