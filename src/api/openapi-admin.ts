/**
 * The OpenAPI paths and schemas of the admin API (routes/admin-directory.ts, routes/admin-inventory.ts)
 * and of the Huawei list APIs (routes/lists.ts), merged into the document by api/openapi.ts. Kept
 * next to those routes' owners so a new route and its documentation change together.
 */
import { DESKTOP_DETAIL_FIELDS } from '../domain/desktop.js';

type Json = Record<string, unknown>;
type Service = 'ecs' | 'clouddc' | 'workspace' | 'admin';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const ERROR: Record<Service, string> = { ecs: 'EcsError', clouddc: 'ClouddcError', workspace: 'WorkspaceError', admin: 'AdminError' };
const json = (schema: Json, description: string): Json => ({ description, content: { 'application/json': { schema } } });
const err = (service: Service, description: string): Json => json({ oneOf: [ref(ERROR[service]), ref('ApigwError')] }, description);
const security = [{ iamToken: [] }, { akSk: [] }];
const auth = (service: Service): Json => ({
  401: json(ref('ApigwError'), 'APIGW.0301 missing or invalid credentials; APIGW.0307 expired IAM token.'),
  403: err(service, service === 'admin' ? 'PH.0403 not a domain administrator (or not an operator); APIGW.0302 credentials of another project.' : 'APIGW.0302 the role does not allow the action, or the credentials are for another project.'),
  429: { ...json(ref('ApigwError'), 'APIGW.0308 throttled (iMetal.0005 on CloudDC); see Retry-After.'), headers: { 'Retry-After': { schema: { type: 'integer' } } } },
});
const path = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const query = (name: string, description = '', schema: Json = { type: 'string' }) => ({ name, in: 'query', description, schema });
const projectId = { name: 'project_id', in: 'path', required: true, description: 'Project id (32 lower-hex characters).', schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } };
const body = (schema: Json): Json => ({ required: true, content: { 'application/json': { schema } } });
const wrap = (key: string, schema: Json): Json => ({ type: 'object', required: [key], properties: { [key]: schema } });

function op(service: Service, summary: string, extra: Json): Json {
  return { tags: [service], summary, security, ...extra };
}

/** An admin operation with the usual errors. */
function adminOp(summary: string, operationId: string, responses: Json, extra: Json = {}): Json {
  return op('admin', summary, {
    operationId, ...extra,
    responses: { ...responses, 400: err('admin', 'PH.0400 bad body or parameter.'), 404: err('admin', 'PH.0404 not found (or not yours).'), 409: err('admin', 'PH.0409 conflict (a name taken, a non-empty project or domain, yourself).'), ...auth('admin') },
  });
}

const KINDS = [['cloudserver', 'cloud server (ECS)'], ['physicalserver', 'physical server (CloudDC)'], ['desktop', 'desktop (Workspace)']] as const;

/** domain/endpoint-options.ts: VeNCrypt details and console policies (all optional). */
const ENDPOINT_OPTION_SCHEMA = {
  servername: { type: ['string', 'null'], description: 'VeNCrypt: name the server certificate must carry (also SNI). Absent: only the CA chain is checked.' },
  vencrypt_subtypes: { type: ['array', 'null'], items: { enum: ['x509plain', 'x509vnc', 'x509none', 'tlsplain', 'tlsvnc', 'tlsnone'] }, description: 'VeNCrypt allow-list; the strongest the server offers is used.' },
  allow_anonymous_tls: { type: ['boolean', 'null'], description: 'VeNCrypt: permit the anonymous-DH tls* subtypes (not authenticated). Default false.' },
  username: { type: ['string', 'null'], description: 'VeNCrypt x509plain/tlsplain user name (with password).' },
  clipboard: { enum: ['both', 'to_machine', 'from_machine', 'off', null], description: 'Clipboard direction enforced by the gateway. Default both.' },
  clipboard_max_bytes: { type: ['integer', 'null'], minimum: 0, maximum: 1048576, description: 'Cut-text size cap, both directions.' },
  session_mode: { enum: ['shared', 'exclusive', null], description: 'exclusive: one full-control console at a time (409 console_busy).' },
};

