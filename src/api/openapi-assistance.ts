/**
 * The OpenAPI paths and schemas of remote assistance (routes/assistance.ts): the Workspace
 * remote-assistance API and the browser endpoints (join page, console-page channel). Merged into the
 * document by api/openapi.ts.
 */
type Json = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, description: string): Json => ({ description, content: { 'application/json': { schema } } });
const wks = (description: string): Json => json({ oneOf: [ref('WorkspaceError'), ref('ApigwError')] }, description);
const ph = (description: string): Json => json(ref('AssistError'), description);
const security = [{ iamToken: [] }, { akSk: [] }];
const projectId = { name: 'project_id', in: 'path', required: true, description: 'Project id (32 lower-hex characters).', schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } };
const desktopId = { name: 'desktop_id', in: 'path', required: true, description: 'Desktop id.', schema: { type: 'string' } };
const pageKey = { name: 'X-Porthole-Page-Key', in: 'header', required: true, description: 'The key the console page offered as WebSocket subprotocol porthole-page.<key> when it connected.', schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{32,128}$' } };
const auth: Json = {
  401: json(ref('ApigwError'), 'APIGW.0301 missing or invalid credentials; APIGW.0307 expired IAM token.'),
  403: json(ref('ApigwError'), 'APIGW.0302 not an operator of the project nor the desktop\'s assigned user, or credentials of another project.'),
  429: { ...json(ref('ApigwError'), 'APIGW.0308 throttled; see Retry-After.'), headers: { 'Retry-After': { schema: { type: 'integer' } } } },
};

function wop(summary: string, operationId: string, extra: Json): Json {
  return { tags: ['workspace'], summary, security, operationId, parameters: [projectId, desktopId], ...extra };
}

function bop(summary: string, operationId: string, extra: Json): Json {
  return { tags: ['remote assistance'], summary, operationId, ...extra };
}

export function assistanceOpenApiPaths(): Json {
  const base = '/v2/{project_id}/desktops/{desktop_id}/remote-assistance';
  return {
    [base]: {
      post: wop('Create remote assistance (CreateRemoteAssistance)', 'createRemoteAssistance', {
        description: 'No body. Needs the right to open the desktop\'s console (operator or admin; an assigned user with only the viewer role gets 403). By someone else than the desktop\'s assigned users: ADMIN_INITIATE, waits until every assigned user accepted (WAIT_USER_CONFIRM). By an assigned user: ENDUSER_INITIATE, their consent; it starts at WAIT_USER_ACCESS when they are the only assigned user, else it waits for the others.',
        responses: {
          200: json(ref('CreatedRemoteAssistance'), 'The share space.'),
          400: wks('WKS.0001 the desktop already has remote assistance in progress, or its console cannot be used.'),
          404: wks('WKS.0202 no such desktop.'), ...auth,
        },
      }),
      get: wop('Show remote assistance (ShowDesktopRemoteAssistanceInfo)', 'showDesktopRemoteAssistanceInfo', {
        description: 'The desktop\'s active share space, else its latest closed one. Operator (or admin) or the desktop\'s assigned user. share_space_passwd is the join password only for callers who may open the desktop\'s console and only while the space is active; else "".',
        responses: { 200: json(ref('RemoteAssistanceInfo'), 'The share space.'), 404: wks('WKS.0202 no such desktop, or it never had remote assistance.'), ...auth },
      }),
      delete: wop('Cancel remote assistance (CancelRemoteAssistance)', 'cancelRemoteAssistance', {
        responses: { 204: { description: 'Closed; every helper was disconnected (close 4020 assistance_ended).' }, 404: wks('WKS.0202 no such desktop, or no remote assistance in progress.'), ...auth },
      }),
    },
    [`${base}/actions`]: {
      post: wop('Answer remote assistance as the desktop\'s user', 'respondRemoteAssistance', {
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['action'], properties: { action: { enum: ['accept', 'decline', 'close'] } } } } } },
        responses: {
          200: json(ref('RemoteAssistanceInfo'), 'The share space after the answer.'),
          400: wks('WKS.0001 bad body, or the space is not waiting for an answer.'),
          404: wks('WKS.0202 no such desktop, or no remote assistance in progress.'), ...auth,
        },
      }),
    },
    '/assist/join': {
      get: bop('The join page', 'assistJoinPage', {
        parameters: [{ name: 'code', in: 'query', description: 'Invitation code to fill in.', schema: { type: 'string' } }],
        responses: { 200: { description: 'HTML under a strict CSP (no inline script or style).', content: { 'text/html': {} } }, 503: ph('PH.0503 the page was not built.') },
      }),
    },
    '/assist/{file}': {
      get: bop('The join page\'s script, style and icon', 'assistJoinAsset', {
        parameters: [{ name: 'file', in: 'path', required: true, description: 'join.js, join.css, favicon.svg (and source maps).', schema: { type: 'string' } }],
        responses: { 200: { description: 'The file.', content: { 'text/javascript': {}, 'text/css': {}, 'image/svg+xml': {} } }, 404: ph('PH.0404 unknown file.') },
      }),
    },
    '/assist/v1/join': {
      post: bop('Join a share space with its invitation code and password', 'assistJoin', {
        description: 'No credentials needed. IAM credentials (X-Auth-Token or an AK/SK signature) may be sent: they are checked and name the helper, and the desktop\'s own side may not join.',
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['code', 'password'], properties: { code: { type: 'string' }, password: { type: 'string', format: 'password' }, name: { type: 'string', maxLength: 64 } } } } } },
        responses: {
          200: json({ type: 'object', required: ['console_url', 'share_space_id'], properties: { console_url: { type: 'string', description: 'Relative one-time, view-only console URL on this origin.' }, share_space_id: { type: 'string' } } }, 'Joined.'),
          400: ph('PH.0400 missing code or password, or a bad body.'),
          401: ph('PH.0401 wrong code or password (counted per share space and per source address); with IAM credentials sent (optional), APIGW.0301/0307 when they are not valid.'),
          403: ph('PH.0403 the IAM credentials sent are those of the desktop\'s own side: the user who asked for an ENDUSER_INITIATE space, an assigned user, or one who agreed to the space.'),
          409: ph('PH.0409 the desktop user has not accepted yet, or the desktop cannot be reached.'),
          429: { ...ph('PH.0429 too many wrong attempts: locked; see Retry-After.'), headers: { 'Retry-After': { schema: { type: 'integer' } } } },
        },
      }),
    },
    '/assist/v1/page': {
      get: bop('What a console page shows about remote assistance', 'assistPageState', {
        parameters: [pageKey],
        responses: {
          200: json(ref('AssistPageState'), 'The page\'s role and state; poll again after poll_ms (null: stop).'),
          401: ph('PH.0401 no page key.'), 404: ph('PH.0404 unknown page key.'), 410: ph('PH.0410 the console session has ended.'),
        },
      }),
    },
    '/assist/v1/page/actions': {
      post: bop('The desktop user\'s actions from their console page', 'assistPageAction', {
        parameters: [pageKey],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['action'], properties: { action: { enum: ['accept', 'decline', 'close', 'grant_control', 'revoke_control', 'remove_helper'] }, helper_id: { type: 'string' } } } } } },
        responses: {
          200: json(ref('AssistPageState'), 'The page\'s state after the action.'),
          400: ph('PH.0400 unknown action.'), 401: ph('PH.0401 no page key.'), 403: ph('PH.0403 not the desktop\'s user.'),
          404: ph('PH.0404 unknown page key or helper.'), 409: ph('PH.0409 nothing in progress, or not in a state for that.'), 410: ph('PH.0410 the console session has ended.'),
        },
      }),
    },
  };
}

