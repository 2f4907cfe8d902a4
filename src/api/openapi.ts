/**
 * The OpenAPI 3.1 document of every public route, served at /openapi.json and rendered by /docs.
 * It is written by hand (not generated from Fastify schemas: routes parse their raw bodies
 * themselves, for AK/SK signatures and per-service error codes), here or where a route is declared:
 *
 *   app.get('/admin/v1/things', { config: { service: 'admin', action: '…',
 *     openapi: { summary: 'List things', responses: { 200: { description: '…' } } } } }, handler)
 *
 * `trackRoutes` records every route Fastify registers with its `openapi` fragment, and
 * test/integration/openapi.test.ts fails when a route is documented in neither place.
 *
 * Error bodies differ per service (reference D.1–D.5): ECS `{"error":{"code","message"}}`, CloudDC
 * and Workspace top-level `error_code`/`error_msg`, IAM and gateway-level (APIGW.*) errors with a
 * `request_id`. Each operation lists the shape its service uses.
 */
import type { FastifyInstance } from 'fastify';
import { CloseCode, CloseReason } from '../close-codes.js';
import { desktopDetailSchema } from '../domain/desktop.js';
import { adminOpenApiPaths, adminOpenApiSchemas } from './openapi-admin.js';
import { assistanceOpenApiPaths, assistanceOpenApiSchemas } from './openapi-assistance.js';

/** An OpenAPI Operation Object for one route (summary, parameters, requestBody, responses…). */
export type OpenApiOperation = Record<string, unknown> & { responses: Record<string, unknown> };

declare module 'fastify' {
  interface FastifyContextConfig { openapi?: OpenApiOperation }
}

export interface RouteSummary { method: string; url: string; service?: string; openapi?: OpenApiOperation }

const tracked = new WeakMap<FastifyInstance, RouteSummary[]>();

/** Records every route registered on `app` from now on (call before registering routes). */
export function trackRoutes(app: FastifyInstance): void {
  const list: RouteSummary[] = [];
  tracked.set(app, list);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const config = route.config as { service?: string; openapi?: OpenApiOperation } | undefined;
    for (const m of methods) {
      list.push({
        method: String(m).toUpperCase(), url: route.url ?? route.path,
        ...(config?.service ? { service: config.service } : {}), ...(config?.openapi ? { openapi: config.openapi } : {}),
      });
    }
  });
}

/** The routes registered since `trackRoutes(app)`. */
export function registeredRoutes(app: FastifyInstance): readonly RouteSummary[] {
  return tracked.get(app) ?? [];
}

/** `/v1/:project_id/x` → `/v1/{project_id}/x`. */
export function openApiPath(fastifyUrl: string): string {
  return fastifyUrl.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

type Json = Record<string, unknown>;
type Service = 'iam' | 'ecs' | 'clouddc' | 'workspace' | 'admin' | 'apigw';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const ERROR_SCHEMA: Record<Service, string> = {
  iam: 'IamError', ecs: 'EcsError', clouddc: 'ClouddcError', workspace: 'WorkspaceError', admin: 'AdminError', apigw: 'ApigwError',
};

function json(schema: Json, description: string): Json {
  return { description, content: { 'application/json': { schema } } };
}

/** An error response in the service's shape, plus the gateway-level (APIGW) shape some of its statuses use. */
function err(service: Service, description: string, gatewayToo = false): Json {
  const own = ref(ERROR_SCHEMA[service]);
  const schema = gatewayToo && service !== 'apigw' ? { oneOf: [own, ref('ApigwError')] } : own;
  return json(schema, description);
}

/** The responses every authenticated REST call can get from the gateway itself. */
function authErrors(): Json {
  return {
    401: err('apigw', 'APIGW.0301 missing or invalid credentials; APIGW.0307 expired IAM token.'),
    403: err('apigw', 'APIGW.0302 the role does not allow the action, or the credentials are for another project.'),
    429: { ...err('apigw', 'APIGW.0308 throttled (iMetal.0005 on CloudDC); see Retry-After.'), headers: { 'Retry-After': { schema: { type: 'integer' } } } },
  };
}

const projectId = { name: 'project_id', in: 'path', required: true, description: 'Project id (32 lower-hex characters).', schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } };
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const security = [{ iamToken: [] }, { akSk: [] }];

