/**
 * Operations endpoints, all unauthenticated and free of secrets:
 *  - GET /healthz       liveness: 200 {"status":"ok","node_id","version","uptime_seconds"} while the process serves HTTP
 *  - GET /readyz        readiness: 200 {"status":"ready","node_id","store":"ok","draining":false}; 503 with
 *                       "status":"unavailable" and "error_code":"APIGW.0613" when the store does not answer
 *                       or the node is draining (stopping: a load balancer should stop sending it traffic)
 *  - GET /metrics       Prometheus text format (observability/metrics.ts), when metrics are enabled
 *  - GET /openapi.json  the OpenAPI 3.1 document (api/openapi.ts); GET /docs renders it (api/docs-page.ts)
 */
import type { FastifyInstance } from 'fastify';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { METRICS_CONTENT_TYPE } from '../../observability/metrics.js';
import { DOCS_CSP, DOCS_CSS, DOCS_HTML, DOCS_ICON, DOCS_JS } from '../docs-page.js';
import { openApiDocument, registeredRoutes } from '../openapi.js';
import type { ApiContext } from '../context.js';

/** Node facts and the draining flag, owned by the gateway (gateway.ts sets draining when it stops). */
export interface HealthSource {
  nodeId: string;
  version: string;
  draining(): boolean;
}

/** How long a store ping may take before /readyz calls the store unreachable. */
export const READYZ_STORE_TIMEOUT_MS = 2000;

export function registerOpsRoutes(app: FastifyInstance, ctx: ApiContext, opts: { metrics?: GatewayMetrics; health?: HealthSource }): void {
  const health: HealthSource = opts.health ?? { nodeId: 'unknown', version: 'unknown', draining: () => false };
  const started = Date.now();

  app.get('/healthz', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok', node_id: health.nodeId, version: health.version, uptime_seconds: Math.floor((Date.now() - started) / 1000) };
  });

  app.get('/readyz', async (_req, reply) => {
    const draining = health.draining();
    let store: 'ok' | 'unreachable' = 'ok';
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        ctx.store.ping(),
        new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('store ping timed out')), READYZ_STORE_TIMEOUT_MS); }),
      ]);
    } catch {
      store = 'unreachable';
    } finally {
      clearTimeout(timer);
    }
    reply.header('cache-control', 'no-store');
    if (store === 'ok' && !draining) return { status: 'ready', node_id: health.nodeId, store, draining };
    return reply.code(503).send({ status: 'unavailable', node_id: health.nodeId, store, draining, error_code: 'APIGW.0613' });
  });

  const metrics = opts.metrics;
  if (metrics) {
    app.get('/metrics', async (_req, reply) => {
      reply.header('cache-control', 'no-store');
      return reply.type(METRICS_CONTENT_TYPE).send(await metrics.scrape());
    });
  }

  // Built on first use, when every route (and its `config.openapi` fragment) is registered.
  let docText: string | undefined;
  app.get('/openapi.json', async (_req, reply) => {
    docText ??= JSON.stringify(openApiDocument({ publicUrl: ctx.config.publicUrl, version: health.version, routes: registeredRoutes(app) }));
    return reply.type('application/json; charset=utf-8').send(docText);
  });

  const docsHeaders = { 'content-security-policy': DOCS_CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' };
  app.get('/docs', async (_req, reply) => reply.headers(docsHeaders).type('text/html; charset=utf-8').send(DOCS_HTML));
  app.get<{ Params: { file: string } }>('/docs/:file', async (req, reply) => {
    const file = req.params.file;
    if (file === 'docs.js') return reply.headers(docsHeaders).type('text/javascript; charset=utf-8').send(DOCS_JS);
    if (file === 'docs.css') return reply.headers(docsHeaders).type('text/css; charset=utf-8').send(DOCS_CSS);
    if (file === 'favicon.svg') return reply.headers(docsHeaders).type('image/svg+xml').send(DOCS_ICON);
    return reply.code(404).type('application/json').send({ error_code: 'APIGW.0101', error_msg: 'The API does not exist or has not been published in the environment.', request_id: req.id });
  });
}
