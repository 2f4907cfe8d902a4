/**
 * Admin API, cluster part:
 *  - GET /admin/v1/nodes   the gateway nodes sharing this store: id, address, version, started_at,
 *                          heartbeat_at, state (`up`; `stale`: heartbeat older than
 *                          cluster.node_timeout_seconds, not declared yet; `lost`: declared lost, its
 *                          sessions closed), draining, lost_at, sessions_open, self (the node answering)
 * Domain administrators only, with a domain-scoped credential. `sessions_open` counts the open sessions of the projects the caller
 * manages (an operator: all of them), so one tenant does not learn another's activity.
 */
import type { FastifyInstance } from 'fastify';
import { nodeStates } from '../../domain/nodes.js';
import { systemClock } from '../../domain/clock.js';
import type { ApiContext } from '../context.js';
import { setNoStore } from '../http.js';
import type { makeAuthenticate } from '../auth.js';
import { adminServices } from './admin-directory.js';

type Authenticate = ReturnType<typeof makeAuthenticate>;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function registerAdminNodeRoutes(app: FastifyInstance, ctx: ApiContext, authenticate: Authenticate): void {
  app.get('/admin/v1/nodes', { config: { service: 'admin', action: 'admin:nodes:list' } }, async (req, reply) => {
    const p = await authenticate(req);
    const { access, nodeId } = adminServices(ctx);
    access.requireDomainScope(p, 'admin:nodes:list');
    const projects = access.isOperator(p) ? undefined : (await access.projects(p)).map((x) => x.id);
    const [nodes, counts] = await Promise.all([ctx.store.nodes.list(), ctx.store.nodes.openSessionCounts(projects)]);
    const now = (ctx.clock ?? systemClock).now();
    setNoStore(reply);
    const views = nodeStates(nodes, now, ctx.config.cluster.nodeTimeoutSeconds * 1000).map((n) => ({
      id: n.id, address: n.address, version: n.version, started_at: iso(n.startedAt), heartbeat_at: iso(n.heartbeatAt), state: n.state,
      draining: n.draining, lost_at: iso(n.lostAt), sessions_open: counts.get(n.id) ?? 0, self: n.id === nodeId,
    }));
    return { nodes: views, count: views.length };
  });
}
