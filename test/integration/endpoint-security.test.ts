/**
 * Security regressions around console endpoints and machine ids, over the real gateway:
 *  - #2: a stored VNC password / sealed TLS client key never follows an endpoint to another target
 *    (host, port, security, CA, server name, VeNCrypt subtypes): it is dropped unless given again,
 *    and a sealed value is bound to its target, so it cannot be opened for another one.
 *  - #9: a VeNCrypt endpoint needs a CA or a server name (no "any public certificate for any name").
 *  - #11: a machine deleted and created again under the same name (same derived id) shows none of the
 *    previous machine's sessions, share spaces or audit events; deleting a desktop closes its space.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { keyStatus, rotateKeys } from '../../src/domain/key-rotation.js';
import { VeNCryptSubtype } from '../../src/rfb/constants.js';
import { vencryptSubtypesFor } from '../../src/rfb/client-handshake.js';
import { signedCall } from '../helpers/aksk.js';
import { assistUrl, cast } from '../helpers/assistance.js';
import { call, login, startTestGateway, type HttpResult, type TestGateway, websocketUrl, okBody as ok } from '../helpers/gateway.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import { makeTestPki, requireTools, type TestPki } from '../helpers/vnc-servers.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('endpoint and machine-id security', { skip: requireTools('openssl') }, () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  let pki: TestPki;
  const api = (method: string, p: string, json?: unknown): Promise<HttpResult> =>
    signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { method, path: p, ...(json === undefined ? {} : { json }) }, t.clock.offsetMs);
  const fails = (r: HttpResult, status: number, code: string, re?: RegExp) => {
    assert.equal(r.status, status, r.text);
    assert.equal((r.body as Json).error_code, code, r.text);
    if (re) assert.match(r.text, re);
  };
  const machine = async (name: string, console: Json): Promise<Json> =>
    ok(await api('POST', '/admin/v1/cloudservers', { cloudserver: { project_id: f.project_id, name, console } }), 201).cloudserver;
  const stored = async (id: string) => (await t.gw.store.inventory.getResourceById(id))!;
  let people: Awaited<ReturnType<typeof cast>> | undefined;
  const castOnce = async () => (people ??= await cast(t));

  before(async () => {
    pki = makeTestPki();
    t = await startTestGateway();
    f = t.gw.demo!.facts;
  });
  after(async () => {
    await t?.close();
    pki?.close();
  });

  it('security #2: changing host, port, security, CA, server name or subtypes drops the stored VNC password', async () => {
    const base = { url: 'vnc://10.0.0.7:5901', security: 'vencrypt', ca_cert: pki.ca, servername: 'vnc.test', password: 'secret-vnc' };
    const m = await machine('moving-1', base);
    assert.equal(m.console.has_password, true);
    const changes: [string, Json][] = [
      ['host', { url: 'vnc://attacker.example:5901' }],
      ['port', { url: 'vnc://10.0.0.7:5999' }],
      ['CA', { ca_cert: pki.otherCa }],
      ['server name', { servername: 'evil.test' }],
      ['subtypes', { vencrypt_subtypes: ['x509none'] }],
    ];
    for (const [what, patch] of changes) {
      // Start each case from the machine with its password.
      ok(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: base }));
      const r = ok(await api('PATCH', `/admin/v1/cloudservers/${m.id}`, { cloudserver: { console: patch } }));
      assert.equal(r.cloudserver.console.has_password, false, `${what}: the password is not carried to the new target`);
      assert.deepEqual(r.changed, ['console', 'console.password'], `${what}: the answer says the password was dropped`);
      assert.equal((await stored(m.id)).endpoint!.passwordSealed, null, what);
    }
    // The same through PUT (replace): a new address without a password keeps none.
    ok(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: base }));
    const put = ok(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { ...base, url: 'vnc://attacker.example:5901', password: undefined } }));
    assert.equal(put.endpoint.has_password, false);
    assert.deepEqual(put.changed, ['console', 'console.password']);
    // Security vncauth → a new host without the password: refused, the password must be given again.
    const v = await machine('moving-2', { url: 'vnc://10.0.0.8:5900', security: 'vncauth', password: 'vnc-pw-2' });
    fails(await api('PATCH', `/admin/v1/cloudservers/${v.id}`, { cloudserver: { console: { url: 'vnc://attacker.example:5900' } } }), 400, 'PH.0400', /password/);
    assert.equal((await stored(v.id)).endpoint!.host, '10.0.0.8');
    const given = ok(await api('PATCH', `/admin/v1/cloudservers/${v.id}`, { cloudserver: { console: { url: 'vnc://10.0.0.9:5900', password: 'vnc-pw-3' } } }));
    assert.deepEqual([given.cloudserver.console.has_password, given.changed], [true, ['console']]);
    // What does not change the target keeps the password: zone, clipboard policy.
    const kept = ok(await api('PATCH', `/admin/v1/cloudservers/${v.id}`, { cloudserver: { console: { zone: 'az7', clipboard: 'off' } } }));
    assert.deepEqual([kept.cloudserver.console.has_password, kept.changed], [true, ['console']]);
    assert.equal(t.gw.consoles.credentialOf(await stored(v.id)).type, 'vncauth');
  });

  it('security #2: the sealed TLS client key is dropped with the target change too', async () => {
    const base = { url: 'vnc://10.0.0.10:5901', security: 'vencrypt', ca_cert: pki.ca, client_cert: pki.clientCert, client_key: pki.clientKey };
    const m = await machine('moving-3', base);
    assert.equal(m.console.has_client_key, true);
    const r = ok(await api('PATCH', `/admin/v1/cloudservers/${m.id}`, { cloudserver: { console: { url: 'vnc://attacker.example:5901' } } }));
    assert.deepEqual([r.cloudserver.console.has_client_key, r.cloudserver.console.client_cert], [false, null]);
    assert.deepEqual(r.changed, ['console', 'console.client_key']);
    assert.equal((await stored(m.id)).endpoint!.tlsKeySealed ?? null, null);
  });

  it('security #2: a sealed password is bound to its target: copied to another host it does not open', async () => {
    const m = await machine('bound-1', { url: 'vnc://10.0.0.11:5901', security: 'vncauth', password: 'bound-pw' });
    const r = await stored(m.id);
    assert.equal(t.gw.consoles.credentialOf(r).type, 'vncauth');
    // A path that forgot to drop it: the sealed value moved as is to another host, port or security.
    for (const moved of [{ host: 'attacker.example' }, { port: 5999 }, { security: 'vencrypt' as const, tlsCa: pki.otherCa }]) {
      assert.throws(() => t.gw.consoles.credentialOf({ ...r, endpoint: { ...r.endpoint!, ...moved } }), /failed authentication/, JSON.stringify(moved));
    }
  });

  it('security #2: values sealed before the binding still open for their unchanged endpoint; a rotation binds them', async () => {
    const m = await machine('legacy-1', { url: `vnc://127.0.0.1:${t.gw.demo!.desktop.port}`, security: 'vncauth', password: f.vnc_password });
    const r = await stored(m.id);
    const legacy = t.gw.secrets.seal(f.vnc_password, `endpoint:${m.id}`);
    await t.gw.store.inventory.upsertResource({ ...r, endpoint: { ...r.endpoint!, passwordSealed: legacy } }, Date.now());
    const token = await login(t.url, f.user, f.password, f.domain, f.project_id);
    const open = async () => {
      const res = await call(`${t.url}/v1/${f.project_id}/cloudservers/${m.id}/remote_console`, { json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token } });
      assert.equal(res.status, 200, res.text);
      const c = await RfbTestClient.connect(websocketUrl((res.body as Json).remote_console.url));
      c.close();
      await c.closed;
    };
    await open();
    // An unrelated change keeps the legacy value (nothing to revoke for the secret).
    const z = ok(await api('PATCH', `/admin/v1/cloudservers/${m.id}`, { cloudserver: { console: { zone: 'az8' } } }));
    assert.equal(z.cloudserver.console.has_password, true);
    assert.equal((await stored(m.id)).endpoint!.passwordSealed, legacy);
    assert.equal((await keyStatus(t.gw.store, t.gw.secrets)).unbound, 1);
    const rot = await rotateKeys(t.gw.store, t.gw.secrets);
    assert.ok(rot.resealed >= 1);
    const rebound = (await stored(m.id)).endpoint!;
    assert.notEqual(rebound.passwordSealed, legacy, 'the rotation re-sealed it bound to its target');
    assert.equal((await keyStatus(t.gw.store, t.gw.secrets)).unbound, 0);
    await open();
    assert.throws(() => t.gw.consoles.credentialOf({ ...r, endpoint: { ...rebound, host: 'attacker.example' } }), /failed authentication/);
  });

  it('security #9: a VeNCrypt endpoint needs a CA or a server name (admin API and fleet files: 400)', async () => {
    const m = await machine('tls-1', { url: 'vnc://10.0.0.12:5901' });
    fails(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: 'vnc://10.0.0.12:5901', security: 'vencrypt', password: 'x' } }), 400, 'PH.0400', /ca_cert:? is required with security vencrypt unless servername/);
    ok(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: 'vnc://10.0.0.12:5901', security: 'vencrypt', servername: 'vnc.test' } }));
    ok(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: 'vnc://10.0.0.12:5901', security: 'vencrypt', ca_cert: pki.ca } }));
    // Removing the CA of a CA-only endpoint is refused as well.
    fails(await api('PATCH', `/admin/v1/cloudservers/${m.id}`, { cloudserver: { console: { ca_cert: null } } }), 400, 'PH.0400', /ca_cert:? is required with security vencrypt unless servername/);
    // Anonymous TLS only (explicit opt-in): there is no certificate to check, so neither is needed.
    ok(await api('PUT', `/admin/v1/endpoints/${m.id}`, { endpoint: { url: 'vnc://10.0.0.12:5901', security: 'vencrypt', allow_anonymous_tls: true, vencrypt_subtypes: ['tlsnone'] } }));
    const fleet = `
domains:
  - name: ${f.domain}
    projects:
      - name: ${f.project_name}
        cloudservers:
          - name: tls-fleet
            console: { url: "vnc://10.0.0.13:5901", security: vencrypt }
`;
    fails(await api('POST', '/admin/v1/fleet', { fleet, dry_run: true }), 400, 'PH.0400', /ca_cert:? is required with security vencrypt unless servername/);
  });

  it('security #9: the dial code never uses an X.509 subtype without a CA or a server name', () => {
    const x509: number[] = [VeNCryptSubtype.X509_PLAIN, VeNCryptSubtype.X509_VNC, VeNCryptSubtype.X509_NONE];
    const pw = new TextEncoder().encode('pw');
    assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', password: pw, tls: {} }).filter((s) => x509.includes(s)), []);
    assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', tls: {}, allowAnonymous: true }), [VeNCryptSubtype.TLS_NONE]);
    assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', password: pw, tls: { servername: 'vnc.test' } }), [VeNCryptSubtype.X509_VNC]);
    assert.deepEqual(vencryptSubtypesFor({ type: 'vencrypt', tls: { ca: pki.ca } }), [VeNCryptSubtype.X509_NONE]);
  });

  it('security #11: a desktop created again under the same name shows nothing of the previous one', async () => {
    const people = await castOnce();
    const port = t.gw.demo!.desktop.port;
    const newDesktop = async () => ok(await api('POST', '/admin/v1/desktops', {
      desktop: { project_id: f.project_id, name: 'reused-desk', console: { url: `vnc://127.0.0.1:${port}`, security: 'vncauth', password: f.vnc_password } },
    }), 201).desktop;
    const d1 = await newDesktop();
    // History of the first incarnation: a console session, a share space (with its password), audit events.
    const remote = await call(`${t.url}/v2/${f.project_id}/desktops/${d1.id}/remote-consoles`, { headers: { 'x-auth-token': people.helpdesk } });
    assert.equal(remote.status, 200, remote.text);
    const c = await RfbTestClient.connect(websocketUrl((remote.body as Json).url));
    c.close();
    await c.closed;
    const url = assistUrl(t, d1.id);
    const created = await call(url, { method: 'POST', headers: { 'x-auth-token': people.helpdesk } });
    assert.equal(created.status, 200, created.text);
    const spaceId = (created.body as Json).share_space_id as string;
    const shown = await call(url, { headers: { 'x-auth-token': people.helpdesk } });
    assert.equal((shown.body as Json).status, 'WAIT_USER_CONFIRM');
    ok(await api('GET', `/admin/v1/desktops/${d1.id}`));
    assert.ok(ok(await api('GET', `/admin/v1/sessions?resource_id=${d1.id}&all=true`)).count >= 1);

    // Deleting the desktop closes its active share space.
    assert.equal((await api('DELETE', `/admin/v1/desktops/${d1.id}`)).status, 204);
    assert.equal((await t.gw.store.assistance.getSpace(spaceId))?.status, 'CLOSE', 'the space of a deleted desktop is closed');

    t.clock.offsetMs += 5;
    const d2 = await newDesktop();
    assert.equal(d2.id, d1.id, 'the derived id is the same');
    assert.equal(ok(await api('GET', `/admin/v1/sessions?resource_id=${d2.id}&all=true`)).count, 0, 'no session of the previous desktop');
    await t.gw.audit.flush();
    const events = ok(await api('GET', `/admin/v1/audit-events?resource_id=${d2.id}`)).events as Json[];
    assert.ok(events.length >= 1, 'the new desktop\'s own creation is there');
    for (const e of events) assert.ok(Date.parse(e.time) >= Date.parse(d2.created_at), `an event of the previous desktop: ${e.action} at ${e.time}`);
    const again = await call(url, { headers: { 'x-auth-token': people.helpdesk } });
    assert.equal(again.status, 404, `the previous desktop's share space (and its password) is not shown: ${again.text}`);
    // The new desktop gets a space of its own (the previous one does not block it).
    const mine = await call(url, { method: 'POST', headers: { 'x-auth-token': people.helpdesk } });
    assert.equal(mine.status, 200, mine.text);
    const now = await call(url, { headers: { 'x-auth-token': people.helpdesk } });
    assert.equal((now.body as Json).share_space_id, (mine.body as Json).share_space_id);
    assert.notEqual((mine.body as Json).share_space_id, spaceId);
    assert.equal((await api('DELETE', `/admin/v1/desktops/${d2.id}`)).status, 204);
  });
  it('security #11: a space left active by a desktop deleted before this fix is closed, not shown, and does not block', async () => {
    const people = await castOnce();
    const port = t.gw.demo!.desktop.port;
    const body = { desktop: { project_id: f.project_id, name: 'reused-desk-2', console: { url: `vnc://127.0.0.1:${port}`, security: 'vncauth', password: f.vnc_password } } };
    const d1 = ok(await api('POST', '/admin/v1/desktops', body), 201).desktop;
    const url = assistUrl(t, d1.id);
    const created = await call(url, { method: 'POST', headers: { 'x-auth-token': people.helpdesk } });
    assert.equal(created.status, 200, created.text);
    const old = (created.body as Json).share_space_id as string;
    await t.gw.store.inventory.deleteResource(d1.id); // as an older version left it: the space still active
    t.clock.offsetMs += 5;
    const d2 = ok(await api('POST', '/admin/v1/desktops', body), 201).desktop;
    assert.equal(d2.id, d1.id);
    const shown = await call(url, { headers: { 'x-auth-token': people.helpdesk } });
    assert.equal(shown.status, 404, shown.text);
    assert.equal((await t.gw.store.assistance.getSpace(old))?.status, 'CLOSE');
    const mine = await call(url, { method: 'POST', headers: { 'x-auth-token': people.helpdesk } });
    assert.equal(mine.status, 200, mine.text);
    assert.equal((await api('DELETE', `/admin/v1/desktops/${d2.id}`)).status, 204);
  });
});
