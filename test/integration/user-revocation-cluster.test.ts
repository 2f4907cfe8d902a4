/**
 * Security review #4 across nodes: two real gateway processes on one PostgreSQL schema and one Redis
 * prefix. A user deleted, disabled or demoted through node A loses the console node B relays for
 * them (4007 revoked, over the cluster bus: `user.end`) and the links they minted (refused on B).
 *
 * Needs `npm run build` (the nodes run dist/src/main.js), PostgreSQL and Redis; with CI=true a
 * missing service fails the file.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { deriveUserId } from '../../src/domain/fleet-model.js';
import { call } from '../helpers/gateway.js';
import { createTestSchema, type TestSchema } from '../helpers/postgres.js';
import { createTestRedis, describeWith, TEST_REDIS_URL, type TestRedis } from '../helpers/redis.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import {
  CLUSTER_DOMAIN, clusterFleet, clusterProjectId, clusterTokens, mintConsole, newMasterKey, startNode, tryUpgrade, websocketUrl, type NodeProcess,
} from '../helpers/cluster.js';

const VNC_PASSWORD = 'vnc-pw-2';

await describeWith('security #4 across two nodes on PostgreSQL + Redis', { postgres: true, redis: true }, () => {
  let schema: TestSchema;
  let redis: TestRedis;
  let desktop: DemoDesktop;
  let a: NodeProcess;
  let b: NodeProcess;

  before(async () => {
    schema = await createTestSchema();
    redis = await createTestRedis();
    desktop = await startDemoDesktop({ password: VNC_PASSWORD, name: 'cluster desktop' });
    const common = { databaseUrl: schema.url, masterKey: newMasterKey(), redisUrl: TEST_REDIS_URL, redisPrefix: redis.prefix };
    a = await startNode({ name: 'a', ...common, fleet: clusterFleet({ desk: { host: desktop.host, port: desktop.port } }, VNC_PASSWORD) });
    b = await startNode({ name: 'b', ...common });
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await desktop?.close();
    await schema?.drop();
    await redis?.cleanup();
  });

  const tokenOf = clusterTokens(() => a.url);
  const closedSoon = (c: RfbTestClient) => Promise.race([c.closed, new Promise<string>((r) => setTimeout(() => r('still open'), 5000).unref())]);

  /** A console of `user` relayed by node B, and an unused link of theirs. */
  async function onB(user: string): Promise<{ live: RfbTestClient; pending: string }> {
    const token = await tokenOf(user);
    const m = await mintConsole(a.url, token, 'desk');
    assert.equal(m.status, 200, JSON.stringify(m.body));
    const live = await RfbTestClient.connect(websocketUrl(m.consoleUrl!, b.url));
    await live.requestUpdate();
    const p = await mintConsole(a.url, token, 'desk');
    return { live, pending: websocketUrl(p.consoleUrl!, b.url) };
  }

  async function assertCutOff(s: { live: RfbTestClient; pending: string }): Promise<void> {
    const closed = await closedSoon(s.live);
    if (closed === 'still open') s.live.close();
    assert.deepEqual(closed, { code: 4007, reason: 'revoked' });
    const r = await tryUpgrade(s.pending);
    assert.equal(r.status, 403, r.body);
    assert.equal(JSON.parse(r.body).reason, 'token_revoked');
  }

  const asRoot = async (method: string, path: string, json?: unknown) => {
    const r = await call(`${a.url}${path}`, { method, headers: { 'x-auth-token': await tokenOf('root') }, ...(json === undefined ? {} : { json }) });
    assert.ok(r.status === 200 || r.status === 204, r.text);
  };

  it('security #4: deleting a user through node A ends their console on node B (4007 revoked) and their links', async () => {
    const s = await onB('u1');
    await asRoot('DELETE', `/admin/v1/users/${deriveUserId(CLUSTER_DOMAIN, 'u1')}`);
    await assertCutOff(s);
  });

  it('security #4: disabling a user through node A does the same', async () => {
    const s = await onB('u2');
    await asRoot('PATCH', `/admin/v1/users/${deriveUserId(CLUSTER_DOMAIN, 'u2')}`, { user: { disabled: true } });
    await assertCutOff(s);
  });

  it('security #4: lowering a user\'s role to viewer through node A does the same; another user\'s console on B goes on', async () => {
    const s = await onB('u3');
    const other = await onB('u4');
    await asRoot('PUT', `/admin/v1/users/${deriveUserId(CLUSTER_DOMAIN, 'u3')}/roles/${clusterProjectId}`, { role: 'viewer' });
    await assertCutOff(s);
    await other.live.requestUpdate();
    assert.equal(await Promise.race([other.live.closed.then(() => 'closed'), new Promise<string>((r) => setTimeout(() => r('open'), 300))]), 'open');
    assert.equal((await tryUpgrade(other.pending)).status, 101, 'u4\'s link still opens');
    other.live.close();
  });
});
