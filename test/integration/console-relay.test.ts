/**
 * The console data plane through the real gateway: a URL minted by the API, a WebSocket RFB client on
 * `/vnc/{zone}/websockify?token=T`, and real backends (the demo desktop; TigerVNC Xvnc with VncAuth).
 * Token rules at the upgrade: single use, expiry, foreign Origin refused without consuming the token,
 * zone binding, and session records with bytes and close reason.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_BACKGROUND } from '../../src/demo/scene.js';
import { deriveProjectId, deriveResourceId } from '../../src/domain/fleet.js';
import { call, demoLogin, login, startTestGateway, tryUpgrade, websocketUrl, type TestGateway } from '../helpers/gateway.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import { hexToRgb, requireTools, startXvnc, XVNC_FLEET, type XvncServer } from '../helpers/vnc-servers.js';

describe('console relay through the gateway', () => {
  let t: TestGateway;
  let token: string;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];

  before(async () => {
    t = await startTestGateway();
    f = t.gw.demo!.facts;
    token = await demoLogin(t);
  });
  after(async () => t.close());

  async function mintEcs(): Promise<string> {
    const r = await call(`${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, {
      json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token },
    });
    assert.equal(r.status, 200, r.text);
    return (r.body as { remote_console: { url: string } }).remote_console.url;
  }

  it('relays the demo desktop: handshake with None, ServerInit, the expected pixels; the session is recorded', async () => {
    const url = await mintEcs();
    const c = await RfbTestClient.connect(websocketUrl(url));
    assert.equal(c.serverInit?.name, 'Porthole demo desktop');
    assert.equal(c.width, 1024);
    await c.requestUpdate();
    const [r, g, b] = DEFAULT_BACKGROUND;
    assert.deepEqual(c.pixel(3, 3), { r, g, b });
    assert.deepEqual(c.pixel(1020, 764), { r, g, b });
    // Input reaches the machine: observed on the backend side.
    const before = t.gw.demo!.desktop.keyLog.length;
    c.send(Uint8Array.from([4, 1, 0, 0, 0, 0, 0, 0x61]));
    c.send(Uint8Array.from([4, 0, 0, 0, 0, 0, 0, 0x61]));
    for (let i = 0; i < 100 && t.gw.demo!.desktop.keyLog.length < before + 2; i++) await sleep(20);
    assert.equal(t.gw.demo!.desktop.keyLog.at(-1)?.keysym, 0x61);
    const open = await t.gw.store.sessions.list({ resourceId: f.cloudserver_id, open: true });
    assert.equal(open.length, 1);
    c.close();
    await c.closed;
    let ended;
    for (let i = 0; i < 100; i++) {
      ended = await t.gw.store.sessions.get(open[0]!.id);
      if (ended?.endedAt) break;
      await sleep(20);
    }
    assert.ok(ended?.endedAt, 'session row closed');
    assert.ok(ended.bytesToClient > 1024 * 768, `bytes to client ${ended.bytesToClient}`);
    assert.ok(ended.bytesToBackend > 0);
    assert.equal(ended.closeReason, 'client_closed');
  });

  it('refuses a second redemption before 101 (410), and the page can learn why', async () => {
    const url = await mintEcs();
    const c = await RfbTestClient.connect(websocketUrl(url));
    const again = await tryUpgrade(websocketUrl(url));
    assert.equal(again.status, 410);
    assert.equal(JSON.parse(again.body).reason, 'token_used');
    const u = new URL(url);
    const state = await call(`${t.url}/vnc/demo/token-state?token=${u.searchParams.get('token')}`);
    assert.deepEqual(state.body, { state: 'used' });
    c.close();
  });

  it('refuses an expired token (410 token_expired)', async () => {
    const url = await mintEcs();
    t.clock.offsetMs = 601_000;
    try {
      const r = await tryUpgrade(websocketUrl(url));
      assert.equal(r.status, 410);
      assert.equal(JSON.parse(r.body).reason, 'token_expired');
    } finally {
      t.clock.offsetMs = 0;
    }
  });

  it('refuses a foreign Origin with 403 without consuming the token', async () => {
    const url = await mintEcs();
    const r = await tryUpgrade(websocketUrl(url), { headers: { Origin: 'https://evil.example' } });
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).reason, 'origin_forbidden');
    const ok = await tryUpgrade(websocketUrl(url), { headers: { Origin: new URL(t.url).origin } });
    assert.equal(ok.status, 101, 'the token still works from the right origin');
  });

  it('refuses a token presented under another zone, unknown tokens and bad paths without consuming anything', async () => {
    const url = await mintEcs();
    const tok = new URL(url).searchParams.get('token');
    const wsBase = `ws://${new URL(t.url).host}`;
    assert.equal((await tryUpgrade(`${wsBase}/vnc/other/websockify?token=${tok}`)).status, 403);
    assert.equal((await tryUpgrade(`${wsBase}/vnc/demo/websockify?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`)).status, 403);
    assert.equal((await tryUpgrade(`${wsBase}/vnc/demo/websockify`)).status, 400);
    assert.equal((await tryUpgrade(`${wsBase}/elsewhere?token=${tok}`)).status, 404);
    assert.equal((await tryUpgrade(websocketUrl(url))).status, 101);
  });

  it('a revoked endpoint (changed by a fleet re-apply) refuses outstanding tokens', async () => {
    const url = await mintEcs();
    const { applyFleet } = await import('../../src/domain/fleet.js');
    const { demoFleet } = await import('../../src/demo/seed.js');
    const { systemClock } = await import('../../src/domain/clock.js');
    // Point the server at another port: the endpoint generation changes.
    await applyFleet(t.gw.store, t.gw.secrets, systemClock, demoFleet(f, '127.0.0.1', t.gw.demo!.desktop.port + 1));
    const r = await tryUpgrade(websocketUrl(url));
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).reason, 'token_revoked');
    await applyFleet(t.gw.store, t.gw.secrets, systemClock, demoFleet(f, '127.0.0.1', t.gw.demo!.desktop.port));
  });

  it('an unreachable machine ends the session with backend_unreachable and closes its session row', async () => {
    const { applyFleet } = await import('../../src/domain/fleet.js');
    const { demoFleet } = await import('../../src/demo/seed.js');
    const { systemClock } = await import('../../src/domain/clock.js');
    await applyFleet(t.gw.store, t.gw.secrets, systemClock, demoFleet(f, '127.0.0.1', 1));
    try {
      const url = await mintEcs();
      const c = await RfbTestClient.open(websocketUrl(url));
      const closed = await c.closed;
      assert.equal(closed.code, 4001);
      assert.equal(closed.reason, 'backend_unreachable');
      const rows = await t.gw.store.sessions.list({ resourceId: f.cloudserver_id });
      for (let i = 0; i < 50 && rows[0]?.closeReason !== 'backend_unreachable'; i++) {
        await sleep(20);
        rows.splice(0, rows.length, ...(await t.gw.store.sessions.list({ resourceId: f.cloudserver_id })));
      }
      assert.equal(rows[0]?.closeReason, 'backend_unreachable');
    } finally {
      await applyFleet(t.gw.store, t.gw.secrets, systemClock, demoFleet(f, '127.0.0.1', t.gw.demo!.desktop.port));
    }
  });
});

const skipXvnc = requireTools('Xvnc', 'vncpasswd', 'xsetroot');

describe('console relay to TigerVNC Xvnc with VncAuth', { skip: skipXvnc }, () => {
  const COLOUR = '#2a7fd4';
  let xvnc: XvncServer;
  let t: TestGateway;
  let token: string;
  const projectId = deriveProjectId('lab', 'tiger');
  const serverId = deriveResourceId(projectId, 'cloudserver', 'xvnc-1');

  before(async () => {
    xvnc = await startXvnc({ password: 'tiger-pw', colour: COLOUR });
    t = await startTestGateway({
      demo: false,
      fleet: XVNC_FLEET.yaml(xvnc, 'az1'),
    });
    token = await login(t.url, 'ops', 'ops-password-1', 'lab', projectId);
  });
  after(async () => {
    await t?.close();
    await xvnc?.close();
  });

  it('the client completes the handshake with None and reads the root colour', async () => {
    const r = await call(`${t.url}/v1/${projectId}/cloudservers/${serverId}/remote_console`, {
      json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token },
    });
    assert.equal(r.status, 200, r.text);
    const url = (r.body as { remote_console: { url: string } }).remote_console.url;
    assert.match(url, /\/vnc\/az1\/vnc_auto\.html\?token=/);
    const c = await RfbTestClient.connect(websocketUrl(url));
    assert.equal(c.width, 320);
    await c.requestUpdate();
    assert.ok(c.isSolid(hexToRgb(COLOUR)), `expected a solid ${COLOUR} screen, got ${JSON.stringify(c.pixel(5, 5))}`);
    c.close();
    await c.closed;
  });
});
