/**
 * Porthole's admin API.
 *  - GET /admin/v1/audit-events?since=&until=&actor=&resource_id=&action=&result=&limit=&offset=
 *    → {events:[…], count} (newest first; `count` = all matching events, for paging).
 * Domain administrators only; they see the events of their domain: calls by its users and keys, and
 * calls about its projects (including refused ones). Times are ISO-8601 or epoch milliseconds;
 * `since` is inclusive, `until` exclusive. Errors: `{error_code: "PH.04xx", error_msg, request_id}`.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import { authorizeDomainAdmin } from '../../domain/authz.js';
import type { AuditEvent, AuditFilter } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { setNoStore } from '../http.js';
import type { makeAuthenticate } from '../auth.js';

type Authenticate = ReturnType<typeof makeAuthenticate>;

export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 1000;
const MAX_OFFSET = 1_000_000;
const MAX_FILTER_LENGTH = 128;

const ISO_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** ISO-8601 or epoch ms → epoch ms. */
export function parseTime(name: string, v: string): number {
  if (/^\d{1,15}$/.test(v)) return Number(v);
  const ms = ISO_RE.test(v) ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms)) throw new ApiError('bad_request', `Query parameter ${name} must be an ISO-8601 time or epoch milliseconds.`);
  return ms;
}

function parseInteger(name: string, v: string, min: number, max: number): number {
  const n = /^\d{1,10}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ApiError('bad_request', `Query parameter ${name} must be an integer from ${min} to ${max}.`);
  return n;
}

function eventView(e: AuditEvent): Record<string, unknown> {
  return {
    time: new Date(e.at).toISOString(), request_id: e.requestId, user_id: e.actorUserId, user_name: e.actorName, access_key: e.actorAk,
    action: e.action, resource_type: e.resourceKind, resource_id: e.resourceId, project_id: e.projectId, source_ip: e.sourceIp,
    user_agent: e.userAgent, result: e.result, code: e.code, detail: e.detail,
    // Refused unauthenticated calls are aggregated (domain/audit.ts): how many calls the row stands for.
    count: e.count ?? 1,
  };
}

export function registerAdminRoutes(app: FastifyInstance, ctx: ApiContext, authenticate: Authenticate): void {
  app.get('/admin/v1/audit-events', { config: { service: 'admin', action: 'admin:auditEvents:list' } }, async (req, reply) => {
    const principal = await authenticate(req);
    authorizeDomainAdmin(principal, 'admin:auditEvents:list');
    const q = req.query as Record<string, unknown>;
    const str = (name: string): string | undefined => {
      const v = q[name];
      if (v === undefined) return undefined;
      if (typeof v !== 'string' || v.length === 0 || v.length > MAX_FILTER_LENGTH) throw new ApiError('bad_request', `Query parameter ${name} is invalid.`);
      return v;
    };
    const filter: AuditFilter = { domainId: principal.domainId, limit: AUDIT_DEFAULT_LIMIT, offset: 0 };
    const since = str('since');
    const until = str('until');
    if (since !== undefined) filter.since = parseTime('since', since);
    if (until !== undefined) filter.until = parseTime('until', until);
    const actor = str('actor');
    if (actor !== undefined) filter.actor = actor;
    const resourceId = str('resource_id');
    if (resourceId !== undefined) {
      filter.resourceId = resourceId;
      // A machine's events start with the machine as it is now: ids are derived from names, so an
      // earlier machine deleted under the same name had the same id, and its history is not this one's.
      const current = await ctx.store.inventory.getResourceById(resourceId);
      if (current) filter.since = Math.max(filter.since ?? 0, current.createdAt);
    }
    const action = str('action');
    if (action !== undefined) filter.action = action;
    const result = str('result');
    if (result !== undefined) {
      if (result !== 'success' && result !== 'failure') throw new ApiError('bad_request', 'Query parameter result must be success or failure.');
      filter.result = result;
    }
    const limit = str('limit');
    if (limit !== undefined) filter.limit = parseInteger('limit', limit, 1, AUDIT_MAX_LIMIT);
    const offset = str('offset');
    if (offset !== undefined) filter.offset = parseInteger('offset', offset, 0, MAX_OFFSET);
    await ctx.audit.flush(); // the records of calls answered just before this one
    const [events, count] = await Promise.all([ctx.store.audit.list(filter), ctx.store.audit.count(filter)]);
    setNoStore(reply);
    return { events: events.map(eventView), count };
  });
}
