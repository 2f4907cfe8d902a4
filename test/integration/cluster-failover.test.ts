/**
 * Failover and drain with real gateway processes on one PostgreSQL schema and no Redis, so the
 * cross-node commands go through PostgreSQL LISTEN/NOTIFY (issue 7):
 *  - a kill issued on node A ends the console node B relays within 1 s;
 *  - SIGTERM drains a node while the other keeps serving: readiness, API calls and new upgrades get
 *    503 at once (the refused upgrade's token stays usable elsewhere), the live console runs through
 *    the grace period and is then closed with 4010 shutdown, the process exits 0 and leaves the
 *    nodes table;
 *  - kill -9 of a node: a survivor declares it lost within the heartbeat timeout and closes its
 *    session rows (node_lost); the dead node's token is not usable again.
 *
 * Needs `npm run build` and PostgreSQL (CI=true: missing → failure).
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { call } from '../helpers/gateway.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';
import { describeWith } from '../helpers/redis.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import {
  clusterFleet, clusterTokens, mintConsole, newMasterKey, openSessionOf, sleep, startNode, tryUpgrade, until, websocketUrl, type NodeProcess, type StartNodeOptions,
} from '../helpers/cluster.js';

const VNC_PASSWORD = 'vnc-pw-2';
const HEARTBEAT_S = 1;
const TIMEOUT_S = 3;
const GRACE_S = 3;

await describeWith('scale-out without Redis: PostgreSQL LISTEN/NOTIFY, drain, node loss', { postgres: true }, () => {
  let schema: TestSchema;
  let desktop: DemoDesktop;
  let common: Omit<StartNodeOptions, 'name'>;
  let a: NodeProcess;
  let b: NodeProcess;
  const tokenOf = clusterTokens(() => a.url);
  const openSession = (nodeId: string) => openSessionOf(schema, nodeId);

  before(async () => {
    schema = await createTestSchema();
    await schema.admin(`set search_path to ${schema.name}`);
    desktop = await startDemoDesktop({ password: VNC_PASSWORD, name: 'failover desktop' });
    common = {
      databaseUrl: schema.url, masterKey: newMasterKey(),
      args: ['--cluster-heartbeat-seconds', String(HEARTBEAT_S), '--cluster-node-timeout-seconds', String(TIMEOUT_S), '--drain-grace-seconds', String(GRACE_S)],
    };
    a = await startNode({ name: 'a', ...common, fleet: clusterFleet({ desk: { host: desktop.host, port: desktop.port } }, VNC_PASSWORD) });
    b = await startNode({ name: 'b', ...common });
    const bus = await a.waitForLog((l) => l.msg === 'porthole listening');
    assert.equal(bus.bus, 'postgres', 'without Redis the cluster bus is PostgreSQL LISTEN/NOTIFY');
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await desktop?.close();
    await schema?.drop();
  });

  it('a kill issued on node A ends the console node B relays within 1 s, through LISTEN/NOTIFY', async (t) => {
    const m = await mintConsole(a.url, await tokenOf('alice'), 'desk');
    const c = await RfbTestClient.connect(websocketUrl(m.consoleUrl!, b.url));
    const sessionId = await until('B\'s session', () => openSession(b.nodeId));
    const root = await tokenOf('root');
    const t0 = performance.now();
    const r = await call(`${a.url}/admin/v1/sessions/${sessionId}`, { method: 'DELETE', headers: { 'x-auth-token': root } });
    assert.equal(r.status, 200, r.text);
    const closed = await c.closed;
    const ms = performance.now() - t0;
    assert.deepEqual(closed, { code: 4006, reason: 'killed' });
    assert.ok(ms < 1000, `closed after ${Math.round(ms)} ms`);
    t.diagnostic(`kill → close: ${Math.round(ms)} ms`);
  });

  it('SIGTERM drains node B while node A keeps serving; the live console runs through the grace, then closes with 4010', async () => {
    const alice = await tokenOf('alice');
    const live = await RfbTestClient.connect(websocketUrl((await mintConsole(a.url, alice, 'desk')).consoleUrl!, b.url));
    const liveSession = await until('B\'s session', () => openSession(b.nodeId));
    const spare = (await mintConsole(a.url, alice, 'desk')).consoleUrl!;
    const t0 = Date.now();
    b.kill('SIGTERM');
    await b.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('draining'), 5000);

    const ready = await call(`${b.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal((ready.body as { draining: boolean }).draining, true);
    const api = await mintConsole(b.url, alice, 'desk');
    assert.equal(api.status, 503);
    assert.equal((api.body as { error_code: string }).error_code, 'APIGW.0613');
    assert.match((api.body as { error_msg: string }).error_msg, /shutting down/);
    const up = await tryUpgrade(websocketUrl(spare, b.url));
    assert.equal(up.status, 503);
    assert.equal((JSON.parse(up.body) as { reason: string }).reason, 'shutdown');

    // Node A serves on; the token B refused was not spent.
    const other = await RfbTestClient.connect(websocketUrl(spare, a.url));
    other.ws.close();
    assert.equal((await mintConsole(a.url, alice, 'desk')).status, 200);
    // B's live console still relays during the grace period.
    await live.requestUpdate();
    await sleep(1000);
    await live.requestUpdate(true, { x: 0, y: 0, width: 8, height: 8 }).catch(() => undefined);
    const closed = await live.closed;
    const elapsed = Date.now() - t0;
    assert.deepEqual(closed, { code: 4010, reason: 'shutdown' });
    assert.ok(elapsed >= GRACE_S * 1000 - 200, `closed after ${elapsed} ms, grace ${GRACE_S} s`);
    const exit = await b.exited;
    assert.equal(exit.code, 0);
    const row = (await schema.admin('select close_code, close_reason from console_sessions where id = $1', [liveSession])).rows[0];
    assert.deepEqual(row, { close_code: 4010, close_reason: 'shutdown' });
    assert.equal((await schema.admin('select count(*)::int as n from nodes where id = $1', [b.nodeId])).rows[0]!.n, 0, 'B left the nodes table');
  });

  it('kill -9 of a node: a survivor declares it lost and closes its sessions (node_lost); its token stays used', async (t) => {
    const c = await startNode({ name: 'c', ...common });
    try {
      const m = await mintConsole(a.url, await tokenOf('alice'), 'desk');
      const client = await RfbTestClient.connect(websocketUrl(m.consoleUrl!, c.url));
      const sessionId = await until('C\'s session', () => openSession(c.nodeId));
      const t0 = Date.now();
      c.kill('SIGKILL');
      const closed = await client.closed;
      assert.equal(closed.code, 1006, 'the browser sees the connection drop');
      const row = await until('the session row closed by a survivor', async () =>
        (await schema.admin('select ended_at, close_reason from console_sessions where id = $1 and ended_at is not null', [sessionId])).rows[0] as { close_reason: string } | undefined,
      (TIMEOUT_S + HEARTBEAT_S) * 1000 + 4000, 100);
      const elapsed = Date.now() - t0;
      assert.equal(row.close_reason, 'node_lost');
      t.diagnostic(`session closed by the survivor ${elapsed} ms after kill -9 (heartbeat ${HEARTBEAT_S} s, timeout ${TIMEOUT_S} s)`);
      assert.ok(elapsed <= (TIMEOUT_S + 2 * HEARTBEAT_S) * 1000 + 1000, `closed ${elapsed} ms after the kill`);
      const root = await tokenOf('root');
      const nodes = (await call(`${a.url}/admin/v1/nodes`, { headers: { 'x-auth-token': root } })).body as { nodes: { id: string; state: string; sessions_open: number }[] };
      assert.equal(nodes.nodes.find((n) => n.id === c.nodeId)?.state, 'lost');
      assert.equal(nodes.nodes.find((n) => n.id === c.nodeId)?.sessions_open, 0);
      const again = await tryUpgrade(websocketUrl(m.consoleUrl!, a.url));
      assert.equal(again.status, 410);
      assert.equal((JSON.parse(again.body) as { reason: string }).reason, 'token_used');
      const logged = a.logs().find((l) => l.msg === 'declared lost nodes and closed their sessions');
      assert.ok(logged, 'the survivor says what it did');
    } finally {
      await c.stop();
    }
  });
});
