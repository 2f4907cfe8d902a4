/**
 * Acknowledged work kept through a database outage (found by bench/chaos.ts).
 *
 * A console upgrade refused for want of the database after its token was consumed (found by
 * bench/chaos.ts, PostgreSQL outage under load): the client is told 503 `store_unavailable`, "try again
 * in a few seconds", so the token must still be good when it does. The failure is made deterministic
 * with a trigger on console_sessions that raises SQLSTATE 57P03 (cannot connect now): the token's
 * conditional UPDATE commits, then the session row's INSERT fails as it would when the connection
 * drops between the two.
 *
 * A mint answered 200 whose audit row (written just after the answer) meets the outage: the row is
 * kept and written when the database answers again (the same trigger, on audit_events).
 *
 * A session row whose INSERT the server committed while the network to it went away (the node heard
 * nothing back and refused the upgrade 503): the row is closed (store_unavailable) once the database
 * answers, instead of staying open for ever. The node reaches PostgreSQL through the TCP proxy of
 * helpers/postgres.ts; a trigger holds the INSERT until the proxy has reset the connection.
 *
 * Needs `npm run build` and PostgreSQL (CI=true: missing → failure).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, it } from 'node:test';
import { startDemoDesktop, type DemoDesktop } from '../../src/demo/desktop.js';
import { createTestSchema, startTcpProxy, type TcpProxy, type TestSchema } from '../helpers/postgres.js';
import { describeWith } from '../helpers/redis.js';
import { RfbTestClient } from '../helpers/rfb-client.js';
import { call } from '../helpers/gateway.js';
import {
  clusterFleet, clusterLogin, clusterProjectId, clusterServerId, mintConsole, newMasterKey, sleep, startNode, tryUpgrade, until, websocketUrl, type NodeProcess,
} from '../helpers/cluster.js';

const VNC_PASSWORD = 'vnc-pw-4';

await describeWith('a database outage between an acknowledgement and its rows', { postgres: true }, () => {
  let schema: TestSchema;
  let desktop: DemoDesktop;
  let node: NodeProcess;
  let proxy: TcpProxy;
  let token: string;

  before(async () => {
    schema = await createTestSchema();
    await schema.admin(`set search_path to ${schema.name}`);
    desktop = await startDemoDesktop({ password: VNC_PASSWORD, name: 'outage token desktop' });
    const db = new URL(schema.url);
    proxy = await startTcpProxy(db.hostname, Number(db.port || 5432));
    node = await startNode({
      name: 'outage-ack', databaseUrl: proxy.urlFor(schema.url), masterKey: newMasterKey(),
      fleet: clusterFleet({ desk: { host: desktop.host, port: desktop.port } }, VNC_PASSWORD),
      args: ['--cluster-heartbeat-seconds', '1'],
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

  it('reliability: a 503 store_unavailable after the token was consumed gives the token back; the retry opens the console', async () => {
    const consoleUrl = (await mintConsole(node.url, token, 'desk')).consoleUrl!;
    await schema.admin(`create function ${schema.name}.chaos_fail() returns trigger language plpgsql as $$
      begin raise exception 'simulated outage' using errcode = '57P03'; end $$`);
    await schema.admin(`create trigger chaos_fail before insert on ${schema.name}.console_sessions for each row execute function ${schema.name}.chaos_fail()`);
    try {
      const refused = await tryUpgrade(websocketUrl(consoleUrl, node.url));
      assert.equal(refused.status, 503, refused.body);
      assert.equal((JSON.parse(refused.body) as { reason: string }).reason, 'store_unavailable');
    } finally {
      await schema.admin(`drop trigger chaos_fail on ${schema.name}.console_sessions`);
    }
    // The token is not spent: the page's retry (the same URL) opens the console, once.
    const state = await until('the token released', async () => {
      const r = (await schema.admin('select redeemed_at from console_tokens order by created_at desc limit 1')).rows[0] as { redeemed_at: string | null };
      return r.redeemed_at === null ? 'released' : undefined;
    }, 5000, 100);
    assert.equal(state, 'released');
    const c = await RfbTestClient.connect(websocketUrl(consoleUrl, node.url));
    await c.requestUpdate();
    const again = await tryUpgrade(websocketUrl(consoleUrl, node.url));
    assert.equal(again.status, 410, 'still one use only');
    assert.equal((JSON.parse(again.body) as { reason: string }).reason, 'token_used');
    c.ws.close();
    await c.closed;
    const sessions = (await schema.admin('select count(*)::int as n from console_sessions')).rows[0] as { n: number };
    assert.equal(sessions.n, 1, 'one session row: the refused upgrade left none');
  });

  it('reliability: the audit row of a mint answered 200 is written once the database answers again, not dropped', async () => {
    // The database refuses audit rows (as when it goes away just after the mint's token committed).
    await schema.admin(`create function ${schema.name}.chaos_fail_audit() returns trigger language plpgsql as $$
      begin raise exception 'simulated outage' using errcode = '57P03'; end $$`);
    await schema.admin(`create trigger chaos_fail_audit before insert on ${schema.name}.audit_events for each row execute function ${schema.name}.chaos_fail_audit()`);
    let requestId: string;
    try {
      const r = await call(`${node.url}/v1/${clusterProjectId}/cloudservers/${clusterServerId('desk')}/remote_console`, {
        headers: { 'x-auth-token': token }, json: { remote_console: { protocol: 'vnc', type: 'novnc' } },
      });
      assert.equal(r.status, 200, r.text);
      requestId = r.headers.get('x-request-id')!;
      assert.ok(requestId);
      await sleep(1500); // the first write (and a retry) fail meanwhile
    } finally {
      await schema.admin(`drop trigger chaos_fail_audit on ${schema.name}.audit_events`);
    }
    const row = await until('the mint\'s audit row', async () =>
      (await schema.admin(`select result, code from audit_events where request_id = $1 and action = 'ecs:cloudServers:vnc'`, [requestId])).rows[0] as { result: string } | undefined,
    5000, 100);
    assert.equal(row.result, 'success');
    const n = (await schema.admin('select count(*)::int as n from audit_events where request_id = $1', [requestId])).rows[0] as { n: number };
    assert.equal(n.n, 1, 'written once');
  });

  it('reliability: a session row whose insert committed but whose answer was lost (503 store_unavailable) is closed once the database answers', async () => {
    const consoleUrl = (await mintConsole(node.url, token, 'desk')).consoleUrl!;
    // The insert commits only after a pause; meanwhile the network to the database goes away.
    await schema.admin(`create function ${schema.name}.chaos_slow() returns trigger language plpgsql as $$
      begin perform pg_sleep(2); return new; end $$`);
    await schema.admin(`create trigger chaos_slow after insert on ${schema.name}.console_sessions for each row execute function ${schema.name}.chaos_slow()`);
    let refused: { status: number; body: string };
    try {
      const upgrading = tryUpgrade(websocketUrl(consoleUrl, node.url));
      await until('the session insert running', async () =>
        ((await schema.admin(`select 1 from pg_stat_activity where pid <> pg_backend_pid() and state = 'active' and query ilike '%insert into "console_sessions"%'`)).rows.length > 0 ? true : undefined), 10_000, 20);
      proxy.refuse();
      refused = await upgrading;
    } finally {
      proxy.restore();
    }
    assert.equal(refused.status, 503, refused.body);
    await schema.admin(`drop trigger chaos_slow on ${schema.name}.console_sessions`);
    // The server committed the row the node never heard back about: it must not stay open for ever.
    const hash = createHash('sha256').update(new URL(consoleUrl).searchParams.get('token')!).digest('hex');
    const rowOf = async () => (await schema.admin('select ended_at, close_reason from console_sessions where token_hash = $1', [hash])).rows[0] as { ended_at: string | null; close_reason: string } | undefined;
    await until('the session row committed by the server', rowOf, 10_000, 100);
    const row = await until('the orphan session row closed', async () => { const r = await rowOf(); return r?.ended_at !== null ? r : undefined; }, 15_000, 200);
    assert.equal(row.close_reason, 'store_unavailable');
  });
});