export function assistanceOpenApiSchemas(): Json {
  const status = { enum: ['OPEN', 'CLOSE', 'WAIT_USER_CONFIRM', 'WAIT_USER_ACCESS'] };
  return {
    CreatedRemoteAssistance: {
      type: 'object', description: 'CreateRemoteAssistanceResponse.',
      properties: { share_space_id: { type: 'string' }, status, desktop_id: { type: 'string' }, initiator_type: { enum: ['ADMIN_INITIATE', 'ENDUSER_INITIATE'] } },
    },
    RemoteAssistanceInfo: {
      type: 'object', description: 'ShowDesktopRemoteAssistanceInfoResponse: exactly these nine fields.',
      required: ['share_space_id', 'invitation_code', 'share_space_name', 'share_space_passwd', 'private_share_link', 'internet_share_link', 'create_time', 'status', 'failed_reason'],
      properties: {
        share_space_id: { type: 'string' },
        invitation_code: { type: 'string', pattern: '^[A-Z0-9]{8}$' },
        share_space_name: { type: 'string' },
        share_space_passwd: { type: 'string', format: 'password', description: 'The join password; "" once the space is closed, and for callers who may not open the desktop\'s console. It changes when the desktop user removes a helper.' },
        private_share_link: { type: 'string', format: 'uri', description: '{assistance.private_share_url}/assist/join?code=…' },
        internet_share_link: { type: 'string', format: 'uri', description: '{assistance.internet_share_url}/assist/join?code=…' },
        create_time: { type: 'string', description: 'UTC, yyyy-MM-ddTHH:mm:ssZ.' },
        status,
        failed_reason: { type: ['string', 'null'], description: 'Set when declined or expired.' },
      },
    },
    AssistPageState: {
      type: 'object', required: ['role', 'poll_ms'],
      properties: {
        role: { enum: ['user', 'helper', 'none'] }, poll_ms: { type: ['integer', 'null'] },
        assistance: { type: ['object', 'null'], description: 'role user: the request or the active space (status, initiator_type, requested_by, consented: this page\'s user agreed, waiting_for: assigned users who have not yet) and its connected helpers {id, name, since, control}.' },
        helper: { type: 'object', description: 'role helper: {id, name, control, state}.' }, status,
      },
    },
    AssistError: { type: 'object', required: ['error_code', 'error_msg'], properties: { error_code: { type: 'string', examples: ['PH.0401'] }, error_msg: { type: 'string' }, request_id: { type: 'string' } } },
  };
}
