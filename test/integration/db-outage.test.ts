/**
 * A database outage under a running gateway process (issue 7). The node reaches PostgreSQL through a
 * TCP proxy the test controls (helpers/postgres.ts), so the shared server is never stopped:
 *  - the database goes away (every connection reset, new ones refused): API calls answer 503
 *    APIGW.0613 with a plain message, never 500; console upgrades 503 `store_unavailable`; /readyz
 *    503; the live console keeps relaying both ways; a console that ends meanwhile is recorded once
 *    the database is back; a token whose upgrade was refused is still good afterwards; everything
 *    recovers without a restart;
 *  - every connection of the node killed again and again (pg_terminate_backend in a loop): calls
 *    answer 200 or 503, nothing else; the relay is untouched; afterwards every call succeeds.
 *
 * Needs `npm run build` and PostgreSQL (CI=true: missing → failure).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { call, passwordAuth } from '../helpers/gateway.js';
import { createTestSchema, startTcpProxy, type TcpProxy, type TestSchema } from '../helpers/postgres.js';
import { describeWith } from '../helpers/redis.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import {
  CLUSTER_DOMAIN, CLUSTER_PASSWORD, clusterFleet, clusterLogin, mintConsole, newMasterKey, sleep, startNode, tryUpgrade, until, websocketUrl, type NodeProcess,
} from '../helpers/cluster.js';

const VNC_PASSWORD = 'vnc-pw-3';

await describeWith('database outage under a running node', { postgres: true }, () => {
  let schema: TestSchema;
  let desktop: DemoDesktop;
  let proxy: TcpProxy;
  let node: NodeProcess;
  let appName: string;
  let token: string;

  before(async () => {
    schema = await createTestSchema();
    await schema.admin(`set search_path to ${schema.name}`);
    desktop = await startDemoDesktop({ password: VNC_PASSWORD, name: 'outage desktop' });
    const db = new URL(schema.url);
    proxy = await startTcpProxy(db.hostname, Number(db.port || 5432));
    appName = `ph_outage_${randomBytes(4).toString('hex')}`;
    const url = new URL(proxy.urlFor(schema.url));
    url.searchParams.set('application_name', appName); // a URL parameter wins: every connection of the node carries it
    node = await startNode({
      name: 'outage', databaseUrl: url.toString(), masterKey: newMasterKey(),
      fleet: clusterFleet({ desk: { host: desktop.host, port: desktop.port } }, VNC_PASSWORD),
      args: ['--cluster-heartbeat-seconds', '1', '--cluster-node-timeout-seconds', '3'],
    });
    token = await clusterLogin(node.url, 'alice');
  });

  after(async () => {
    proxy?.restore();
    await node?.stop();
    await proxy?.close();
    await desktop?.close();
    await schema?.drop();
  });

  it('database gone: 503 APIGW.0613 for API calls and upgrades, the live console relays on, recovery without restart', async () => {
    const live = await RfbTestClient.connect(websocketUrl((await mintConsole(node.url, token, 'desk')).consoleUrl!, node.url));
    const ending = await RfbTestClient.connect(websocketUrl((await mintConsole(node.url, token, 'desk')).consoleUrl!, node.url));
    const spare = (await mintConsole(node.url, token, 'desk')).consoleUrl!;
    const endingId = await until('the session rows', async () => {
      const rows = (await schema.admin('select id from console_sessions where ended_at is null order by started_at')).rows;
      return rows.length === 2 ? rows[1]!.id as string : undefined;
    });

    proxy.refuse();
    try {
      const mint = await call(`${node.url}/v1/${(await schema.admin('select id from projects limit 1')).rows[0]!.id}/cloudservers/x/remote_console`, {
        headers: { 'x-auth-token': token }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } },
      });
      assert.equal(mint.status, 503, mint.text);
      assert.equal((mint.body as { error_code: string }).error_code, 'APIGW.0613');
      assert.match((mint.body as { error_msg: string }).error_msg, /cannot reach its database/);
      assert.equal(mint.headers.get('retry-after'), '5');
      const loginCall = await call(`${node.url}/v3/auth/tokens`, { json: passwordAuth('alice', CLUSTER_PASSWORD, CLUSTER_DOMAIN, undefined) });
      assert.equal(loginCall.status, 503);
      assert.equal((loginCall.body as { error_code: string }).error_code, 'APIGW.0613');
      const up = await tryUpgrade(websocketUrl(spare, node.url));
      assert.equal(up.status, 503);
      assert.equal((JSON.parse(up.body) as { reason: string }).reason, 'store_unavailable');
      assert.equal((await call(`${node.url}/readyz`)).status, 503);
      assert.equal((await call(`${node.url}/healthz`)).status, 200);

      // The live console: screen updates keep coming and input keeps reaching the machine.
      const keysBefore = desktop.keyLog.length;
      for (let i = 0; i < 5; i++) {
        await live.requestUpdate();
        live.send(Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61 + i]));
        live.send(Buffer.from([4, 0, 0, 0, 0, 0, 0, 0x61 + i]));
        await sleep(300);
      }
      await until('keys at the machine', () => (desktop.keyLog.length >= keysBefore + 10 ? true : undefined), 3000);
      ending.ws.close();
      await ending.closed;
      await sleep(500);
      assert.equal((await schema.admin('select ended_at from console_sessions where id = $1', [endingId])).rows[0]!.ended_at, null, 'not recorded yet: the node cannot reach the database');
    } finally {
      proxy.restore();
    }

    const back = await until('API calls succeed again', async () => {
      const r = await mintConsole(node.url, token, 'desk');
      return r.status === 200 ? r : undefined;
    }, 15_000, 250);
    assert.ok(back.consoleUrl);
    assert.equal((await call(`${node.url}/readyz`)).status, 200);
    const again = await RfbTestClient.connect(websocketUrl(spare, node.url));
    again.ws.close();
    const ended = await until('the session end written after the outage', async () =>
      (await schema.admin('select close_reason from console_sessions where id = $1 and ended_at is not null', [endingId])).rows[0] as { close_reason: string } | undefined,
    10_000, 200);
    assert.equal(ended.close_reason, 'client_closed');
    await live.requestUpdate();
    live.ws.close();
    await live.closed;
  });

  it('connections killed in a loop (pg_terminate_backend): calls answer 200 or 503, the relay is untouched, then all succeed', async (t) => {
    const live = await RfbTestClient.connect(websocketUrl((await mintConsole(node.url, token, 'desk')).consoleUrl!, node.url));
    const statuses: number[] = [];
    let killing = true;
    let killed = 0;
    const killer = (async () => {
      while (killing) {
        const r = await schema.admin('select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where application_name = $1', [appName]);
        killed += (r.rows[0] as { n: number }).n;
        await sleep(100);
      }
    })();
    const end = Date.now() + 3000;
    while (Date.now() < end) {
      statuses.push((await mintConsole(node.url, token, 'desk')).status);
      await live.requestUpdate();
    }
    killing = false;
    await killer;
    assert.ok(killed > 0, 'connections were killed');
    t.diagnostic(`${killed} connections killed; ${statuses.length} calls: ${statuses.filter((x) => x === 200).length} × 200, ${statuses.filter((x) => x === 503).length} × 503`);
    assert.deepEqual([...new Set(statuses)].filter((s) => s !== 200 && s !== 503), [], `statuses: ${statuses.join(',')}`);
    const ok = await until('a call succeeds', async () => ((await mintConsole(node.url, token, 'desk')).status === 200 ? true : undefined), 10_000, 200);
    assert.ok(ok);
    for (let i = 0; i < 5; i++) assert.equal((await mintConsole(node.url, token, 'desk')).status, 200);
    await live.requestUpdate();
    live.ws.close();
    await live.closed;
  });
});
