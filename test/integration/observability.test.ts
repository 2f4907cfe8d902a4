/**
 * /metrics, /healthz and /readyz on the real gateway: what an operator's Prometheus and load balancer
 * see during and after a console session through the relay, after a refused reuse, when a caller is
 * throttled, and while the node drains.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, type AddressInfo } from 'node:net';
import { call, demoLogin, startTestGateway, upgradeStatus, websocketUrl as toWs, type TestGateway } from '../helpers/gateway.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import { gatewayVersion } from '../../src/observability/metrics.js';

/** The value of one sample in Prometheus text format (labels matched as a subset), or undefined. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have.set(l[1]!, l[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

describe('metrics and health', () => {
  let t: TestGateway;
  let token: string;
  let f: NonNullable<TestGateway['gw']['demo']>['facts'];

  before(async () => {
    t = await startTestGateway({ args: ['--ratelimit-per-second', '1000'] });
    f = t.gw.demo!.facts;
    token = await demoLogin(t);
  });
  after(async () => t?.close());

  const scrape = async () => {
    const r = await call(`${t.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return r.text;
  };

  it('/metrics follows a console session: minted, redeemed, active 1 → 0, bytes each way, ended by reason, reuse refused', async () => {
    const before = await scrape();
    const nodeId = (await call(`${t.url}/healthz`)).body as { node_id: string };
    assert.equal(sample(before, 'porthole_node_info', { store: 'sqlite', version: gatewayVersion(), node_id: nodeId.node_id }), 1);
    assert.equal(sample(before, 'porthole_console_sessions_active'), 0);
    const minted0 = sample(before, 'porthole_console_tokens_minted_total', { kind: 'cloudserver', purpose: 'console' }) ?? 0;

    const r = await call(`${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, {
      json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': token },
    });
    assert.equal(r.status, 200, r.text);
    const url = (r.body as { remote_console: { url: string } }).remote_console.url;
    const c = await RfbTestClient.connect(toWs(url));
    await c.requestUpdate();

    const during = await scrape();
    assert.equal(sample(during, 'porthole_console_tokens_minted_total', { kind: 'cloudserver', purpose: 'console' }), minted0 + 1);
    assert.equal(sample(during, 'porthole_console_tokens_redeemed_total', { kind: 'cloudserver', purpose: 'console' }), 1);
    assert.equal(sample(during, 'porthole_console_sessions_active'), 1);
    assert.equal(sample(during, 'porthole_console_sessions_started_total'), 1);
    // Live sessions count: the full-screen update (1024×768×4) already went to the browser.
    assert.ok((sample(during, 'porthole_console_relay_bytes_total', { direction: 'to_client' }) ?? 0) > 1024 * 768 * 4, `live session bytes are counted before it ends: ${during.split('\n').filter((l) => l.includes('relay_bytes')).join(' ')}`);

    assert.equal(await upgradeStatus(toWs(url)), 410, 'the used link is refused');
    c.close();
    await c.closed;
    let after = await scrape();
    for (let i = 0; i < 100 && sample(after, 'porthole_console_sessions_active') !== 0; i++) { await sleep(20); after = await scrape(); }
    assert.equal(sample(after, 'porthole_console_sessions_active'), 0);
    assert.equal(sample(after, 'porthole_console_sessions_ended_total', { reason: 'client_closed' }), 1);
    assert.equal(sample(after, 'porthole_console_tokens_refused_total', { reason: 'used' }), 1);
    assert.equal(sample(after, 'porthole_console_upgrades_refused_total', { reason: 'token_used' }), 1);

    // The bytes counted equal what the session record says (nothing counted twice at the end).
    const rows = await t.gw.store.sessions.list({ resourceId: f.cloudserver_id });
    let row = rows[0];
    for (let i = 0; i < 100 && !row?.endedAt; i++) { await sleep(20); row = await t.gw.store.sessions.get(rows[0]!.id); }
    assert.equal(sample(after, 'porthole_console_relay_bytes_total', { direction: 'to_client' }), row!.bytesToClient);
    assert.equal(sample(after, 'porthole_console_relay_bytes_total', { direction: 'to_backend' }), row!.bytesToBackend);
    assert.ok(row!.bytesToBackend > 0, 'browser bytes reached the backend');

    // API latency per route pattern and status, never per raw URL.
    assert.equal(sample(after, 'porthole_api_request_duration_seconds_count', { method: 'POST', route: '/v1/:project_id/cloudservers/:server_id/remote_console', status: '200' }), 1);
    assert.ok(!after.includes(f.cloudserver_id), 'no resource id in any label');
  });

  it('counts unknown routes under one label', async () => {
    await call(`${t.url}/no/such/route/${'x'.repeat(20)}`);
    const text = await scrape();
    assert.ok((sample(text, 'porthole_api_request_duration_seconds_count', { route: 'unmatched', status: '404' }) ?? 0) >= 1, 'unknown routes are counted as unmatched');
    assert.ok(!text.includes('xxxxxxxxxx'), 'the raw URL is not a label');
  });

  it('/healthz and /readyz have their documented shapes', async () => {
    const h = await call(`${t.url}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(Object.keys(h.body as object).sort(), ['node_id', 'status', 'uptime_seconds', 'version']);
    assert.equal((h.body as { status: string }).status, 'ok');
    const r = await call(`${t.url}/readyz`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ready', node_id: (h.body as { node_id: string }).node_id, store: 'ok', draining: false });
  });
});

describe('throttled calls are counted', () => {
  it('a 429 increments porthole_api_throttled_total for its service and route', async () => {
    const t = await startTestGateway({ args: ['--ratelimit-per-second', '1'] });
    try {
      const f = t.gw.demo!.facts;
      const tok = await demoLogin(t);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await call(`${t.url}/v2/${f.project_id}/desktops/${f.desktop_id}`, { headers: { 'x-auth-token': tok } });
        statuses.push(r.status);
      }
      assert.ok(statuses.includes(429), `statuses ${statuses}`);
      const text = (await call(`${t.url}/metrics`)).text;
      assert.equal(sample(text, 'porthole_api_throttled_total', { service: 'workspace', route: '/v2/:project_id/desktops/:desktop_id' }), statuses.filter((s) => s === 429).length);
    } finally {
      await t.close();
    }
  });
});

describe('/readyz while draining', () => {
  it('answers 503 draining once the node drains (close does it first), while /healthz stays 200', async () => {
    const t = await startTestGateway();
    try {
      assert.equal((await call(`${t.url}/readyz`)).status, 200);
      t.gw.drain();
      const r = await call(`${t.url}/readyz`);
      assert.equal(r.status, 503);
      assert.deepEqual({ ...(r.body as object), node_id: undefined }, { status: 'unavailable', node_id: undefined, store: 'ok', draining: true, error_code: 'APIGW.0613' });
      assert.equal((await call(`${t.url}/healthz`)).status, 200);
    } finally {
      await t.close();
    }
  });

  it('a node stopping with a grace period (a console still open) answers 503 draining during the grace', async () => {
    const t = await startTestGateway();
    const f = t.gw.demo!.facts;
    const tok = await demoLogin(t);
    const r0 = await call(`${t.url}/v1/${f.project_id}/cloudservers/${f.cloudserver_id}/remote_console`, {
      json: { remote_console: { protocol: 'vnc', type: 'novnc' } }, headers: { 'x-auth-token': tok },
    });
    const c = await RfbTestClient.connect(toWs((r0.body as { remote_console: { url: string } }).remote_console.url));
    // A console keeps the node in its grace period; readiness must already say draining.
    const closing = t.gw.close(5_000);
    try {
      const r = await t.gw.app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(r.statusCode, 503);
      assert.equal(r.json().draining, true);
    } finally {
      c.close();
      await closing;
      await t.close();
    }
  });
});

describe('metrics: backend probe state', () => {
  let t: TestGateway;

  before(async () => {
    // One machine on a port nothing listens on: the demo's three machines are up, this one is down.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    t = await startTestGateway({
      fleet: `
domains:
  - name: probe-metrics
    projects:
      - name: lab
        cloudservers: [{ name: gone, console: { url: "vnc://127.0.0.1:${port}" } }]
`,
    });
  });
  after(async () => t?.close());

  it('endpoints by state, probes by result and state changes after a probe round', async () => {
    const before = (await call(`${t.url}/metrics`)).text;
    assert.equal(sample(before, 'porthole_console_probes_total', { result: 'down' }), undefined, 'no probe yet (the prober is off in tests until asked)');
    const round = await t.gw.prober.runOnce();
    // The demo's three machines are one VNC server with one credential: one probe stands for all three.
    assert.deepEqual([round.up, round.down], [1, 1]);
    const text = (await call(`${t.url}/metrics`)).text;
    assert.equal(sample(text, 'porthole_console_endpoints', { state: 'up' }), 3);
    assert.equal(sample(text, 'porthole_console_endpoints', { state: 'down' }), 1);
    assert.equal(sample(text, 'porthole_console_endpoints', { state: 'unknown' }), 0);
    assert.equal(sample(text, 'porthole_console_probes_total', { result: 'up' }), 1);
    assert.equal(sample(text, 'porthole_console_probes_total', { result: 'down' }), 1);
    assert.equal(sample(text, 'porthole_console_endpoint_state_changes_total', { to: 'down' }), 1);
    assert.equal(sample(text, 'porthole_console_endpoint_state_changes_total', { to: 'up' }), 3, 'unknown → up counts as a change');
  });
});
