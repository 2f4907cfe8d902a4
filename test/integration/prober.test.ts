/**
 * The liveness prober on the real gateway with a short interval, against a real TCP listener that
 * sends an RFB banner: closed, the machines behind it are marked down within one interval, their
 * console requests get the documented errors (ECS 400 Ecs.0000, CloudDC 400 iMetal.0101, Workspace
 * 400 WKS.0001) instead of a URL, and the list APIs show it (ECS status UNKNOWN, desktop login_status
 * UNREGISTER, CloudDC health Unknown); reopened, they are up again within one interval. A console
 * session makes a desktop CONNECTED, and DISCONNECTED once it ends.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { deriveProjectId, deriveResourceId } from '../../src/domain/fleet.js';
import { probeEndpoint } from '../../src/proxy/prober.js';
import { poll } from '../helpers/browser.js';
import { call, login, passwordAuth, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RfbTestClient } from '../helpers/rfb-client.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const INTERVAL_MS = 1000;
const TIMEOUT_MS = 500;

/** A VNC-ish listener: sends the 3.8 banner and keeps the connection until closed. */
function bannerServer(port = 0, banner = 'RFB 003.008\n'): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => undefined); if (banner) s.write(banner); });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve({
      server, port: (server.address() as { port: number }).port,
      close: () => new Promise<void>((res) => { for (const s of sockets) s.destroy(); server.close(() => res()); }),
    }));
  });
}

describe('probeEndpoint', () => {
  it('up with the banner version; down as refused, timeout, bad_banner or closed', async () => {
    const good = await bannerServer();
    assert.deepEqual(await probeEndpoint('127.0.0.1', good.port, TIMEOUT_MS), { reachable: true, version: '003.008' });
    await good.close();
    assert.deepEqual(await probeEndpoint('127.0.0.1', good.port, TIMEOUT_MS), { reachable: false, failure: 'refused' });
    const silent = await bannerServer(0, '');
    const t0 = Date.now();
    assert.deepEqual(await probeEndpoint('127.0.0.1', silent.port, TIMEOUT_MS), { reachable: false, failure: 'timeout' });
    assert.ok(Date.now() - t0 < TIMEOUT_MS + 300);
    await silent.close();
    const http = await bannerServer(0, 'HTTP/1.1 400 Bad Request\r\n\r\n');
    assert.deepEqual(await probeEndpoint('127.0.0.1', http.port, TIMEOUT_MS), { reachable: false, failure: 'bad_banner' });
    await http.close();
    const rude = createServer((s) => s.destroy());
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', () => r()));
    assert.deepEqual(await probeEndpoint('127.0.0.1', (rude.address() as { port: number }).port, TIMEOUT_MS), { reachable: false, failure: 'closed' });
    rude.close();
  });
});

