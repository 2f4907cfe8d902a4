/**
 * Scale-out with two real gateway processes on one PostgreSQL schema and one Redis prefix (issue 7):
 * a console URL minted on node A opens on node B; 500 simultaneous upgrades of one token spread over
 * both nodes give exactly one 101; the throttling window is shared (Redis), so two nodes together
 * allow what one allows; a kill issued on A ends the session B relays within 1 s (Redis pub/sub);
 * a machine changed through A ends its consoles on B; GET /admin/v1/nodes lists both nodes.
 *
 * Needs `npm run build` (the nodes run dist/src/main.js), PostgreSQL and Redis; with CI=true a
 * missing service fails the file.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import WebSocket from 'ws';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { call } from '../helpers/gateway.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';
import { createTestRedis, describeWith, TEST_REDIS_URL, type TestRedis } from '../helpers/redis.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import {
  clusterFleet, clusterProjectId, clusterServerId, clusterTokens, mintConsole, newMasterKey, openSessionOf, startNode, until, websocketUrl, type NodeProcess,
} from '../helpers/cluster.js';

const VNC_PASSWORD = 'vnc-pw-1';
/** API calls per user per API per minute: small, so that sharing shows; each test that counts uses its own user. */
const PER_MINUTE = 8;

await describeWith('scale-out: two nodes on PostgreSQL + Redis', { postgres: true, redis: true }, () => {
  let schema: TestSchema;
  let redis: TestRedis;
  let desktop: DemoDesktop;
  let a: NodeProcess;
  let b: NodeProcess;

  before(async () => {
    schema = await createTestSchema();
    await schema.admin(`set search_path to ${schema.name}`); // the admin connection reads this file's tables
    redis = await createTestRedis();
    desktop = await startDemoDesktop({ password: VNC_PASSWORD, name: 'cluster desktop' });
    const common = {
      databaseUrl: schema.url, masterKey: newMasterKey(), redisUrl: TEST_REDIS_URL, redisPrefix: redis.prefix,
      // Identity cache entries would live 5 minutes: only the cluster bus can make a change show on the other node sooner.
      // The 500 simultaneous upgrades come from one address: the per-address budget (security #6) is raised for them.
      args: ['--ratelimit-per-minute', String(PER_MINUTE), '--ratelimit-per-address-per-second', '100000', '--ratelimit-per-address-per-minute', '10000000', '--cluster-heartbeat-seconds', '1', '--cluster-node-timeout-seconds', '5', '--iam-identity-cache-seconds', '300'],
    };
    a = await startNode({ name: 'a', ...common, fleet: clusterFleet({ desk: { host: desktop.host, port: desktop.port }, spare: { host: desktop.host, port: desktop.port } }, VNC_PASSWORD) });
    b = await startNode({ name: 'b', ...common });
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await desktop?.close();
    await schema?.drop();
    await redis?.cleanup();
  });

  // Logins count against the per-minute window too: one IAM token per user, valid on every node.
  const tokenOf = clusterTokens(() => a.url);
  const openSession = (nodeId: string) => openSessionOf(schema, nodeId);

  it('a console URL minted on node A opens on node B; the session is B\'s', async () => {
    const token = await tokenOf('alice');
    const m = await mintConsole(a.url, token, 'desk');
    assert.equal(m.status, 200, JSON.stringify(m.body));
    const c = await RfbTestClient.connect(websocketUrl(m.consoleUrl!, b.url));
    try {
      assert.equal(c.serverInit?.name, 'cluster desktop');
      await c.requestUpdate();
      assert.ok(c.updates >= 1);
      const row = await until('the session row', async () => (await schema.admin('select node_id from console_sessions where ended_at is null')).rows[0] as { node_id: string } | undefined);
      assert.equal(row.node_id, b.nodeId);
    } finally {
      c.ws.close();
      await c.closed;
    }
  });

  it('500 simultaneous upgrades of one token, spread over both nodes: exactly one 101, 499 × 410 token_used', async () => {
    const token = await tokenOf('alice');
    const m = await mintConsole(b.url, token, 'desk');
    assert.equal(m.status, 200);
    const urls = [websocketUrl(m.consoleUrl!, a.url), websocketUrl(m.consoleUrl!, b.url)];
    const winners: WebSocket[] = [];
    const statuses = await Promise.all(Array.from({ length: 500 }, (_, i) => new Promise<number>((resolve) => {
      const ws = new WebSocket(urls[i % 2]!);
      ws.once('open', () => { winners.push(ws); resolve(101); });
      ws.once('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode ?? 0); });
      ws.once('error', () => resolve(-1));
    })));
    const count = (s: number) => statuses.filter((x) => x === s).length;
    assert.equal(count(101), 1, `one winner (statuses: ${JSON.stringify(Object.fromEntries([...new Set(statuses)].map((s) => [s, count(s)])))})`);
    assert.equal(count(410), 499);
    for (const ws of winners) ws.close();
    const sessions = (await schema.admin('select count(*)::int as n from console_sessions where token_hash = (select token_hash from console_sessions order by started_at desc limit 1)')).rows[0] as { n: number };
    assert.equal(sessions.n, 1, 'one session record for the token');
  });

  it(`the throttling window is shared: ${PER_MINUTE} calls a minute in total over both nodes, not per node`, async () => {
    const token = await tokenOf('u1');
    const results = [];
    for (let i = 0; i < 2 * PER_MINUTE + 4; i++) results.push(await mintConsole(i % 2 === 0 ? a.url : b.url, token, 'spare'));
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.status === 429);
    assert.equal(ok, PER_MINUTE, `statuses: ${results.map((r) => r.status).join(',')}`);
    assert.equal(limited.length, PER_MINUTE + 4);
    assert.equal((limited[0]!.body as { error_code?: string }).error_code, 'APIGW.0308');
    assert.ok((await redis.keys()).some((k) => k.includes(':rl:60000:')), 'the minute window lives in Redis under the prefix');
  });

  it('a kill issued on node A ends the console node B relays within 1 s (4006 killed)', async (t) => {
    const token = await tokenOf('u2');
    const m = await mintConsole(a.url, token, 'desk');
    const c = await RfbTestClient.connect(websocketUrl(m.consoleUrl!, b.url));
    const sessionId = await until('B\'s session', () => openSession(b.nodeId));
    const root = await tokenOf('root');
    const t0 = performance.now();
    const r = await call(`${a.url}/admin/v1/sessions/${sessionId}`, { method: 'DELETE', headers: { 'x-auth-token': root } });
    assert.equal(r.status, 200, r.text);
    assert.equal((r.body as { outcome: string }).outcome, 'ended');
    const closed = await c.closed;
    const ms = performance.now() - t0;
    assert.equal(closed.code, 4006);
    assert.equal(closed.reason, 'killed');
    assert.ok(ms < 1000, `closed after ${Math.round(ms)} ms`);
    t.diagnostic(`kill → close: ${Math.round(ms)} ms`);
    const row = await until('the ended row', async () => (await schema.admin('select close_code, close_reason from console_sessions where id = $1 and ended_at is not null', [sessionId])).rows[0] as { close_code: number; close_reason: string } | undefined);
    assert.deepEqual(row, { close_code: 4006, close_reason: 'killed' });
  });

  it('a kill for a session no node relays answers 404 not live after the holding node said so', async () => {
    // A session row that claims node B but that B does not relay (stale): B answers not_live.
    await schema.admin(`insert into console_sessions (id, token_hash, project_id, resource_id, resource_kind, user_id, node_id, source_ip, started_at, bytes_to_client, bytes_to_backend)
      values ('00000000-0000-4000-8000-000000000001', 'x', $1, $2, 'cloudserver', null, $3, null, 1, 0, 0)`, [(await schema.admin('select project_id from resources limit 1')).rows[0]!.project_id, clusterServerId('desk'), b.nodeId]);
    const root = await tokenOf('root');
    const r = await call(`${a.url}/admin/v1/sessions/00000000-0000-4000-8000-000000000001`, { method: 'DELETE', headers: { 'x-auth-token': root } });
    assert.equal(r.status, 404, r.text);
    await schema.admin(`update console_sessions set ended_at = 1 where id = '00000000-0000-4000-8000-000000000001'`);
  });

  it('changing a machine through node A ends its consoles on node B (4007 revoked)', async () => {
    const token = await tokenOf('u3');
    const m = await mintConsole(a.url, token, 'spare');
    const c = await RfbTestClient.connect(websocketUrl(m.consoleUrl!, b.url));
    const root = await tokenOf('root');
    const r = await call(`${a.url}/admin/v1/endpoints/${clusterServerId('spare')}`, {
      method: 'PUT', headers: { 'x-auth-token': root },
      json: { endpoint: { url: `vnc://${desktop.host}:${desktop.port}`, security: 'vncauth', password: 'another-pw' } },
    });
    assert.equal(r.status, 200, r.text);
    const closed = await c.closed;
    assert.deepEqual(closed, { code: 4007, reason: 'revoked' });
  });

  it('a role removed through node A stops the user\'s token on node B at once (cached principal cleared over the bus)', async () => {
    const token = await tokenOf('u5');
    assert.equal((await mintConsole(b.url, token, 'desk')).status, 200, 'B has validated (and cached) the token');
    const root = await tokenOf('root');
    const users = await call(`${a.url}/admin/v1/users`, { headers: { 'x-auth-token': root } });
    const u5 = (users.body as { users: { id: string; name: string }[] }).users.find((u) => u.name === 'u5')!;
    const r = await call(`${a.url}/admin/v1/users/${u5.id}/roles/${clusterProjectId}`, { method: 'DELETE', headers: { 'x-auth-token': root } });
    assert.equal(r.status, 200, r.text);
    // Well inside the 300 s the entry would otherwise live.
    const status = await until('node B to refuse the removed role', async () => {
      const st = (await mintConsole(b.url, token, 'desk')).status;
      return st === 200 ? undefined : st;
    }, 10_000, 300);
    assert.equal(status, 403);
  });

  it('GET /admin/v1/nodes on either node lists both nodes, up, with their open sessions', async () => {
    const token = await tokenOf('u4');
    const m = await mintConsole(b.url, token, 'desk');
    const c = await RfbTestClient.connect(websocketUrl(m.consoleUrl!, b.url));
    try {
      const root = await tokenOf('root');
      const r = await call(`${a.url}/admin/v1/nodes`, { headers: { 'x-auth-token': root } });
      assert.equal(r.status, 200, r.text);
      const nodes = (r.body as { nodes: { id: string; state: string; sessions_open: number; self: boolean; address: string; draining: boolean }[] }).nodes;
      const byId = new Map(nodes.map((n) => [n.id, n]));
      assert.equal(byId.get(a.nodeId)?.state, 'up');
      assert.equal(byId.get(a.nodeId)?.self, true);
      assert.equal(byId.get(a.nodeId)?.address, `127.0.0.1:${a.port}`);
      assert.equal(byId.get(b.nodeId)?.state, 'up');
      assert.equal(byId.get(b.nodeId)?.self, false);
      assert.equal(byId.get(b.nodeId)?.draining, false);
      assert.ok((byId.get(b.nodeId)?.sessions_open ?? 0) >= 1);
      const alice = await tokenOf('alice');
      assert.equal((await call(`${a.url}/admin/v1/nodes`, { headers: { 'x-auth-token': alice } })).status, 403, 'domain administrators only');
    } finally {
      c.ws.close();
      await c.closed;
    }
  });
});