function op(service: Service, summary: string, extra: Json): Json {
  return { tags: [service === 'apigw' ? 'gateway' : service], summary, ...extra };
}

export interface OpenApiOptions {
  publicUrl: string;
  version: string;
  /** Routes whose `config.openapi` fragments are added to the hand-written paths (which win). */
  routes?: readonly RouteSummary[];
}

/** The document: the hand-written paths plus the fragments declared on routes. */
export function openApiDocument(o: OpenApiOptions): Json {
  const doc = handWritten(o);
  const paths = doc.paths as Record<string, Record<string, unknown>>;
  for (const r of o.routes ?? []) {
    if (!r.openapi || r.method === 'HEAD') continue;
    const item = (paths[openApiPath(r.url)] ??= {});
    const m = r.method.toLowerCase();
    item[m] ??= { tags: [r.service === undefined || r.service === 'apigw' ? 'gateway' : r.service], ...r.openapi };
  }
  return doc;
}

function handWritten(o: OpenApiOptions): Json {
  const credentialPath = '/v3.0/OS-CREDENTIAL/credentials';
  const accessKey = pathParam('access_key', 'Access key id (AK).');
  const closeCodes = Object.entries(CloseCode).map(([name, code]) => `${code} ${CloseReason[name as keyof typeof CloseCode]}`).join(', ');
  return {
    openapi: '3.1.0',
    info: {
      title: 'Porthole console gateway',
      version: o.version,
      description:
        'Huawei Cloud console APIs (IAM tokens and access keys, ECS, CloudDC, Workspace) served by a self-hosted gateway, ' +
        'the console page and its WebSocket relay, and operations endpoints. Every response carries X-Request-Id.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: o.publicUrl }],
    tags: [
      { name: 'iam', description: 'Identity: IAM tokens and permanent access keys (AK/SK).' },
      { name: 'ecs', description: 'Elastic Cloud Server remote console.' },
      { name: 'clouddc', description: 'Physical servers (CloudDC) remote console.' },
      { name: 'workspace', description: 'Workspace desktops.' },
      { name: 'admin', description: 'Porthole administration.' },
      { name: 'console', description: 'The browser console page, its assets and its WebSocket.' },
      { name: 'gateway', description: 'Health, readiness, metrics and this document.' },
    ],
    paths: {
      '/v3/auth/tokens': {
        post: op('iam', 'Get an IAM token (password method)', {
          operationId: 'createIamToken',
          parameters: [{ name: 'nocatalog', in: 'query', schema: { type: 'string', enum: ['true'] }, description: 'Omit the service catalog.' }],
          requestBody: { required: true, content: { 'application/json': { schema: ref('TokenRequest') } } },
          responses: {
            201: { ...json(ref('TokenResponse'), 'Token issued.'), headers: { 'X-Subject-Token': { description: 'The IAM token (valid 24 h).', schema: { type: 'string' } } } },
            400: err('iam', 'IAM.0003 bad request body.', true),
            401: err('iam', 'IAM.0101 wrong user name or password; IAM.0002 no access to the requested scope.'),
            429: err('apigw', 'APIGW.0308 too many calls or failed logins; see Retry-After.'),
          },
        }),
      },
      [credentialPath]: {
        post: op('iam', 'Create a permanent access key', {
          operationId: 'createCredential', security,
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['credential'], properties: { credential: { type: 'object', required: ['user_id'], properties: { user_id: { type: 'string' }, description: { type: 'string' } } } } } } } },
          responses: { 201: json({ type: 'object', properties: { credential: ref('CredentialWithSecret') } }, 'Created; the SK is shown only here.'), 400: err('iam', 'IAM.0003 bad request body.', true), ...authErrors() },
        }),
        get: op('iam', 'List access keys', {
          operationId: 'listCredentials', security,
          parameters: [{ name: 'user_id', in: 'query', schema: { type: 'string' } }],
          responses: { 200: json({ type: 'object', properties: { credentials: { type: 'array', items: ref('Credential') } } }, 'The keys (never their SK).'), 400: err('iam', 'IAM.0003 bad parameter.', true), ...authErrors() },
        }),
      },
      [`${credentialPath}/{access_key}`]: {
        get: op('iam', 'Get an access key', {
          operationId: 'getCredential', security, parameters: [accessKey],
          responses: { 200: json({ type: 'object', properties: { credential: ref('Credential') } }, 'The key.'), 404: err('iam', 'IAM.0004 no such key.'), ...authErrors() },
        }),
        put: op('iam', 'Update an access key (status, description)', {
          operationId: 'updateCredential', security, parameters: [accessKey],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['credential'], properties: { credential: { type: 'object', properties: { status: { enum: ['active', 'inactive'] }, description: { type: 'string' } } } } } } } },
          responses: { 200: json({ type: 'object', properties: { credential: ref('Credential') } }, 'Updated.'), 400: err('iam', 'IAM.0003 bad request body.', true), 404: err('iam', 'IAM.0004 no such key.'), ...authErrors() },
        }),
        delete: op('iam', 'Delete an access key', {
          operationId: 'deleteCredential', security, parameters: [accessKey],
          responses: { 204: { description: 'Deleted.' }, 404: err('iam', 'IAM.0004 no such key.'), ...authErrors() },
        }),
      },
      '/v1/{project_id}/cloudservers/{server_id}/remote_console': {
        post: op('ecs', 'Get a one-time remote console URL of a cloud server', {
          operationId: 'showServerRemoteConsole', security, parameters: [projectId, pathParam('server_id', 'Cloud server id (UUID).')],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['remote_console'], properties: { remote_console: { type: 'object', required: ['protocol', 'type'], properties: { protocol: { const: 'vnc' }, type: { const: 'novnc' } } } } } } } },
          responses: {
            200: json({ type: 'object', properties: { remote_console: ref('RemoteConsole') } }, 'The console URL (single use, 600 s by default).'),
            400: err('ecs', 'Ecs.0005 bad body, malformed JSON, wrong content type or malformed project id; Ecs.0000 the server has no console.', true),
            404: err('ecs', 'Ecs.0114 no such server in the project.'), ...authErrors(),
          },
        }),
      },
      '/v1/{project_id}/physicalservers/{id}/remote-console-address': {
        get: op('clouddc', 'Get a one-time remote console URL of a physical server', {
          operationId: 'showPhysicalServerRemoteConsole', security, parameters: [projectId, pathParam('id', 'Physical server id.')],
          responses: {
            200: json({ type: 'object', required: ['url'], properties: { url: { type: 'string', format: 'uri' } } }, 'The console URL.'),
            400: err('clouddc', 'iMetal.0101 the server is not in a ready state; iMetal.0001 malformed project or server id.', true),
            404: err('clouddc', 'iMetal.0100 no such physical server.'), ...authErrors(),
          },
        }),
      },
      '/v2/{project_id}/desktops/{desktop_id}/remote-consoles': {
        get: op('workspace', 'Get a one-time remote console URL of a desktop', {
          operationId: 'showDesktopRemoteConsole', security, parameters: [projectId, pathParam('desktop_id', 'Desktop id.')],
          responses: {
            200: json(ref('RemoteConsole'), 'The console URL.'),
            400: err('workspace', 'WKS.0001 bad request (malformed project or desktop id) or the desktop has no console.', true),
            404: err('workspace', 'WKS.0202 no such desktop.'), ...authErrors(),
          },
        }),
      },
      '/v2/{project_id}/desktops/{desktop_id}': {
        get: op('workspace', 'Get a desktop (DesktopDetailInfo)', {
          operationId: 'showDesktopDetail', security, parameters: [projectId, pathParam('desktop_id', 'Desktop id.')],
          responses: {
            200: json({ type: 'object', properties: { desktop: ref('DesktopDetailInfo') } }, 'The desktop.'),
            400: err('workspace', 'WKS.0001 malformed project or desktop id.', true), 404: err('workspace', 'WKS.0202 no such desktop.'), ...authErrors(),
          },
        }),
      },
      '/admin/v1/nodes': {
        get: op('admin', 'List the gateway nodes sharing this store (domain administrators)', {
          operationId: 'listNodes', security,
          responses: {
            200: json({
              type: 'object',
              properties: {
                count: { type: 'integer' },
                nodes: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      id: { type: 'string' }, address: { type: ['string', 'null'] }, version: { type: 'string' }, started_at: { type: 'string' }, heartbeat_at: { type: 'string' },
                      state: { enum: ['up', 'stale', 'lost'] }, draining: { type: 'boolean' }, lost_at: { type: ['string', 'null'] }, sessions_open: { type: 'integer' }, self: { type: 'boolean' },
                    },
                  },
                },
              },
            }, 'Nodes with their heartbeat state; sessions_open counts only the caller\'s projects.'),
            ...authErrors(),
          },
        }),
      },
      '/admin/v1/audit-events': {
        get: op('admin', 'List audit events of the caller\'s domain (domain administrators)', {
          operationId: 'listAuditEvents', security,
          parameters: ['since', 'until', 'actor', 'resource_id', 'action', 'result', 'limit', 'offset'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })),
          responses: {
            200: json({ type: 'object', properties: { events: { type: 'array', items: ref('AuditEvent') }, count: { type: 'integer' } } }, 'Newest first; count = all matches.'),
            400: err('admin', 'PH.0400 bad query parameter.'), ...authErrors(),
          },
        }),
      },
      '/vnc/{zone}/{file}': {
        get: op('apigw', 'The console page and its assets; `token-state` explains a refused console link', {
          tags: ['console'], operationId: 'getConsoleFile',
          description:
            'file is one of vnc_auto.html, vnc_lite.html, vnc.html (the page, sent with a strict CSP and Cache-Control: no-store), console.js, ' +
            'console.css, favicon.svg, their source maps, or token-state (?token=T → {"state": valid|invalid|expired|used|revoked}; never consumes the token).',
          parameters: [pathParam('zone', 'Console zone ([A-Za-z0-9._-]{1,64}).'), pathParam('file', 'Asset name or token-state.'),
            { name: 'token', in: 'query', schema: { type: 'string' } }, { name: 'lang', in: 'query', schema: { type: 'string' } }, { name: 'view_only', in: 'query', schema: { type: 'string' } }],
          responses: { 200: { description: 'The file, or {"state": …} for token-state.', content: { 'text/html': {}, 'text/javascript': {}, 'text/css': {}, 'image/svg+xml': {}, 'application/json': { schema: { type: 'object', properties: { state: { enum: ['valid', 'invalid', 'expired', 'used', 'revoked'] } } } } } }, 304: { description: 'Not modified (ETag).' }, 404: err('apigw', 'Unknown file or zone.') },
        }),
      },
      '/vnc/{zone}/websockify': {
        get: op('apigw', 'The console WebSocket (RFB 3.8, security None) relayed to the machine', {
          tags: ['console'], operationId: 'consoleWebSocket',
          description:
            'A WebSocket upgrade (subprotocol `binary` if offered), handled before the REST framework. Checks before 101: the path, the Origin ' +
            '(the public URL\'s origin or allowed_origins; a foreign Origin does not consume the token), then the one-time token. ' +
            `After 101 a close carries one of: ${closeCodes}.`,
          parameters: [pathParam('zone', 'Console zone of the token.'), { name: 'token', in: 'query', required: true, schema: { type: 'string' } }],
          responses: {
            101: { description: 'Switching protocols: the console session starts.' },
            400: json(ref('UpgradeRefusal'), 'Not a WebSocket upgrade, or no token.'),
            403: json(ref('UpgradeRefusal'), 'Foreign Origin (origin_forbidden), or the token is invalid or revoked.'),
            404: json(ref('UpgradeRefusal'), 'No console WebSocket at this path.'),
            410: json(ref('UpgradeRefusal'), 'The token has expired or was already used.'),
            503: json(ref('UpgradeRefusal'), 'The gateway is shutting down, or could not open the console.'),
          },
        }),
      },
      '/': { get: op('apigw', 'A one-line text banner', { operationId: 'banner', responses: { 200: { description: 'Plain text.', content: { 'text/plain': {} } } } }) },
      '/healthz': {
        get: op('apigw', 'Liveness: the process is up', {
          operationId: 'healthz', responses: { 200: json(ref('Health'), 'Always 200 while the process serves HTTP.') },
        }),
      },
      '/readyz': {
        get: op('apigw', 'Readiness: the store is reachable and the node is not draining', {
          operationId: 'readyz', responses: { 200: json(ref('Readiness'), 'Ready for traffic.'), 503: json(ref('Readiness'), 'Store unreachable or draining (stopping): take the node out of the load balancer.') },
        }),
      },
      '/metrics': {
        get: op('apigw', 'Prometheus metrics of this node', {
          operationId: 'metrics', responses: { 200: { description: 'Prometheus text exposition format 0.0.4.', content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: { type: 'string' } } } } },
        }),
      },
      '/openapi.json': { get: op('apigw', 'This document', { operationId: 'openapi', responses: { 200: json({ type: 'object' }, 'OpenAPI 3.1.') } }) },
      ...adminOpenApiPaths(),
      ...assistanceOpenApiPaths(),
      '/docs': { get: op('apigw', 'This document rendered as a page', { operationId: 'docs', responses: { 200: { description: 'HTML (no inline script; strict CSP).', content: { 'text/html': {} } } } }) },
      '/docs/{file}': {
        get: op('apigw', 'The docs page\'s script and style', {
          operationId: 'docsAsset', parameters: [pathParam('file', 'docs.js, docs.css or favicon.svg.')],
          responses: { 200: { description: 'The file.', content: { 'text/javascript': {}, 'text/css': {}, 'image/svg+xml': {} } }, 404: err('apigw', 'Unknown file.') },
        }),
      },
    },
    components: {
      securitySchemes: {
        iamToken: { type: 'apiKey', in: 'header', name: 'X-Auth-Token', description: 'IAM token from POST /v3/auth/tokens (X-Subject-Token).' },
        akSk: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'SDK-HMAC-SHA256 Access=AK, SignedHeaders=…, Signature=… (Huawei APIG signing, with X-Sdk-Date).' },
      },
      schemas: {
        ...adminOpenApiSchemas(),
        ...assistanceOpenApiSchemas(),
        ApigwError: {
          type: 'object', required: ['error_code', 'error_msg'], description: 'Gateway-level errors (authentication, throttling, unknown route) for every service.',
          properties: { error_code: { type: 'string', examples: ['APIGW.0301'] }, error_msg: { type: 'string' }, request_id: { type: 'string' } },
        },
        IamError: { type: 'object', required: ['error_code', 'error_msg'], properties: { error_code: { type: 'string', examples: ['IAM.0101'] }, error_msg: { type: 'string' }, request_id: { type: 'string' } } },
        EcsError: {
          type: 'object', required: ['error'],
          properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', examples: ['Ecs.0114'] }, message: { type: 'string' } } } },
        },
        ClouddcError: { type: 'object', required: ['error_code', 'error_msg'], properties: { error_code: { type: 'string', examples: ['iMetal.0100'] }, error_msg: { type: 'string' }, request_id: { type: 'string' } } },
        WorkspaceError: {
          type: 'object', required: ['error_code', 'error_msg'],
          properties: { error_code: { type: 'string', examples: ['WKS.0202'] }, error_msg: { type: 'string' }, error_detail: { type: 'string' }, encoded_authorization_message: { type: 'string' } },
        },
        AdminError: { type: 'object', required: ['error_code', 'error_msg'], properties: { error_code: { type: 'string', examples: ['PH.0400'] }, error_msg: { type: 'string' }, request_id: { type: 'string' } } },
        UpgradeRefusal: {
          type: 'object', required: ['error_code', 'error_msg', 'reason', 'request_id'], description: 'A refused console WebSocket upgrade (sent with Connection: close and X-Request-Id, never after a 101; a 503 with Retry-After).',
          properties: { error_code: { type: 'string', examples: ['PH.WS.410'] }, error_msg: { type: 'string' }, reason: { type: 'string', examples: ['token_used', 'token_expired', 'origin_forbidden', 'starting'] }, request_id: { type: 'string' } },
        },
        TokenRequest: {
          type: 'object', required: ['auth'],
          properties: {
            auth: {
              type: 'object', required: ['identity'],
              properties: {
                identity: {
                  type: 'object', required: ['methods', 'password'],
                  properties: {
                    methods: { type: 'array', items: { const: 'password' } },
                    password: { type: 'object', properties: { user: { type: 'object', properties: { name: { type: 'string' }, id: { type: 'string' }, password: { type: 'string', format: 'password' }, domain: { type: 'object', properties: { name: { type: 'string' }, id: { type: 'string' } } } } } } },
                  },
                },
                scope: { type: 'object', description: '{"project": {"id"} | {"name"}} or {"domain": {"id"} | {"name"}}.' },
              },
            },
          },
        },
        TokenResponse: {
          type: 'object',
          properties: {
            token: {
              type: 'object',
              properties: {
                expires_at: { type: 'string' }, issued_at: { type: 'string' }, methods: { type: 'array', items: { type: 'string' } },
                user: { type: 'object' }, roles: { type: 'array', items: { type: 'object' } }, project: { type: 'object' }, domain: { type: 'object' }, catalog: { type: 'array', items: { type: 'object' } },
              },
            },
          },
        },
        Credential: {
          type: 'object',
          properties: { user_id: { type: 'string' }, access: { type: 'string' }, status: { enum: ['active', 'inactive'] }, create_time: { type: 'string' }, last_use_time: { type: 'string' }, description: { type: 'string' } },
        },
        CredentialWithSecret: {
          allOf: [ref('Credential'), { type: 'object', properties: { secret: { type: 'string', format: 'password', description: 'The SK: shown once.' } } }],
        },
        RemoteConsole: {
          type: 'object', required: ['type', 'protocol', 'url'],
          properties: { type: { const: 'novnc' }, protocol: { const: 'vnc' }, url: { type: 'string', format: 'uri', description: '{public_url}/vnc/{zone}/vnc_auto.html?token=T&lang=EN' } },
        },
        DesktopDetailInfo: {
          ...desktopDetailSchema(), description: 'Every documented DesktopDetailInfo field, with its documented type; an unset one is [] (list), {} (map) or null. `status` is ACTIVE, SHUTOFF, ERROR or HIBERNATED.',
        },
        AuditEvent: {
          type: 'object',
          properties: Object.fromEntries(['time', 'request_id', 'user_id', 'user_name', 'access_key', 'action', 'resource_type', 'resource_id', 'project_id', 'source_ip', 'user_agent', 'result', 'code', 'detail']
            .map((f): [string, object] => [f, { type: ['string', 'null'] }])
            .concat([['count', { type: 'integer', minimum: 1, description: 'How many calls the event stands for: refused unauthenticated calls are aggregated per source address, action and result per minute.' }]])),
        },
        Health: {
          type: 'object', required: ['status', 'node_id', 'version', 'uptime_seconds'],
          properties: { status: { const: 'ok' }, node_id: { type: 'string' }, version: { type: 'string' }, uptime_seconds: { type: 'integer' } },
        },
        Readiness: {
          type: 'object', required: ['status', 'node_id', 'store', 'draining'],
          properties: {
            status: { enum: ['ready', 'unavailable'] }, node_id: { type: 'string' }, store: { enum: ['ok', 'unreachable'] }, draining: { type: 'boolean' },
            error_code: { const: 'APIGW.0613', description: 'Only when unavailable.' },
          },
        },
      },
    },
  };
}