describe('live status from the prober', () => {
  let t: TestGateway;
  let vnc: Awaited<ReturnType<typeof bannerServer>>;
  let token: string;
  const projectId = deriveProjectId('probe-co', 'lab');
  const ecsId = deriveResourceId(projectId, 'cloudserver', 'vm-1');
  const bmsId = deriveResourceId(projectId, 'physicalserver', 'bm-1');
  const deskId = deriveResourceId(projectId, 'desktop', 'desk-1');

  before(async () => {
    vnc = await bannerServer();
    const endpoint = `console: { url: "vnc://127.0.0.1:${vnc.port}" }`;
    t = await startTestGateway({
      args: ['--probe-interval-seconds', String(INTERVAL_MS / 1000), '--probe-timeout-ms', String(TIMEOUT_MS)],
      fleet: `
domains:
  - name: probe-co
    users: [{ name: ops, password: ops-password, roles: { lab: operator } }]
    projects:
      - name: lab
        cloudservers: [{ name: vm-1, ${endpoint} }]
        physicalservers: [{ name: bm-1, ${endpoint} }]
        desktops: [{ name: desk-1, ${endpoint}, attributes: { desktop_type: DEDICATED } }]
`,
    });
    token = await login(t.url, 'ops', 'ops-password', 'probe-co', projectId);
  });
  after(async () => {
    await t?.close();
    await vnc?.close();
  });

  const probeOf = (id: string) => t.gw.store.probes.get(id);
  const consoles = () => Promise.all([
    call(`${t.url}/v1/${projectId}/cloudservers/${ecsId}/remote_console`, { json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token } }),
    call(`${t.url}/v1/${projectId}/physicalservers/${bmsId}/remote-console-address`, { headers: { 'x-auth-token': token } }),
    call(`${t.url}/v2/${projectId}/desktops/${deskId}/remote-consoles`, { headers: { 'x-auth-token': token } }),
  ]);
  const statuses = async () => {
    const [ecs, wks, dc] = await Promise.all([
      call(`${t.url}/v1/${projectId}/cloudservers/detail`, { headers: { 'x-auth-token': token } }),
      call(`${t.url}/v2/${projectId}/desktops/detail`, { headers: { 'x-auth-token': token } }),
      call(`${t.url}/v1/${projectId}/physicalservers`, { headers: { 'x-auth-token': token } }),
    ]);
    return {
      ecs: (ecs.body as Json).servers[0].status, power: (ecs.body as Json).servers[0]['OS-EXT-STS:power_state'],
      login: (wks.body as Json).desktops[0].login_status, health: (dc.body as Json).servers[0].health_state, bmsPower: (dc.body as Json).servers[0].power_state,
    };
  };

  it('probes right at start: the machines are up and their consoles are handed out', async () => {
    for (const id of [ecsId, bmsId, deskId, t.gw.demo!.facts.desktop_id]) {
      const p = await poll(`first probe of ${id}`, async () => probeOf(id), 3000);
      assert.equal(p.reachable, true);
      assert.equal(p.rfbVersion, '003.008');
    }
    for (const r of await consoles()) assert.equal(r.status, 200, r.text);
    assert.deepEqual(await statuses(), { ecs: 'ACTIVE', power: 1, login: 'REGISTERED', health: 'OK', bmsPower: 'on' });
  });

  it('marks them down within one interval after the listener closes; consoles get the documented errors', async () => {
    await vnc.close();
    const closedAt = Date.now();
    for (const id of [ecsId, bmsId, deskId]) await poll(`${id} down`, async () => ((await probeOf(id))?.reachable === false ? true : undefined), INTERVAL_MS + TIMEOUT_MS + 1000, 25);
    const took = Date.now() - closedAt;
    // One interval, plus the round itself and this poll's 25 ms granularity.
    assert.ok(took <= INTERVAL_MS + 500, `marked down after ${took} ms (interval ${INTERVAL_MS} ms)`);
    assert.equal((await probeOf(ecsId))!.failure, 'refused');

    const [ecs, bms, desk] = await consoles();
    assert.equal(ecs.status, 400);
    assert.deepEqual(ecs.body, { error: { code: 'Ecs.0000', message: `Instance[${ecsId}] does not answer on its console.` } });
    assert.equal(bms.status, 400);
    assert.equal((bms.body as Json).error_code, 'iMetal.0101');
    assert.equal((bms.body as Json).error_msg, `Physical servers state is not ready: [${bmsId}]`);
    assert.equal(desk.status, 400);
    assert.deepEqual([(desk.body as Json).error_code, (desk.body as Json).error_msg], ['WKS.0001', `The desktop ${deskId} does not answer on its console.`]);
    for (const r of [ecs, bms, desk]) assert.ok(!r.text.includes('token='), 'no URL that cannot work');
    assert.deepEqual(await statuses(), { ecs: 'UNKNOWN', power: 0, login: 'UNREGISTER', health: 'Unknown', bmsPower: undefined });
    const filtered = await call(`${t.url}/v1/${projectId}/cloudservers/detail?status=ACTIVE`, { headers: { 'x-auth-token': token } });
    assert.equal((filtered.body as Json).count, 0);
  });

  it('marks them up again within one interval after the listener returns on the same port', async () => {
    vnc = await bannerServer(vnc.port);
    const openedAt = Date.now();
    for (const id of [ecsId, bmsId, deskId]) await poll(`${id} up`, async () => ((await probeOf(id))?.reachable === true ? true : undefined), INTERVAL_MS + TIMEOUT_MS + 1000, 25);
    const took = Date.now() - openedAt;
    assert.ok(took <= INTERVAL_MS + 500, `marked up after ${took} ms`);
    for (const r of await consoles()) assert.equal(r.status, 200, r.text);
    assert.deepEqual(await statuses(), { ecs: 'ACTIVE', power: 1, login: 'REGISTERED', health: 'OK', bmsPower: 'on' });
  });

  it('a stopped machine is refused whatever the probe says', async () => {
    const f = t.gw.demo!.facts;
    // An operator's domain-scoped token (one scoped to the demo project acts on that project only).
    const operator = (await call(`${t.url}/v3/auth/tokens`, { json: passwordAuth(f.user, f.password, f.domain, { domain: { name: f.domain } }) })).headers.get('x-subject-token')!;
    const r = await fetch(`${t.url}/admin/v1/cloudservers/${ecsId}`, { method: 'PATCH', headers: { 'x-auth-token': operator, 'content-type': 'application/json' }, body: JSON.stringify({ cloudserver: { status: 'SHUTOFF' } }) });
    assert.equal(r.status, 200, 'the demo domain is an operator domain: its administrator manages probe-co too');
    const [ecs] = await consoles();
    assert.deepEqual(ecs.body, { error: { code: 'Ecs.0000', message: `Instance[${ecsId}] is not running.` } });
    assert.equal((await statuses()).ecs, 'SHUTOFF');
  });

  it('a console session makes the desktop CONNECTED, and DISCONNECTED when it ends', async () => {
    const f = t.gw.demo!.facts;
    const demoToken = await login(t.url, f.user, f.password, f.domain, f.project_id);
    const detail = async () => ((await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}`, { headers: { 'x-auth-token': demoToken } })).body as Json).desktop.login_status;
    assert.equal(await detail(), 'REGISTERED');
    const u = new URL(((await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}/remote-consoles`, { headers: { 'x-auth-token': demoToken } })).body as Json).url);
    u.protocol = 'ws:';
    u.pathname = u.pathname.replace('vnc_auto.html', 'websockify');
    const c = await RfbTestClient.connect(u.toString());
    assert.equal(await detail(), 'CONNECTED');
    c.close();
    await c.closed;
    await poll('DISCONNECTED', async () => ((await detail()) === 'DISCONNECTED' ? true : undefined), 3000);
  });
});
