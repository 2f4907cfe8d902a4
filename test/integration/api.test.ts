/**
 * The seed APIs over real HTTP against the real gateway on port 0: success bodies field by field
 * against the reference (huawei-api.md C, E.1, E.3–E.5) and every documented error with its service's
 * body shape and code.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, demoLogin, login, passwordAuth, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const OTHER_FLEET = `
domains:
  - name: acme
    users:
      - name: alice
        password: alice-password
        roles: { lab: operator }
      - name: victor
        password: victor-password
        roles: { lab: viewer }
    projects:
      - name: lab
        cloudservers:
          - name: web-1
            console: { url: "vnc://127.0.0.1:1", security: none }
        physicalservers:
          - name: bm-off
            status: SHUTOFF
            console: { url: "vnc://127.0.0.1:1" }
`;

const URL_RE = /^http:\/\/127\.0\.0\.1:\d+\/vnc\/demo\/vnc_auto\.html\?token=[A-Za-z0-9_-]{43}&lang=EN$/;

describe('seed APIs', () => {
  let t: TestGateway;
  let token: string;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  let aliceToken: string;
  let victorToken: string;
  let labId: string;

  before(async () => {
    t = await startTestGateway({ fleet: OTHER_FLEET });
    f = t.gw.demo!.facts;
    token = await demoLogin(t);
    const { deriveProjectId } = await import('../../src/domain/fleet.js');
    labId = deriveProjectId('acme', 'lab');
    aliceToken = await login(t.url, 'alice', 'alice-password', 'acme', labId);
    victorToken = await login(t.url, 'victor', 'victor-password', 'acme', labId);
  });
  after(async () => t.close());

  const ecsUrl = () => `${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`;
  const ecsBody = { remote_console: { protocol: 'vnc', type: 'novnc' } };

  describe('IAM POST /v3/auth/tokens', () => {
    it('returns 201, the token in X-Subject-Token and the Keystone body', async () => {
      const r = await call(`${t.url}/v3/auth/tokens`, { json: passwordAuth(f.user, f.password, f.domain, { project: { name: f.project_name } }) });
      assert.equal(r.status, 201);
      assert.match(r.headers.get('x-subject-token') ?? '', /^PH[A-Za-z0-9_-]{60,}$/);
      assert.match(r.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/);
      const tok = (r.body as { token: Record<string, unknown> }).token;
      assert.match(String(tok.expires_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.match(String(tok.issued_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      const ttl = Date.parse(String(tok.expires_at)) - Date.parse(String(tok.issued_at));
      assert.equal(ttl, 24 * 3600 * 1000);
      assert.deepEqual(tok.methods, ['password']);
      assert.deepEqual(tok.project, { id: f.project_id, name: f.project_name, domain: { id: (tok.user as { domain: { id: string } }).domain.id, name: f.domain } });
      assert.equal((tok.user as { name: string }).name, f.user);
      assert.ok(Array.isArray(tok.roles) && tok.roles.length > 0);
      assert.ok(Array.isArray(tok.catalog));
    });
    it('scopes by project id, or to the domain; nocatalog=true omits the catalog', async () => {
      const r = await call(`${t.url}/v3/auth/tokens?nocatalog=true`, { json: passwordAuth(f.user, f.password, f.domain, { domain: { name: f.domain } }) });
      assert.equal(r.status, 201);
      const tok = (r.body as { token: Record<string, unknown> }).token;
      assert.equal(tok.catalog, undefined);
      assert.equal((tok.domain as { name: string }).name, f.domain);
      assert.equal(tok.project, undefined);
    });
    it('refuses a wrong password, an unknown user and a project the user has no role in with 401', async () => {
      for (const body of [
        passwordAuth(f.user, 'wrong-password', f.domain, { project: { id: f.project_id } }),
        passwordAuth('nobody', f.password, f.domain, { project: { id: f.project_id } }),
        passwordAuth('alice', 'alice-password', 'acme', { project: { id: f.project_id } }),
      ]) {
        const r = await call(`${t.url}/v3/auth/tokens`, { json: body });
        assert.equal(r.status, 401, r.text);
        assert.equal(r.headers.get('x-subject-token'), null);
        assert.ok(!r.text.includes('alice-password') && !r.text.includes('wrong-password'));
      }
    });
    it('answers malformed JSON, a wrong content type and a missing identity with 400', async () => {
      for (const init of [
        { body: '{"auth":', headers: { 'content-type': 'application/json' } },
        { body: JSON.stringify(passwordAuth(f.user, f.password, f.domain, undefined)), headers: { 'content-type': 'text/plain' } },
        { json: { auth: { identity: { methods: ['token'] } } } },
        { json: [1, 2] },
      ]) {
        const r = await call(`${t.url}/v3/auth/tokens`, init);
        assert.equal(r.status, 400, r.text);
        assert.equal((r.body as { error_code: string }).error_code, 'IAM.0003');
      }
    });
  });

  describe('ECS POST remote_console', () => {
    it('returns {remote_console:{type,protocol,url}} with a one-time URL', async () => {
      const r = await call(ecsUrl(), { json: ecsBody, headers: { 'x-auth-token': token } });
      assert.equal(r.status, 200, r.text);
      const rc = (r.body as { remote_console: Record<string, string> }).remote_console;
      assert.deepEqual(Object.keys(r.body as object), ['remote_console']);
      assert.equal(rc.type, 'novnc');
      assert.equal(rc.protocol, 'vnc');
      assert.match(rc.url!, URL_RE);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      const again = await call(ecsUrl(), { json: ecsBody, headers: { 'x-auth-token': token } });
      assert.notEqual((again.body as { remote_console: { url: string } }).remote_console.url, rc.url, 'every call mints a new token');
    });
    it('accepts application/json;charset=UTF-8 as the SDK sends it', async () => {
      const r = await call(ecsUrl(), { body: JSON.stringify(ecsBody), headers: { 'x-auth-token': token, 'content-type': 'application/json;charset=UTF-8' } });
      assert.equal(r.status, 200, r.text);
    });
    it('rejects other types and protocols with 400 Ecs.0005 in the nested ECS shape', async () => {
      for (const rc of [{ protocol: 'vnc', type: 'spice-html5' }, { protocol: 'serial', type: 'serial' }, { protocol: 'vnc' }, {}, null]) {
        const r = await call(ecsUrl(), { json: { remote_console: rc }, headers: { 'x-auth-token': token } });
        assert.equal(r.status, 400, r.text);
        const err = (r.body as { error: { code: string; message: string } }).error;
        assert.equal(err.code, 'Ecs.0005');
        assert.equal(typeof err.message, 'string');
        assert.match(r.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/);
      }
    });
    it('answers malformed JSON and a wrong content type with 400 Ecs.0005', async () => {
      for (const init of [{ body: '{nope', headers: { 'content-type': 'application/json' } }, { body: JSON.stringify(ecsBody), headers: { 'content-type': 'text/plain' } }]) {
        const r = await call(ecsUrl(), { ...init, headers: { ...init.headers, 'x-auth-token': token } });
        assert.equal(r.status, 400, r.text);
        assert.equal((r.body as { error: { code: string } }).error.code, 'Ecs.0005');
      }
    });
    it('answers an unknown server with 404 Ecs.0114', async () => {
      const r = await call(`${t.url}/v1/${f.project_id}/cloudservers/47bc79ae-df61-4ade-9197-283a74e5d70e/remote_console`, { json: ecsBody, headers: { 'x-auth-token': token } });
      assert.equal(r.status, 404);
      assert.deepEqual(r.body, { error: { code: 'Ecs.0114', message: 'Instance[47bc79ae-df61-4ade-9197-283a74e5d70e] could not be found.' } });
    });
    it('refuses an oversized body with 413', async () => {
      const r = await call(ecsUrl(), { body: JSON.stringify({ remote_console: ecsBody.remote_console, pad: 'x'.repeat(70_000) }), headers: { 'x-auth-token': token, 'content-type': 'application/json' } });
      assert.equal(r.status, 413);
      assert.equal((r.body as { error_code: string }).error_code, 'APIGW.0201');
    });
  });

  describe('authentication and isolation', () => {
    it('401 APIGW.0301 without a token and with a garbage token', async () => {
      for (const headers of [{}, { 'x-auth-token': 'garbage-token-value' }] as Record<string, string>[]) {
        const r = await call(ecsUrl(), { json: ecsBody, headers });
        assert.equal(r.status, 401);
        assert.equal((r.body as { error_code: string }).error_code, 'APIGW.0301');
        assert.ok(!r.text.includes('garbage-token-value'));
      }
    });
    it('401 APIGW.0307 with an expired token', async () => {
      t.clock.offsetMs = 24 * 3600 * 1000 + 1000;
      try {
        const r = await call(ecsUrl(), { json: ecsBody, headers: { 'x-auth-token': token } });
        assert.equal(r.status, 401);
        assert.equal((r.body as { error_code: string }).error_code, 'APIGW.0307');
      } finally {
        t.clock.offsetMs = 0;
      }
    });
    it("403 when a project's token is used on another project's path, with nothing of that project in the body", async () => {
      const r = await call(ecsUrl(), { json: ecsBody, headers: { 'x-auth-token': aliceToken } });
      assert.equal(r.status, 403);
      assert.equal((r.body as { error_code: string }).error_code, 'APIGW.0302');
      assert.ok(!r.text.includes(f.cloudserver_id));
      const d = await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}`, { headers: { 'x-auth-token': aliceToken } });
      assert.equal(d.status, 403);
      assert.ok(!d.text.includes('demo-desktop'));
    });
    it('403 for a viewer asking for a console; a viewer may read desktop details', async () => {
      const { deriveResourceId } = await import('../../src/domain/fleet.js');
      const web1 = deriveResourceId(labId, 'cloudserver', 'web-1');
      const r = await call(`${t.url}/v1/${labId}/cloudservers/${web1}/remote_console`, { json: ecsBody, headers: { 'x-auth-token': victorToken } });
      assert.equal(r.status, 403);
      assert.equal((r.body as { error_code: string }).error_code, 'APIGW.0302');
      const ok = await call(`${t.url}/v1/${labId}/cloudservers/${web1}/remote_console`, { json: ecsBody, headers: { 'x-auth-token': aliceToken } });
      assert.equal(ok.status, 200, ok.text);
    });
  });

  describe('CloudDC GET remote-console-address', () => {
    it('returns only {url}', async () => {
      const r = await call(`${t.url}/v1/${f.project_id}/physicalservers/${f.physicalserver_id}/remote-console-address`, { headers: { 'x-auth-token': token } });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.body as object), ['url']);
      assert.match((r.body as { url: string }).url, URL_RE);
    });
    it('answers an unknown id with 404 iMetal.0100 and a stopped server with 400 iMetal.0101', async () => {
      const r = await call(`${t.url}/v1/${f.project_id}/physicalservers/00000000-0000-4000-a000-000000000000/remote-console-address`, { headers: { 'x-auth-token': token } });
      assert.equal(r.status, 404);
      assert.deepEqual(Object.keys(r.body as object).sort(), ['error_code', 'error_msg', 'request_id']);
      assert.equal((r.body as { error_code: string }).error_code, 'iMetal.0100');
      const { deriveResourceId } = await import('../../src/domain/fleet.js');
      const off = deriveResourceId(labId, 'physicalserver', 'bm-off');
      const s = await call(`${t.url}/v1/${labId}/physicalservers/${off}/remote-console-address`, { headers: { 'x-auth-token': aliceToken } });
      assert.equal(s.status, 400);
      assert.equal((s.body as { error_code: string }).error_code, 'iMetal.0101');
    });
  });

  describe('Workspace', () => {
    it('GET remote-consoles returns {type,url,protocol}', async () => {
      const r = await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles`, { headers: { 'x-auth-token': token } });
      assert.equal(r.status, 200, r.text);
      const b = r.body as Record<string, string>;
      assert.deepEqual(Object.keys(b).sort(), ['protocol', 'type', 'url']);
      assert.equal(b.type, 'novnc');
      assert.equal(b.protocol, 'vnc');
      assert.match(b.url!, URL_RE);
    });
    it('GET desktop returns {desktop: DesktopDetailInfo} as an object', async () => {
      const r = await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}`, { headers: { 'x-auth-token': token } });
      assert.equal(r.status, 200, r.text);
      const d = (r.body as { desktop: Record<string, unknown> }).desktop;
      assert.ok(d && typeof d === 'object' && !Array.isArray(d));
      assert.equal(d.desktop_id, f.desktop_id);
      assert.equal(d.computer_name, 'demo-desktop');
      assert.equal(d.status, 'ACTIVE');
      assert.equal(d.desktop_type, 'DEDICATED');
      assert.equal(d.login_status, 'REGISTERED');
      assert.deepEqual(d.user_list, [f.user]);
      assert.equal((d.root_volume as { size: number }).size, 80);
      assert.equal(typeof d.in_maintenance_mode, 'boolean');
      assert.ok(!('endpoint' in d) && !r.text.includes('vnc://') && !r.text.includes(f.vnc_password), 'no console endpoint or VNC secret leaks');
    });
    it('answers an unknown desktop with 404 in the Workspace shape', async () => {
      const r = await call(`${t.url}/v2/${f.project_id}/desktops/00000000-0000-4000-a000-000000000000/remote-consoles`, { headers: { 'x-auth-token': token } });
      assert.equal(r.status, 404);
      const b = r.body as Record<string, string>;
      assert.equal(b.error_code, 'WKS.0202');
      assert.equal(typeof b.error_msg, 'string');
    });
  });

  // A HEAD on a console route that is a GET minted a console token (Fastify answers HEAD for every GET route):
  // a HEAD must have no side effect.
  it('HEAD on the GET console routes mints nothing', async () => {
    const tokens = async () => {
      const r = await call(`${t.url}/admin/v1/console-tokens`, { headers: { 'x-auth-token': token } });
      assert.equal(r.status, 200, r.text);
      return (r.body as { count: number }).count;
    };
    const before = await tokens();
    for (const path of [`/v1/${f.project_id}/physicalservers/${f.physicalserver_id}/remote-console-address`, `/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles`]) {
      const r = await fetch(`${t.url}${path}`, { method: 'HEAD', headers: { 'x-auth-token': token } });
      assert.equal(r.status, 404, path);
      assert.match(r.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/);
    }
    assert.equal(await tokens(), before, 'no console token was minted by a HEAD');
    // A GET of the same route still mints one: the count above can move.
    const g = await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles`, { headers: { 'x-auth-token': token } });
    assert.equal(g.status, 200, g.text);
    assert.equal(await tokens(), before + 1);
  });

  it('answers unknown routes with 404 APIGW.0101 and always sends X-Request-Id', async () => {
    for (const path of ['/v1/nothing', '/v9/x/y', `/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`]) {
      const r = await call(`${t.url}${path}`, { method: 'GET' });
      assert.equal(r.status, 404, path);
      assert.equal((r.body as { error_code: string }).error_code, 'APIGW.0101');
      assert.match(r.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/);
    }
  });
});
