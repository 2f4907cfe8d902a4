/**
 * `backends.allowed_networks` on the real gateway (security review #10): a tenant administrator may
 * not point console endpoints outside the operator's networks (admin API and fleet files: 400), a
 * host name that resolves outside them is never dialled (console relay and prober), and the prober's
 * failure details are shown to gateway operators only.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { signedCall } from '../helpers/aksk.js';
import { call, startTestGateway, websocketUrl, type HttpResult, type TestGateway, okBody as ok } from '../helpers/gateway.js';
import { RfbTestClient } from '../helpers/rfb-client.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('security #10: allowed backend networks', () => {
  let t: TestGateway;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];
  let target: Server;
  let targetPort: number;
  let connections = 0;
  let root: string;
  let project: Json;
  const api = (method: string, p: string, json?: unknown): Promise<HttpResult> =>
    signedCall(t.url, { ak: f.ak!, sk: f.sk! }, { method, path: p, ...(json === undefined ? {} : { json }) }, t.clock.offsetMs);
  const asRoot = (method: string, p: string, json?: unknown) =>
    call(`${t.url}${p}`, { method, headers: { 'x-auth-token': root }, ...(json === undefined ? {} : { json }) });

  before(async () => {
    // A port on the gateway's own host that a scan would look for: it must never see a connection.
    target = createServer((s) => { connections++; s.destroy(); });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    targetPort = (target.address() as AddressInfo).port;
    t = await startTestGateway({ args: ['--backends-allowed-networks', '10.20.0.0/16,fd00:20::/32,vnc.example'] });
    f = t.gw.demo!.facts;
    ok(await api('POST', '/admin/v1/domains', { domain: { name: 'tenant', admin: { name: 'root', password: 'tenant-root-password' } } }), 201);
    const r = await call(`${t.url}/v3/auth/tokens`, {
      json: { auth: { identity: { methods: ['password'], password: { user: { name: 'root', password: 'tenant-root-password', domain: { name: 'tenant' } } } }, scope: { domain: { name: 'tenant' } } } },
    });
    root = r.headers.get('x-subject-token')!;
    project = ok(await asRoot('POST', '/admin/v1/projects', { project: { name: 'lab' } }), 201).project;
  });
  after(async () => {
    await t?.close();
    target?.close();
  });

  it('security #10: endpoints outside the allowed networks are refused when set (admin API and fleet files)', async () => {
    const machine = (url: string, name: string) => asRoot('POST', '/admin/v1/cloudservers', { cloudserver: { project_id: project.id, name, console: { url } } });
    for (const url of [`vnc://127.0.0.1:${targetPort}`, 'vnc://169.254.169.254:80', 'vnc://[::1]:5900', 'vnc://[::ffff:127.0.0.1]:5900', 'vnc://10.21.0.1:5900']) {
      const r = await machine(url, 'bad');
      assert.equal(r.status, 400, `${url}: ${r.text}`);
      assert.equal((r.body as Json).error_code, 'PH.0400');
      assert.match((r.body as Json).error_msg, /allowed backend networks/);
    }
    ok(await machine('vnc://10.20.3.4:5900', 'v4'), 201);
    ok(await machine('vnc://[fd00:20::7]:5900', 'v6'), 201);
    ok(await machine('vnc://vnc.example:5900', 'named'), 201);
    const v4 = ok(await asRoot('GET', `/admin/v1/cloudservers?project_id=${project.id}&name=v4`)).cloudservers[0];
    const moved = await asRoot('PUT', `/admin/v1/endpoints/${v4.id}`, { endpoint: { url: `vnc://127.0.0.1:${targetPort}`, security: 'none' } });
    assert.equal(moved.status, 400, moved.text);
    const fleet = `domains:\n  - name: tenant\n    projects:\n      - name: lab\n        cloudservers:\n          - name: scan\n            console: { url: "vnc://127.0.0.1:${targetPort}" }\n`;
    const applied = await asRoot('POST', '/admin/v1/fleet', { fleet, dry_run: true });
    assert.equal(applied.status, 400, applied.text);
    assert.match((applied.body as Json).error_msg, /allowed backend networks/);
    // The demo desktop (an exact endpoint the gateway allows itself) still opens.
    const url = ok(await api('POST', `/admin/v1/cloudservers/${f.cloudserver_id}/console-url`, {}), 201).console_url.url as string;
    const c = await RfbTestClient.connect(websocketUrl(url));
    c.close();
  });

  it('security #10: a host name resolving outside the allowed networks is never dialled (relay and prober)', async () => {
    // `localhost` is no listed name: accepted when set (names are checked when dialled), refused when dialled.
    const m = ok(await asRoot('POST', '/admin/v1/cloudservers', { cloudserver: { project_id: project.id, name: 'rebound', console: { url: `vnc://localhost:${targetPort}` } } }), 201).cloudserver;
    const url = ok(await asRoot('POST', `/admin/v1/cloudservers/${m.id}/console-url`, {}), 201).console_url.url as string;
    const c = await RfbTestClient.open(websocketUrl(url));
    const closed = await c.closed;
    assert.equal(closed.code, 4001, JSON.stringify(closed));
    await t.gw.prober.runOnce();
    assert.equal(connections, 0, 'nothing outside the allowed networks was connected to');
    const seen = ok(await asRoot('GET', `/admin/v1/cloudservers/${m.id}`)).cloudserver.live;
    assert.equal(seen.reachability, 'down');
  });

  it('security #10: prober failure details are shown to gateway operators only', async () => {
    const m = ok(await asRoot('GET', `/admin/v1/cloudservers?project_id=${project.id}&name=rebound`)).cloudservers[0];
    const tenantView = ok(await asRoot('GET', `/admin/v1/cloudservers/${m.id}`)).cloudserver.live;
    assert.equal(tenantView.reachability, 'down');
    assert.equal(tenantView.failure, null, 'a tenant sees a plain state');
    assert.equal(tenantView.reason, null, 'and never the server\'s or the system\'s text');
    const listed = ok(await asRoot('GET', `/admin/v1/cloudservers?project_id=${project.id}`)).cloudservers as Json[];
    assert.ok(listed.every((x) => x.live.failure === null && x.live.reason === null));
    const operatorView = ok(await api('GET', `/admin/v1/cloudservers/${m.id}`)).cloudserver.live;
    assert.equal(typeof operatorView.failure, 'string', 'an operator sees why');
  });
});