export function adminOpenApiPaths(): Json {
  const paths: Json = {
    '/v1/{project_id}/cloudservers/detail': {
      get: op('ecs', 'List cloud servers with details (ListServersDetails)', {
        operationId: 'listServersDetails',
        parameters: [projectId, query('limit', '1–1000, default 25.', { type: 'integer' }), query('offset', 'Page number from 1 (0 = 1).', { type: 'integer' }),
          query('name', 'Substring of the name.'), query('status', 'ACTIVE, SHUTOFF, UNKNOWN (console down)…'), query('flavor', 'Flavor id.'), query('ip', 'Substring of an address.')],
        responses: { 200: json({ type: 'object', properties: { count: { type: 'integer' }, servers: { type: 'array', items: ref('ServerDetail') } } }, 'count = all matches.'), 400: err('ecs', 'Ecs.0005 bad parameter.'), ...auth('ecs') },
      }),
    },
    '/v1/{project_id}/cloudservers/{server_id}': {
      get: op('ecs', 'Show a cloud server (ShowServer)', {
        operationId: 'showServer', parameters: [projectId, path('server_id', 'Cloud server id.')],
        responses: { 200: json({ type: 'object', properties: { server: ref('ServerDetail') } }, 'The server.'), 404: err('ecs', 'Ecs.0114 no such server.'), ...auth('ecs') },
      }),
    },
    '/v1/{project_id}/physicalservers': {
      get: op('clouddc', 'List physical servers (CloudDC ListServers)', {
        operationId: 'listPhysicalServers',
        parameters: [projectId, query('manage_state', 'delivering, received, onboard, ready, in-use, frozen, offboarding.'), query('marker', 'Id of the last server of the previous page.'),
          query('limit', 'Unset or below 10: 10; above 1000: 1000.', { type: 'integer' })],
        responses: {
          200: json({ type: 'object', properties: { servers: { type: 'array', items: ref('PhysicalServer') }, page_info: { type: 'object', properties: { next_marker: { type: 'string' }, previous_marker: { type: 'string' }, current_count: { type: 'integer' } } }, count: { type: 'integer' } } }, 'A page.'),
          400: err('clouddc', 'iMetal.0001 bad parameter.'), ...auth('clouddc'),
        },
      }),
    },
    '/v2/{project_id}/desktops': {
      get: op('workspace', 'List desktops (ListDesktops)', {
        operationId: 'listDesktops',
        parameters: [projectId, ...['user_name', 'computer_name', 'desktop_ip', 'desktop_type', 'subnet_id', 'enterprise_project_id', 'pool_id'].map((n) => query(n)),
          query('offset', 'From 0.', { type: 'integer' }), query('limit', '0–1000, default 1000.', { type: 'integer' })],
        responses: { 200: json({ type: 'object', properties: { total_count: { type: 'integer' }, desktops: { type: 'array', items: ref('SimpleDesktopInfo') } } }, 'A page.'), 400: err('workspace', 'WKS.0001 bad parameter.'), ...auth('workspace') },
      }),
    },
    '/v2/{project_id}/desktops/detail': {
      get: op('workspace', 'List desktops with details (ListDesktopsDetail)', {
        operationId: 'listDesktopsDetail',
        parameters: [projectId, ...['status', 'user_name', 'user_names', 'user_id', 'computer_name', 'computer_names', 'desktop_ip', 'desktop_id', 'desktop_type', 'in_maintenance_mode',
          'is_support_internet', 'availability_zone', 'subnet_id', 'enterprise_project_id', 'user_attached', 'tag', 'without_any_tag', 'sort_field', 'sort_type'].map((n) => query(n)),
        query('offset', 'From 0.', { type: 'integer' }), query('limit', '0–500, default 500.', { type: 'integer' })],
        responses: { 200: json({ type: 'object', properties: { desktops: { type: 'array', items: ref('DesktopDetailInfo') }, total_count: { type: 'integer' } } }, 'A page; login_status is live.'), 400: err('workspace', 'WKS.0001 bad parameter.'), ...auth('workspace') },
      }),
    },

    '/admin/v1/domains': {
      get: adminOp('List the domains you administer (operators: all)', 'adminListDomains', { 200: json({ type: 'object', properties: { domains: { type: 'array', items: ref('AdminDomain') }, count: { type: 'integer' } } }, 'Domains.') }),
      post: adminOp('Create a domain with its first administrator (operators)', 'adminCreateDomain', { 201: json(wrap('domain', ref('AdminDomain')), 'Created.') },
        { requestBody: body(wrap('domain', { type: 'object', required: ['name', 'admin'], properties: { name: { type: 'string' }, id: { type: 'string' }, admin: { type: 'object', properties: { name: { type: 'string' }, password: { type: 'string', format: 'password' } } } } })) }),
    },
    '/admin/v1/domains/{domain_id}': {
      get: adminOp('Get a domain', 'adminGetDomain', { 200: json(wrap('domain', ref('AdminDomain')), 'The domain.') }, { parameters: [path('domain_id', 'Domain id.')] }),
      patch: adminOp('Rename a domain (operators)', 'adminUpdateDomain', { 200: json(wrap('domain', ref('AdminDomain')), 'Renamed.') },
        { parameters: [path('domain_id', 'Domain id.')], requestBody: body(wrap('domain', { type: 'object', properties: { name: { type: 'string' } } })) }),
      delete: adminOp('Delete a domain without projects, with its users (operators)', 'adminDeleteDomain', { 204: { description: 'Deleted.' } }, { parameters: [path('domain_id', 'Domain id.')] }),
    },
    '/admin/v1/projects': {
      get: adminOp('List projects', 'adminListProjects', { 200: json({ type: 'object', properties: { projects: { type: 'array', items: ref('AdminProject') }, count: { type: 'integer' } } }, 'Projects.') }, { parameters: [query('domain_id')] }),
      post: adminOp('Create a project', 'adminCreateProject', { 201: json(wrap('project', ref('AdminProject')), 'Created.') },
        { requestBody: body(wrap('project', { type: 'object', required: ['name'], properties: { name: { type: 'string' }, id: { type: 'string' }, domain_id: { type: 'string' } } })) }),
    },
    '/admin/v1/projects/{project_id}': {
      get: adminOp('Get a project', 'adminGetProject', { 200: json(wrap('project', ref('AdminProject')), 'The project.') }, { parameters: [path('project_id', 'Project id.')] }),
      patch: adminOp('Rename a project', 'adminUpdateProject', { 200: json(wrap('project', ref('AdminProject')), 'Renamed.') },
        { parameters: [path('project_id', 'Project id.')], requestBody: body(wrap('project', { type: 'object', properties: { name: { type: 'string' } } })) }),
      delete: adminOp('Delete a project without machines', 'adminDeleteProject', { 204: { description: 'Deleted.' } }, { parameters: [path('project_id', 'Project id.')] }),
    },
    '/admin/v1/users': {
      get: adminOp('List users with their role bindings', 'adminListUsers', { 200: json({ type: 'object', properties: { users: { type: 'array', items: ref('AdminUser') }, count: { type: 'integer' } } }, 'Users.') }, { parameters: [query('domain_id')] }),
      post: adminOp('Create a user', 'adminCreateUser', { 201: json(wrap('user', ref('AdminUser')), 'Created.') },
        { requestBody: body(wrap('user', { type: 'object', required: ['name', 'password'], properties: { name: { type: 'string' }, password: { type: 'string', format: 'password' }, domain_admin: { type: 'boolean' }, disabled: { type: 'boolean' }, domain_id: { type: 'string' } } })) }),
    },
    '/admin/v1/users/{user_id}': {
      get: adminOp('Get a user', 'adminGetUser', { 200: json(wrap('user', ref('AdminUser')), 'The user.') }, { parameters: [path('user_id', 'User id.')] }),
      patch: adminOp('Change a user', 'adminUpdateUser', { 200: json(wrap('user', ref('AdminUser')), 'Changed.') },
        { parameters: [path('user_id', 'User id.')], requestBody: body(wrap('user', { type: 'object', properties: { name: { type: 'string' }, password: { type: 'string', format: 'password' }, domain_admin: { type: 'boolean' }, disabled: { type: 'boolean' } } })) }),
      delete: adminOp('Delete a user with their keys and tokens', 'adminDeleteUser', { 204: { description: 'Deleted.' } }, { parameters: [path('user_id', 'User id.')] }),
    },
    '/admin/v1/users/{user_id}/roles/{project_id}': {
      put: adminOp('Bind a role in a project', 'adminSetRole', { 200: json(wrap('user', ref('AdminUser')), 'The user with its roles.') },
        { parameters: [path('user_id', 'User id.'), path('project_id', 'Project id.')], requestBody: body({ type: 'object', required: ['role'], properties: { role: { enum: ['admin', 'operator', 'viewer'] } } }) }),
      delete: adminOp('Remove a role binding', 'adminRemoveRole', { 200: json(wrap('user', ref('AdminUser')), 'The user with its roles.') }, { parameters: [path('user_id', 'User id.'), path('project_id', 'Project id.')] }),
    },
    '/admin/v1/access-keys': {
      get: adminOp('List access keys of your domain', 'adminListAccessKeys', { 200: json({ type: 'object', properties: { access_keys: { type: 'array', items: ref('AdminAccessKey') }, count: { type: 'integer' } } }, 'Keys (never the SK).') }, { parameters: [query('user_id')] }),
      post: adminOp('Create an access key (the SK is shown once)', 'adminCreateAccessKey', { 201: json(wrap('access_key', { allOf: [ref('AdminAccessKey'), { type: 'object', properties: { secret_key: { type: 'string', format: 'password' } } }] }), 'Created.') },
        { requestBody: body(wrap('access_key', { type: 'object', required: ['user_id'], properties: { user_id: { type: 'string' }, description: { type: 'string' } } })) }),
    },
    '/admin/v1/access-keys/{access_key}': {
      get: adminOp('Get an access key', 'adminGetAccessKey', { 200: json(wrap('access_key', ref('AdminAccessKey')), 'The key.') }, { parameters: [path('access_key', 'AK.')] }),
      patch: adminOp('Change an access key', 'adminUpdateAccessKey', { 200: json(wrap('access_key', ref('AdminAccessKey')), 'Changed.') },
        { parameters: [path('access_key', 'AK.')], requestBody: body(wrap('access_key', { type: 'object', properties: { status: { enum: ['active', 'inactive'] }, description: { type: 'string' } } })) }),
      delete: adminOp('Delete an access key', 'adminDeleteAccessKey', { 204: { description: 'Deleted.' } }, { parameters: [path('access_key', 'AK.')] }),
    },
    '/admin/v1/desktops/{id}/users': {
      post: adminOp('Assign a desktop to a user', 'adminAssignDesktopUser', { 200: json(wrap('desktop', ref('AdminMachine')), 'The desktop.') },
        { parameters: [path('id', 'Desktop id.')], requestBody: body({ type: 'object', required: ['user_name'], properties: { user_name: { type: 'string' }, user_group: { enum: ['sudo', 'default', 'administrators', 'users'] } } }) }),
    },
    '/admin/v1/desktops/{id}/users/{user_name}': {
      delete: adminOp('Unassign a user from a desktop', 'adminUnassignDesktopUser', { 200: json(wrap('desktop', ref('AdminMachine')), 'The desktop.') }, { parameters: [path('id', 'Desktop id.'), path('user_name', 'User name.')] }),
    },
    '/admin/v1/endpoints/{resource_id}': {
      get: adminOp('Get a machine\'s console endpoint', 'adminGetEndpoint', { 200: json(wrap('endpoint', ref('AdminEndpoint')), 'The endpoint (no secrets).') }, { parameters: [path('resource_id', 'Machine id.')] }),
      put: adminOp('Set a machine\'s console endpoint (revokes its tokens)', 'adminSetEndpoint', { 200: json(wrap('endpoint', ref('AdminEndpoint')), 'Set.') },
        { parameters: [path('resource_id', 'Machine id.')], requestBody: body(wrap('endpoint', ref('EndpointInput'))) }),
      delete: adminOp('Remove a machine\'s console endpoint', 'adminDeleteEndpoint', { 204: { description: 'Removed.' } }, { parameters: [path('resource_id', 'Machine id.')] }),
    },
    '/admin/v1/console-tokens': {
      get: adminOp('List outstanding console tokens (by hash prefix, never the token)', 'adminListConsoleTokens', { 200: json({ type: 'object', properties: { console_tokens: { type: 'array', items: ref('AdminConsoleToken') }, count: { type: 'integer' } } }, 'Tokens.') }, { parameters: [query('resource_id')] }),
      delete: adminOp('Revoke every outstanding token of a machine', 'adminRevokeMachineTokens', { 200: json({ type: 'object', properties: { revoked: { type: 'integer' } } }, 'How many.') }, { parameters: [{ ...query('resource_id'), required: true }] }),
    },
    '/admin/v1/console-tokens/{token_id}': {
      delete: adminOp('Revoke one outstanding console token', 'adminRevokeConsoleToken', { 200: json({ type: 'object', properties: { console_token: ref('AdminConsoleToken'), revoked: { type: 'integer' } } }, 'Revoked.') }, { parameters: [path('token_id', 'Hash prefix (≥ 12 hex).')] }),
    },
    '/admin/v1/sessions': {
      get: adminOp('List live console sessions (all=true: ended ones too)', 'adminListSessions', { 200: json({ type: 'object', properties: { sessions: { type: 'array', items: ref('AdminSession') }, count: { type: 'integer' } } }, 'Sessions, newest first.') },
        { parameters: [query('resource_id'), query('all', 'true: include ended sessions.'), query('limit', '1–1000, default 100.')] }),
    },
    '/admin/v1/sessions/{session_id}': {
      delete: adminOp('Kill a live console session (close code 4006 killed)', 'adminKillSession', { 200: json({ type: 'object', properties: { session: ref('AdminSession'), outcome: { const: 'ended' } } }, 'Ended.') }, { parameters: [path('session_id', 'Session id.')] }),
    },
    '/admin/v1/fleet': {
      post: adminOp('Apply a fleet file (transactional; dry_run prints the diff; prune deletes what it does not name)', 'adminApplyFleet',
        { 200: json(ref('FleetResult'), 'The changes (made, or that would be made).') },
        { requestBody: body({ type: 'object', required: ['fleet'], properties: { fleet: { type: 'string', description: 'YAML text.' }, source: { type: 'string' }, dry_run: { type: 'boolean' }, prune: { type: 'boolean' } } }) }),
    },
    '/admin/v1/nodes': {
      get: adminOp('List the gateway nodes sharing this store: state (up, stale, lost), draining, open sessions', 'adminListNodes', {
        200: json({ type: 'object', properties: { count: { type: 'integer' }, nodes: { type: 'array', items: { type: 'object', properties: {
          id: str, address: { type: 'string', description: 'host:port' }, version: str, started_at: str, heartbeat_at: str,
          state: { enum: ['up', 'stale', 'lost'], description: 'stale: heartbeat older than cluster.node_timeout_seconds, not declared yet; lost: declared lost, its sessions closed (node_lost).' },
          draining: { type: 'boolean' }, lost_at: nullableStr, sessions_open: { type: 'integer', description: 'Open sessions of the projects the caller manages.' }, self: { type: 'boolean', description: 'The node that answered.' },
        } } } } }, 'Nodes, by id.'),
      }),
    },
    '/admin/v1/keys': {
      get: adminOp('Master-key status: sealed values per key id (operators)', 'adminKeyStatus', { 200: json(ref('KeyStatus'), 'Status.') }),
    },
    '/admin/v1/keys/rotate': {
      post: adminOp('Re-seal every stored secret under the current master key (operators)', 'adminRotateKeys', { 200: json(ref('KeyStatus'), 'Done; stale = values still under other keys.') }),
    },
  };
  for (const [kind, noun] of KINDS) {
    const plural = `${kind}s`;
    paths[`/admin/v1/${plural}`] = {
      get: adminOp(`List ${noun}s with live status`, `adminList${plural}`, { 200: json({ type: 'object', properties: { [plural]: { type: 'array', items: ref('AdminMachine') }, count: { type: 'integer' } } }, 'Machines.') },
        { parameters: [query('project_id'), query('name', 'Substring.'), query('status')] }),
      post: adminOp(`Register a ${noun}`, `adminCreate${kind}`, { 201: json(wrap(kind, ref('AdminMachine')), 'Created.') }, { requestBody: body(wrap(kind, ref('MachineInput'))) }),
    };
    paths[`/admin/v1/${plural}/{id}`] = {
      get: adminOp(`Get a ${noun}`, `adminGet${kind}`, { 200: json(wrap(kind, ref('AdminMachine')), 'The machine.') }, { parameters: [path('id', 'Machine id.')] }),
      patch: adminOp(`Change a ${noun} (revokes its tokens; ends its sessions by policy)`, `adminUpdate${kind}`, { 200: json(wrap(kind, ref('AdminMachine')), 'Changed.') },
        { parameters: [path('id', 'Machine id.')], requestBody: body(wrap(kind, ref('MachineInput'))) }),
      delete: adminOp(`Delete a ${noun} (revokes its tokens; ends its sessions by policy)`, `adminDelete${kind}`, { 204: { description: 'Deleted.' } }, { parameters: [path('id', 'Machine id.')] }),
    };
    paths[`/admin/v1/${plural}/{id}/console-url`] = {
      post: adminOp(`Mint a console link for a ${noun} (view_only: the gateway drops all input; the page shows the badge)`, `adminConsoleUrl${kind}`,
        { 201: json(wrap('console_url', { type: 'object', properties: { url: { type: 'string' }, view_only: { type: 'boolean' }, expires_at: { type: 'string' }, resource_id: { type: 'string' }, resource_type: { type: 'string' } } }), 'One-time console URL.') },
        { parameters: [path('id', 'Machine id.')], requestBody: { required: false, content: { 'application/json': { schema: { type: 'object', properties: { view_only: { type: 'boolean', default: false } } } } } } }),
    };
  }
  return paths;
}

