/**
 * The admin REST API over real HTTP on the real gateway, signed with AK/SK like the CLI (and with IAM
 * tokens where scope matters): a round trip for every noun — domains, projects, users and role
 * bindings, access keys, the three machine kinds, console endpoints (none / vncauth / vencrypt with
 * certificates), outstanding console tokens, live sessions — plus who may do what, that no secret
 * comes back, and revocation: changing or deleting a machine revokes its links and, by policy, ends
 * its live sessions with 4007 revoked; a kill ends one with 4006 killed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { endpointTarget, endpointTlsKeyAad } from '../../src/domain/endpoint-spec.js';
import { signedCall } from '../helpers/aksk.js';
import { call, login, startTestGateway, type HttpResult, type TestGateway, websocketUrl, okBody as ok } from '../helpers/gateway.js';
import { RfbTestClient } from '../helpers/rfb-client.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A throw-away self-signed certificate and key (openssl), or undefined without openssl. */
function certificate(): { cert: string; key: string; otherKey: string } | undefined {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'porthole-cert-'));
  try {
    const gen = (name: string) => execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=porthole-test', '-days', '1',
      '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.crt`)], { stdio: 'ignore' });
    gen('a');
    gen('b');
    return { cert: readFileSync(path.join(dir, 'a.crt'), 'utf8'), key: readFileSync(path.join(dir, 'a.key'), 'utf8'), otherKey: readFileSync(path.join(dir, 'b.key'), 'utf8') };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('admin API', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  /** As the demo administrator (AK/SK; the demo domain is an operator domain). */
  const api = (method: string, p: string, json?: unknown): Promise<HttpResult> =>
    signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { method, path: p, ...(json === undefined ? {} : { json }) }, t.clock.offsetMs);
  const asToken = (token: string, method: string, p: string, json?: unknown) =>
    call(`${t.url}${p}`, { method, headers: { 'x-auth-token': token }, ...(json === undefined ? {} : { json }) });
  const fails = (r: HttpResult, status: number, code: string) => {
    assert.equal(r.status, status, r.text);
    assert.equal((r.body as Json).error_code, code, r.text);
    assert.match(r.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/);
  };

  before(async () => {
    t = await startTestGateway();
    f = t.gw.demo!.facts;
  });
  after(async () => t?.close());

  let tenant: Json;
  let tenantProject: Json;

  it('domains: create with a first administrator, list, get, rename; delete only when empty; operators only', async () => {
    const created = ok(await api('POST', '/admin/v1/domains', { domain: { name: 'tenant-a', admin: { name: 'root', password: 'root-password' } } }), 201).domain;
    assert.match(created.id, /^[0-9a-f]{32}$/);
    assert.equal(created.admin.name, 'root');
    assert.equal(created.admin.domain_admin, true);
    assert.ok(!JSON.stringify(created).includes('root-password'));
    tenant = created;
    fails(await api('POST', '/admin/v1/domains', { domain: { name: 'tenant-a', admin: { name: 'x', password: 'xxxxxxxx' } } }), 409, 'PH.0409');
    fails(await api('POST', '/admin/v1/domains', { domain: { name: 'bad/name', admin: { name: 'x', password: 'xxxxxxxx' } } }), 400, 'PH.0400');
    const list = ok(await api('GET', '/admin/v1/domains'));
    assert.deepEqual(list.domains.map((d: Json) => d.name).sort(), ['porthole-demo', 'tenant-a']);
    assert.equal(ok(await api('GET', `/admin/v1/domains/${created.id}`)).domain.name, 'tenant-a');
    assert.equal(ok(await api('PATCH', `/admin/v1/domains/${created.id}`, { domain: { name: 'tenant-b' } })).domain.name, 'tenant-b');

    // tenant-b's own administrator sees only their domain and may not create domains.
    const rootToken = (await call(`${t.url}/v3/auth/tokens`, { json: { auth: { identity: { methods: ['password'], password: { user: { name: 'root', password: 'root-password', domain: { name: 'tenant-b' } } } }, scope: { domain: { name: 'tenant-b' } } } } })).headers.get('x-subject-token')!;
    assert.deepEqual(ok(await asToken(rootToken, 'GET', '/admin/v1/domains')).domains.map((d: Json) => d.name), ['tenant-b']);
    fails(await asToken(rootToken, 'POST', '/admin/v1/domains', { domain: { name: 'c', admin: { name: 'x', password: 'xxxxxxxx' } } }), 403, 'PH.0403');
    fails(await asToken(rootToken, 'GET', `/admin/v1/projects/${f.project_id}`), 404, 'PH.0404');
    fails(await asToken(rootToken, 'GET', `/admin/v1/cloudservers/${f.cloudserver_id}`), 404, 'PH.0404');
    tenantProject = ok(await asToken(rootToken, 'POST', '/admin/v1/projects', { project: { name: 'p1' } }), 201).project;
    assert.equal(tenantProject.domain_id, created.id);
    fails(await api('DELETE', `/admin/v1/domains/${created.id}`), 409, 'PH.0409');
  });

  it('answers 401 without credentials and 403 PH.0403 for a user who is not a domain administrator', async () => {
    const r = await call(`${t.url}/admin/v1/projects`);
    assert.equal(r.status, 401);
    assert.equal((r.body as Json).error_code, 'APIGW.0301');
    ok(await api('POST', '/admin/v1/users', { user: { name: 'plain', password: 'plain-password' } }), 201);
    const plain = await login(t.url, 'plain', 'plain-password', f.domain, f.project_id).catch(() => undefined);
    assert.equal(plain, undefined, 'a user without a role in the project cannot scope to it');
    const domainToken = (await call(`${t.url}/v3/auth/tokens`, { json: { auth: { identity: { methods: ['password'], password: { user: { name: 'plain', password: 'plain-password', domain: { name: f.domain } } } }, scope: { domain: { name: f.domain } } } } })).headers.get('x-subject-token')!;
    for (const p of ['/admin/v1/projects', '/admin/v1/users', '/admin/v1/cloudservers', '/admin/v1/sessions', '/admin/v1/console-tokens', '/admin/v1/access-keys']) {
      fails(await asToken(domainToken, 'GET', p), 403, 'PH.0403');
    }
  });

  it('projects: create, list, get, rename; names unique per domain; delete only without machines', async () => {
    const p = ok(await api('POST', '/admin/v1/projects', { project: { name: 'staging' } }), 201).project;
    assert.match(p.id, /^[0-9a-f]{32}$/);
    fails(await api('POST', '/admin/v1/projects', { project: { name: 'staging' } }), 409, 'PH.0409');
    assert.ok(ok(await api('GET', '/admin/v1/projects')).projects.some((x: Json) => x.id === p.id));
    assert.deepEqual(ok(await api('GET', `/admin/v1/projects?domain_id=${tenant.id}`)).projects.map((x: Json) => x.name), ['p1']);
    assert.equal(ok(await api('PATCH', `/admin/v1/projects/${p.id}`, { project: { name: 'stage' } })).project.name, 'stage');
    const m = ok(await api('POST', '/admin/v1/cloudservers', { cloudserver: { project_id: p.id, name: 'tmp' } }), 201).cloudserver;
    fails(await api('DELETE', `/admin/v1/projects/${p.id}`), 409, 'PH.0409');
    assert.equal((await api('DELETE', `/admin/v1/cloudservers/${m.id}`)).status, 204);
    assert.equal((await api('DELETE', `/admin/v1/projects/${p.id}`)).status, 204);
    fails(await api('GET', `/admin/v1/projects/${p.id}`), 404, 'PH.0404');
    // The empty domain can go now (its users with it).
    assert.equal((await api('DELETE', `/admin/v1/projects/${tenantProject.id}`)).status, 204);
    assert.equal((await api('DELETE', `/admin/v1/domains/${tenant.id}`)).status, 204);
    fails(await api('GET', `/admin/v1/domains/${tenant.id}`), 404, 'PH.0404');
    fails(await api('DELETE', `/admin/v1/domains/${(await t.gw.store.identity.findDomainByName(f.domain))!.id}`), 409, 'PH.0409');
  });

  it('users and role bindings: create, list, get, change password and flags, bind and unbind roles, delete', async () => {
    const u = ok(await api('POST', '/admin/v1/users', { user: { name: 'carol', password: 'carol-password' } }), 201).user;
    assert.deepEqual([u.domain_admin, u.disabled, u.roles], [false, false, []]);
    fails(await api('POST', '/admin/v1/users', { user: { name: 'carol', password: 'carol-password' } }), 409, 'PH.0409');
    fails(await api('POST', '/admin/v1/users', { user: { name: 'dave', password: 'short' } }), 400, 'PH.0400');
    const bound = ok(await api('PUT', `/admin/v1/users/${u.id}/roles/${f.project_id}`, { role: 'operator' })).user;
    assert.deepEqual(bound.roles, [{ project_id: f.project_id, role: 'operator' }]);
    fails(await api('PUT', `/admin/v1/users/${u.id}/roles/${f.project_id}`, { role: 'owner' }), 400, 'PH.0400');
    await login(t.url, 'carol', 'carol-password', f.domain, f.project_id);
    assert.ok(ok(await api('GET', '/admin/v1/users')).users.some((x: Json) => x.name === 'carol' && x.roles.length === 1));
    ok(await api('PATCH', `/admin/v1/users/${u.id}`, { user: { password: 'carol-password-2' } }));
    await assert.rejects(login(t.url, 'carol', 'carol-password', f.domain, f.project_id));
    await login(t.url, 'carol', 'carol-password-2', f.domain, f.project_id);
    ok(await api('PATCH', `/admin/v1/users/${u.id}`, { user: { disabled: true } }));
    await assert.rejects(login(t.url, 'carol', 'carol-password-2', f.domain, f.project_id));
    ok(await api('PATCH', `/admin/v1/users/${u.id}`, { user: { disabled: false, name: 'caroline' } }));
    assert.deepEqual(ok(await api('DELETE', `/admin/v1/users/${u.id}/roles/${f.project_id}`)).user.roles, []);
    fails(await api('DELETE', `/admin/v1/users/${u.id}/roles/${f.project_id}`), 404, 'PH.0404');
    assert.equal(ok(await api('GET', `/admin/v1/users/${u.id}`)).user.name, 'caroline');
    assert.equal((await api('DELETE', `/admin/v1/users/${u.id}`)).status, 204);
    fails(await api('GET', `/admin/v1/users/${u.id}`), 404, 'PH.0404');
    const me = (await t.gw.store.identity.findUserByName((await t.gw.store.identity.findDomainByName(f.domain))!.id, f.user))!;
    fails(await api('DELETE', `/admin/v1/users/${me.id}`), 409, 'PH.0409');
    fails(await api('PATCH', `/admin/v1/users/${me.id}`, { user: { domain_admin: false } }), 409, 'PH.0409');
  });

  it('a token already in use follows identity changes at once (the identity cache is cleared): disabled, role removed, deleted', async () => {
    const u = ok(await api('POST', '/admin/v1/users', { user: { name: 'frank', password: 'frank-password' } }), 201).user;
    ok(await api('PUT', `/admin/v1/users/${u.id}/roles/${f.project_id}`, { role: 'operator' }));
    let token = await login(t.url, 'frank', 'frank-password', f.domain, f.project_id);
    const mint = () => call(`${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, {
      headers: { 'x-auth-token': token }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } },
    });
    assert.equal((await mint()).status, 200);
    assert.equal((await mint()).status, 200, 'served from the cache the second time');
    ok(await api('PATCH', `/admin/v1/users/${u.id}`, { user: { disabled: true } }));
    assert.equal((await mint()).status, 401, 'a disabled user\'s token is refused on the next call');
    ok(await api('PATCH', `/admin/v1/users/${u.id}`, { user: { disabled: false } }));
    assert.equal((await mint()).status, 401, 'disabling deleted the token: enabling the user again does not bring it back (security #13)');
    token = await login(t.url, 'frank', 'frank-password', f.domain, f.project_id);
    assert.equal((await mint()).status, 200);
    ok(await api('DELETE', `/admin/v1/users/${u.id}/roles/${f.project_id}`));
    assert.equal((await mint()).status, 403, 'the removed role is gone on the next call');
    ok(await api('PUT', `/admin/v1/users/${u.id}/roles/${f.project_id}`, { role: 'viewer' }));
    assert.equal((await mint()).status, 403, 'a viewer may not open consoles');
    assert.equal((await api('DELETE', `/admin/v1/users/${u.id}`)).status, 204);
    assert.equal((await mint()).status, 401, 'a deleted user\'s token is gone');
    assert.deepEqual(ok(await api('DELETE', `/admin/v1/console-tokens?resource_id=${f.cloudserver_id}`)), { revoked: 0 }, 'the three URLs it minted were revoked when it was disabled and when its role was removed (security #4)');
  });

  it('access keys: create (the SK once), list, get, deactivate (its signatures then fail), delete', async () => {
    const u = ok(await api('POST', '/admin/v1/users', { user: { name: 'erin', password: 'erin-password', domain_admin: true } }), 201).user;
    const k = ok(await api('POST', '/admin/v1/access-keys', { access_key: { user_id: u.id, description: 'ci' } }), 201).access_key;
    assert.match(k.access_key, /^[A-Z0-9]{20}$/);
    assert.match(k.secret_key, /^[A-Za-z0-9]{40}$/);
    const listed = ok(await api('GET', `/admin/v1/access-keys?user_id=${u.id}`));
    assert.deepEqual(listed.access_keys.map((x: Json) => [x.access_key, x.description]), [[k.access_key, 'ci']]);
    assert.ok(!JSON.stringify(listed).includes(k.secret_key), 'the SK is never listed');
    assert.ok(!JSON.stringify(ok(await api('GET', `/admin/v1/access-keys/${k.access_key}`))).includes(k.secret_key));
    const asErin = () => signedCall(t.url, { ak: k.access_key, sk: k.secret_key }, { path: '/admin/v1/projects' });
    assert.equal((await asErin()).status, 200);
    assert.equal(ok(await api('PATCH', `/admin/v1/access-keys/${k.access_key}`, { access_key: { status: 'inactive' } })).access_key.status, 'inactive');
    assert.equal((await asErin()).status, 401);
    assert.equal((await api('DELETE', `/admin/v1/access-keys/${k.access_key}`)).status, 204);
    fails(await api('GET', `/admin/v1/access-keys/${k.access_key}`), 404, 'PH.0404');
    assert.equal((await api('DELETE', `/admin/v1/users/${u.id}`)).status, 204);
  });

  for (const kind of ['cloudserver', 'physicalserver', 'desktop'] as const) {
    it(`${kind}s: create with a console and attributes, list with filters, get without secrets, patch, delete`, async () => {
      const plural = `${kind}s`;
      const attributes = kind === 'desktop' ? { desktop_type: 'DEDICATED', ipv4: '10.1.1.1', in_maintenance_mode: false, process: null } : { flavor: 'c7.large.2' };
      const made = ok(await api('POST', `/admin/v1/${plural}`, {
        [kind]: { project_id: f.project_id, name: `new-${kind}`, attributes, console: { url: 'vnc://127.0.0.1:5999', security: 'vncauth', password: 'hushhush', zone: 'lab' } },
      }), 201)[kind];
      assert.equal(made.type, kind);
      assert.equal(made.status, 'ACTIVE');
      assert.deepEqual(made.attributes, attributes);
      assert.deepEqual(made.console, { url: 'vnc://127.0.0.1:5999', security: 'vncauth', zone: 'lab', has_password: true, generation: 1 });
      assert.equal(made.live.reachability, 'unknown');
      const all = await api('GET', `/admin/v1/${plural}?project_id=${f.project_id}`);
      assert.ok(!all.text.includes('hushhush') && !all.text.includes('v1:k'), 'no VNC password, sealed or not');
      assert.deepEqual(ok(all)[plural].map((x: Json) => x.name).sort(), [`demo-${kind === 'cloudserver' ? 'ecs' : kind === 'physicalserver' ? 'bms' : 'desktop'}`, `new-${kind}`].sort());
      assert.deepEqual(ok(await api('GET', `/admin/v1/${plural}?name=NEW-`))[plural].map((x: Json) => x.id), [made.id]);
      fails(await api('POST', `/admin/v1/${plural}`, { [kind]: { project_id: f.project_id, name: `new-${kind}` } }), 409, 'PH.0409');
      const patched = ok(await api('PATCH', `/admin/v1/${plural}/${made.id}`, { [kind]: { status: 'SHUTOFF', attributes: { extra_note: kind === 'desktop' ? undefined : 'x', ...(kind === 'desktop' ? { ou_name: 'ou=a' } : {}) } } }));
      assert.deepEqual(patched.changed, ['status', 'attributes']);
      assert.equal(patched[kind].status, 'SHUTOFF');
      assert.equal(ok(await api('GET', `/admin/v1/${plural}/${made.id}`))[kind].status, 'SHUTOFF');
      const same = ok(await api('PATCH', `/admin/v1/${plural}/${made.id}`, { [kind]: { status: 'SHUTOFF' } }));
      assert.deepEqual(same.changed, []);
      fails(await api('GET', `/admin/v1/${kind === 'desktop' ? 'cloudservers' : 'desktops'}/${made.id}`), 404, 'PH.0404');
      assert.equal((await api('DELETE', `/admin/v1/${plural}/${made.id}`)).status, 204);
      fails(await api('GET', `/admin/v1/${plural}/${made.id}`), 404, 'PH.0404');
    });
  }

  it('desktops: every DesktopDetailInfo attribute is checked; users are assigned and unassigned', async () => {
    fails(await api('POST', '/admin/v1/desktops', { desktop: { project_id: f.project_id, name: 'd-bad', attributes: { desktop_type: 'LAPTOP' } } }), 400, 'PH.0400');
    fails(await api('POST', '/admin/v1/desktops', { desktop: { project_id: f.project_id, name: 'd-bad', attributes: { colour: 'red' } } }), 400, 'PH.0400');
    fails(await api('POST', '/admin/v1/desktops', { desktop: { project_id: f.project_id, name: 'd-bad', attributes: { user_list: 'alice' } } }), 400, 'PH.0400');
    const d = ok(await api('POST', '/admin/v1/desktops', { desktop: { project_id: f.project_id, name: 'd-users' } }), 201).desktop;
    const assigned = ok(await api('POST', `/admin/v1/desktops/${d.id}/users`, { user_name: f.user, user_group: 'administrators' })).desktop;
    assert.deepEqual(assigned.attributes.user_list, [f.user]);
    assert.equal(assigned.attributes.user_name, f.user);
    assert.equal(assigned.attributes.attach_user_infos[0].user_group, 'administrators');
    const token = await login(t.url, f.user, f.password, f.domain, f.project_id);
    const detail = await call(`${t.url}/v2/${f.project_id}/desktops/${d.id}`, { headers: { 'x-auth-token': token } });
    assert.deepEqual((detail.body as Json).desktop.user_list, [f.user], 'the Workspace API shows the assignment');
    fails(await api('POST', `/admin/v1/desktops/${d.id}/users`, { user_name: 'nobody' }), 404, 'PH.0404');
    const un = ok(await api('DELETE', `/admin/v1/desktops/${d.id}/users/${f.user}`)).desktop;
    assert.deepEqual(un.attributes.user_list, []);
    assert.equal(un.attributes.user_name, undefined);
    assert.equal((await api('DELETE', `/admin/v1/desktops/${d.id}`)).status, 204);
  });

  it('console endpoints: set, get, keep the secret when it is left out, validate VeNCrypt certificates, delete', async () => {
    const m = ok(await api('POST', '/admin/v1/cloudservers', { cloudserver: { project_id: f.project_id, name: 'ep-1' } }), 201).cloudserver;
    fails(await api('GET', `/admin/v1/endpoints/${m.id}`), 404, 'PH.0404');
    // Point it at the demo desktop with its VNC password: a console then works end to end.
    const port = t.gw.demo!.desktop.port;
    const set = ok(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: `vnc://127.0.0.1:${port}`, security: 'vncauth', password: f.vnc_password } }));
    assert.deepEqual(set.changed, ['console']);
    assert.equal(set.endpoint.zone, 'porthole');
    const token = await login(t.url, f.user, f.password, f.domain, f.project_id);
    const open = async () => {
      const r = await call(`${t.url}/v1/${f.project_id}/cloudservers/${m.id}/remote_console`, { json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token } });
      assert.equal(r.status, 200, r.text);
      const c = await RfbTestClient.connect(websocketUrl((r.body as Json).remote_console.url));
      c.close();
    };
    await open();
    // A new zone without the password: the stored one is kept and still opens the console.
    const moved = ok(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: `vnc://127.0.0.1:${port}`, zone: 'az9' } })).endpoint;
    assert.deepEqual([moved.security, moved.has_password, moved.zone, moved.generation], ['vncauth', true, 'az9', 3]);
    await open();
    fails(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: 'http://x' } }), 400, 'PH.0400');
    fails(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: 'vnc://h:1', security: 'none', password: 'x' } }), 400, 'PH.0400');
    fails(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: 'vnc://h:1', security: 'vencrypt', ca_cert: 'not a pem' } }), 400, 'PH.0400');
    const pki = certificate();
    if (pki) {
      fails(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: 'vnc://h:1', security: 'vencrypt', client_cert: pki.cert, client_key: pki.otherKey } }), 400, 'PH.0400');
      const r = await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: 'vnc://h:5901', security: 'vencrypt', ca_cert: pki.cert, client_cert: pki.cert, client_key: pki.key, password: 'inner-vnc' } });
      const ep = ok(r).endpoint;
      assert.deepEqual([ep.security, ep.ca_cert, ep.client_cert, ep.has_client_key, ep.has_password], ['vencrypt', pki.cert, pki.cert, true, true]);
      assert.ok(!r.text.includes('PRIVATE KEY') && !r.text.includes('inner-vnc'), 'the key and password are never returned');
      const stored = (await t.gw.store.inventory.getResourceById(m.id))!.endpoint!;
      assert.match(stored.tlsKeySealed!, /^v1:k[0-9a-f]{16}:/);
      assert.equal(t.gw.secrets.open(stored.tlsKeySealed!, endpointTlsKeyAad(m.id, endpointTarget(stored))), pki.key, 'sealed bound to the machine and its target');
    }
    assert.equal((await api('DELETE', `/admin/v1/endpoints/${m.id}`)).status, 204);
    assert.equal(ok(await api('GET', `/admin/v1/cloudservers/${m.id}`)).cloudserver.console, null);
    const r = await call(`${t.url}/v1/${f.project_id}/cloudservers/${m.id}/remote_console`, { json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token } });
    assert.equal(r.status, 400);
    assert.equal((await api('DELETE', `/admin/v1/cloudservers/${m.id}`)).status, 204);
  });

  it('console tokens: outstanding ones listed by hash prefix (never the token), revoked one by one or per machine', async () => {
    const token = await login(t.url, f.user, f.password, f.domain, f.project_id);
    const mint = async () => {
      const r = await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles`, { headers: { 'x-auth-token': token } });
      return new URL((r.body as Json).url).searchParams.get('token')!;
    };
    const [a, b, c] = [await mint(), await mint(), await mint()];
    const r = await api('GET', `/admin/v1/console-tokens?resource_id=${f.desktop_id}`);
    const list = ok(r).console_tokens as Json[];
    assert.equal(list.length, 3);
    for (const x of list) {
      assert.match(x.id, /^[0-9a-f]{12}$/);
      assert.deepEqual([x.resource_id, x.resource_type, x.purpose, x.project_id], [f.desktop_id, 'desktop', 'console', f.project_id]);
    }
    for (const tok of [a, b, c]) assert.ok(!r.text.includes(tok), 'a token never appears');
    const { createHash } = await import('node:crypto');
    const idOf = (tok: string) => createHash('sha256').update(tok).digest('hex').slice(0, 12);
    assert.deepEqual(new Set(list.map((x) => x.id)), new Set([a, b, c].map(idOf)));
    const one = ok(await api('DELETE', `/admin/v1/console-tokens/${idOf(a)}`));
    assert.equal(one.console_token.id, idOf(a));
    assert.equal(await t.gw.consoles.state(a, 'demo'), 'revoked');
    assert.equal(await t.gw.consoles.state(b, 'demo'), 'valid');
    fails(await api('DELETE', `/admin/v1/console-tokens/${idOf(a)}`), 404, 'PH.0404');
    assert.deepEqual(ok(await api('DELETE', `/admin/v1/console-tokens?resource_id=${f.desktop_id}`)), { revoked: 2 });
    assert.equal(await t.gw.consoles.state(c, 'demo'), 'revoked');
    assert.equal(ok(await api('GET', '/admin/v1/console-tokens')).count, 0);
  });

  it('sessions: a live one is listed with node, user, bytes and since; kill ends it with 4006 killed', async () => {
    const token = await login(t.url, f.user, f.password, f.domain, f.project_id);
    const r = await call(`${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, { json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token } });
    const c = await RfbTestClient.connect(websocketUrl((r.body as Json).remote_console.url));
    await c.requestUpdate();
    const live = ok(await api('GET', '/admin/v1/sessions')).sessions as Json[];
    assert.equal(live.length, 1);
    const s = live[0]!;
    assert.deepEqual([s.resource_id, s.resource_type, s.user_name, s.node_id, s.live], [f.cloudserver_id, 'cloudserver', f.user, t.gw.admin.nodeId, true]);
    assert.ok(s.bytes_to_client > 1000, `bytes so far: ${s.bytes_to_client}`);
    assert.ok(Date.now() - Date.parse(s.since) < 60_000);
    const killed = ok(await api('DELETE', `/admin/v1/sessions/${s.id}`));
    assert.equal(killed.outcome, 'ended');
    assert.deepEqual(await c.closed, { code: 4006, reason: 'killed' });
    fails(await api('DELETE', '/admin/v1/sessions/00000000-0000-4000-a000-000000000000'), 404, 'PH.0404');
    for (let i = 0; i < 50 && ok(await api('GET', '/admin/v1/sessions')).count > 0; i++) await new Promise((res) => setTimeout(res, 20));
    const ended = (ok(await api('GET', '/admin/v1/sessions?all=true')).sessions as Json[]).find((x) => x.id === s.id)!;
    assert.deepEqual([ended.live, ended.close_code, ended.close_reason], [false, 4006, 'killed']);
    fails(await api('DELETE', `/admin/v1/sessions/${s.id}`), 409, 'PH.0409');
  });

  it('changing a machine revokes its links and ends its live session with 4007 revoked; deleting it too', async () => {
    const m = ok(await api('POST', '/admin/v1/desktops', { desktop: { project_id: f.project_id, name: 'rev-1', console: { url: `vnc://127.0.0.1:${t.gw.demo!.desktop.port}`, password: f.vnc_password } } }), 201).desktop;
    const token = await login(t.url, f.user, f.password, f.domain, f.project_id);
    const mint = async () => (await call(`${t.url}/v2/${f.project_id}/desktops/${m.id}/remote-consoles`, { headers: { 'x-auth-token': token } })).body as Json;
    const c = await RfbTestClient.connect(websocketUrl((await mint()).url));
    const pending = new URL((await mint()).url).searchParams.get('token')!;
    ok(await api('PATCH', `/admin/v1/desktops/${m.id}`, { desktop: { attributes: { ou_name: 'moved' } } }));
    assert.deepEqual(await c.closed, { code: 4007, reason: 'revoked' });
    assert.equal(await t.gw.consoles.state(pending, 'porthole'), 'revoked');
    const c2 = await RfbTestClient.connect(websocketUrl((await mint()).url));
    assert.equal((await api('DELETE', `/admin/v1/desktops/${m.id}`)).status, 204);
    assert.deepEqual(await c2.closed, { code: 4007, reason: 'revoked' });
  });

  it('every admin call is in the audit trail', async () => {
    const events = ok(await api('GET', '/admin/v1/audit-events?action=admin:desktops:delete')).events as Json[];
    assert.ok(events.length >= 2);
    assert.ok(events.every((e) => e.access_key === f.ak && e.result === 'success' && e.resource_type === 'desktop'));
    const refused = ok(await api('GET', '/admin/v1/audit-events?action=admin:domains:create&result=failure')).events as Json[];
    assert.ok(refused.length >= 2);
  });
});

describe('admin API with console.end_sessions_on_change off', () => {
  let t: TestGateway;
  before(async () => { t = await startTestGateway({ args: ['--console-end-sessions-on-change=false'] }); });
  after(async () => t?.close());

  it('a change still revokes outstanding links but leaves the live session running', async () => {
    const f = t.gw.demo!.facts;
    const token = await login(t.url, f.user, f.password, f.domain, f.project_id);
    const mint = async () => new URL(((await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles`, { headers: { 'x-auth-token': token } })).body as Json).url);
    const u = await mint();
    const c = await RfbTestClient.connect(websocketUrl(u.toString()));
    const pending = (await mint()).searchParams.get('token')!;
    const r = await signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { method: 'PATCH', path: `/admin/v1/desktops/${f.desktop_id}`, json: { desktop: { attributes: { ou_name: 'elsewhere' } } } });
    assert.equal(r.status, 200, r.text);
    assert.equal(await t.gw.consoles.state(pending, 'demo'), 'revoked');
    await c.requestUpdate();
    assert.equal(t.gw.upgrade.live().length, 1, 'the session is still relayed');
    c.close();
  });
});
