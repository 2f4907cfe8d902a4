/**
 * What a fleet file describes once parsed (domain/fleet.ts), the ids derived from names, and the
 * error a refused file gets. Shared by the parser and the planner (domain/fleet-plan.ts), which is
 * why it is its own module.
 */
import { createHash } from 'node:crypto';
import type { ResourceKind, Role } from '../store/types.js';
import type { EndpointFields } from './endpoint-spec.js';

/** A machine's console as the file gives it, checked by endpoint-spec's checkEndpoint like the admin API's. */
export type FleetEndpoint = EndpointFields;
export interface FleetResource {
  id: string;
  kind: ResourceKind;
  name: string;
  status: string;
  attributes: Record<string, unknown>;
  console: FleetEndpoint | null;
  /** The file gave the id (otherwise it was derived from the names). */
  idGiven?: boolean;
}
export interface FleetUser { name: string; password: string; domainAdmin: boolean; roles: Record<string, Role>; disabled?: boolean }
export interface FleetProject { id: string; name: string; resources: FleetResource[]; idGiven?: boolean }
export interface FleetDomain { id: string; name: string; users: FleetUser[]; projects: FleetProject[]; idGiven?: boolean }
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

/** Names of domains, projects, users and machines. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/;
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const HEX32_RE = /^[0-9a-f]{32}$/;
/** Resource status as stored: upper case (ACTIVE, SHUTOFF, …). */
export const STATUS_RE = /^[A-Z_]{2,32}$/;
export const MIN_PASSWORD_LENGTH = 8;