const str = { type: 'string' };
const nullableStr = { type: ['string', 'null'] };

export function adminOpenApiSchemas(): Json {
  return {
    ServerDetail: {
      type: 'object', description: 'ECS ServerDetail: Porthole\'s own fields plus the ServerDetail attributes the operator stored.',
      properties: { id: str, name: str, status: str, tenant_id: str, created: str, updated: str, flavor: { type: 'object' }, addresses: { type: 'object' }, metadata: { type: 'object' }, 'OS-EXT-STS:vm_state': str, 'OS-EXT-STS:power_state': { type: 'integer' } },
    },
    PhysicalServer: {
      type: 'object', properties: { id: str, name: str, project_id: str, domain_id: str, manage_state: str, power_state: { enum: ['on', 'off'] }, health_state: { enum: ['OK', 'Unknown'] }, onboard_time: str, location: { type: 'object' }, hardware_attributes: { type: 'object' }, tags: { type: 'array', items: { type: 'object' } } },
    },
    SimpleDesktopInfo: { type: 'object', properties: Object.fromEntries(['desktop_id', 'computer_name', 'created', 'ip_address', 'user_name', 'user_group', 'sid', 'ou_name'].map((f) => [f, str])) },
    AdminDomain: { type: 'object', properties: { id: str, name: str, created_at: str, admin: ref('AdminUser') } },
    AdminProject: { type: 'object', properties: { id: str, name: str, domain_id: str, created_at: str } },
    AdminUser: {
      type: 'object', properties: { id: str, name: str, domain_id: str, domain_admin: { type: 'boolean' }, disabled: { type: 'boolean' }, created_at: str, roles: { type: 'array', items: { type: 'object', properties: { project_id: str, role: { enum: ['admin', 'operator', 'viewer'] } } } } },
    },
    AdminAccessKey: { type: 'object', properties: { access_key: str, user_id: str, domain_id: str, status: { enum: ['active', 'inactive'] }, description: str, created_at: str, last_used_at: nullableStr } },
    EndpointInput: {
      type: 'object', required: ['url'],
      properties: { url: { type: 'string', examples: ['vnc://10.0.0.5:5901'] }, security: { enum: ['none', 'vncauth', 'vencrypt'] }, password: { type: ['string', 'null'], format: 'password' }, zone: nullableStr, ca_cert: nullableStr, client_cert: nullableStr, client_key: { type: ['string', 'null'], format: 'password' }, ...ENDPOINT_OPTION_SCHEMA },
    },
    AdminEndpoint: {
      type: 'object', properties: { resource_id: str, resource_type: str, project_id: str, url: str, security: str, zone: str, has_password: { type: 'boolean' }, generation: { type: 'integer' }, ca_cert: nullableStr, client_cert: nullableStr, has_client_key: { type: 'boolean' }, ...ENDPOINT_OPTION_SCHEMA },
    },
    MachineInput: {
      type: 'object', properties: { project_id: str, name: str, id: str, status: str, attributes: { type: 'object', description: `Desktops: DesktopDetailInfo fields (${DESKTOP_DETAIL_FIELDS.length}).` }, console: { oneOf: [ref('EndpointInput'), { type: 'null' }] } },
    },
    AdminMachine: {
      type: 'object',
      properties: {
        id: str, type: { enum: ['cloudserver', 'physicalserver', 'desktop'] }, name: str, project_id: str, domain_id: str, status: str, attributes: { type: 'object' },
        console: { oneOf: [ref('AdminEndpoint'), { type: 'null' }] }, created_at: str, updated_at: str,
        live: { type: 'object', properties: { reachability: { enum: ['up', 'down', 'unknown'] }, state: { enum: ['up', 'down', 'auth_failed', 'refused', 'unknown'] }, checked_at: nullableStr, since: nullableStr, failure: { ...nullableStr, description: 'Why the last probe failed (a stable code: refused, timeout, auth_failed, …): gateway operators only, null for tenants.' }, reason: { ...nullableStr, description: "The VNC server's own text for auth_failed/refused, or the gateway's for no_security_type/tls: gateway operators only, null for tenants." }, rfb_version: nullableStr, sessions_open: { type: 'integer' }, status: str, login_status: str } },
      },
    },
    AdminConsoleToken: { type: 'object', properties: { id: str, resource_id: str, resource_type: str, project_id: str, purpose: str, user_id: nullableStr, zone: str, view_only: { type: 'boolean' }, created_at: str, expires_at: str } },
    AdminSession: {
      type: 'object',
      properties: {
        id: str, resource_id: str, resource_type: str, project_id: str, user_id: nullableStr, user_name: nullableStr, node_id: str, source_ip: nullableStr, since: str, ended_at: nullableStr,
        bytes_to_client: { type: 'integer' }, bytes_to_backend: { type: 'integer' }, close_code: { type: ['integer', 'null'] }, close_reason: nullableStr, live: { type: 'boolean' },
      },
    },
    FleetResult: {
      type: 'object',
      properties: {
        dry_run: { type: 'boolean' }, prune: { type: 'boolean' },
        changes: { type: 'array', items: { type: 'object', properties: { action: { enum: ['create', 'update', 'delete'] }, type: str, id: str, name: str, fields: { type: 'array', items: str } } } },
        summary: { type: 'object', properties: { create: { type: 'integer' }, update: { type: 'integer' }, delete: { type: 'integer' }, unchanged: { type: 'integer' } } },
      },
    },
    KeyStatus: { type: 'object', properties: { current_key_id: str, sealed_values: { type: 'object', additionalProperties: { type: 'integer' } }, total: { type: 'integer' }, stale: { type: 'integer' }, unbound: { type: 'integer', description: 'Endpoint secrets sealed before they were bound to their endpoint target; a rotation binds them.' }, resealed: { type: 'integer' } } },
  };
}
